# shellcheck shell=bash
# dracut drop-in: dracut's config files, user kmk, dracut shell initramfs
#
# A root set up for dracut's 97masterkey/98integrity (/etc/sysconfig files
# only, MASTERKEYTYPE=user, default paths) booted with a dracut-built shell
# initramfs holding our module instead (-m "base rootfs-block
# integrity-loader"). The agent must see the kmk kept as kmk-user (dracut's
# name, no DROP_KMK), the evm-key unlinked, the certificate on _ima and
# _evm, EVM at 3, the policy loaded and enforced on the data disk. On the
# console (printk.devkmsg=on, the default console level) the loader's good
# boot is one summary line; each step's result is in the kernel log at
# debug priority, which the agent's dmesg shows.

scenario() {
    new_root
    root_dracut_dropin
    expect KMK_NAME=kmk-user KMK=present EVM_KEY=absent IMA_CERTS=1 EVM_CERTS=1 EVM=3 \
        POLICY=loaded FILES="$FILES_ENFORCED" EXEC=ok
    build_root_image

    boot_vm "$(initramfs dracut)"

    expect_agent_pass
    expect_loader_log 'kmk: done: loaded user key kmk-user' "the kmk loaded as kmk-user"
    expect_loader_log 'every configured step succeeded' "success"
    expect_no_log 'dracut Warning: integrity-loader' "a warning of the hook"
    local console
    console=$(serial | grep -vE '^AGENT-' | grep -E 'integrity-loader\[[0-9]+\]: ' || true)
    [[ $(grep -c . <<< "$console") == 1 && $console == *"every configured step succeeded (done: kmk, evm-key, evm-certs, ima-certs, ima-policy, evm, drop-keys)" ]] \
        || fail "the console should show the loader's summary line only, it shows: $console"
    serial | grep -E '^AGENT-DMESG .*integrity-loader\[[0-9]+\]: evm-certs: done: ' > /dev/null \
        || fail "no evm-certs result in dmesg"
    expect_no_oops
}
