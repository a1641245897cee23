# shellcheck shell=bash
# initramfs-tools hook: a root that fails `check` fails mkinitramfs (no boot)
#
# A root whose /etc/integrity-loader.conf has an unknown key. mkinitramfs
# with our hook must fail (as update-initramfs then does), print the
# check's report naming the file and line, and say how to fix it. Then the
# same root with the line removed must build. No VM is booted.

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
}
