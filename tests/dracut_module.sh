#!/bin/bash
# The dracut module, tested with the real thing: builds initramfs images with
# this host's dracut (Debian's dracut-core) and the module as scripts/install
# lays it out, then
#   - checks what is in them (lsinitrd): the static binary and the pre-pivot
#     hook, nothing else from this module, no keyctl or evmctl;
#   - runs the hook inside the unpacked images (chroot, private mount
#     namespace, a made-up real root and kernel command line) with dracut's
#     own dracut-lib: halt ends in die, continue and configuration errors
#     warn, options in /etc/cmdline.d reach the binary;
#   - checks the build-time behaviour: the warning when 97masterkey or
#     98integrity are included too, and the host-only check failing the build
#     for a broken configuration or a root whose init the kernel would refuse
#     (a temp --sysroot).
# Nothing is installed on the host: dracut runs with a private dracutbasedir
# (symlinks to /usr/lib/dracut plus the staged module).
#
# Run as root: tests/dracut_module.sh (make check-dracut). A missing tool is
# a failure, not a skip. INTEGRITY_LOADER_BIN=FILE tests that binary instead
# of building one with scripts/build-static. KEEP=1 keeps the work directory.
# The assertions are functions passed to check(): shellcheck cannot see them run.
# shellcheck disable=SC2317
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

passed=0
failed=0
ok() {
    echo "ok   $*"
    passed=$((passed + 1))
}
not_ok() {
    echo "FAIL $*"
    failed=$((failed + 1))
}
# check NAME COMMAND...: one assertion.
# Returns the assertion's result, so `check ... || show LOG` shows the log.
check() {
    local name=$1
    shift
    if "$@"; then
        ok "$name"
    else
        not_ok "$name"
        return 1
    fi
}
not() { ! "$@"; }
finish() {
    echo "$passed passed, $failed failed"
    ((failed == 0))
    exit
}
# Shows a log when an assertion about it failed.
show() {
    echo "---- $1" >&2
    sed 's/^/   | /' "$1" >&2
    echo "----" >&2
}

# ---- prerequisites: missing ones fail the run
start=$SECONDS
if [[ $(id -u) != 0 ]]; then
    not_ok "run as root (dracut-install, chroot, mount namespaces)"
    finish
fi
missing=()
for tool in dracut lsinitrd readelf unshare chroot make evmctl; do
    command -v "$tool" > /dev/null || missing+=("$tool")
