# shellcheck shell=bash
# dracut drop-in: dracut's own 97masterkey+98integrity vs ours, same root
#
# The root of user-kmk-dracut (dracut's /etc/sysconfig files, user kmk)
# booted twice: with a dracut shell initramfs holding dracut's own
# 97masterkey and 98integrity (keyctl, evmctl, shell), and with one holding
# 98integrity-loader. Both agents must pass the same expectations, and the
# facts they report (keys, keyrings, EVM value, policy, file access) must be
# the same.

scenario() {
    new_root
    root_dracut_dropin
    expect KMK_NAME=kmk-user KMK=present EVM_KEY=absent IMA_CERTS=1 EVM_CERTS=1 EVM=3 \
        POLICY=loaded FILES="$FILES_ENFORCED" EXEC=ok
    build_root_image

    boot_vm "$(initramfs dracut-classic)" --log dracut-modules
    boot_vm "$(initramfs dracut)" --log integrity-loader

    local which verdict
    for which in dracut-modules integrity-loader; do
        # shellcheck disable=SC2034 # read by the checks (lib.sh)
        SERIAL=$S/serial-$which.log
        verdict=$(agent_verdict)
        case $verdict in
            PASS) ;;
            "") fail "with $which: no agent verdict" ;;
            *) fail "with $which: agent: ${verdict#FAIL }" ;;
        esac
        expect_no_oops
        serial | sed -n 's/.*\(AGENT-FACT .*\)$/\1/p' | sort > "$S/facts-$which"
    done
    if ! diff -u "$S/facts-dracut-modules" "$S/facts-integrity-loader" > "$S/facts.diff"; then
        fail "the agents' facts differ (dracut's modules vs ours): $(grep '^[-+]A' "$S/facts.diff" | paste -sd' ')"
    fi
    [[ -s $S/facts-integrity-loader ]] || fail "no agent facts"
}
