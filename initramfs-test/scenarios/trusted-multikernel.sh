# shellcheck shell=bash
# MULTIKERNELMODE=YES: seal --type trusted writes this release's blob, the boot reads it
#
# On the kernel with trusted keys (build-kernel). /etc/sysconfig/masterkey
# says MULTIKERNELMODE=YES and no MASTERKEY, so dracut's 97masterkey reads
# /etc/keys/kmk-trusted-$(uname -r).blob; a /etc/keys/kmk-trusted.blob
# that is not a blob stands where the path without the release points.
# Boot 1 runs `integrity-loader seal --type trusted --evm-key ...
# --write-config` (no PCRs: the chapter's kmk): the blob goes to the
# running release's path and the configuration gets no MASTERKEY line.
# Boot 2: the loader loads the release's blob, the evm-key, EVM on.

scenario() {
    new_root
    root_certs_and_policy
    echo 'MULTIKERNELMODE=YES' | put /etc/sysconfig/masterkey
    echo 'EVMKEY=/etc/keys/evm-trusted.blob' | put /etc/sysconfig/evm
    echo '00112233' | put /etc/keys/kmk-trusted.blob 0600
    put /usr/bin/integrity-loader 0755 < "$BIN"
    put /usr/bin/integrity-admin 0755 < "$SHARED/integrity-admin"
    put /etc/agent-provision << 'SNIPPET'
echo "AGENT: provisioning: integrity-loader seal --type trusted, release $(uname -r)"
/usr/bin/integrity-loader seal --type trusted --evm-key /etc/keys/evm-trusted.blob --write-config \
    || bad "integrity-loader seal --type trusted failed (status $?)"
[ -s "/etc/keys/kmk-trusted-$(uname -r).blob" ] || bad "no /etc/keys/kmk-trusted-$(uname -r).blob"
[ "$(cat /etc/keys/kmk-trusted.blob)" = 00112233 ] || bad "/etc/keys/kmk-trusted.blob was replaced"
if [ -r /etc/integrity-loader.conf ]; then
    echo "AGENT: /etc/integrity-loader.conf:"
    sed 's/^/AGENT:   /' /etc/integrity-loader.conf
    ! grep -q '^MASTERKEY=' /etc/integrity-loader.conf || bad "the configuration names MASTERKEY: every release would read that one"
fi
SNIPPET
    expect_trusted_load
    build_root_image
    local initrd
    initrd=$(initramfs minimal-builtin)

    boot_vm "$initrd" --kernel trusted --tpm --persist --log seal
    expect_agent_pass "boot 1 (seal)"
    expect_loader_log 'the kernel made a trusted kmk kmk under 0x81000001, bound to no PCRs.*/etc/keys/kmk-trusted-[^ /]+\.blob' \
        "the seal line naming the release's blob"
    failed && return 0

    boot_vm "$initrd" --kernel trusted --tpm --log load
    expect_agent_pass
    expect_loader_log 'kmk: done: loaded trusted key kmk from .*/etc/keys/kmk-trusted-[^ /]+\.blob' \
        "the release's trusted kmk loaded"
    expect_loader_log 'loaded evm-key \(32 bytes, sealed by trusted:kmk\)' "the evm-key sealed by trusted:kmk"
    expect_loader_log 'every configured step succeeded' "success"
    expect_no_oops
}