done
[[ -x /usr/lib/dracut/dracut-install && -d /usr/lib/dracut/modules.d/99base ]] || missing+=("/usr/lib/dracut")
# (dracut 059 exits 1 after printing its version)
version=$(dracut --version 2>/dev/null)
[[ $version == dracut\ * ]] || missing+=("a working dracut")
if ((${#missing[@]})); then
    not_ok "tools present: missing ${missing[*]} (apt-get install dracut-core binutils util-linux make ima-evm-utils)"
    finish
fi
ok "tools present ($version)"

work=$(mktemp -d /tmp/dracut-module-test.XXXXXX)
if [[ ${KEEP:-} ]]; then
    echo "work directory: $work"
else
    trap 'rm -rf "$work"' EXIT
fi

if [[ ${INTEGRITY_LOADER_BIN:-} ]]; then
    bin=$INTEGRITY_LOADER_BIN
else
    if ! scripts/build-static > "$work/build.log" 2>&1; then
        show "$work/build.log"
        not_ok "scripts/build-static"
        finish
    fi
    bin=target/x86_64-unknown-linux-musl/release/integrity-loader
fi
bin=$(realpath "$bin")

# ---- scripts/install and make install
dest=$work/dest
if scripts/install DESTDIR="$dest" BIN="$bin" > "$work/install.log" 2>&1; then
    ok "scripts/install DESTDIR=..."
else
    show "$work/install.log"
    not_ok "scripts/install DESTDIR=..."
    finish
fi
staged_bin=$dest/usr/bin/integrity-loader
staged_mod=$dest/usr/lib/dracut/modules.d/98integrity-loader
modes_ok() {
    [[ $(stat -c %a "$staged_bin") == 755 ]] \
        && [[ $(stat -c %a "$staged_mod/module-setup.sh") == 755 ]] \
        && [[ $(stat -c %a "$staged_mod/integrity-loader-hook.sh") == 755 ]] \
        && [[ $(stat -c %a "$staged_mod") == 755 ]] \
        && cmp -s "$bin" "$staged_bin"
}
check "install: binary in usr/bin, module in usr/lib/dracut/modules.d, mode 0755" modes_ok
check "install: module-setup.sh looks for /usr/bin/integrity-loader" \
    grep -qF 'local _default=/usr/bin/integrity-loader # set by scripts/install' "$staged_mod/module-setup.sh"

scripts/install DESTDIR="$work/opt" PREFIX=/opt/il BIN="$bin" > "$work/install-opt.log" 2>&1
prefix_ok() {
    [[ -x $work/opt/opt/il/bin/integrity-loader ]] \
        && grep -qF 'local _default=/opt/il/bin/integrity-loader # set by scripts/install' \
            "$work/opt/opt/il/lib/dracut/modules.d/98integrity-loader/module-setup.sh"
}
check "install: PREFIX=/opt/il moves the binary and the path module-setup.sh uses" prefix_ok

make -s install DESTDIR="$work/mk" BIN="$bin" > "$work/make.log" 2>&1
make_ok() {
    cmp -s "$staged_bin" "$work/mk/usr/bin/integrity-loader" \
        && diff -r "$staged_mod" "$work/mk/usr/lib/dracut/modules.d/98integrity-loader" > /dev/null
}
check "make install DESTDIR=... installs the same files" make_ok

help_ok() {
    local out
    out=$(scripts/install --help) || return 1
    [[ $out == Usage:* ]] && ! awk 'length > 80 { bad = 1 } END { exit !bad }' <<< "$out"
}
check "scripts/install --help fits 80 columns" help_ok
bad_arg_ok() {
    scripts/install --bogus > /dev/null 2>&1
    [[ $? == 2 ]]
}
check "scripts/install rejects an unknown argument (exit 2)" bad_arg_ok

# ---- a private dracutbasedir: the system's dracut plus the staged module
base=$work/dracut
mkdir -p "$base/modules.d" "$work/confdir" "$work/tmp"
for entry in /usr/lib/dracut/*; do
    [[ ${entry##*/} == modules.d ]] || ln -s "$entry" "$base/"
done
for mod in /usr/lib/dracut/modules.d/*; do
    [[ ${mod##*/} == 98integrity-loader ]] || ln -s "$mod" "$base/modules.d/"
done
ln -s "$staged_mod" "$base/modules.d/98integrity-loader"
: > "$work/dracut.conf"

# build NAME [dracut options...]: builds $work/NAME.img, log in $work/NAME.log.
# No kernel modules (this host may have none for the running kernel), no
# compression, no configuration from /etc.
build() {
    local name=$1
    shift
    dracutbasedir=$base INTEGRITY_LOADER_BIN=${BUILD_BIN-$staged_bin} \
        dracut --conf "$work/dracut.conf" --confdir "$work/confdir" --tmpdir "$work/tmp" \
        --no-kernel --kver "$(uname -r)" --no-early-microcode --no-compress --force \
        "$@" "$work/$name.img" > "$work/$name.log" 2>&1
}
# contents NAME: the paths in $work/NAME.img, one a line, lib/ and bin/ under usr/.
contents() {
    rm -rf "$work/$1.root"
    mkdir "$work/$1.root"
    (cd "$work/$1.root" && lsinitrd --unpack "$work/$1.img" > /dev/null 2>&1)
    (cd "$work/$1.root" && find . -mindepth 1 | sed 's|^\./||' | sort)
}
has() { grep -qxE "$2" <<< "$1"; }

hook_re='usr/lib/dracut/hooks/pre-pivot/61-integrity-loader-hook\.sh'

