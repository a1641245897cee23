# shellcheck shell=bash
# FAILURE_ACTION=halt survives a configuration error (dracut initramfs)
#
# The root's /etc/integrity-loader.conf asks for halt, and has a line the
# loader refuses (an unknown key, as a careless edit leaves). Before, the
# configuration error (exit 2) made the hook warn and the boot went on with
# IMA/EVM off, halt ignored. Now the loader still reads the halt it was
# asked for and says FAILURE_ACTION=halt on its line; the hook must `die`
# with the error, and the boot must stop in the initramfs by itself
# (rd.shell=0: see halt.sh for how Debian's dracut ends then).

scenario() {
    new_root
    root_native user FAILURE_ACTION=halt 'MASTERKEY_TYPO=user'
    build_root_image

    boot_vm "$(initramfs dracut)" --append rd.shell=0 \
        --stop-at 'reboot: System halted|Kernel panic - not syncing: Attempted to kill init'

    expect_no_agent
    expect_log 'dracut: FATAL: integrity-loader: FAILURE_ACTION=halt: configuration: configuration error: .*integrity-loader.conf:4: unknown key MASTERKEY_TYPO' "dracut's die with the configuration error"
    expect_no_log 'dracut: Switching root' "a switch_root"
    [[ $BOOT_END != timeout ]] || fail "the VM did not halt by itself"
    expect_no_oops
}
