#!/bin/bash
# The Debian and RPM packages, built and the .deb installed on this machine:
#   - dpkg-buildpackage -b -us -uc builds the .deb from a copy of the source
#     tree, offline from vendored crates (cargo vendor, then --frozen with an
#     empty cargo home); lintian finds no error (when installed);
#   - rpmbuild builds the RPM from a tarball of the same tree and vendored
#     crates, offline the same way, with the same files and modes;
#   - dpkg -i installs it without rebuilding an initramfs (no trigger, the
#     postinst says how), every file where README's "Packages" table says,
#     with its mode; mkinitramfs then builds an image with the installed
#     hook and boot script for Debian's kernel (the VM tests' cache);
#   - dpkg -r removes every file, dpkg -P forgets the package.
# Nothing stays installed: the package is purged at the end, also on
# failure. Refuses to run when integrity-loader is installed already.
#
# Run as root: tests/packages.sh. A missing tool is a failure (lintian is
# optional: without it that check says so). The cargo build reuses
# target/ (CARGO_TARGET_DIR, default the repository's): after
# scripts/build-static it compiles nothing. KEEP=1 keeps the work directory.
# shellcheck disable=SC2317 # assertions are called through check()
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
REPO=$PWD

passed=0
failed=0
check() { # check NAME COMMAND...
    local name=$1
    shift
    if "$@"; then
        echo "ok   $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name"
        failed=$((failed + 1))
        return 1
    fi
}
not_grep() { ! grep -q "$@"; }
show() { echo "---- $1" >&2; tail -n 30 "$1" | sed 's/^/   | /' >&2; echo "----" >&2; }
finish() {
    echo "$passed passed, $failed failed"
    ((failed == 0))
    exit
}

work=$(mktemp -d /tmp/integrity-loader-packages.XXXXXX)
installed_by_us=
cleanup() {
    [[ $installed_by_us ]] && dpkg -P integrity-loader > "$work/cleanup-purge.log" 2>&1
    [[ ${KEEP:-} ]] || rm -rf "$work"
}
trap cleanup EXIT
echo "work directory: $work"

missing=()
[[ $(id -u) == 0 ]] || missing+=(root)
for t in dpkg-buildpackage dh rpmbuild rpm mkinitramfs lsinitramfs cargo unshare; do
    command -v "$t" > /dev/null || missing+=("$t")
