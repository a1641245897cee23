# shellcheck shell=bash
# initramfs-tools hook: a root that fails `check` fails mkinitramfs (no boot)
#
# A root whose /etc/integrity-loader.conf has an unknown key. mkinitramfs
# with our hook must fail (as update-initramfs then does), print the
# check's report naming the file and line, and say how to fix it. Then the
# same root with the line removed must build. Then the hook's --audit-boot,
# as the dracut module's host-only check: the same root with a policy that
# appraises executables, whose /bin/sh (busybox) has no security.ima, must
# fail the build naming /bin/sh, unless this host's /proc/cmdline (which
# the check reads for the next boot) says the kernel does not enforce. No
# VM is booted.

scenario() {
    new_root
    root_native user 'NO_SUCH_KEY=1'
    command -v mkinitramfs > /dev/null || die_setup "mkinitramfs missing (apt-get install initramfs-tools-core)"
    itools_conf
    local log=$S/mkinitramfs-bad.log
    if with_kernel_tree env INTEGRITY_LOADER_ROOT="$ROOT" INTEGRITY_LOADER_BIN="$BIN" \
        mkinitramfs -d "$ITOOLS_CONF" -o "$S/bad.img" "$KVER" > "$log" 2>&1; then
        fail "mkinitramfs succeeded with a root whose check fails"
    fi
    grep -q "E: integrity-loader: check of $ROOT failed" "$log" || fail "mkinitramfs's output lacks the hook's error ($log)"
    grep -q 'integrity-loader.conf:[0-9]*.*NO_SUCH_KEY' "$log" || fail "mkinitramfs's output lacks the check's report naming the bad line ($log)"
    grep -q "E: .*hooks/integrity-loader failed" "$log" || fail "mkinitramfs did not fail because of the hook ($log)"

    sed -i '/^NO_SUCH_KEY=/d' "$ROOT/etc/integrity-loader.conf"
    itools_initramfs > /dev/null

    echo 'appraise func=BPRM_CHECK' | put /etc/sysconfig/ima-policy
    log=$S/mkinitramfs-unsigned-sh.log
    with_kernel_tree env INTEGRITY_LOADER_ROOT="$ROOT" INTEGRITY_LOADER_BIN="$BIN" \
        mkinitramfs -d "$ITOOLS_CONF" -o "$S/unsigned-sh.img" "$KVER" > "$log" 2>&1
    local rc=$?
    if grep -Eq '(^| )ima_appraise=(fix|log|off)( |$)' /proc/cmdline; then
        ((rc == 0)) || fail "mkinitramfs failed though /proc/cmdline does not enforce appraisal ($log)"
        return 0
    fi
    ((rc != 0)) || fail "mkinitramfs succeeded with a root whose /bin/sh the kernel would refuse ($log)"
    grep -q "E: integrity-loader:  *shell  */bin/sh -> /bin/busybox: denied: no security.ima" "$log" \
        || fail "mkinitramfs's output lacks the boot-file audit's line for /bin/sh ($log)"
    grep -q "E: integrity-loader:  *boot files: the kernel would refuse .*/bin/sh -> /bin/busybox" "$log" \
        || fail "mkinitramfs's output does not name /bin/sh among the files the kernel would refuse ($log)"
    grep -q "E: .*hooks/integrity-loader failed" "$log" || fail "mkinitramfs did not fail because of the hook ($log)"
}
