# shellcheck shell=bash
# user kmk through integrity-loader.service in a systemd initramfs (no hook)
#
# As user-kmk-dracut-systemd, but the dracut systemd initramfs has no
# integrity-loader dracut module: the loader runs only through our unit
# (enabled for initrd.target, after /sysroot is mounted, before the switch
# to it), as an initrd another tool built would run it. Same agent facts:
# the kmk kept as kmk-user, the evm-key unlinked, the certificate on _ima
# and _evm, EVM at 3, the policy loaded and enforced on the data disk.

scenario() {
    new_root
    root_dracut_dropin
    expect KMK_NAME=kmk-user KMK=present EVM_KEY=absent IMA_CERTS=1 EVM_CERTS=1 EVM=3 \
        POLICY=loaded FILES="$FILES_ENFORCED" EXEC=ok
    build_root_image

    local img list
    img=$(unit_initramfs)
    list=$(lsinitrd "$img" 2> /dev/null)
    ! grep -q 'pre-pivot/61-integrity-loader-hook.sh' <<< "$list" || fail "the image has the dracut hook; the unit alone must run the loader"

    boot_vm "$img"

    expect_agent_pass
    expect_log 'Finished .*integrity-loader' "the unit finished (systemd's status line)"
    expect_loader_log 'kmk: done: loaded user key kmk-user' "the kmk loaded as kmk-user"
    expect_loader_log 'every configured step succeeded' "success"
    expect_no_log 'FAILURE_ACTION=continue' "a warning of initrd-load"
    expect_no_oops
}
