# shellcheck shell=bash
# user kmk, evm-key, certificates and policy; minimal initramfs
#
# The native configuration (/etc/integrity-loader.conf, MASTERKEYTYPE=user,
# DROP_KMK=yes) and the minimal initramfs (busybox /init running
# `integrity-loader load`). After switch_root the agent must see: the kmk and
# the evm-key unlinked, the test certificate on _ima and _evm, EVM at 3
# (HMAC + X.509), the policy loaded, and on the data disk the signed file
# readable and runnable while the unsigned, tampered (content) and
# evm-tampered (mode) files are refused with EACCES.

scenario() {
    new_root
    root_native user DROP_KMK=yes FAILURE_ACTION=halt
    expect KMK_NAME=kmk KMK=absent EVM_KEY=absent IMA_CERTS=1 EVM_CERTS=1 EVM=3 \
        POLICY=loaded FILES="$FILES_ENFORCED" EXEC=ok
    build_root_image

    boot_vm "$(initramfs minimal)"

    expect_agent_pass
    expect_loader_log 'kmk: done' "the kmk loaded"
    expect_loader_log 'evm: done' "EVM enabled"
    expect_loader_log 'every configured step succeeded' "success"
    expect_no_oops
}