# ---- a generic shell initramfs: what goes in
if build generic --no-hostonly -m "base integrity-loader"; then
    ok "generic build: dracut -N -m 'base integrity-loader'"
else
    show "$work/generic.log"
    not_ok "generic build: dracut -N -m 'base integrity-loader'"
fi
generic=$(contents generic)
check "generic: has usr/bin/integrity-loader" has "$generic" 'usr/bin/integrity-loader'
check "generic: has the pre-pivot hook" has "$generic" "$hook_re"
check "generic: has 96securityfs's hook (depends)" has "$generic" 'usr/lib/dracut/hooks/cmdline/60-securityfs\.sh'
check "generic: no keyctl" not has "$generic" '.*/keyctl'
check "generic: no evmctl" not has "$generic" '.*/evmctl'
static_ok() {
    local f=$work/generic.root/usr/bin/integrity-loader
    [[ -f $f ]] && readelf -h "$f" > /dev/null 2>&1 && ! readelf -l "$f" | grep -q INTERP \
        && ! readelf -d "$f" 2>/dev/null | grep -q NEEDED
}
check "generic: the binary is static (no interpreter, no NEEDED)" static_ok
runs_ok() { "$work/generic.root/usr/bin/integrity-loader" --version > /dev/null 2>&1; }
check "generic: the installed binary runs" runs_ok
check "generic: no duplicate-work warning" not grep -q 'also included' "$work/generic.log"

# The module adds exactly the binary and its hook: build without it and compare.
if build baseline --no-hostonly -m "base securityfs"; then
    added=$(comm -13 <(contents baseline) <(printf '%s\n' "$generic") | grep -vxE 'usr/lib/dracut/(modules\.txt|build-parameter\.txt)')
    only_ours() {
        [[ $(printf '%s\n' "$added" | grep -c .) == 2 ]] \
            && has "$added" 'usr/bin/integrity-loader' && has "$added" "$hook_re"
    }
    check "generic: the module adds the binary and the hook, nothing else (no libraries)" only_ours \
        || echo "   added: ${added//$'\n'/ }"
else
    show "$work/baseline.log"
    not_ok "baseline build: dracut -N -m 'base securityfs'"
fi

# ---- the hook, run by dracut's own code inside the unpacked initramfs
# in_initramfs NAME CMDLINE SCRIPT: runs SCRIPT with the image's /bin/sh in a
# chroot of $work/NAME.root, in a private mount namespace with proc mounted,
# CMDLINE as /proc/cmdline and /dev/kmsg a link to stderr (a pipe, so the
# '>' of dracut's die and warn cannot truncate what was logged). Output (both
# streams) in $work/NAME.out; returns the script's status.
in_initramfs() {
    local name=$1 cmdline=$2 script=$3 root=$work/$1.root
    printf '%s\n' "$cmdline" > "$work/cmdline"
    rm -f "$root/lib/dracut/hooks/emergency/01-die.sh" "$root/run/initramfs/.die"
    mkdir -p "$root/dev" "$root/proc"
    : > "$root/dev/null"
    ln -sfn /proc/self/fd/2 "$root/dev/kmsg"
    # shellcheck disable=SC2016 # expanded by the inner shell
    unshare --mount --propagation private -- /bin/sh -c '
        mount -t proc proc "$1/proc" && mount --bind "$2" "$1/proc/cmdline" \
            && mount --bind /dev/null "$1/dev/null" || exit 99
        exec chroot "$1" /bin/sh -c "$3"' sh "$root" "$work/cmdline" "$script" 2>&1 \
        | cat > "$work/$name.out"
    return "${PIPESTATUS[0]}"
}
# Sources the hook the way init.sh does (after dracut-lib, NEWROOT set).
shell_prepivot='NEWROOT=/sysroot; export NEWROOT; . /lib/dracut-lib.sh
. /lib/dracut/hooks/pre-pivot/61-integrity-loader-hook.sh; echo "BOOT GOES ON"'
realroot() { # realroot NAME CONFIG: the real root's /etc/integrity-loader.conf
    rm -rf "$work/$1.root/sysroot"
    mkdir -p "$work/$1.root/sysroot/etc"
    printf '%s\n' "$2" > "$work/$1.root/sysroot/etc/integrity-loader.conf"
}
# The kmk step fails without touching the kernel: REQUIRE makes its missing
# file a failure, and with it failed nothing else loads or writes anything.

