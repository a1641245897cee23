# shellcheck shell=bash
# trusted kmk with TRUSTED_PCRLOCK: PCR 11 extended once; a second load fails saying why
#
# On the kernel with trusted keys (build-kernel). The storage key made on
# the host as the documented procedure's step 1; a provisioning boot has the
# kernel make the trusted kmk and exports it to dracut's default path
# /etc/keys/kmk-trusted.blob. Boot 2, minimal initramfs, the loader run
# twice (il.test.load-twice) with TRUSTED_PCRLOCK=11 and DROP_KMK=yes:
# the first run loads the kmk with pcrlock=11 (the kernel extends PCR 11
# after the unseal) and drops it; the second must not load the blob again
# (that would extend PCR 11 a second time) and must say why. The agent
# sees PCR 11 extended exactly once and no kmk.

scenario() {
    new_root
    printf '%s\n' TRUSTED_PCRLOCK=11 DROP_KMK=yes | put /etc/integrity-loader.conf
    make_srk_rsa
    put_trusted_provisioning /etc/keys/kmk-trusted.blob
    expect KMK_TYPE=trusted KMK_NAME=kmk-trusted KMK=absent PCR11="$(kernel_pcrlocked "$ZERO_PCR")"
    build_root_image
    local initrd
    initrd=$(initramfs minimal-builtin)

    boot_vm "$initrd" --kernel trusted --tpm --persist --log provision
    expect_agent_pass "boot 1 (provisioning)"
    failed && return 0

    boot_vm "$initrd" --kernel trusted --tpm --append il.test.load-twice --log load
    expect_agent_pass
    expect_loader_log 'kmk: done: loaded trusted key kmk-trusted' "the trusted kmk loaded by run 1"
    expect_loader_log 'unlinked kmk-trusted' "the kmk dropped (DROP_KMK=yes)"
    expect_loader_log 'the trusted kmk was loaded earlier in this boot with pcrlock=11 .*Reboot to load it' \
        "run 2's reason for not loading the kmk again"
    expect_log 'integrity-loader load \(run 2\) exited with status 1' "run 2 failing"
    expect_no_oops
}