done
if ((${#missing[@]})); then
    check "prerequisites (missing: ${missing[*]}; scripts/install-deps)" false
    finish
fi
if dpkg-query -W -f='${Status}' integrity-loader 2> /dev/null | grep -q 'installed'; then
    check "integrity-loader is not installed on this machine already (dpkg -P it first)" false
    finish
fi
if [[ -e /usr/bin/integrity-loader ]]; then
    check "no /usr/bin/integrity-loader outside a package (make install?): the test would remove it" false
    finish
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}

# ---- the .deb, from a copy of the tree (dpkg-buildpackage writes to ..)
mkdir -p "$work/deb/src"
git ls-files -z --cached --others --exclude-standard | cpio -0pdm --quiet "$work/deb/src"
# The crates vendored into the source (as a packager ships them), then the
# build with an empty cargo home: nothing but vendor/ can feed it.
(cd "$work/deb/src" && cargo vendor --locked --quiet vendor > /dev/null) > "$work/vendor.log" 2>&1
check "cargo vendor into the source tree" test -d "$work/deb/src/vendor" || show "$work/vendor.log"
mkdir -p "$work/empty-cargo-home"
(cd "$work/deb/src" && CARGO_HOME="$work/empty-cargo-home" dpkg-buildpackage -b -us -uc) > "$work/deb-build.log" 2>&1
check "dpkg-buildpackage -b -us -uc" test -s "$work/deb/integrity-loader_0.1.0_amd64.deb" || show "$work/deb-build.log"
deb=$work/deb/integrity-loader_0.1.0_amd64.deb
[[ -s $deb ]] || finish
check "the build used cargo --frozen (offline)" grep -q -- 'cargo build --release --frozen' "$work/deb-build.log"
check "the build took the crates from vendor/ (empty cargo home)" grep -q 'vendored-sources' "$work/deb-build.log"
if command -v lintian > /dev/null; then
    lintian --fail-on error "$work/deb/integrity-loader_0.1.0_amd64.changes" > "$work/lintian.log" 2>&1
    check "lintian: no error" test $? = 0 || show "$work/lintian.log"
else
    echo "note lintian is not installed: not run"
fi
dpkg-deb --ctrl-tarfile "$deb" | tar -t > "$work/control-files"
check "no dpkg trigger (no initramfs rebuilt by the package)" not_grep triggers "$work/control-files"
dpkg-deb -e "$deb" "$work/control"
# (Lines that only echo advice are not runs.)
runs=$(cat "$work"/control/post* "$work"/control/pre* 2> /dev/null | grep -vE '^[[:space:]]*(#|echo )' \
    | grep -E '(update-initramfs|mkinitramfs|dracut)( |$)')
check "maintainer scripts run neither update-initramfs nor dracut${runs:+: $runs}" test -z "$runs"

# ---- the RPM, from a tarball of the same tree
mkdir -p "$work/rpm/SOURCES"
git ls-files --cached --others --exclude-standard > "$work/rpm/list"
# The same vendored crates go into the tarball, and the build gets an
# empty cargo home too.
tar czf "$work/rpm/SOURCES/integrity-loader-0.1.0.tar.gz" --transform 's,^,integrity-loader-0.1.0/,' \
    -T "$work/rpm/list" -C "$work/deb/src" vendor
CARGO_HOME="$work/empty-cargo-home" rpmbuild -bb --nodeps --define "_topdir $work/rpm" \
    packaging/integrity-loader.spec > "$work/rpm-build.log" 2>&1
rpmfile=$(find "$work/rpm/RPMS" -name 'integrity-loader-0.1.0-*.rpm' 2> /dev/null | head -n1)
check "rpmbuild -bb packaging/integrity-loader.spec" test -n "$rpmfile" || show "$work/rpm-build.log"
check "the RPM took the crates from vendor/ (empty cargo home)" grep -q 'vendored-sources' "$work/rpm-build.log"
# Same files and modes (the unit under /lib on Debian 12, /usr/lib on RPM
# systems; docs and licence where each distribution keeps them).
layout() { sed -E 's|^(\S+) \./|\1 /|; s| /lib/systemd/| /usr/lib/systemd/|; s|\.gz$||' | grep -vE ' /usr/share/(doc|licenses|lintian)/' | sort; }
dpkg-deb --fsys-tarfile "$deb" | tar -tv | awk '$1 !~ /^d/ { print substr($1, 2), $6 }' | layout > "$work/deb-layout"
if [[ $rpmfile ]]; then
    rpm -qlvp "$rpmfile" 2> /dev/null | awk '$1 !~ /^d/ { print substr($1, 2), $9 }' | layout > "$work/rpm-layout"
    check "the RPM has the .deb's files and modes" diff -u "$work/deb-layout" "$work/rpm-layout"
fi

# ---- scripts/install with another PREFIX: the scripts and the unit name
# the paths it installed to
loc=$work/usr-local
scripts/install DESTDIR="$loc" PREFIX=/usr/local BIN="$CARGO_TARGET_DIR/x86_64-unknown-linux-musl/release/integrity-loader" \
    > "$work/install-local.log" 2>&1
check "scripts/install PREFIX=/usr/local" test $? = 0 || show "$work/install-local.log"
check "PREFIX=/usr/local: the initramfs-tools hook copies /usr/local/bin/integrity-loader" \
    grep -qx 'il_default=/usr/local/bin/integrity-loader # set by scripts/install' "$loc/usr/local/share/initramfs-tools/hooks/integrity-loader"
check "PREFIX=/usr/local: initrd-load runs /usr/local/bin/integrity-loader" \
    grep -qx 'bin=/usr/local/bin/integrity-loader # set by scripts/install' "$loc/usr/local/lib/integrity-loader/initrd-load"
check "PREFIX=/usr/local: the unit runs /usr/local/lib/integrity-loader/initrd-load" \
    grep -qx 'ExecStart=/usr/local/lib/integrity-loader/initrd-load' "$loc/usr/local/lib/systemd/system/integrity-loader.service"
check "PREFIX=/usr/local: the LSM-rules unit runs /usr/local/bin/integrity-loader" \
    grep -qx 'ExecStart=/usr/local/bin/integrity-loader load --lsm-rules --root /' "$loc/usr/local/lib/systemd/system/integrity-loader-lsm.service"
check "PREFIX=/usr/local: the LSM-rules unit is linked into sysinit.target.wants" \
    test "$(readlink "$loc/usr/local/lib/systemd/system/sysinit.target.wants/integrity-loader-lsm.service")" = ../integrity-loader-lsm.service

# ---- install, where README says
dpkg -i "$deb" > "$work/install.log" 2>&1
rc=$?
installed_by_us=yes
check "dpkg -i" test "$rc" = 0 || show "$work/install.log"
check "the postinst says no initramfs was rebuilt, and how to" grep -q 'no initramfs was rebuilt' "$work/install.log"
# README's table: | `PATH` | MODE | what |, in the "Packages" section.
mapfile -t rows < <(awk '/^## Packages/ { on = 1; next } /^## / { on = 0 }
    on && /^\| `\// { split($0, c, "|"); p = c[2]; m = c[3]; gsub(/[ `]/, "", p); gsub(/[ `]/, "", m); print p, m }' README.md)
check "README's Packages table lists the files (${#rows[@]})" test "${#rows[@]}" -ge 10
for row in "${rows[@]}"; do
    read -r path mode <<< "$row"
    actual=$(stat -L -c '%a' "$path" 2> /dev/null)
    check "installed: $path ($mode)" test "${actual:-missing}" = "${mode#0}"
done
if command -v systemd-analyze > /dev/null; then
    sa=$(systemd-analyze verify /lib/systemd/system/integrity-loader.service 2>&1)
    check "systemd-analyze verify integrity-loader.service${sa:+: $sa}" test -z "$sa"
    sa=$(systemd-analyze verify /lib/systemd/system/integrity-loader-lsm.service 2>&1)
    check "systemd-analyze verify integrity-loader-lsm.service${sa:+: $sa}" test -z "$sa"
fi
# And nothing in the package the table does not list.
listed=$(printf '%s\n' "${rows[@]}" | cut -d' ' -f1 | sort)
unlisted=$(dpkg -L integrity-loader | while read -r f; do [[ -f $f ]] && echo "$f"; done \
    | grep -vE '^/usr/share/(doc|lintian)/' | sort | comm -23 - <(echo "$listed"))
check "every file of the package is in README's table${unlisted:+ (not: $(echo $unlisted))}" test -z "$unlisted"

# ---- an initramfs-tools image with the installed hook, for Debian's kernel
# (only the VM tests' helpers for the kernel: nothing from the tree is used).
S=$work/mkinitramfs
mkdir -p "$S"
# shellcheck source=../initramfs-test/lib.sh
. initramfs-test/lib.sh
(get_kernel && declare -p KVER MODROOT > "$S/kernel") 2> "$S/kernel.log"
if [[ -s $S/kernel ]]; then
    # shellcheck source=/dev/null
    . "$S/kernel"
    mkdir -p "$S/conf"
    printf '%s\n' MODULES=list BUSYBOX=y COMPRESS=gzip > "$S/conf/initramfs.conf"
    with_kernel_tree mkinitramfs -d "$S/conf" -o "$S/initrd.img" "$KVER" > "$S/mkinitramfs.log" 2>&1
    check "mkinitramfs with the installed package" test $? = 0 || show "$S/mkinitramfs.log"
    list=$(lsinitramfs "$S/initrd.img" 2> /dev/null)
    check "the image has the binary" grep -qx 'usr/bin/integrity-loader' <<< "$list"
    check "the image has the local-bottom script" grep -qx 'scripts/local-bottom/integrity-loader' <<< "$list"
    unmkinitramfs "$S/initrd.img" "$S/x" > /dev/null 2>&1
    order=$(find "$S/x" -path '*/scripts/local-bottom/ORDER' -exec cat {} +)
    check "init runs the script (local-bottom/ORDER)" grep -q '/scripts/local-bottom/integrity-loader' <<< "$order"
else
    check "the kernel for mkinitramfs: $(tail -n1 "$S/kernel.log")" false
fi

# ---- remove, purge
dpkg -r integrity-loader > "$work/remove.log" 2>&1
check "dpkg -r" test $? = 0 || show "$work/remove.log"
left=$(for row in "${rows[@]}"; do [[ -e ${row%% *} ]] && echo "${row%% *}"; done)
check "dpkg -r removes every file${left:+ (left: $(echo $left))}" test -z "$left"
dpkg -P integrity-loader > "$work/purge.log" 2>&1
check "dpkg -P" test $? = 0 || show "$work/purge.log"
check "dpkg knows no integrity-loader after the purge" \
    test -z "$(dpkg-query -W -f='${Status}' integrity-loader 2> /dev/null | grep -v not-installed)"
installed_by_us=
finish
