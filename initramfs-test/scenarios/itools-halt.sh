# shellcheck shell=bash
# FAILURE_ACTION=halt in an initramfs-tools image: panic, no switch to root
#
# The kmk sealed to a PCR 11 value the boot will not have, the swtpm
# attached, FAILURE_ACTION=halt, an image made by mkinitramfs with our hook
# and script. The script must call initramfs-tools' panic with the
# loader's one-line reason; panic=1 (on every test boot) makes panic
# reboot, which -no-reboot turns into the end of QEMU. No agent verdict,
# no timeout, no warning-and-go-on.

PCR_NOT_AT_BOOT=1111111111111111111111111111111111111111111111111111111111111111

scenario() {
    new_root
    root_native tpm2 FAILURE_ACTION=halt
    seal_kmk "$PCR_NOT_AT_BOOT" /etc/keys/kmk-tpm2.pem
    build_root_image

    boot_vm "$(itools_initramfs)" --tpm --stop-at 'Rebooting automatically due to panic=|reboot: Restarting system'

    expect_no_agent
    expect_log 'integrity-loader: FAILURE_ACTION=halt: kmk: .*PCR' "panic's message: the loader's reason"
    expect_log 'Rebooting automatically due to panic=' "initramfs-tools' panic"
    expect_loader_log 'ima-policy: skipped: an earlier step failed and FAILURE_ACTION=halt' "later steps skipped"
    expect_no_log 'Warning: integrity-loader' "a warning and the boot going on"
    [[ $BOOT_END != timeout ]] || fail "the VM did not stop by itself"
    expect_no_oops
}
