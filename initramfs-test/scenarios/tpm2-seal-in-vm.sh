# shellcheck shell=bash
# tpm2 provisioned in the VM: boot 1 runs `integrity-loader seal`, boot 2 unseals
#
# The way a user provisions: the installed system (root with the binary in
# /usr/bin, certificates, policy, EVMKEY=/etc/keys/evm-tpm2.blob in
# /etc/sysconfig/evm, no kmk yet) boots once with a fresh swtpm attached and
# runs `integrity-loader seal --pcrs sha256:11 --evm-key ... --write-config`:
# it creates the storage key, seals a new kmk to the current PCR 11, exports
# an evm-key sealed by it and writes /etc/integrity-loader.conf. The second
# boot, same TPM state and root, minimal initramfs, must unseal the kmk and
# reach the full state: EVM at 3, policy enforced, and the kmk unlinked
# (seal --write-config leaves DROP_KMK unset: with the PCR lock, dropped).

scenario() {
    new_root
    root_certs_and_policy
    echo 'EVMKEY=/etc/keys/evm-tpm2.blob' | put /etc/sysconfig/evm
    put /usr/bin/integrity-loader 0755 < "$BIN"
    put /usr/bin/integrity-admin 0755 < "$SHARED/integrity-admin"
    # The command as the README gives it. If it fails, that is recorded, and
    # it is run again with the kernel command line as a regular file
    # (--cmdline), so that the second boot still tests the rest.
    put /etc/agent-provision << 'SNIPPET'
seal() {
    /usr/bin/integrity-loader seal --pcrs sha256:11 --evm-key /etc/keys/evm-tpm2.blob --write-config "$@"
}
echo "AGENT: provisioning: integrity-loader seal"
seal
rc=$?
if [ $rc != 0 ]; then
    bad "integrity-loader seal failed (status $rc)"
    cat /proc/cmdline > /tmp/cmdline
    echo "AGENT: provisioning again: integrity-loader seal --cmdline /tmp/cmdline"
    seal --cmdline /tmp/cmdline || bad "integrity-loader seal --cmdline FILE failed too (status $?)"
fi
if [ -r /etc/integrity-loader.conf ]; then
    echo "AGENT: /etc/integrity-loader.conf:"
    sed 's/^/AGENT:   /' /etc/integrity-loader.conf
fi
ls -l /etc/keys | sed 's/^/AGENT:   /'
SNIPPET
    expect KMK_NAME=kmk KMK=absent EVM_KEY=absent IMA_CERTS=1 EVM_CERTS=1 EVM=3 \
        POLICY=loaded FILES="$FILES_ENFORCED" EXEC=ok PCR11="$(locked_pcr "$ZERO_PCR")"
    build_root_image
    local initrd
    initrd=$(initramfs minimal)

    boot_vm "$initrd" --tpm --persist --log seal
    expect_agent_pass "boot 1 (seal)"
    debugfs -R 'stat /etc/integrity-loader.conf' "$S/root.img" > /dev/null 2>&1 || {
        fail "boot 1 wrote no /etc/integrity-loader.conf"
        return 0
    }

    boot_vm "$initrd" --tpm --log unseal
    expect_agent_pass
    expect_loader_log 'kmk: done: .*kmk-tpm2' "the kmk unsealed"
    expect_loader_log 'every configured step succeeded' "success"
    expect_no_log 'is not pinned' "a warning about an unpinned storage key (seal --write-config pins it)"
    expect_no_oops
}
