# shellcheck shell=bash
# MASTERKEYTYPE=tpm2 and no TPM attached: a clear message, continue goes on
#
# The tpm2 configuration (a sealed kmk from an earlier provisioning) booted
# without a TPM device, FAILURE_ACTION=continue, minimal initramfs. The
# loader must say that there is no TPM (/dev/tpmrm0 missing); the kmk and
# evm-key are not loaded and EVM stays off, and so the appraise policy is
# held back; the certificates, which do not need the TPM, are loaded.

scenario() {
    new_root
    root_native tpm2 FAILURE_ACTION=continue
    seal_kmk "$ZERO_PCR" /etc/keys/kmk-tpm2.pem
    expect KMK_NAME=kmk KMK=absent EVM_KEY=absent IMA_CERTS=1 EVM_CERTS=1 EVM=0 \
        POLICY=none FILES="$FILES_OPEN" EXEC=ok
    build_root_image

    boot_vm "$(initramfs minimal)"

    expect_agent_pass
    expect_loader_log 'kmk: FAILED: .*(/dev/tpmrm0|/dev/tpm0|no TPM)' "a kmk failure naming the TPM device"
    expect_loader_log 'evm-key: skipped' "evm-key skipped"
    expect_loader_log 'evm: skipped' "EVM skipped"
    expect_loader_log 'ima-policy: skipped: .*has appraise rules but step evm-key was skipped' "the appraise policy held back"
    expect_no_oops
}
