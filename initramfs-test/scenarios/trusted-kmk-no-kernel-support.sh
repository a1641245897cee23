# shellcheck shell=bash
# trusted configuration on Debian's kernel (no CONFIG_TRUSTED_KEYS): a clear error
#
# dracut's default MASTERKEYTYPE=trusted on a kernel without trusted keys:
# a kmk blob at the default path and an evm-key sealed by trusted:kmk. The
# loader must say the kernel has no trusted keys and what to use instead
# (MASTERKEYTYPE=tpm2), load no kmk and no evm-key, leave EVM off and the
# appraise policy unwritten, and let the boot go on (FAILURE_ACTION is
# continue). Minimal initramfs, no TPM needed.

scenario() {
    new_root
    root_certs_and_policy
    # Any hex: the kernel fails before it looks at the blob.
    printf '%s\n' "$(head -c 64 /dev/urandom | od -An -v -tx1 | tr -d ' \n')" \
        | put /etc/keys/kmk-trusted.blob 0600
    sed 's/^default user:kmk /default trusted:kmk /' "$SHARED/keys/evm-for-kmk.blob" \
        | put /etc/keys/evm-trusted.blob 0600
    expect KMK_TYPE=trusted KMK_NAME=kmk KMK=absent EVM_KEY=absent EVM=0 POLICY=none \
        FILES="$FILES_OPEN"
    build_root_image

    boot_vm "$(initramfs minimal)"
    expect_agent_pass
    expect_loader_log 'this kernel has no trusted keys \(CONFIG_TRUSTED_KEYS is off.*MASTERKEYTYPE=tpm2' \
        "the clear error"
    expect_no_oops
}
