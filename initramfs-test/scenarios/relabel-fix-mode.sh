# shellcheck shell=bash
# ima_appraise=fix evm=fix: audit finds unlabelled files, relabel labels them, enforce reads them
#
# The chapter's relabelling boot with our commands: the root (user kmk,
# evm-key, certificates) gets an extra appraise rule for 20 files owned by
# uid 4242 on the root filesystem, none labelled. `integrity-audit` on the
# host must list the 20 as denied. The VM boots with ima_appraise=fix
# evm=fix; there `integrity-loader audit` (/ read-only, so that its opens
# label nothing) must list them too, `integrity-loader relabel` must open
# them (the kernel writes their security.ima hash and EVM HMAC), and the
# audit (/ read-only again) must then find none denied and 20 hashed with
# an HMAC: what it reads is what the kernel wrote for relabel.
# That boot keeps what it writes (--persist). Then, offline, f1's content is
# changed in place on the image (same inode, same size, its labels kept),
# and the next boot, in enforce mode (no ima_appraise=fix), must read the 19
# others (their hash and HMAC are the kernel's) and be refused f1.

RELABEL_FILES=20

scenario() {
    [[ -x $SHARED/integrity-audit ]] || {
        fail "no integrity-audit beside $BIN (build both: scripts/build-static)"
        return 0
    }
    new_root
    root_native user
    # First: without udev the VM has no /dev/disk/by-uuid, so the audit
    # cannot tell the root's UUID from the data disk's, and a file the
    # fsuuid rule comes to first is undecided (counted apart).
    {
        echo 'appraise func=FILE_CHECK fowner=4242'
        test_policy
    } | put /etc/sysconfig/ima-policy
    put /usr/bin/integrity-loader 0755 < "$BIN"
    put /usr/bin/integrity-audit 0755 < "$SHARED/integrity-audit"
    local i
    for ((i = 1; i <= RELABEL_FILES; i++)); do
        echo "file $i" | put "/srv/relabel/f$i"
    done
    chown -R 4242:4242 "$ROOT/srv/relabel"
    # The audit before: on the host, over the root as built. In the VM the
    # audit's own opens would make the kernel in fix mode label the files.
    echo "root=/dev/vda ro" > "$S/cmdline"
    "$SHARED/integrity-audit" --root "$ROOT" --cmdline "$S/cmdline" -q --limit 3 > "$S/audit-before.log" 2>&1
    local rc=$?
    [[ $rc == 1 ]] || fail "audit before relabel (host): exit $rc, expected 1 ($S/audit-before.log)"
    grep -q "would be denied ($RELABEL_FILES, first 3 shown)" "$S/audit-before.log" \
        || fail "audit before relabel (host): not the $RELABEL_FILES unlabelled files denied ($S/audit-before.log)"
    put /etc/agent-provision << SNIPPET
# The audit opens the files it checks, and in fix mode the kernel would
# label them: it runs with / read-only, so it sees what relabel left.
audit() {
    mount -o remount,ro / || bad "remount / read-only for the audit"
    out=\$(/usr/bin/integrity-loader audit -q --limit 3 2>&1)
    rc=\$?
    mount -o remount,rw / || bad "remount / read-write after the audit"
    printf '%s\\n' "\$out" > /tmp/audit.out
    sed 's/^/AGENT:   /' /tmp/audit.out
}
echo "AGENT: integrity-loader audit (before relabel, / read-only)"
audit
[ \$rc = 1 ] || bad "audit before relabel: exit \$rc, expected 1"
grep -q "would be denied ($RELABEL_FILES, first 3 shown)" /tmp/audit.out \
    || bad "audit before relabel: not the $RELABEL_FILES unlabelled files denied"
echo "AGENT: integrity-loader relabel"
/usr/bin/integrity-loader relabel -q --jobs 2 > /tmp/relabel.out 2>&1
rc=\$?
sed 's/^/AGENT:   /' /tmp/relabel.out
[ \$rc = 0 ] || bad "relabel: exit \$rc, expected 0"
grep -q "^$RELABEL_FILES files opened for the kernel to label" /tmp/relabel.out \
    || bad "relabel: not $RELABEL_FILES files opened"
echo "AGENT: integrity-loader audit (after relabel, / read-only)"
audit
[ \$rc = 0 ] || bad "audit after relabel: exit \$rc, expected 0"
grep -q "no file would be denied" /tmp/audit.out || bad "audit after relabel: files still denied"
grep -q "^ *$RELABEL_FILES  IMA passes, EVM HMAC" /tmp/audit.out \
    || bad "audit after relabel: not $RELABEL_FILES files with a hash and an EVM HMAC"
echo "AGENT: integrity-loader relabel (again)"
/usr/bin/integrity-loader relabel -q > /tmp/relabel.out 2>&1 || bad "relabel again: exit \$?"
grep -q "^$RELABEL_FILES files opened" /tmp/relabel.out || bad "relabel again: another count"
SNIPPET
    build_root_image

    boot_vm "$(initramfs minimal)" --append "ima_appraise=fix evm=fix" --persist --log fix
    expect_agent_pass
    expect_loader_log 'every configured step succeeded' "success"
    expect_log "AGENT:.*$RELABEL_FILES files opened for the kernel to label" "relabel's count"
    expect_no_oops
    failed && return 0

    # The labels are on the image: the kernel wrote them in the fix boot.
    local xattrs
    xattrs=$(debugfs -R "ea_list /srv/relabel/f2" "$S/root.img" 2> /dev/null)
    [[ $xattrs == *security.ima* && $xattrs == *security.evm* ]] \
        || fail "after the fix boot, /srv/relabel/f2 has no security.ima and security.evm on the image: $xattrs"
    # f1 changed offline: its data block rewritten in place.
    local bs blk
    bs=$(dumpe2fs -h "$S/root.img" 2> /dev/null | sed -n 's/^Block size: *//p')
    blk=$(debugfs -R "bmap /srv/relabel/f1 0" "$S/root.img" 2> /dev/null)
    [[ $bs =~ ^[0-9]+$ && $blk =~ ^[0-9]+$ && $blk != 0 ]] \
        || die_setup "no data block for /srv/relabel/f1 (block size '$bs', block '$blk')"
    [[ $(dd if="$S/root.img" bs=1 skip=$((blk * bs)) count=6 2> /dev/null) == "file 1" ]] \
        || die_setup "block $blk of root.img does not hold /srv/relabel/f1"
    printf 'FILE 1' | dd of="$S/root.img" bs=1 seek=$((blk * bs)) conv=notrunc 2> /dev/null
    # The enforce boot's checks, as a provisioning snippet (the fix boot
    # removed its own), put on the image with debugfs.
    local others=$((RELABEL_FILES - 1))
    cat > "$S/enforce-provision" << SNIPPET
echo "AGENT: enforce boot: reading the relabelled files"
n=0
for i in \$(seq 2 $RELABEL_FILES); do
    cat /srv/relabel/f\$i > /dev/null && n=\$((n + 1))
done
echo "AGENT: \$n of $others relabelled files read"
[ \$n = $others ] || bad "enforce boot: \$n of $others relabelled files read"
if err=\$(cat /srv/relabel/f1 2>&1 > /dev/null); then
    bad "enforce boot: f1, changed offline, was read"
else
    case \$err in
        *"Permission denied"*) echo "AGENT: f1 (changed offline) refused: \$err" ;;
        *) bad "enforce boot: f1: \$err" ;;
    esac
fi
SNIPPET
    debugfs -w -R "write $S/enforce-provision /etc/agent-provision" "$S/root.img" > "$S/debugfs.log" 2>&1 \
        || die_setup "debugfs write /etc/agent-provision: $(cat "$S/debugfs.log")"

    boot_vm "$(initramfs minimal)" --log enforce
    expect_agent_pass
    expect_no_log 'cmdline: .*ima_appraise=fix' "ima_appraise=fix on the enforce boot's command line"
    expect_loader_log 'every configured step succeeded' "success (enforce boot)"
    expect_log "AGENT: $others of $others relabelled files read" "the relabelled files read in enforce mode"
    expect_log 'AGENT: f1 \(changed offline\) refused: .*Permission denied' \
        "f1, changed offline, refused in enforce mode"
    expect_no_oops
}

