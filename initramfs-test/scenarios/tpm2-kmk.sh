# shellcheck shell=bash
# happy path, tpm2 kmk: unsealed from a swtpm TPM 2.0, everything loads
#
# Provisioned on the host as a user would before the first boot: swtpm on
# the scenario's state directory (TCP), tpm2-tools create the ECC storage
# key at 0x81000001 and seal the kmk secret to PCR 11 (sha256) = zeros, the
# value it has at boot (SeaBIOS does not extend it: the agent checks).
# Booted with the same swtpm state attached (tpm-tis), the minimal
# initramfs, MASTERKEYTYPE=tpm2 and TPM=device:/dev/tpmrm0 (the default).
# The storage key is pinned (TPM2_PARENT_NAME) to the Name tpm2-tools
# computed for it, so the loader's own Name must agree; its public area and
# the sealed PCR value come with it (TPM2_PARENT_PUBLIC, TPM2_PCR_VALUES),
# so the unseal sends 6 TPM commands, not 8 (IL_TEST_APPEND=il.test.verbose
# shows them).
# The agent must see the kmk unlinked (DROP_KMK defaults to yes with the
# PCR lock: root must not read it back), the evm-key unlinked, the
# certificate on _ima and _evm, EVM at 3, the policy enforced, and PCR 11
# locked: extended once with the loader's event, so nothing after the
# initramfs can unseal the kmk again. The guest CPU has RDRAND, so the
# loader never waits for randomness.

scenario() {
    new_root
    seal_kmk "$ZERO_PCR" /etc/keys/kmk-tpm2.pem
    root_native tpm2 FAILURE_ACTION=halt TPM2_PARENT_NAME="$SRK_NAME" \
        TPM2_PARENT_PUBLIC="$SRK_PUBLIC" TPM2_PCR_VALUES="11=$ZERO_PCR"
    expect KMK_NAME=kmk KMK=absent EVM_KEY=absent IMA_CERTS=1 EVM_CERTS=1 EVM=3 \
        POLICY=loaded FILES="$FILES_ENFORCED" EXEC=ok PCR11="$(locked_pcr "$ZERO_PCR")"
    build_root_image

    boot_vm "$(initramfs minimal)" --tpm

    expect_agent_pass
    expect_loader_log 'kmk: done' "the kmk unsealed and loaded"
    expect_loader_log 'locked PCR 11' "the PCR lock"
    expect_loader_log 'unlinked kmk .*DROP_KMK is unset and the PCR lock is on' "the kmk dropped by default"
    expect_loader_log 'every configured step succeeded' "success"
    expect_no_log 'is not pinned' "a warning about an unpinned storage key"
    # The storage key's public area and the sealed PCR values come with the
    # config, as seal --write-config writes them: taken, no warning.
    expect_no_log 'TPM2_PARENT_PUBLIC is not|TPM2_PCR_VALUES are not' "carried values refused"
    # The guest has RDRAND: the kernel's generator is seeded before the
    # loader asks it for the session's secrets.
    expect_no_log 'waiting for the kernel.s random generator' "a wait for randomness despite RDRAND"
    expect_no_oops
}
