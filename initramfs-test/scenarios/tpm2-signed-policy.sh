# shellcheck shell=bash
# signed PCR policy: a kmk sealed to PolicyAuthorize boots with a signature over new PCR values
#
# The kmk secret sealed on the host by tpm2-tools to TPM2_PolicyAuthorize of
# an ECDSA P-256 key (no PCR value in the object), the public key beside it
# (MASTERKEY.pcrpkey). `integrity-loader sign-policy`, offline on the host,
# signs PCR 11 = 0x11..11 (an older image's value), then with --append
# PCR 11 = zero, the value this boot has: an update that ships a signature
# instead of a reseal. The loader must pick the signature for the current
# value, have the TPM verify it (LoadExternal, VerifySignature), run
# PolicyPCR and PolicyAuthorize, unseal, and the boot goes on as in
# tpm2-kmk: evm-key loaded, EVM at 3, the policy enforced, PCR 11 locked.

OLD_PCR=1111111111111111111111111111111111111111111111111111111111111111

scenario() {
    new_root
    root_signed_policy halt "$OLD_PCR" "$ZERO_PCR"
    expect KMK_NAME=kmk KMK=absent EVM_KEY=absent IMA_CERTS=1 EVM_CERTS=1 EVM=3 \
        POLICY=loaded FILES="$FILES_ENFORCED" EXEC=ok PCR11="$(locked_pcr "$ZERO_PCR")"
    build_root_image

    boot_vm "$(initramfs minimal)" --tpm

    expect_agent_pass
    expect_loader_log 'kmk: done' "the kmk unsealed with the signed policy"
    expect_loader_log 'locked PCR 11' "the PCR lock"
    expect_loader_log 'every configured step succeeded' "success"
    expect_no_log 'PRIVATE KEY' "private key material in the log"
    expect_no_oops
}
