# shellcheck shell=bash
# PCRs changed, nobody answers the recovery prompt: FAILURE_ACTION, nothing half set up
#
# As tpm2-recovery-key, with RECOVERY_TIMEOUT=5 and nobody typing: the
# loader gives up after 5 s, the kmk step fails and FAILURE_ACTION=continue
# skips what depends on it. The agent finds no kmk, no evm-key, EVM off
# and no policy (an appraise policy is never written without EVM), the
# blob untouched.

PCR_NOT_AT_BOOT=1111111111111111111111111111111111111111111111111111111111111111

scenario() {
    new_root
    root_with_recovery_key "$PCR_NOT_AT_BOOT" RECOVERY_TIMEOUT=5
    expect KMK_NAME=kmk KMK=absent EVM_KEY=absent IMA_CERTS=1 EVM_CERTS=1 EVM=0 \
        POLICY=none FILES="$FILES_OPEN" EXEC=ok PCR11="$ZERO_PCR"
    build_root_image

    boot_vm "$(initramfs minimal)" --tpm --append rw

    expect_agent_pass
    expect_log 'Enter the recovery key \(try 1 of 3, [0-9]+ s left\)' "the prompt"
    expect_loader_log 'no recovery key was given on /dev/console within RECOVERY_TIMEOUT \(5 s\)' "the bound"
    expect_loader_log 'evm-key: skipped' "evm-key skipped"
    expect_loader_log 'ima-policy: skipped' "the appraise policy held back"
    expect_no_log 'AUTO_RESEAL' "a reseal"
    expect_no_oops
}
