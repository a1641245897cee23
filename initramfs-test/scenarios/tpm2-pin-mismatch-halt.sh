# shellcheck shell=bash
# the initramfs pins another storage key than the TPM has: no kmk, the boot stops
#
# The root is set up and pinned correctly (TPM2_PARENT_NAME = the SRK's
# Name), but the dracut initramfs carries /etc/integrity-loader.pins with
# another Name, as when the TPM's storage key was replaced or a device on
# the bus answers for it. With FAILURE_ACTION=halt and rd.shell=0 the hook
# must die with the loader's reason (the storage key is not the pinned one,
# naming the initramfs's pins file), nothing is unsealed (PCR 11 is not
# locked: no agent sees it, the boot stops in the initramfs).

scenario() {
    new_root
    seal_kmk "$ZERO_PCR" /etc/keys/kmk-tpm2.pem
    root_native tpm2 FAILURE_ACTION=halt TPM2_PARENT_NAME="$SRK_NAME"
    build_root_image

    boot_vm "$(dracut_initramfs_with_pins "000b$(printf '5a%.0s' {1..32})")" --tpm --append rd.shell=0 \
        --stop-at 'reboot: System halted|Kernel panic - not syncing: Attempted to kill init'

    expect_no_agent
    expect_log 'dracut: FATAL: integrity-loader: FAILURE_ACTION=halt: kmk: .*is not the pinned one' \
        "dracut's die with the loader's reason"
    expect_loader_log "differs from the initramfs's pin 000b5a5a" "the root's pin overridden by the initramfs's"
    expect_no_log 'locked PCR' "a PCR lock (nothing was unsealed)"
    expect_no_log 'dracut: Switching root' "a switch_root"
    [[ $BOOT_END != timeout ]] || fail "the VM did not halt by itself"
    expect_no_oops
}
