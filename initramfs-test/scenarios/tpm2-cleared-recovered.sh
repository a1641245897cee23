# shellcheck shell=bash
# TPM cleared: recovery key at boot, reseal --parent under a new SRK, next boot no prompt
#
# The kmk is sealed to PCR 11 = 0 (this boot's value) under the SRK at
# 0x81000001, pinned (TPM2_PARENT_NAME), with a recovery key; AUTO_RESEAL=yes,
# the root mounted rw. Then the TPM is cleared (tpm2_clear): the SRK is
# gone. Boot 1: the unseal finds no storage key, the loader asks on the
# console, the harness types the key; the kmk loads, EVM comes up;
# AUTO_RESEAL does not make a storage key at boot and says so. On the host,
# as the README says to after a clear: a new SRK made by the README's
# recipe at 0x81000002, then `integrity-loader reseal --parent 0x81000002`,
# the kmk from the recovery key typed on its terminal (nothing in its
# keyring, the blob unsealable); the configuration then names and pins the
# new key. Boot 2: the TPM unseals under the new SRK, nobody is asked, EVM on.

scenario() {
    new_root
    root_with_recovery_key "$ZERO_PCR"
    local old_pin
    old_pin=$(grep '^TPM2_PARENT_NAME=' "$ROOT/etc/integrity-loader.conf")
    [[ $old_pin ]] || die_setup "reseal --recovery-key wrote no TPM2_PARENT_NAME"
    tpm_clear
    expect KMK_NAME=kmk KMK=absent EVM_KEY=absent IMA_CERTS=1 EVM_CERTS=1 EVM=3 \
        POLICY=loaded FILES="$FILES_ENFORCED" EXEC=ok
    build_root_image
    local initrd
    initrd=$(initramfs minimal)

    boot_typing_recovery_key "$initrd"
    expect_loader_log 'no storage key at 0x81000001' "the unseal finding no storage key"
    expect_loader_log 'AUTO_RESEAL: not sealed again: there is no storage key at 0x81000001' "AUTO_RESEAL leaving the new storage key to the admin"
    expect_no_oops

    make_srk_recipe 0x81000002
    reseal_typing_recovery_key --parent 0x81000002 --pcr-value "11=$ZERO_PCR"
    local conf=$ROOT/etc/integrity-loader.conf
    grep -q '^TPM2_PARENT=0x81000002$' "$conf" || fail "reseal did not record TPM2_PARENT=0x81000002: $(cat "$conf")"
    local new_pin
    new_pin=$(grep '^TPM2_PARENT_NAME=' "$conf")
    [[ $new_pin && $new_pin != "$old_pin" ]] || fail "reseal did not pin the new storage key ($new_pin)"
    [[ ! -e $ROOT/etc/keys/kmk-tpm2.pem.next ]] || fail "reseal left its side blob kmk-tpm2.pem.next"
    rm "$ROOT/etc/agent-expect"
    expect KMK_NAME=kmk KMK=absent EVM_KEY=absent IMA_CERTS=1 EVM_CERTS=1 EVM=3 \
        POLICY=loaded FILES="$FILES_ENFORCED" EXEC=ok PCR11="$(locked_pcr "$ZERO_PCR")"
    build_root_image

    boot_unsealing_unasked "$initrd"
}
