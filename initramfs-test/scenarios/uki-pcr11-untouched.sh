# shellcheck shell=bash
# a UKI boot (fake StubPcrKernelImage): the loader latches PCR 15, never PCR 11
#
# What a systemd UKI system needs from the loader: a secret sealed to the
# value PCR 11 will have after the initrd (as a signed PCR 11 policy of
# ukify/systemd-measure predicts it) must still unseal after a boot in which
# the loader unsealed the kmk and locked. There is no OVMF here, so the
# Debian kernel boots from SeaBIOS and no stub measures anything: the
# firmware's word that a UKI booted is faked, a StubPcrKernelImage (PCR 11)
# in a directory of the root the minimal initramfs passes as --efivars
# (il.test.efivars), and PCR 11's predicted value after this initrd is
# zero. The kmk is sealed to sha256:15 = zero, no TPM2_PCRLOCK set: the
# loader must unseal it, lock PCR 15 (systemd's latch PCR) and record the
# extend in systemd's measure log, and the agent must find PCR 11 still
# zero, the value a policy over PCR 11 was made from, with the full state
# loaded. Not shown here: a real stub's PCR 11 value, and a TPM2_Unseal of
# the PCR 11 secret in the guest (the agent has no TPM tools); PolicyPCR's
# condition is exactly that PCR 11 holds the sealed value, which is checked.

scenario() {
    new_root
    root_certs_and_policy
    put /etc/keys/evm.blob 0600 < "$SHARED/keys/evm-for-kmk-tpm2.blob"
    echo 'EVMKEY=/etc/keys/evm.blob' | put /etc/sysconfig/evm
    seal_kmk "$ZERO_PCR" /etc/keys/kmk-tpm2.pem 15
    printf '%s\n' MASTERKEYTYPE=tpm2 MASTERKEY=/etc/keys/kmk-tpm2.pem TPM2_PCRS=sha256:15 \
        FAILURE_ACTION=halt | put /etc/integrity-loader.conf
    # systemd-stub's variable: attributes, then "11" in UTF-16LE with its NUL.
    printf '\x06\x00\x00\x00\x31\x00\x31\x00\x00\x00' \
        | put /etc/test-efivars/StubPcrKernelImage-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f
    expect KMK_NAME=kmk KMK=absent EVM_KEY=absent IMA_CERTS=1 EVM_CERTS=1 EVM=3 \
        POLICY=loaded FILES="$FILES_ENFORCED" EXEC=ok PCR11="$ZERO_PCR"
    build_root_image

    boot_vm "$(initramfs minimal)" --tpm --append il.test.efivars

    expect_agent_pass
    expect_loader_log 'kmk: done' "the kmk unsealed and loaded"
    expect_loader_log 'locked PCR 15' "the lock on PCR 15"
    expect_loader_log "recorded the extend of PCR 15 in systemd's measure log /run/log/systemd/tpm2-measure.log" "the measure log record"
    expect_no_log 'locked PCR 11' "a lock of PCR 11"
    expect_loader_log 'every configured step succeeded' "success"
    expect_no_oops
}
