# shellcheck shell=bash
# trusted kmk made by the documented procedure, loaded from dracut's files
#
# On the kernel with trusted keys (build-kernel). Step 1 of the procedure
# on the host: tpm2-tools make the RSA-2048 storage key at 0x81000001 in
# the scenario's swtpm. Boot 1 (provisioning, root kept): the agent runs
# the documented lines verbatim, `keyctl add trusted kmk "new 32
# keyhandle=0x81000001" @u`, `keyctl pipe` to /etc/keys/kmk, `keyctl add
# encrypted evm-key "new trusted:kmk 32" @u`, `keyctl pipe` to
# /etc/keys/evm-key. The root has only dracut's files: MASTERKEY in
# /etc/sysconfig/masterkey (MASTERKEYTYPE left to its default, trusted),
# EVMKEY in /etc/sysconfig/evm, no integrity-loader.conf. Boot 2, minimal
# initramfs: the kernel unseals the kmk (named kmk, as the evm-key blob
# says), the evm-key loads, EVM is on, the policy enforced, and PCR 11
# holds the kernel's pcrlock=11 (dracut's default) applied once to zero.

scenario() {
    new_root
    root_certs_and_policy
    echo 'MASTERKEY=/etc/keys/kmk' | put /etc/sysconfig/masterkey
    echo 'EVMKEY=/etc/keys/evm-key' | put /etc/sysconfig/evm
    make_srk_rsa
    put_trusted_provisioning /etc/keys/kmk /etc/keys/evm-key
    expect_trusted_load
    build_root_image
    local initrd
    initrd=$(initramfs minimal-builtin)

    boot_vm "$initrd" --kernel trusted --tpm --persist --log provision
    expect_agent_pass "boot 1 (provisioning)"
    failed && return 0

    boot_vm "$initrd" --kernel trusted --tpm --log load
    expect_agent_pass
    expect_loader_log 'kmk: done: loaded trusted key kmk from .*/etc/keys/kmk' "the trusted kmk loaded"
    expect_loader_log 'loaded evm-key \(32 bytes, sealed by trusted:kmk\)' "the evm-key sealed by trusted:kmk"
    expect_loader_log 'every configured step succeeded' "success"
    expect_no_oops
}
