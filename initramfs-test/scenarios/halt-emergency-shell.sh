# shellcheck shell=bash
# FAILURE_ACTION=halt with rd.shell: dracut's emergency shell, reason shown
#
# As `halt`, with rd.shell on the kernel command line: the hook's `die` must
# drop to dracut's emergency shell, which shows the loader's reason in its
# banner and waits on the console (the test ends the VM once the shell is
# there). The boot must not reach the agent.

PCR_NOT_AT_BOOT=1111111111111111111111111111111111111111111111111111111111111111

scenario() {
    new_root
    root_native tpm2 FAILURE_ACTION=halt
    seal_kmk "$PCR_NOT_AT_BOOT" /etc/keys/kmk-tpm2.pem
    build_root_image

    boot_vm "$(initramfs dracut)" --tpm --append rd.shell --stop-at 'Dropping to debug shell'

    expect_no_agent
    [[ $BOOT_STOPPED ]] || fail "no emergency shell (\"Dropping to debug shell\") in the serial log"
    # The banner: dracut's emergency hook repeats die's message on the console.
    expect_log '^(\[ *[0-9.]+\] )?dracut Warning: dracut: FATAL: "?integrity-loader: FAILURE_ACTION=halt: kmk: ' \
        "the reason in the emergency shell's banner"
    expect_no_log 'dracut: Switching root' "a switch_root"
    expect_no_oops
}
