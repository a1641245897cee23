# shellcheck shell=bash
# dracut drop-in in a systemd initramfs: the hook via dracut-pre-pivot.service
#
# As user-kmk-dracut, with a dracut-built systemd initramfs (-m "base systemd
# systemd-initrd dracut-systemd rootfs-block integrity-loader"): the hook
# runs from dracut-pre-pivot.service (KeyringMode=shared, so the keys land
# in root's user keyring that EVM and the agent see). The agent must see the kmk kept as kmk-user (dracut's
# name, no DROP_KMK), the evm-key unlinked, the certificate on _ima and
# _evm, EVM at 3, the policy loaded and enforced on the data disk.

scenario() {
    new_root
    root_dracut_dropin
    expect KMK_NAME=kmk-user KMK=present EVM_KEY=absent IMA_CERTS=1 EVM_CERTS=1 EVM=3 \
        POLICY=loaded FILES="$FILES_ENFORCED" EXEC=ok
    build_root_image

    boot_vm "$(initramfs dracut-systemd)"

    expect_agent_pass
    expect_loader_log 'kmk: done: loaded user key kmk-user' "the kmk loaded as kmk-user"
    expect_loader_log 'every configured step succeeded' "success"
    expect_no_log 'dracut Warning: integrity-loader' "a warning of the hook"
    expect_no_oops
}