realroot generic ''
in_initramfs generic 'quiet' "$shell_prepivot"
rc=$?
hook_ok_quiet() {
    ((rc == 0)) && grep -q 'BOOT GOES ON' "$work/generic.out" \
        && ! grep -qE 'Warning|FATAL' "$work/generic.out"
}
check "hook: nothing configured: silent, the boot goes on" hook_ok_quiet || show "$work/generic.out"

realroot generic $'FAILURE_ACTION=continue\nREQUIRE=kmk'
in_initramfs generic 'quiet' "$shell_prepivot"
rc=$?
hook_ok_continue() {
    ((rc == 0)) && grep -q 'BOOT GOES ON' "$work/generic.out" \
        && grep -q 'dracut Warning: integrity-loader: FAILURE_ACTION=continue: kmk: ' "$work/generic.out" \
        && ! grep -q FATAL "$work/generic.out"
}
check "hook: FAILURE_ACTION=continue: warn with the loader's line, the boot goes on" hook_ok_continue \
    || show "$work/generic.out"

realroot generic $'FAILURE_ACTION=halt\nREQUIRE=kmk'
in_initramfs generic 'quiet' "$shell_prepivot"
rc=$?
hook_ok_halt() {
    ((rc == 1)) && ! grep -q 'BOOT GOES ON' "$work/generic.out" \
        && grep -q 'dracut: FATAL: integrity-loader: FAILURE_ACTION=halt: kmk: ' "$work/generic.out" \
        && grep -q 'FATAL: "integrity-loader: FAILURE_ACTION=halt: kmk: ' \
            "$work/generic.root/lib/dracut/hooks/emergency/01-die.sh" \
        && [[ -e $work/generic.root/run/initramfs/.die ]]
}
check "hook: FAILURE_ACTION=halt: die with the loader's line (emergency shell banner), the boot stops" \
    hook_ok_halt || show "$work/generic.out"
check "hook: the loader's own log goes to /dev/kmsg" \
    grep -q 'integrity-loader\[[0-9]*\]: .*kmk: FAILED' "$work/generic.out"

mkdir -p "$work/generic.root/etc/cmdline.d"
echo 'masterkey=/etc/keys/from-cmdline-d.blob' > "$work/generic.root/etc/cmdline.d/50-test.conf"
in_initramfs generic 'quiet masterkey=/etc/keys/from-proc.blob' "$shell_prepivot"
check "hook: kernel command line as getarg sees it (/proc/cmdline wins over /etc/cmdline.d)" \
    grep -q 'FAILURE_ACTION=halt: kmk: .*/etc/keys/from-proc\.blob' "$work/generic.out" || show "$work/generic.out"
in_initramfs generic 'quiet' "$shell_prepivot"
check "hook: kernel command line as getarg sees it (/etc/cmdline.d is read)" \
    grep -q 'FAILURE_ACTION=halt: kmk: .*/etc/keys/from-cmdline-d\.blob' "$work/generic.out" || show "$work/generic.out"
rm -rf "$work/generic.root/etc/cmdline.d"

realroot generic 'FAILURE_ACTION=bogus'
in_initramfs generic 'quiet' "$shell_prepivot"
rc=$?
hook_ok_config() {
    ((rc == 0)) && grep -q 'BOOT GOES ON' "$work/generic.out" \
        && grep -q 'dracut Warning: integrity-loader: configuration error' "$work/generic.out" \
        && ! grep -q FATAL "$work/generic.out"
}
check "hook: configuration error (exit 2): warn, the boot goes on" hook_ok_config || show "$work/generic.out"

