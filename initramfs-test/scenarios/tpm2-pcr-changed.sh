# shellcheck shell=bash
# PCR 11 changed since sealing: unseal fails with the PCR message, continue
#
# The kmk sealed to a PCR 11 value the boot will not have (0x11..11), then
# booted with the swtpm attached, FAILURE_ACTION=continue, minimal
# initramfs. The loader must fail the kmk naming the PCR (its current value
# differs from the sealed policy), skip the evm-key and EVM, and go on: the
# agent finds EVM off, no kmk and no policy (an appraise policy is not
# written when EVM cannot be set up: README, "The plan"). The certificates
# do not depend on the kmk and are loaded. The storage key is not pinned:
# the loader warns with the TPM2_PARENT_NAME line to add.
# The one scenario whose guest CPU has no RDRAND (--no-rng): the kernel's
# random generator is not seeded when the loader salts its session, and the
# loader must say that it waited and for how long.

PCR_NOT_AT_BOOT=1111111111111111111111111111111111111111111111111111111111111111

scenario() {
    new_root
    root_native tpm2 FAILURE_ACTION=continue
    seal_kmk "$PCR_NOT_AT_BOOT" /etc/keys/kmk-tpm2.pem
    expect KMK_NAME=kmk KMK=absent EVM_KEY=absent IMA_CERTS=1 EVM_CERTS=1 EVM=0 \
        POLICY=none FILES="$FILES_OPEN" EXEC=ok PCR11="$ZERO_PCR"
    build_root_image

    boot_vm "$(initramfs minimal)" --tpm --no-rng

    expect_agent_pass
    expect_loader_log 'kmk: FAILED: .*PCR' "a kmk failure naming the PCRs"
    expect_loader_log "is not pinned.*TPM2_PARENT_NAME=$SRK_NAME" "the unpinned-storage-key warning with its Name"
    expect_loader_log 'evm-key: skipped' "evm-key skipped"
    expect_loader_log 'evm: skipped' "EVM skipped"
    expect_loader_log 'ima-policy: skipped: .*has appraise rules but step evm-key was skipped' "the appraise policy held back"
    expect_loader_log "random generator was seeded after [0-9]+ ms of waiting" "the wait for the kernel's random generator"
    expect_no_oops
}
