# shellcheck shell=bash
# FAILURE_ACTION=halt in the dracut initramfs: the boot stops, reason shown
#
# The kmk sealed to a PCR 11 value the boot will not have, the swtpm
# attached, FAILURE_ACTION=halt, the dracut shell initramfs with our module,
# rd.shell=0 (without it dracut's init drops to the emergency shell: see
# halt-emergency-shell). The hook must `die` with the loader's one-line
# reason (kernel log: "dracut: FATAL: integrity-loader: FAILURE_ACTION=halt:
# kmk: ...PCR"), the loader must skip every later step but drop-keys, and
# the boot must stop in the initramfs on its own. dracut's emergency_shell
# then runs `halt`, which Debian's shell initramfs does not have, so init
# exits and the kernel panics ("Attempted to kill init"; panic=1 and
# -no-reboot end QEMU); a "reboot: System halted" would do too. No agent
# verdict, no timeout.

PCR_NOT_AT_BOOT=1111111111111111111111111111111111111111111111111111111111111111

scenario() {
    new_root
    root_native tpm2 FAILURE_ACTION=halt
    seal_kmk "$PCR_NOT_AT_BOOT" /etc/keys/kmk-tpm2.pem
    build_root_image

    boot_vm "$(initramfs dracut)" --tpm --append rd.shell=0 \
        --stop-at 'reboot: System halted|Kernel panic - not syncing: Attempted to kill init'

    expect_no_agent
    expect_log 'dracut: FATAL: integrity-loader: FAILURE_ACTION=halt: kmk: .*PCR' "dracut's die with the loader's reason"
    expect_loader_log 'ima-policy: skipped: an earlier step failed and FAILURE_ACTION=halt' "later steps skipped"
    expect_no_log 'dracut: Switching root' "a switch_root"
    expect_no_log 'Dropping to debug shell' "an emergency shell"
    [[ $BOOT_END != timeout ]] || fail "the VM did not halt by itself"
    expect_no_oops
}
