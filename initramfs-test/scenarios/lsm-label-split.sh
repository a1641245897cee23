# shellcheck shell=bash
# a policy with an AppArmor label rule split: part in the initramfs, the rest after
#
# On the kernel of build-kernel (CONFIG_IMA_WRITE_POLICY and READ_POLICY,
# AppArmor on with lsm=...,apparmor), its configuration file in the root at
# /boot/config-RELEASE, IMA_LSM_RULES left to auto: the loader must choose
# split. The policy: the test policy, then `measure func=FILE_CHECK
# mask=MAY_READ subj_role=unconfined` (the label rule; `unconfined` is the
# label every task has while AppArmor has no profile loaded), then
# `dont_measure func=FILE_CHECK uid=1234`, which could decide the same
# events and so keeps its place after it. The initramfs writes the first
# three rules and leaves the other two in
# /run/integrity-loader/ima-policy-later; on the booted system the agent
# reads the kernel's policy (the three rules only), runs what
# integrity-loader-lsm.service runs (`load --lsm-rules`), and reads it again:
# the file's five rules in the file's order. A file read before that is not
# measured, one read after is (the label rule, the only one that measures
# files of the root). AppArmor knows `unconfined` before any profile is
# loaded, so here the split is not forced by the kernel (with
# IMA_LSM_RULES=initramfs all five rules go in at once): the scenario proves
# the choice, the two writes and the order, not the EINVAL it avoids.

scenario() {
    new_root
    root_native user FAILURE_ACTION=halt
    {
        test_policy
        echo 'measure func=FILE_CHECK mask=MAY_READ subj_role=unconfined'
        echo 'dont_measure func=FILE_CHECK uid=1234'
    } | put /etc/sysconfig/ima-policy
    # The rules as the kernel shows them (the file is written in its option
    # order and form), before and after the late load.
    grep -vE '^(#|$)' "$ROOT/etc/sysconfig/ima-policy" > "$S/policy-rules"
    head -n 3 "$S/policy-rules" | put /etc/il-policy-initramfs
    put /etc/il-policy-all < "$S/policy-rules"
    [[ $(wc -l < "$S/policy-rules") == 5 ]] || die_setup "expected 5 rules in the test policy"

    # What auto reads: the running kernel's configuration, by its release.
    get_trusted_kernel
    local config release off
    config=$(dirname "$TRUSTED_KERNEL")/config
    grep -qx CONFIG_IMA_WRITE_POLICY=y "$config" || die_setup "$config lacks CONFIG_IMA_WRITE_POLICY=y"
    grep -qx CONFIG_SECURITY_APPARMOR=y "$config" || die_setup "$config lacks CONFIG_SECURITY_APPARMOR=y"
    # The bzImage's kernel_version string (boot protocol: offset at 0x20e, + 0x200).
    off=$(od -An -tu2 -j $((0x20e)) -N2 "$TRUSTED_KERNEL" | tr -d ' ')
    release=$(tail -c +$((off + 0x200 + 1)) "$TRUSTED_KERNEL" | head -c 128 | tr '\0' '\n' | head -n1 | cut -d' ' -f1)
    [[ $release =~ ^[0-9]+\.[0-9]+ ]] || die_setup "no kernel release in $TRUSTED_KERNEL (found '$release')"
    put "/boot/config-$release" < "$config"

    put /usr/bin/integrity-loader 0755 < "$BIN"
    echo before > "$ROOT/etc/il-probe-before"
    echo after > "$ROOT/etc/il-probe-after"
    put /etc/agent-boot << 'EOF_BOOT'
ml=/sys/kernel/security/ima/ascii_runtime_measurements
later=/run/integrity-loader/ima-policy-later
# The kernel's read-back ends each rule with a space.
kernel_policy() { sed -e 's/  */ /g' -e 's/ $//' /sys/kernel/security/ima/policy; }
grep -q apparmor /sys/kernel/security/lsm && good "AppArmor active ($(cat /sys/kernel/security/lsm))" ||
    bad "AppArmor is not among the active LSMs: $(cat /sys/kernel/security/lsm)"
[ "$(head -n1 $later 2> /dev/null)" = split ] && good "rules left split for after the LSM" ||
    bad "$later does not start with split: $(head -n1 $later 2>&1)"
kernel_policy | sed 's/^/AGENT-POLICY-BEFORE /'
[ "$(kernel_policy)" = "$(cat /etc/il-policy-initramfs)" ] &&
    good "the initramfs wrote the three rules without labels" ||
    bad "the kernel's policy before load --lsm-rules is not the file's first three rules"
cat /etc/il-probe-before > /dev/null
out=$(/usr/bin/integrity-loader load --lsm-rules --root / 2>&1)
echo "AGENT-LSM-RULES rc=$? $(printf '%s' "$out" | tr '\n' ' ')"
kernel_policy | sed 's/^/AGENT-POLICY-AFTER /'
[ "$(kernel_policy)" = "$(cat /etc/il-policy-all)" ] &&
    good "the kernel's policy is the file's five rules in order" ||
    bad "the kernel's policy after load --lsm-rules is not the file's rules in order"
[ -e $later ] && bad "$later still there after load --lsm-rules" || good "nothing waits any more"
cat /etc/il-probe-after > /dev/null
grep -q il-probe-after $ml && good "read after the late load measured" ||
    bad "/etc/il-probe-after not measured after load --lsm-rules"
grep -q il-probe-before $ml && bad "/etc/il-probe-before measured, read before the label rule" ||
    good "read before the late load not measured"
out=$(/usr/bin/integrity-loader load --lsm-rules --root / 2>&1)
echo "AGENT-LSM-RULES-AGAIN rc=$? $(printf '%s' "$out" | tr '\n' ' ')"
[ "$(kernel_policy | wc -l)" = 5 ] && good "a second load --lsm-rules appended nothing" ||
    bad "the kernel holds $(kernel_policy | wc -l) rules after a second load --lsm-rules"
EOF_BOOT
    expect KMK_NAME=kmk IMA_CERTS=1 EVM_CERTS=1 EVM=3 \
        POLICY=loaded FILES="$FILES_ENFORCED" EXEC=ok
    build_root_image

    boot_vm "$(initramfs minimal-builtin)" --kernel trusted

    expect_agent_pass
    local rel_re
    rel_re=$(printf '%s' "$release" | sed 's/[.+]/\\&/g')
    expect_loader_log "ima-policy: done: wrote IMA policy [^ ]*/etc/sysconfig/ima-policy as 3 rules; .*the kernel takes a second load \([^ ]*/boot/config-$rel_re has CONFIG_IMA_WRITE_POLICY=y\): the 2 rule\(s\) with LSM labels and those kept after them wait" \
        "the split chosen by auto, three rules written"
    expect_log 'AGENT-LSM-RULES rc=0 .*wrote 2 rule\(s\) of IMA policy /etc/sysconfig/ima-policy after the LSM.s policy load \(appended to the rules the initramfs wrote\)' \
        "load --lsm-rules appending the two rules"
    expect_log 'AGENT-LSM-RULES-AGAIN rc=0 .*not configured: no IMA policy rules wait' "a second load --lsm-rules doing nothing"
    # Once in the initramfs, once by load --lsm-rules (this kernel prints no
    # timestamps).
    n=$(serial | grep -cE '^(\[ *[0-9.]+\] )?ima: policy update completed$' || true)
    [[ $n == 2 ]] || fail "the kernel logged \"policy update completed\" $n times, not twice"
    expect_no_log 'ima: policy update failed' "a failed policy update"
    expect_no_oops
}