# The same error with FAILURE_ACTION=halt in the file: the halt still holds.
realroot generic $'FAILURE_ACTION=halt\nBOGUS=1'
in_initramfs generic 'quiet' "$shell_prepivot"
rc=$?
hook_ok_config_halt() {
    ((rc == 1)) && ! grep -q 'BOOT GOES ON' "$work/generic.out" \
        && grep -q 'dracut: FATAL: integrity-loader: FAILURE_ACTION=halt: configuration: .*unknown key BOGUS' "$work/generic.out" \
        && [[ -e $work/generic.root/run/initramfs/.die ]]
}
check "hook: configuration error with FAILURE_ACTION=halt: die, the boot stops" hook_ok_config_halt \
    || show "$work/generic.out"

# Pins in the initramfs win over the real root's configuration.
pin_a=000b$(printf 'a%.0s' {1..64})
pin_b=000b$(printf 'b%.0s' {1..64})
printf 'TPM2_PARENT_NAME=%s\n' "$pin_b" > "$work/generic.root/etc/integrity-loader.pins"
realroot generic $'MASTERKEYTYPE=tpm2\nFAILURE_ACTION=continue\nTPM2_PARENT_NAME='"$pin_a"
in_initramfs generic 'quiet' "$shell_prepivot"
rc=$?
hook_ok_pins() {
    ((rc == 0)) && grep -q 'BOOT GOES ON' "$work/generic.out" \
        && grep -q "TPM2_PARENT_NAME $pin_a (/sysroot/etc/integrity-loader.conf:3) differs from the initramfs's pin $pin_b (/etc/integrity-loader.pins:1), which is the one checked" "$work/generic.out"
}
check "hook: passes the initramfs's pins (/etc/integrity-loader.pins), which win" hook_ok_pins \
    || show "$work/generic.out"
rm -f "$work/generic.root/etc/integrity-loader.pins"

leftovers_ok() {
    in_initramfs generic 'quiet' "$shell_prepivot"' ; set | grep "^_il_" ; ls /tmp'
    ! grep -qE '^_il_|integrity-loader\.cmdline' "$work/generic.out"
}
realroot generic ''
check "hook: leaves no variables or files behind" leftovers_ok || show "$work/generic.out"

# ---- a systemd initramfs: dracut-pre-pivot.service runs the same hook
if build systemd --no-hostonly -m "base dracut-systemd integrity-loader"; then
    ok "systemd build: dracut -N -m 'base dracut-systemd integrity-loader'"
else
    show "$work/systemd.log"
    not_ok "systemd build: dracut -N -m 'base dracut-systemd integrity-loader'"
fi
sd=$(contents systemd)
sd_ok() {
    has "$sd" 'usr/bin/integrity-loader' && has "$sd" "$hook_re" \
        && has "$sd" 'usr/lib/systemd/system/dracut-pre-pivot\.service' \
        && has "$sd" 'etc/systemd/system/initrd\.target\.wants/dracut-pre-pivot\.service' \
        && ! has "$sd" '.*/(keyctl|evmctl)'
}
check "systemd: binary, hook, and dracut-pre-pivot.service wanted by initrd.target" sd_ok
# The service's own script (/bin/dracut-pre-pivot), with the service's
# environment. Only the continue case: die would ask systemctl to halt.
realroot systemd $'FAILURE_ACTION=continue\nREQUIRE=kmk'
in_initramfs systemd 'quiet' 'DRACUT_SYSTEMD=1 NEWROOT=/sysroot /bin/dracut-pre-pivot && echo "BOOT GOES ON"'
rc=$?
sd_hook_ok() {
    ((rc == 0)) && grep -q 'BOOT GOES ON' "$work/systemd.out" \
        && grep -q 'Warning: integrity-loader: FAILURE_ACTION=continue: kmk: ' "$work/systemd.out"
}
check "systemd: /bin/dracut-pre-pivot runs the hook (continue: warning, goes on)" sd_hook_ok \
    || show "$work/systemd.out"

