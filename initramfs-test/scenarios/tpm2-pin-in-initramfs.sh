# shellcheck shell=bash
# tpm2 kmk, storage key pinned by the initramfs only (dracut shell initramfs)
#
# The root's /etc/integrity-loader.conf has no TPM2_PARENT_NAME (as if
# someone with the disk had removed it); the dracut initramfs carries the
# pin a host-only build would copy in: /etc/integrity-loader.pins with the
# Name tpm2-tools computed for the SRK (dracut_initramfs_with_pins). The
# hook must pass it (--pins): the kmk unseals and no "not pinned" warning
# appears, so the initramfs's pin was the one checked. Same expectations as
# tpm2-kmk.

scenario() {
    new_root
    seal_kmk "$ZERO_PCR" /etc/keys/kmk-tpm2.pem
    root_native tpm2 FAILURE_ACTION=halt
    expect KMK_NAME=kmk KMK=absent EVM_KEY=absent IMA_CERTS=1 EVM_CERTS=1 EVM=3 \
        POLICY=loaded FILES="$FILES_ENFORCED" EXEC=ok PCR11="$(locked_pcr "$ZERO_PCR")"
    build_root_image

    boot_vm "$(dracut_initramfs_with_pins "$SRK_NAME")" --tpm

    expect_agent_pass
    expect_loader_log 'kmk: done: .*unsealed by the TPM' "the kmk unsealed and loaded"
    expect_loader_log 'every configured step succeeded' "success"
    expect_no_log 'is not pinned' "an unpinned-storage-key warning (the initramfs pins it)"
    expect_no_log 'dracut Warning: integrity-loader' "a warning of the hook"
    expect_no_oops
}
