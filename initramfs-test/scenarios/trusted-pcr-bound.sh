# shellcheck shell=bash
# PCR-bound trusted kmk: the loader makes the policy session (policyhandle=); PCRs changed: a clear error
#
# On the kernel with trusted keys (build-kernel). The host makes the RSA
# storage key at 0x81000001 and, with tpm2-tools, the PolicyPCR digest of
# sha256:11 = zeros (the value at boot) and of sha256:11 = another value.
# Boot 1 (provisioning) has the kernel make two trusted kmks, `new 32
# keyhandle=0x81000001 hash=sha256 policydigest=...`, one per digest, and
# an evm-key sealed by the first (trusted:kmk). dracut cannot load such a
# kmk: the kernel needs `policyhandle=` naming a policy session loaded at
# that moment. TPM2_PCRS=sha256:11 in integrity-loader.conf, TPM left to
# its default (the loader makes the session on /dev/tpm0, raw).
# Boot 2: the kmk sealed to zeros loads, the evm-key too, EVM on, the
# policy enforced, PCR 11 locked once by the kernel's pcrlock=11.
# Boot 3 (masterkey= names the kmk sealed to the other value): the loader
# says the TPM refused the policy and what PCR 11 holds; nothing loaded,
# EVM off.

scenario() {
    new_root
    root_certs_and_policy
    echo 'MASTERKEY=/etc/keys/kmk' | put /etc/sysconfig/masterkey
    echo 'EVMKEY=/etc/keys/evm-key' | put /etc/sysconfig/evm
    echo 'TPM2_PCRS=sha256:11' | put /etc/integrity-loader.conf
    make_srk_rsa
    local w=$S/policy other=5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a
    mkdir -p "$w"
    tpm_provision_start
    head -c 32 /dev/zero > "$w/zero.bin"
    printf '%b' "$(printf '%s' "$other" | sed 's/../\\x&/g')" > "$w/other.bin"
    tpm2 tpm2_createpolicy -Q --policy-pcr -l sha256:11 -f "$w/zero.bin" -L "$w/zero.policy"
    tpm2 tpm2_createpolicy -Q --policy-pcr -l sha256:11 -f "$w/other.bin" -L "$w/other.policy"
    tpm_provision_stop
    local good bad
    good=$(od -An -v -tx1 "$w/zero.policy" | tr -d ' \n')
    bad=$(od -An -v -tx1 "$w/other.policy" | tr -d ' \n')
    put_keyctl
    cat << SNIPPET | put /etc/agent-provision
echo "AGENT: provisioning: PCR-bound trusted kmks"
if kmk=\$(keyctl add trusted kmk "new 32 keyhandle=0x81000001 hash=sha256 policydigest=$good" @u) \\
    && keyctl pipe "\$kmk" > /etc/keys/kmk \\
    && evm=\$(keyctl add encrypted evm-key "new trusted:kmk 32" @u) \\
    && keyctl pipe "\$evm" > /etc/keys/evm-key \\
    && other=\$(keyctl add trusted kmk-other "new 32 keyhandle=0x81000001 hash=sha256 policydigest=$bad" @u) \\
    && keyctl pipe "\$other" > /etc/keys/kmk-other; then
    echo "AGENT: exported /etc/keys/kmk, /etc/keys/evm-key, /etc/keys/kmk-other"
else
    bad "making the PCR-bound trusted kmks failed"
fi
SNIPPET
    expect_trusted_load
    build_root_image
    local initrd
    initrd=$(initramfs minimal-builtin)

    boot_vm "$initrd" --kernel trusted --tpm --persist --log provision
    expect_agent_pass "boot 1 (provisioning)"
    failed && return 0

    boot_vm "$initrd" --kernel trusted --tpm --log load
    expect_agent_pass
    expect_loader_log 'kmk: done: loaded trusted key kmk \(PCR-bound, TPM2_PCRS=sha256:11\)' "the PCR-bound kmk loaded"
    expect_loader_log 'loaded evm-key \(32 bytes, sealed by trusted:kmk\)' "the evm-key"
    expect_loader_log 'every configured step succeeded' "success"
    expect_no_oops

    # PCR 11 is zero at boot, the kmk-other policy wants 5a..5a.
    debugfs -w -R 'rm /etc/agent-expect' "$S/root.img" > /dev/null 2>&1
    printf "EXPECT_KMK_TYPE='trusted'\nEXPECT_KMK_NAME='kmk'\nEXPECT_KMK='absent'\nEXPECT_EVM='0'\nEXPECT_POLICY='none'\nEXPECT_FILES='%s'\nEXPECT_PCR11='%s'\n" \
        "$FILES_OPEN" "$ZERO_PCR" > "$S/expect-changed"
    debugfs -w -R "write $S/expect-changed /etc/agent-expect" "$S/root.img" > /dev/null 2>&1
    boot_vm "$initrd" --kernel trusted --tpm --append masterkey=/etc/keys/kmk-other --log changed
    expect_agent_pass
    expect_loader_log "the TPM refused the blob under its PCR policy over sha256:11 .*: the PCRs hold sha256:11=$ZERO_PCR now" \
        "the refusal naming PCR 11 and its value"
    expect_no_log 'loaded evm-key' "an evm-key loaded without its kmk"
    expect_no_oops
}