# ---- 97masterkey / 98integrity included too
if build masterkey --no-hostonly -m "base masterkey integrity-loader"; then
    check "with 97masterkey: warns that the job is done twice" \
        grep -q 'integrity-loader: 97masterkey also included' "$work/masterkey.log" || show "$work/masterkey.log"
    check "with 97masterkey: its keyctl is there (the keyctl check above can fail)" \
        has "$(contents masterkey)" 'usr/(s?bin)/keyctl'
else
    show "$work/masterkey.log"
    not_ok "build with 97masterkey"
fi
if build integrity --no-hostonly -m "base integrity integrity-loader"; then
    check "with 98integrity (and the 97masterkey it pulls in): warns naming both" \
        grep -q 'integrity-loader: 97masterkey and 98integrity also included' "$work/integrity.log" \
        || show "$work/integrity.log"
else
    show "$work/integrity.log"
    not_ok "build with 98integrity"
fi

# ---- host-only: the binary's check decides whether the build goes on
broken=$work/broken-root
mkdir -p "$broken/etc"
echo 'FAILURE_ACTION=bogus' > "$broken/etc/integrity-loader.conf"
good=$work/good-root
mkdir -p "$good/etc"

# --add (and add_dracutmodules in dracut.conf): check() sees $hostonly.
build hostonly-broken-add -H --sysroot "$broken" -m base --add integrity-loader
rc=$?
broken_add_ok() {
    ((rc != 0)) && [[ ! -e $work/hostonly-broken-add.img ]] \
        && grep -q 'integrity-loader: host-only check of .*broken-root failed' "$work/hostonly-broken-add.log" \
        && grep -q 'integrity-loader.conf:1: .*bogus' "$work/hostonly-broken-add.log"
}
check "host-only, --add, broken config: build fails with the check's message" broken_add_ok \
    || show "$work/hostonly-broken-add.log"

# -m (and --force-add): dracut hides $hostonly from check(); install() checks.
# (-m without base: a bare --sysroot has no shell for base to install.)
build hostonly-broken-m -H --sysroot "$broken" -m integrity-loader
rc=$?
broken_m_ok() {
    ((rc != 0)) && [[ ! -e $work/hostonly-broken-m.img ]] \
        && grep -q 'integrity-loader.conf:1: .*bogus' "$work/hostonly-broken-m.log" \
        && grep -q 'integrity-loader: host-only check failed; not building this initramfs' "$work/hostonly-broken-m.log"
}
check "host-only, -m, broken config: build fails with the check's message" broken_m_ok \
    || show "$work/hostonly-broken-m.log"

# The same sysroot set-up with a good configuration builds: the failure above
# is the check's, not --sysroot's.
build hostonly-good -H --sysroot "$good" -m integrity-loader
rc=$?
good_ok() {
    ((rc == 0)) && grep -q "integrity-loader: host-only check of $good passed" "$work/hostonly-good.log" \
        && has "$(contents hostonly-good)" 'usr/bin/integrity-loader'
}
check "host-only, good config in --sysroot: check passes, build succeeds" good_ok || show "$work/hostonly-good.log"

# A root whose init the kernel would refuse (an appraise rule, the init
# unlabelled): the build fails naming it; labelled, the same root builds.
deny=$work/deny-root
mkdir -p "$deny/etc/sysconfig" "$deny/sbin" "$deny/bin"
echo 'appraise func=BPRM_CHECK' > "$deny/etc/sysconfig/ima-policy"
printf '#!/bin/sh\nexec /bin/sh\n' > "$deny/sbin/init"
printf '#!/bin/sh\n' > "$deny/bin/sh"
chmod 0755 "$deny/sbin/init" "$deny/bin/sh"
evmctl ima_hash -a sha256 "$deny/bin/sh" > /dev/null 2>&1
build hostonly-deny -H --sysroot "$deny" -m integrity-loader
rc=$?
deny_ok() {
    ((rc != 0)) && [[ ! -e $work/hostonly-deny.img ]] \
        && grep -q 'init  *\/sbin\/init: denied: no security.ima' "$work/hostonly-deny.log" \
        && grep -q 'boot files: the kernel would refuse /sbin/init:' "$work/hostonly-deny.log" \
        && grep -q "integrity-loader: host-only check of $deny failed" "$work/hostonly-deny.log"
}
check "host-only, the root's init would be denied: build fails naming it" deny_ok \
    || show "$work/hostonly-deny.log"
