# shellcheck shell=bash
# the chapter's user variant: kmk and evm-key made by its keyctl lines, dracut's files only
#
# The kmk and the evm-key made as the chapter says, on the host in a
# throw-away session keyring (@s for its @u): `keyctl add user kmk "$(dd
# if=/dev/urandom bs=1 count=32)"` (bash drops its NUL bytes and final
# newlines: the kmk is what the kernel holds), `keyctl add encrypted
# evm-key "new user:kmk 64"`, each exported with `keyctl pipe` to /etc/keys/kmk and
# /etc/keys/evm-key. The root has only dracut's files:
# MASTERKEYTYPE=user and MASTERKEY=/etc/keys/kmk in
# /etc/sysconfig/masterkey, EVMKEY=/etc/keys/evm-key in /etc/sysconfig/evm.
# dracut would load the kmk as kmk-user, which the evm-key blob does not
# name; the loader names it kmk, as the blob says. Minimal initramfs on
# Debian's kernel: kmk loaded (its exact bytes), the 64-byte evm-key, EVM
# on, the policy enforced.

scenario() {
    new_root
    root_certs_and_policy
    mkdir -p "$ROOT/etc/keys"
    # shellcheck disable=SC2016 # expanded by the inner shell
    keyctl session - bash -c '
        keyctl add user kmk "$(dd if=/dev/urandom bs=1 count=32 2> /dev/null)" @s > /dev/null || exit 1
        keyctl pipe "$(keyctl search @s user kmk)" > "$1/etc/keys/kmk" || exit 1
        keyctl add encrypted evm-key "new user:kmk 64" @s > /dev/null || exit 1
        keyctl pipe "$(keyctl search @s encrypted evm-key)" > "$1/etc/keys/evm-key"' bash "$ROOT" > /dev/null \
        || die_setup "the chapter's keyctl lines failed on this host"
    chmod 0600 "$ROOT/etc/keys/kmk" "$ROOT/etc/keys/evm-key"
    printf '%s\n' MASTERKEYTYPE=user MASTERKEY=/etc/keys/kmk | put /etc/sysconfig/masterkey
    echo 'EVMKEY=/etc/keys/evm-key' | put /etc/sysconfig/evm
    expect KMK_NAME=kmk KMK=present EVM_KEY=absent IMA_CERTS=1 EVM_CERTS=1 EVM=3 \
        POLICY=loaded FILES="$FILES_ENFORCED" EXEC=ok
    build_root_image

    boot_vm "$(initramfs minimal)"

    expect_agent_pass
    expect_loader_log 'kmk: done: loaded user key kmk \(' "the kmk loaded as kmk, the blob's name"
    expect_loader_log 'loaded evm-key \(64 bytes, sealed by user:kmk\)' "the 64-byte evm-key sealed by user:kmk"
    expect_loader_log 'every configured step succeeded' "success"
    expect_no_oops
}
