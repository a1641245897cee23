# shellcheck shell=bash
# user kmk, initramfs-tools image (mkinitramfs with our hook and script)
#
# A native configuration with a user kmk (/etc/integrity-loader.conf),
# booted with an image mkinitramfs built with our hook (which checked the
# root and copied the binary) and local-bottom script. The agent must see
# the same facts as with the dracut initramfs: the kmk kept as kmk, the
# evm-key unlinked, the certificate on _ima and _evm, EVM at 3, the policy
# loaded and enforced on the data disk; no warning of the script.

scenario() {
    new_root
    root_native user
    expect KMK_NAME=kmk KMK=present EVM_KEY=absent IMA_CERTS=1 EVM_CERTS=1 EVM=3 \
        POLICY=loaded FILES="$FILES_ENFORCED" EXEC=ok
    build_root_image

    local img list
    img=$(itools_initramfs)
    list=$(lsinitramfs "$img")
    grep -qx 'usr/bin/integrity-loader' <<< "$list" || fail "the image lacks usr/bin/integrity-loader"
    grep -qx 'scripts/local-bottom/integrity-loader' <<< "$list" || fail "the image lacks the local-bottom script"
    # The root pins nothing (a user kmk, no halt): no pins file.
    ! grep -qx 'etc/integrity-loader.pins' <<< "$list" || fail "the image has a pins file for a root that pins nothing"

    boot_vm "$img"

    expect_agent_pass
    expect_loader_log 'kmk: done: loaded user key kmk' "the kmk loaded as kmk"
    expect_loader_log 'every configured step succeeded' "success"
    expect_no_log 'Warning: integrity-loader' "a warning of the script"
    expect_no_oops
}
