# shellcheck shell=bash
# a policy with an AppArmor label rule: left whole for after the LSM, then loaded
#
# Debian's kernel (AppArmor on, lsm=...,apparmor; no CONFIG_IMA_WRITE_POLICY,
# and no kernel configuration file in the test root, so IMA_LSM_RULES=auto
# means later): the test policy plus `measure func=FILE_CHECK
# subj_role=unconfined`. In the initramfs the loader writes nothing and
# records the policy in /run/integrity-loader/ima-policy-later; minimal-init
# moves /run to the root as dracut does. On the booted system the agent runs
# what integrity-loader-lsm.service runs after apparmor.service
# (`integrity-loader load --lsm-rules`): the whole policy goes in once, and
# a file read only afterwards is measured under the label rule while one
# read before is not. (The test root has no AppArmor profiles to load:
# `unconfined` is the label every task has until one is.)

scenario() {
    new_root
    root_native user FAILURE_ACTION=halt
    { test_policy; echo 'measure func=FILE_CHECK mask=MAY_READ subj_role=unconfined'; } |
        put /etc/sysconfig/ima-policy
    put /usr/bin/integrity-loader 0755 < "$BIN"
    echo before > "$ROOT/etc/il-probe-before"
    echo after > "$ROOT/etc/il-probe-after"
    put /etc/agent-boot << 'EOF_BOOT'
ml=/sys/kernel/security/ima/ascii_runtime_measurements
[ -e /run/integrity-loader/ima-policy-later ] && good "rules left for after the LSM" ||
    bad "no /run/integrity-loader/ima-policy-later after switch_root"
cat /etc/il-probe-before > /dev/null
out=$(/usr/bin/integrity-loader load --lsm-rules --root / 2>&1)
echo "AGENT-LSM-RULES rc=$? $(printf '%s' "$out" | tr '\n' ' ')"
cat /etc/il-probe-after > /dev/null
grep -q il-probe-after $ml && good "read after the late load measured" ||
    bad "/etc/il-probe-after not measured after load --lsm-rules"
grep -q il-probe-before $ml && bad "/etc/il-probe-before measured, read before the policy" ||
    good "read before the late load not measured"
out=$(/usr/bin/integrity-loader load --lsm-rules --root / 2>&1)
echo "AGENT-LSM-RULES-AGAIN rc=$? $(printf '%s' "$out" | tr '\n' ' ')"
EOF_BOOT
    expect KMK_NAME=kmk IMA_CERTS=1 EVM_CERTS=1 EVM=3 \
        POLICY=loaded FILES="$FILES_ENFORCED" EXEC=ok
    build_root_image

    boot_vm "$(initramfs minimal)"

    expect_agent_pass
    expect_loader_log 'ima-policy: done: left the whole IMA policy .* for after the LSM' "the policy left for after the LSM"
    expect_log 'AGENT-LSM-RULES rc=0 .*wrote 4 rule\(s\) of IMA policy /etc/sysconfig/ima-policy after the LSM.s policy load \(the whole policy\)' "load --lsm-rules writing the policy"
    expect_log 'AGENT-LSM-RULES-AGAIN rc=0 .*not configured: no IMA policy rules wait' "a second load --lsm-rules doing nothing"
    n=$(serial | grep -cE '^\[ *[0-9.]+\] ima: policy update completed$' || true)
    [[ $n == 1 ]] || fail "the kernel logged \"policy update completed\" $n times, not once"
    expect_no_log 'ima: policy update failed' "a failed policy update"
    expect_no_oops
}
