# shellcheck shell=bash
# a bad certificate among good ones: the good ones load, the bad one named
#
# /etc/keys/ima holds two good certificates (RSA and ECDSA P-256) and a
# broken one (a truncated DER file), FAILURE_ACTION=continue, minimal
# initramfs. The two good ones must be on _ima, the loader's log must name
# broken.der, and the plan then leaves the policy out (its appraise rules
# need signatures and the ima-certs step failed), while EVM, which does not
# depend on it, is enabled.

scenario() {
    new_root
    root_native user FAILURE_ACTION=continue
    put /etc/keys/ima/ecdsa-p256.der < "$SHARED/certs/ecdsa-p256.der"
    head -c 200 "$SHARED/certs/rsa2048.der" | put /etc/keys/ima/broken.der
    expect KMK_NAME=kmk KMK=present EVM_KEY=absent IMA_CERTS=2 EVM_CERTS=1 EVM=3 \
        POLICY=none FILES="$FILES_OPEN" EXEC=ok
    build_root_image

    boot_vm "$(initramfs minimal)"

    expect_agent_pass
    expect_loader_log 'loaded IMA certificate .*/etc/keys/ima/rsa2048.der' "the RSA certificate loaded"
    expect_loader_log 'loaded IMA certificate .*/etc/keys/ima/ecdsa-p256.der' "the ECDSA certificate loaded"
    expect_loader_log 'ima-certs: FAILED: .*/etc/keys/ima/broken.der' "the broken certificate named"
    expect_loader_log 'ima-policy: skipped' "the policy skipped"
    expect_loader_log 'evm: done' "EVM enabled"
    expect_no_oops
}
