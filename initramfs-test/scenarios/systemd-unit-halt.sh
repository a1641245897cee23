# shellcheck shell=bash
# FAILURE_ACTION=halt through integrity-loader.service: the emergency target
#
# The kmk sealed to a PCR 11 value the boot will not have, the swtpm
# attached, FAILURE_ACTION=halt, the systemd initramfs with our unit and no
# dracut module. initrd-load must fail the unit with the loader's reason,
# and the unit's OnFailure= must take the boot to the emergency target
# instead of the switch to the real root. No agent verdict.

PCR_NOT_AT_BOOT=1111111111111111111111111111111111111111111111111111111111111111

scenario() {
    new_root
    root_native tpm2 FAILURE_ACTION=halt
    seal_kmk "$PCR_NOT_AT_BOOT" /etc/keys/kmk-tpm2.pem
    build_root_image

    boot_vm "$(unit_initramfs)" --tpm --append rd.shell=0 \
        --stop-at 'Reached target .*Emergency Mode|emergency mode|Cannot open access to console'

    expect_no_agent
    expect_log 'integrity-loader: FAILURE_ACTION=halt: kmk: .*PCR' "the loader's reason"
    expect_log 'Failed to start .*integrity-loader|FAILED.*integrity-loader' "the unit failed"
    expect_log 'Emergency' "the emergency target"
    expect_no_log 'Reached target .*Switch Root' "the switch to the real root"
    [[ $BOOT_STOPPED == yes ]] || fail "the boot did not reach the emergency target (ended: $BOOT_END)"
    expect_no_oops
}
