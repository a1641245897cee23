# shellcheck shell=bash
# the loader's log under the kernel's default /dev/kmsg rate limit
#
# Every other boot sets printk.devkmsg=on. This one keeps the default
# (ratelimit): the kernel takes 10 records per 5 s from one open of
# /dev/kmsg, drops the rest and says "N output lines suppressed due to
# ratelimiting" when the file is closed. A user-kmk boot logs some 15 lines
# in a fraction of a second; the loader opens /dev/kmsg for each record
# (src/logging.rs), so every line, the step results and the final summary
# among them, must reach the kernel's log buffer (the agent's dmesg) and
# none may be reported suppressed.

scenario() {
    new_root
    root_native user DROP_KMK=yes FAILURE_ACTION=halt
    expect KMK_NAME=kmk KMK=absent EVM_KEY=absent IMA_CERTS=1 EVM_CERTS=1 EVM=3 \
        POLICY=loaded FILES="$FILES_ENFORCED" EXEC=ok
    build_root_image

    boot_vm "$(initramfs minimal)" --devkmsg-default

    expect_log 'Command line: ' "the kernel's command line"
    expect_no_log 'Command line: .*printk\.devkmsg' "printk.devkmsg on the command line (this boot tests the default)"
    expect_agent_pass
    # The records in the kernel's log buffer, as the agent's dmesg shows
    # them: what the rate limit would have dropped is not there.
    local records
    records=$(serial | grep -cE '^AGENT-DMESG .*integrity-loader\[[0-9]+\]: ')
    ((records > 10)) \
        || fail "only $records loader records in dmesg, not more than the rate limit's 10: lines were dropped, or the boot logs too little to test the limit"
    local step
    for step in kmk evm-key evm-certs ima-certs ima-policy evm drop-keys; do
        serial | grep -E "^AGENT-DMESG .*integrity-loader\[[0-9]+\]: $step: done" > /dev/null \
            || fail "no '$step: done' record in dmesg (dropped by the /dev/kmsg rate limit?)"
    done
    serial | grep -E '^AGENT-DMESG .*integrity-loader\[[0-9]+\]: finished in .* every configured step succeeded' > /dev/null \
        || fail "no final summary record in dmesg (dropped by the /dev/kmsg rate limit?)"
    expect_no_log 'integrity-loa[a-z]*: [0-9]+ output lines suppressed due to ratelimiting' \
        "the kernel dropping loader lines"
    expect_no_oops
}
