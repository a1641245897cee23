# shellcheck shell=bash
# tpm2 kmk, storage key pin carried in the initramfs-tools image
#
# The root is provisioned with a tpm2 kmk and TPM2_PARENT_NAME; mkinitramfs
# runs our hook against it, which copies the root's pins into the image
# (/etc/integrity-loader.pins). Then the pin is removed from the root's
# /etc/integrity-loader.conf (as someone with the disk could): the
# local-bottom script must pass the image's pins (--pins), so the kmk
# unseals with the storage key checked and no "not pinned" warning
# appears. Same agent facts as tpm2-kmk.

scenario() {
    new_root
    seal_kmk "$ZERO_PCR" /etc/keys/kmk-tpm2.pem
    root_native tpm2 FAILURE_ACTION=halt TPM2_PARENT_NAME="$SRK_NAME"
    expect KMK_NAME=kmk KMK=absent EVM_KEY=absent IMA_CERTS=1 EVM_CERTS=1 EVM=3 \
        POLICY=loaded FILES="$FILES_ENFORCED" EXEC=ok PCR11="$(locked_pcr "$ZERO_PCR")"

    local img pins
    img=$(itools_initramfs)
    rm -rf "$S/unpacked"
    unmkinitramfs "$img" "$S/unpacked" > /dev/null 2>&1 || fail "unmkinitramfs $img failed"
    pins=$(find "$S/unpacked" -path '*/etc/integrity-loader.pins' -exec cat {} +)
    [[ $pins == *"TPM2_PARENT_NAME=$SRK_NAME"* ]] || fail "the image's pins lack TPM2_PARENT_NAME=$SRK_NAME: ${pins:-no pins file}"
    # The root loses its pin after the image was built.
    sed -i '/^TPM2_PARENT_NAME=/d' "$ROOT/etc/integrity-loader.conf"
    build_root_image

    boot_vm "$img" --tpm

    expect_agent_pass
    expect_loader_log 'kmk: done: .*unsealed by the TPM' "the kmk unsealed and loaded"
    expect_loader_log 'every configured step succeeded' "success"
    expect_no_log 'is not pinned' "an unpinned-storage-key warning (the image pins it)"
    expect_no_log 'Warning: integrity-loader' "a warning of the script"
    expect_no_oops
}
