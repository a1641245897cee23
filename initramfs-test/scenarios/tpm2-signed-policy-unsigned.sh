# shellcheck shell=bash
# signed PCR policy: PCR values nobody signed do not unseal, continue
#
# As tpm2-signed-policy, but the only signature approves PCR 11 = 0x11..11,
# not the zero this boot has. The loader must refuse before asking the TPM
# to unseal ("no signed policy for the current values"), skip the evm-key
# and EVM, and go on (FAILURE_ACTION=continue): the agent finds no kmk, EVM
# off, no policy, and PCR 11 not locked.

OLD_PCR=1111111111111111111111111111111111111111111111111111111111111111

scenario() {
    new_root
    root_signed_policy continue "$OLD_PCR"
    expect KMK_NAME=kmk KMK=absent EVM_KEY=absent IMA_CERTS=1 EVM_CERTS=1 EVM=0 \
        POLICY=none FILES="$FILES_OPEN" EXEC=ok PCR11="$ZERO_PCR"
    build_root_image

    boot_vm "$(initramfs minimal)" --tpm

    expect_agent_pass
    expect_loader_log 'kmk: FAILED: .*no signed policy for the current values of sha256:11' "a kmk failure naming the unsigned values"
    expect_loader_log 'evm-key: skipped' "evm-key skipped"
    expect_loader_log 'evm: skipped' "EVM skipped"
    expect_no_oops
}