evmctl ima_hash -a sha256 "$deny/sbin/init" > /dev/null 2>&1
build hostonly-deny-labelled -H --sysroot "$deny" -m integrity-loader
rc=$?
deny_labelled_ok() {
    ((rc == 0)) && grep -q "integrity-loader: host-only check of $deny passed" "$work/hostonly-deny-labelled.log" \
        && has "$(contents hostonly-deny-labelled)" 'usr/bin/integrity-loader'
}
check "host-only, the same root with its init labelled: builds" deny_labelled_ok \
    || show "$work/hostonly-deny-labelled.log"

# A root that pins its storage key: the pin goes into the initramfs; an
# unpinned root gets no pins file.
pinned=$work/pinned-root
mkdir -p "$pinned/etc/keys"
cp tests/fixtures/tpm/seal.tss2.pem "$pinned/etc/keys/kmk.pem"
printf '%s\n' MASTERKEYTYPE=tpm2 MASTERKEY=/etc/keys/kmk.pem "TPM2_PARENT_NAME=$pin_a" \
    > "$pinned/etc/integrity-loader.conf"
build hostonly-pinned -H --sysroot "$pinned" -m integrity-loader
rc=$?
pinned_ok() {
    ((rc == 0)) && has "$(contents hostonly-pinned)" 'etc/integrity-loader\.pins' \
        && grep -qx "TPM2_PARENT_NAME=$pin_a" "$work/hostonly-pinned.root/etc/integrity-loader.pins" \
        && ! has "$(contents hostonly-good)" 'etc/integrity-loader\.pins'
}
check "host-only: the root's TPM2_PARENT_NAME is copied into the initramfs, nothing when unpinned" \
    pinned_ok || show "$work/hostonly-pinned.log"

# Host-only for this machine (no --sysroot): the build does what
# `integrity-loader check --root / --audit-boot` says.
"$bin" check --root / --audit-boot > "$work/host-check.out" 2>&1
host_rc=$?
build hostonly-host -H -m base --add integrity-loader
rc=$?
host_ok() {
    if ((host_rc == 0)); then
        ((rc == 0)) && grep -q 'integrity-loader: host-only check of / passed' "$work/hostonly-host.log" \
            && has "$(contents hostonly-host)" "$hook_re"
    else
        ((rc != 0)) && grep -q 'integrity-loader: host-only check of / failed' "$work/hostonly-host.log"
    fi
}
check "host-only on this host: build result follows 'check --root / --audit-boot' (exit $host_rc)" host_ok \
    || show "$work/hostonly-host.log"

# Generic builds do not run the check: a broken host config does not stop them.
build generic-broken -N --sysroot "$broken" -m integrity-loader
generic_broken_ok() {
    [[ -e $work/generic-broken.img ]] && ! grep -q "host-only check" "$work/generic-broken.log"
}
check "generic build with a broken config in --sysroot: no check, builds" generic_broken_ok \
    || show "$work/generic-broken.log"

# ---- no binary: the build fails instead of shipping a hook with nothing to run
BUILD_BIN=$work/no-such-binary build nobinary --no-hostonly -m "base integrity-loader"
rc=$?
nobin_ok() {
    ((rc != 0)) && [[ ! -e $work/nobinary.img ]] \
        && grep -q "integrity-loader: $work/no-such-binary is missing" "$work/nobinary.log"
}
check "missing binary: build fails naming it" nobin_ok || show "$work/nobinary.log"

echo "runtime: $((SECONDS - start)) s"
finish
