# shellcheck shell=bash
# trusted kmk provisioned in the VM: boot 1 runs `integrity-loader seal --type trusted`, boot 2 loads it, boot 3 replaces it (side files, switch), boot 4 loads the new one
#
# On the kernel with trusted keys (build-kernel). The installed system
# (the binary in /usr/bin, certificates, policy, EVMKEY in
# /etc/sysconfig/evm, no storage key, no kmk) boots once with a fresh swtpm
# and runs `integrity-loader seal --type trusted --pcrs sha256:11 --evm-key
# ... --write-config`: it creates the SRK, the kernel makes the trusted kmk
# under it with policydigest= of PolicyPCR over PCR 11 as it is (zero),
# exports it, makes and exports an evm-key sealed by trusted:kmk, and
# writes MASTERKEYTYPE=trusted, MASTERKEY and TPM2_PCRS to
# /etc/integrity-loader.conf. Boot 2, minimal initramfs: the loader loads
# the kmk under its policy session, the evm-key loads, EVM on, the policy
# enforced, and PCR 11 holds the kernel's pcrlock=11 applied once to zero.

scenario() {
    new_root
    root_certs_and_policy
    echo 'EVMKEY=/etc/keys/evm-trusted.blob' | put /etc/sysconfig/evm
    put /usr/bin/integrity-loader 0755 < "$BIN"
    put /usr/bin/integrity-admin 0755 < "$SHARED/integrity-admin"
    put /etc/agent-provision << 'SNIPPET'
echo "AGENT: provisioning: integrity-loader seal --type trusted"
/usr/bin/integrity-loader seal --type trusted --pcrs sha256:11 \
    --evm-key /etc/keys/evm-trusted.blob --write-config \
    || bad "integrity-loader seal --type trusted failed (status $?)"
if [ -r /etc/integrity-loader.conf ]; then
    echo "AGENT: /etc/integrity-loader.conf:"
    sed 's/^/AGENT:   /' /etc/integrity-loader.conf
fi
ls -l /etc/keys | sed 's/^/AGENT:   /'
SNIPPET
    expect_trusted_load
    build_root_image
    local initrd
    initrd=$(initramfs minimal-builtin)

    boot_vm "$initrd" --kernel trusted --tpm --persist --log seal
    expect_agent_pass "boot 1 (seal)"
    expect_loader_log 'the kernel made a trusted kmk kmk under 0x81000001, bound to sha256:11' "the seal line"
    expect_log 'AGENT:   MASTERKEYTYPE=trusted' "MASTERKEYTYPE=trusted in the written configuration"
    expect_log 'AGENT:   TPM2_PCRS=sha256:11' "TPM2_PCRS in the written configuration"
    failed && return 0

    boot_vm "$initrd" --kernel trusted --tpm --log load
    expect_agent_pass
    expect_loader_log 'kmk: done: loaded trusted key kmk \(PCR-bound, TPM2_PCRS=sha256:11\) from .*/etc/keys/kmk-trusted.blob' \
        "the PCR-bound trusted kmk loaded"
    expect_loader_log 'loaded evm-key \(32 bytes, sealed by trusted:kmk\)' "the evm-key sealed by trusted:kmk"
    expect_loader_log 'every configured step succeeded' "success"
    expect_no_oops
    failed && return 0

    # Boot 3 (provisioning again): a new kmk and evm-key over the old, as
    # after a lost evm-key. The boot reads both, so they go beside the old
    # ones (.next), the configuration switches to them, then they move in
    # place (src/commands/seal/commit.rs, as a tpm2 seal; tests/reseal.rs
    # crashes that code at each rename on the host, which has no trusted
    # keys).
    cat > "$S/replace-provision" << 'SNIPPET'
echo "AGENT: provisioning: a new trusted kmk over the old"
old=$(sha256sum < /etc/keys/kmk-trusted.blob)
/usr/bin/integrity-loader seal --type trusted --pcrs sha256:11 \
    --evm-key /etc/keys/evm-trusted.blob --write-config --replace-kmk-and-orphan-labels \
    || bad "the second integrity-loader seal --type trusted failed (status $?)"
[ "$old" != "$(sha256sum < /etc/keys/kmk-trusted.blob)" ] || bad "the blob was not replaced"
if grep -q '\.next' /etc/integrity-loader.conf; then bad "the configuration still names a side file"; fi
if ls -a /etc/keys | grep -qE '\.next|\.tmp'; then bad "a side or temp file is left in /etc/keys"; fi
ls -la /etc/keys | sed 's/^/AGENT:   /'
SNIPPET
    debugfs -w -R "write $S/replace-provision /etc/agent-provision" "$S/root.img" > /dev/null 2>&1
    boot_vm "$initrd" --kernel trusted --tpm --persist --log replace
    expect_agent_pass "boot 3 (a new kmk over the old)"
    expect_loader_log 'the new files went beside the old ones first' "the switch through the side files"
    expect_loader_log 'the kernel made a trusted kmk kmk under 0x81000001, bound to sha256:11' "the second seal line"
    failed && return 0

    boot_vm "$initrd" --kernel trusted --tpm --log load-new
    expect_agent_pass "boot 4 (the new set)"
    expect_loader_log 'kmk: done: loaded trusted key kmk \(PCR-bound, TPM2_PCRS=sha256:11\) from .*/etc/keys/kmk-trusted.blob' \
        "the new trusted kmk loaded"
    expect_loader_log 'loaded evm-key \(32 bytes, sealed by trusted:kmk\)' "the new evm-key"
    expect_no_oops
}
