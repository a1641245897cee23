# shellcheck shell=bash
# FAILURE_ACTION=halt through integrity-loader.service: the emergency target
#
# The kmk sealed to a PCR 11 value the boot will not have, the swtpm
# attached, FAILURE_ACTION=halt, the systemd initramfs with our unit and no
# dracut module. initrd-load must fail the unit with the loader's reason,
# and the unit's OnFailure= must isolate the emergency target: the boot
# stops at dracut's emergency shell, and the switch to the real root that
# initrd-parse-etc queues (initrd-cleanup.service) is cancelled, not run
# (a plain start of emergency.target lets it run). Not rd.shell=0: Debian's
# dracut-emergency then calls a halt its systemd initramfs lacks, and
# systemd starts the default target again. No agent verdict.

PCR_NOT_AT_BOOT=1111111111111111111111111111111111111111111111111111111111111111

scenario() {
    new_root
    root_native tpm2 FAILURE_ACTION=halt
    seal_kmk "$PCR_NOT_AT_BOOT" /etc/keys/kmk-tpm2.pem
    build_root_image

    boot_vm "$(unit_initramfs)" --tpm \
        --stop-at 'Entering emergency mode|Give root password|Cannot open access to console|AGENT-VERDICT'

    expect_no_agent
    expect_log 'integrity-loader: FAILURE_ACTION=halt: kmk: .*PCR' "the loader's reason"
    expect_log 'Failed to start .*integrity-loader|FAILED.*integrity-loader' "the unit failed"
    expect_log 'Reached target .*Emergency Mode' "the emergency target"
    expect_no_log 'initrd-cleanup|Switch Root|Switching root' "the switch to the real root going on"
    [[ $BOOT_STOPPED == yes ]] || fail "the boot did not stop at the emergency shell (ended: $BOOT_END)"
    expect_no_oops
}
