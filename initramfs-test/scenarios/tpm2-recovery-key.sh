# shellcheck shell=bash
# PCRs changed, recovery key typed on the console: EVM on; AUTO_RESEAL, no key next boot
#
# The kmk is sealed to a PCR 11 value the boot will not have, and a
# recovery key made for it on the host (`integrity-loader reseal
# --recovery-key`, the kmk from a private keyring); AUTO_RESEAL=yes, no
# pins in the (minimal) initramfs, the root mounted rw (kernel command line
# `rw`). Boot 1: the unseal fails on PCR 11, the loader asks on
# /dev/console, the harness types the key once the prompt is on the
# serial console; the kmk loads, the evm-key opens with it, AUTO_RESEAL
# seals it again to this boot's PCR 11 (zero) and locks PCR 11 before
# writing; the agent finds EVM at 3 and the policy enforced. The key never
# reaches the serial log (echo off). Boot 2, same TPM and root: the TPM
# unseals the new blob, nobody is asked.

PCR_NOT_AT_BOOT=1111111111111111111111111111111111111111111111111111111111111111

scenario() {
    new_root
    root_with_recovery_key "$PCR_NOT_AT_BOOT"
    expect KMK_NAME=kmk KMK=absent EVM_KEY=absent IMA_CERTS=1 EVM_CERTS=1 EVM=3 \
        POLICY=loaded FILES="$FILES_ENFORCED" EXEC=ok PCR11="$(locked_pcr "$ZERO_PCR")"
    build_root_image
    local initrd
    initrd=$(initramfs minimal)

    boot_typing_recovery_key "$initrd" --persist
    expect_loader_log 'PCR policy check failed.*asking for the recovery key' "the unseal failing on PCR 11, then the prompt"
    expect_loader_log 'AUTO_RESEAL: the kmk opened with the recovery key is sealed again' "the automatic reseal"
    expect_loader_log 'locked PCR 11: the kmk sealed again' "the PCR lock after the reseal"
    expect_no_oops

    boot_unsealing_unasked "$initrd"
}
