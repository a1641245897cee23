# shellcheck shell=bash
# Variables set here are read by run and the scenarios:
# shellcheck disable=SC2034
#
# Shared functions of the VM boot tests (sourced by ./run and by every
# scenarios/NAME.sh). Layout of a run's work directory ($WORK):
#
#   $WORK/shared/       built once per run: binary, certs, keys, data disk,
#                       base root tree, initramfs images, build logs
#   $WORK/NAME/         one per scenario: root tree and image, TPM state,
#                       serial.log (the whole console of the boot), qemu.log,
#                       reason (why it failed)
#
# The kernel comes from a cache outside the repository ($IL_TEST_CACHE,
# default /var/cache/integrity-loader-test), filled once by apt-get download.
#
# Environment:
#   IL_TEST_CACHE          kernel cache directory
#   IL_TEST_WORK           work directory (default: a new /tmp/integrity-loader-vmtest.*)
#   IL_TEST_TIMEOUT        hard limit of one boot in seconds (default 150)
#   IL_TEST_ACCEL          qemu accelerator: tcg (default), kvm, or auto (kvm when /dev/kvm works)
#   IL_TEST_TRUSTED_KERNEL a bzImage for --kernel trusted instead of build-kernel's
#   IL_TEST_SWTPM_LOG_LEVEL the VM's swtpm log level (default 1; 20 logs every
#                          command, which initramfs-test/bench-trusted counts)
#   INTEGRITY_LOADER_BIN   test this binary instead of building one with scripts/build-static

IL_TEST_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$IL_TEST_DIR/.." && pwd)
IL_TEST_CACHE=${IL_TEST_CACHE:-/var/cache/integrity-loader-test}
IL_TEST_TIMEOUT=${IL_TEST_TIMEOUT:-150}
IL_TEST_ACCEL=${IL_TEST_ACCEL:-tcg}

# The test data disk: its own ext4 filesystem with a fixed UUID, the only
# thing the test IMA policy appraises (IMA rules cannot match paths, and
# appraising the root would need busybox and every config file signed).
DATA_UUID=5ec0e7a1-10ad-4e57-8a1d-da7ad15c0001
# LSMs without bpf: Debian 12's kernel oopses in evm_inode_init_security with
# the default list once EVM HMAC is on (kernel-interfaces.md pitfall 11).
KERNEL_LSM=lockdown,capability,yama,integrity,apparmor
# printk.devkmsg=on: /dev/kmsg writes are otherwise rate-limited (10 lines
# per 5 s per open file), and other writers' lines (minimal-init, the
# agent) could be dropped from the log. The loader's own lines must arrive
# without it: scenario kmsg-ratelimit boots with the kernel's default
# (boot_vm --devkmsg-default).
# IL_TEST_APPEND: more kernel command line for every boot (e.g.
# il.test.verbose: the minimal initramfs runs the loader with -v).
BASE_APPEND="console=ttyS0 panic=1 lsm=$KERNEL_LSM printk.devkmsg=on ${IL_TEST_APPEND:-}"

# ---- messages

log() { echo "[$(date +%T)] $*" >&2; }
die_setup() {
    echo "setup failed: $*" >&2
    exit 1
}

# fail REASON: records a failed check of the current scenario ($S) and goes on;
# the scenario fails when any check failed.
fail() {
    echo "$*" >> "$S/reason"
    log "check failed: $*"
}
# failed: true when the current scenario has a failed check.
failed() { [[ -s $S/reason ]]; }

# ---- prerequisites

# Prints what is missing, one item a line; nothing when all is there.
missing_prerequisites() {
    local t
    [[ $(id -u) == 0 ]] || echo "root (mkfs, keyctl, dracut-install)"
    for t in qemu-system-x86_64 swtpm tpm2_createprimary tpm2_create tpm2_createpolicy \
        tpm2_evictcontrol tpm2_encodeobject tpm2_flushcontext tpm2_clear mkfs.ext4 debugfs evmctl keyctl \
        openssl cpio dracut lsinitrd apt-get apt-cache dpkg-deb depmod modprobe timeout \
        getfattr setsid script; do
        command -v "$t" > /dev/null || echo "$t"
    done
    [[ -x /bin/busybox ]] && ! /usr/bin/ldd /bin/busybox > /dev/null 2>&1 \
        || echo "/bin/busybox (static: busybox-static)"
    [[ -d /usr/lib/dracut/modules.d/99base ]] || echo "/usr/lib/dracut (dracut-core)"
}
PACKAGES="qemu-system-x86 swtpm swtpm-tools tpm2-tools busybox-static cpio dracut-core e2fsprogs ima-evm-utils keyutils openssl attr"

# ---- the kernel

# get_kernel: sets KVER, KERNEL (vmlinuz) and MODROOT (a tree with
# lib/modules/$KVER, depmod'ed). Downloads only the one package
# linux-image-amd64 depends on, and only when the cache does not have it.
get_kernel() {
    local pkg dir deb
    pkg=$(apt-cache depends linux-image-amd64 2> /dev/null \
        | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n1)
    if [[ -z $pkg ]]; then
        # No apt lists (offline): take what the cache has.
        pkg=$(find "$IL_TEST_CACHE" -maxdepth 1 -type d -name 'linux-image-*' -printf '%f\n' 2> /dev/null | sort -V | tail -n1)
        [[ $pkg ]] || die_setup "apt-cache depends linux-image-amd64 names no kernel package, and $IL_TEST_CACHE has none (apt-get update?)"
    fi
    KVER=${pkg#linux-image-}
    dir=$IL_TEST_CACHE/$pkg
    if [[ ! -e $dir/.ready ]]; then
        log "kernel: fetching $pkg into $IL_TEST_CACHE (once)"
        mkdir -p "$IL_TEST_CACHE"
        rm -rf "$dir"
        (cd "$IL_TEST_CACHE" && rm -f "${pkg}"_*.deb && apt-get download "$pkg") > "$IL_TEST_CACHE/download.log" 2>&1 \
            || die_setup "apt-get download $pkg failed: $(tail -n3 "$IL_TEST_CACHE/download.log")"
        deb=$(ls "$IL_TEST_CACHE/${pkg}"_*.deb)
        dpkg-deb -x "$deb" "$dir" || die_setup "dpkg-deb -x $deb"
        depmod -b "$dir" "$KVER" || die_setup "depmod -b $dir $KVER"
        rm -f "$deb"
        touch "$dir/.ready"
    fi
    KERNEL=$dir/boot/vmlinuz-$KVER
    MODROOT=$dir
    KCONFIG=$dir/boot/config-$KVER
    [[ -r $KERNEL ]] || die_setup "$KERNEL missing; remove $dir and run again"
}

# get_trusted_kernel: sets TRUSTED_KERNEL, the bzImage of the kernel with
# trusted keys (CONFIG_TRUSTED_KEYS, no modules) that build-kernel builds
# from Debian's linux-source-6.1 once and caches in $IL_TEST_CACHE.
TRUSTED_KERNEL=${IL_TEST_TRUSTED_KERNEL:-}
get_trusted_kernel() {
    [[ $TRUSTED_KERNEL ]] && return 0
    log "kernel with trusted keys: initramfs-test/build-kernel (cached after the first build)"
    TRUSTED_KERNEL=$(IL_TEST_CACHE=$IL_TEST_CACHE "$IL_TEST_DIR/build-kernel" 2> "$S/build-kernel.log") \
        || die_setup "initramfs-test/build-kernel: $(tail -n3 "$S/build-kernel.log")"
    [[ -r $TRUSTED_KERNEL ]] || die_setup "build-kernel printed $TRUSTED_KERNEL, which is not there"
}

# ---- the binary and the host-side material

get_binary() {
    if [[ ${INTEGRITY_LOADER_BIN:-} ]]; then
        BIN=$(realpath "$INTEGRITY_LOADER_BIN")
    else
        log "building the static binary (scripts/build-static)"
        "$REPO/scripts/build-static" > "$SHARED/build.log" 2>&1 \
            || die_setup "scripts/build-static failed: $(tail -n5 "$SHARED/build.log")"
        BIN=$REPO/target/x86_64-unknown-linux-musl/release/integrity-loader
    fi
    # A copy: others may rebuild target/ while the run goes on. With it
    # the siblings built beside it: integrity-audit for the audit and
    # relabel scenarios, integrity-admin for those that seal.
    cp "$BIN" "$SHARED/integrity-loader"
    local sibling
    for sibling in integrity-audit integrity-admin; do
        rm -f "$SHARED/$sibling"
        if [[ -x $(dirname "$BIN")/$sibling ]]; then
            cp "$(dirname "$BIN")/$sibling" "$SHARED/$sibling"
        fi
    done
    BIN=$SHARED/integrity-loader
}

# make_evm_blob KMK_NAME KMK_FILE OUT: an encrypted evm-key sealed by a user
# key KMK_NAME holding KMK_FILE's bytes, made by this host's kernel in a
# throw-away session keyring.
make_evm_blob() {
    # shellcheck disable=SC2016 # expanded by the inner shell
    if ! keyctl session - sh -c '
        keyctl padd user "$1" @s < "$2" > /dev/null || exit 1
        id=$(keyctl add encrypted evm-key "new user:$1 32" @s) || exit 1
        keyctl pipe "$id" > "$3"' sh "$1" "$2" "$3" > /dev/null || [[ ! -s $3 ]]; then
        die_setup "could not make an evm-key blob with this host's kernel (keyctl, encrypted keys)"
    fi
}

# Certificates, kmk files and evm-key blobs shared by the scenarios.
make_host_material() {
    local k=$SHARED/keys
    mkdir -p "$k"
    "$REPO/scripts/make-test-certs" "$SHARED/certs" > "$SHARED/certs.log" 2>&1 \
        || die_setup "scripts/make-test-certs: $(tail -n3 "$SHARED/certs.log")"
    # A user kmk without newline or NUL, so dracut's `read -r` carries it
    # whole and dracut's 97masterkey and the loader load the same bytes.
    head -c 24 /dev/urandom | base64 | tr -d '\n' > "$k/kmk-user.blob"
    make_evm_blob kmk "$k/kmk-user.blob" "$k/evm-for-kmk.blob"
    make_evm_blob kmk-user "$k/kmk-user.blob" "$k/evm-for-kmk-user.blob"
    # The secret a TPM seals for MASTERKEYTYPE=tpm2 (binary, loaded as the user key kmk).
    head -c 32 /dev/urandom > "$k/kmk-tpm2.secret"
    make_evm_blob kmk "$k/kmk-tpm2.secret" "$k/evm-for-kmk-tpm2.blob"
}

# put_keyctl: keyctl (keyutils) and the libraries it links in the root,
# for a provisioning snippet that runs the documented keyctl lines.
put_keyctl() {
    local f
    for f in /usr/bin/keyctl $(ldd /usr/bin/keyctl | grep -oE '/[^ ]+'); do
        mkdir -p "$ROOT$(dirname "$f")"
        cp -L "$f" "$ROOT$f"
    done
    # /bin is busybox's: keyctl on the agent's PATH as /sbin/keyctl.
    ln -sf /usr/bin/keyctl "$ROOT/sbin/keyctl"
}

# ---- the data disk: files labeled on the host for appraisal

# sign FILE: an IMA signature (security.ima) and a portable EVM signature
# over it (security.evm), made with the test key whose certificate the
# scenarios load into both keyrings. Labels are set here, before boot: EVM
# with HMAC on refuses new security xattrs on a file that has none
# (kernel-interfaces.md pitfall 13).
sign() {
    evmctl sign --portable --imasig -a sha256 --key "$SHARED/certs/rsa2048.key.pem" "$1" \
        > /dev/null 2>> "$SHARED/sign.log" || die_setup "evmctl sign $1: $(tail -n2 "$SHARED/sign.log")"
    if ! getfattr -n security.ima "$1" > /dev/null 2>&1 || ! getfattr -n security.evm "$1" > /dev/null 2>&1; then
        die_setup "evmctl did not label $1"
    fi
}

make_data_disk() {
    local d=$SHARED/data
    rm -rf "$d"
    mkdir -p "$d"
    local body='#!/bin/sh
echo DATA-FILE-RUNS'
    printf '%s\n' "$body" > "$d/signed"
    printf '%s\n' "$body" > "$d/unsigned"
    printf '%s\n' "$body" > "$d/tampered"
    printf '%s\n' "$body" > "$d/evm-tampered"
    chmod 0755 "$d"/*
    sign "$d/signed"
    sign "$d/tampered"
    sign "$d/evm-tampered"
    # Content changed after signing: the IMA signature no longer matches.
    echo 'echo tampered' >> "$d/tampered"
    # Metadata changed after signing: the EVM portable signature (over mode,
    # uid, gid and security.ima) no longer matches; IMA's alone still would.
    chmod 0750 "$d/evm-tampered"
    mkfs.ext4 -q -F -I 256 -U "$DATA_UUID" -L il-data -d "$d" "$SHARED/data.img" 8M \
        > "$SHARED/mkfs-data.log" 2>&1 || die_setup "mkfs.ext4 data: $(cat "$SHARED/mkfs-data.log")"
    # mke2fs copies xattrs from the source tree (e2fsprogs >= 1.43): check.
    debugfs -R 'ea_list /signed' "$SHARED/data.img" 2> /dev/null | grep 'security.evm' > /dev/null \
        || die_setup "mkfs.ext4 -d did not copy the security xattrs into data.img (e2fsprogs too old?)"
}

# ---- the root disk

# The base root tree: busybox, the agent as /sbin/init-agent, mount points.
make_base_root() {
    local r=$SHARED/base-root a
    rm -rf "$r"
    mkdir -p "$r"/{bin,sbin,etc/keys/ima,etc/sysconfig,dev,proc,sys,run,mnt/data,tmp,root}
    cp /bin/busybox "$r/bin/busybox"
    for a in $(/bin/busybox --list); do
        [[ $a == busybox ]] || ln -sf busybox "$r/bin/$a"
    done
    install -m 0755 "$IL_TEST_DIR/agent/init-agent" "$r/sbin/init-agent"
    # The VMs boot init=/sbin/init-agent; /sbin/init is there for what
    # reads the default (the initramfs-tools hook's check --audit-boot,
    # with the build host's command line).
    ln -s init-agent "$r/sbin/init"
    echo "il-test" > "$r/etc/hostname"
    # systemd's switch-root refuses a root without os-release.
    printf '%s\n' 'ID=integrity-loader-test' 'NAME="integrity-loader VM test root"' > "$r/etc/os-release"
}

# new_root: $S/root, a copy of the base root for this scenario.
new_root() {
    rm -rf "$S/root"
    cp -a "$SHARED/base-root" "$S/root"
    ROOT=$S/root
}

# put FILE-IN-ROOT [MODE] < content
put() {
    mkdir -p "$(dirname "$ROOT$1")"
    cat > "$ROOT$1"
    chmod "${2:-0644}" "$ROOT$1"
}

# The IMA policy of the tests: appraise the data disk only.
test_policy() {
    cat << EOF
# integrity-loader VM test policy: the data disk's files need a valid
# IMA signature (and, once EVM is on, a valid EVM signature)
dont_appraise fsmagic=0x9fa0
appraise fsuuid=$DATA_UUID appraise_type=imasig
measure fsuuid=$DATA_UUID
EOF
}

# Common content of the scenarios' roots: certificates, policy, evm-key.
#   root_certs_and_policy: EVM cert /etc/keys/x509_evm.der, IMA cert
#   /etc/keys/ima/rsa2048.der, policy /etc/sysconfig/ima-policy.
root_certs_and_policy() {
    put /etc/keys/x509_evm.der < "$SHARED/certs/rsa2048.der"
    put /etc/keys/ima/rsa2048.der < "$SHARED/certs/rsa2048.der"
    test_policy | put /etc/sysconfig/ima-policy
}

# expect NAME=VALUE...: what the agent must find (/etc/agent-expect).
#   KMK          present|absent   the user key $KMK_NAME in /proc/keys
#   KMK_NAME     kmk|kmk-user
#   KMK_TYPE     user (default)|trusted   the kernel key type of the kmk
#   EVM_KEY      present|absent   the encrypted key evm-key
#   IMA_CERTS    N                keys on _ima (or .ima)
#   EVM_CERTS    N                keys on _evm (or .evm)
#   EVM          N                /sys/kernel/security/evm
#   POLICY       loaded|none      a policy was written (the policy file is gone)
#   FILES        "name=ok|EACCES ..." access to the data disk's files
#   EXEC         ok|EACCES        running the signed file
#   PCR11        hex              /sys/class/tpm/tpm0/pcr-sha256/11
expect() {
    local kv
    for kv in "$@"; do
        printf "EXPECT_%s='%s'\n" "${kv%%=*}" "${kv#*=}"
    done >> "$ROOT/etc/agent-expect"
}
# The state after a complete load with the test policy.
FILES_ENFORCED="signed=ok unsigned=EACCES tampered=EACCES evm-tampered=EACCES"
# Policy written, EVM off: the IMA signature alone decides.
FILES_IMA_ONLY="signed=ok unsigned=EACCES tampered=EACCES evm-tampered=ok"
FILES_OPEN="signed=ok unsigned=ok tampered=ok evm-tampered=ok"
# expect_trusted_load: the state after a complete load with a trusted kmk
# named kmk on the trusted kernel (boot_vm --kernel trusted), whose
# pcrlock=11 extends PCR 11 once from zero.
expect_trusted_load() {
    expect KMK_TYPE=trusted KMK_NAME=kmk KMK=present EVM_KEY=absent IMA_CERTS=1 EVM_CERTS=1 \
        EVM=3 POLICY=loaded FILES="$FILES_ENFORCED" EXEC=ok PCR11="$(kernel_pcrlocked "$ZERO_PCR")"
}

# build_root_image: $S/root.img from $S/root.
build_root_image() {
    mkfs.ext4 -q -F -I 256 -L il-root -d "$ROOT" "$S/root.img" 32M > "$S/mkfs-root.log" 2>&1 \
        || die_setup "mkfs.ext4 root: $(cat "$S/mkfs-root.log")"
}

# ---- initramfs images (each built once per run, on first use)

# initramfs KIND: prints the path of the image, building it first if needed.
#   minimal         busybox + the binary + a tiny /init (initramfs-test/minimal-init)
#   minimal-builtin the same without modules, for a kernel with the drivers
#                   built in (boot_vm --kernel trusted)
#   dracut          dracut shell initramfs with 98integrity-loader
#   dracut-systemd  dracut systemd initramfs with 98integrity-loader
#   dracut-classic  dracut shell initramfs with dracut's own 97masterkey + 98integrity
initramfs() {
    local kind=$1 img=$SHARED/initramfs-$1.img
    if [[ ! -s $img ]]; then
        case $kind in
            minimal) build_minimal_initramfs "$img" ;;
            minimal-builtin) build_minimal_initramfs "$img" builtin ;;
            dracut) build_dracut_initramfs "$img" "base rootfs-block integrity-loader" ;;
            dracut-systemd) build_dracut_initramfs "$img" "base systemd systemd-initrd dracut-systemd rootfs-block integrity-loader" ;;
            dracut-classic) build_dracut_initramfs "$img" "base rootfs-block masterkey integrity" ;;
            *) die_setup "unknown initramfs kind $kind" ;;
        esac >&2
    fi
    echo "$img"
}

# dracut_initramfs_with_pins NAME_HEX: the generic dracut shell image with
# /etc/integrity-loader.pins pinning NAME_HEX, as a host-only build would
# carry it: an uncompressed cpio put before the image (as early microcode
# is; the kernel cannot read an archive after a compressed one). Prints the
# image's path.
dracut_initramfs_with_pins() {
    local name=$1 extra=$S/pins-cpio img=$S/initramfs-with-pins.img
    mkdir -p "$extra/etc"
    printf 'TPM2_PARENT_NAME=%s\n' "$name" > "$extra/etc/integrity-loader.pins"
    (cd "$extra" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > "$img" \
        || die_setup "cpio of the pins archive"
    cat "$(initramfs dracut)" >> "$img"
    echo "$img"
}

# build_minimal_initramfs IMG [builtin]: builtin leaves the modules out
# (an empty load-order).
build_minimal_initramfs() {
    local img=$1 d=$SHARED/minimal-initramfs-${2:-modules} m ko
    log "building the minimal initramfs${2:+ ($2)}"
    rm -rf "$d"
    mkdir -p "$d"/{bin,sbin,usr/bin,dev,proc,sys,sysroot,run,tmp,lib/modules}
    cp /bin/busybox "$d/bin/busybox"
    ln -s busybox "$d/bin/sh"
    install -m 0755 "$BIN" "$d/usr/bin/integrity-loader"
    install -m 0755 "$IL_TEST_DIR/minimal-init" "$d/init"
    # The drivers for the virtio disks and ext4, in load order
    # (crc32c for ext4 first; not the SSE4.2 one TCG's CPU lacks).
    : > "$d/lib/modules/load-order"
    [[ ${2:-} == builtin ]] || for m in crc32c_generic virtio_pci virtio_blk ext4; do
        modprobe -d "$MODROOT" -S "$KVER" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'
    done | awk '!seen[$0]++' | grep -v 'crc32c-intel' | while read -r ko; do
        cp "$ko" "$d/lib/modules/"
        basename "$ko" >> "$d/lib/modules/load-order"
    done
    [[ ${2:-} == builtin || -s $d/lib/modules/load-order ]] || die_setup "no modules for the minimal initramfs (modprobe --show-depends)"
    (cd "$d" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > "$img" \
        || die_setup "cpio of the minimal initramfs"
}

# A private dracutbasedir: the system's dracut plus our module as
# scripts/install stages it; nothing is installed on the host.
dracut_base() {
    local base=$SHARED/dracut entry
    [[ -d $base ]] && return 0
    "$REPO/scripts/install" DESTDIR="$SHARED/stage" PREFIX=/usr BIN="$BIN" > "$SHARED/install.log" 2>&1 \
        || die_setup "scripts/install: $(tail -n3 "$SHARED/install.log")"
    mkdir -p "$base/modules.d"
    for entry in /usr/lib/dracut/*; do
        [[ ${entry##*/} == modules.d ]] || ln -s "$entry" "$base/"
    done
    for entry in /usr/lib/dracut/modules.d/*; do
        [[ ${entry##*/} == 98integrity-loader ]] || ln -s "$entry" "$base/modules.d/"
    done
    ln -s "$SHARED/stage/usr/lib/dracut/modules.d/98integrity-loader" "$base/modules.d/98integrity-loader"
}

# build_dracut_initramfs IMG MODULES: a generic (no host-only) image for the
# cached kernel, with the drivers for the test VM's disks.
build_dracut_initramfs() {
    local img=$1 modules=$2 name
    name=$(basename "$img" .img)
    dracut_base
    log "building $name with dracut (-m \"$modules\")"
    mkdir -p "$SHARED/dracut-conf.d" "$SHARED/dracut-tmp"
    : > "$SHARED/dracut.conf"
    dracutbasedir=$SHARED/dracut INTEGRITY_LOADER_BIN=$SHARED/stage/usr/bin/integrity-loader \
        dracut --conf "$SHARED/dracut.conf" --confdir "$SHARED/dracut-conf.d" --tmpdir "$SHARED/dracut-tmp" \
        --no-hostonly --kver "$KVER" --kmoddir "$MODROOT/lib/modules/$KVER" \
        --no-early-microcode --compress gzip --force \
        -m "$modules" --add-drivers "virtio_blk virtio_pci ext4 crc32c_generic" \
        "$img" > "$SHARED/$name.log" 2>&1 \
        || die_setup "dracut ($name): $(grep -E 'ERROR|FATAL|rror' "$SHARED/$name.log" | tail -n5)"
}

# ---- the TPM

# A swtpm TPM 2.0 for a scenario: state in $S/tpm (absolute: pitfall 12).
TPM_STATE=
swtpm_state() {
    TPM_STATE=$S/tpm
    mkdir -p "$TPM_STATE"
}

# tpm_provision_start: swtpm on the scenario's state directory over TCP, for
# tpm2-tools on the host (as a user would provision before the first boot).
TPM_PID=
tpm_provision_start() {
    local port i
    swtpm_state
    for i in 1 2 3 4 5; do
        port=$((20000 + RANDOM % 20000))
        swtpm socket --tpm2 --tpmstate dir="$TPM_STATE" \
            --server type=tcp,port=$port,bindaddr=127.0.0.1 \
            --ctrl type=tcp,port=$((port + 1)),bindaddr=127.0.0.1 \
            --flags not-need-init,startup-clear \
            --pid file="$S/swtpm-provision.pid" --daemon > "$S/swtpm-provision.log" 2>&1 && break
        port=
    done
    [[ $port ]] || die_setup "swtpm (provisioning) did not start: $(cat "$S/swtpm-provision.log")"
    TPM_PID=$(cat "$S/swtpm-provision.pid")
    export TPM2TOOLS_TCTI=swtpm:host=127.0.0.1,port=$port
}
tpm_provision_stop() {
    [[ $TPM_PID ]] && kill "$TPM_PID" 2> /dev/null
    local i
    for i in $(seq 50); do kill -0 "$TPM_PID" 2> /dev/null || break; sleep 0.1; done
    TPM_PID=
    unset TPM2TOOLS_TCTI
}
# tpm2 TOOL ARGS...: one tpm2-tools command, then flush what it left (no
# resource manager between the tools and swtpm: pitfall 12).
tpm2() {
    "$@" >> "$S/tpm2-tools.log" 2>&1 || die_setup "$* failed: $(tail -n3 "$S/tpm2-tools.log")"
    tpm2_flushcontext -t > /dev/null 2>&1
    tpm2_flushcontext -l > /dev/null 2>&1
    tpm2_flushcontext -s > /dev/null 2>&1
    return 0
}

# seal_kmk PCR11_HEX OUT: provisions the scenario's TPM: a persistent ECC
# storage key at 0x81000001 and the tpm2 kmk secret sealed to PCR 11 (sha256)
# having the value PCR11_HEX (64 hex digits), written as a TSS2 key file.
# SRK_NAME: the storage key's Name in hex, as tpm2-tools compute it (set
# by seal_kmk, for TPM2_PARENT_NAME); SRK_PUBLIC: its TPMT_PUBLIC in hex
# (for TPM2_PARENT_PUBLIC).
SRK_NAME=
SRK_PUBLIC=
seal_kmk() { # seal_kmk VALUE FILE-IN-ROOT [PCR]: sealed to sha256:PCR (11) = VALUE
    local pcr=$1 out=$2 index=${3:-11} w=$S/seal
    mkdir -p "$w"
    tpm_provision_start
    local i bytes=''
    for ((i = 0; i < ${#pcr}; i += 2)); do bytes+="\\x${pcr:i:2}"; done
    printf '%b' "$bytes" > "$w/pcr.bin"
    [[ $(stat -c %s "$w/pcr.bin") == 32 ]] || die_setup "seal_kmk: PCR value must be 64 hex digits"
    tpm2 tpm2_createprimary -Q -C o -g sha256 -G ecc -c "$w/srk.ctx"
    tpm2 tpm2_evictcontrol -Q -C o -c "$w/srk.ctx" 0x81000001
    tpm2 tpm2_readpublic -Q -c 0x81000001 -n "$w/srk.name"
    SRK_NAME=$(od -An -v -tx1 "$w/srk.name" | tr -d ' \n')
    tpm2 tpm2_readpublic -Q -c 0x81000001 -o "$w/srk.pub"
    # TPM2B_PUBLIC: skip the 2-byte size.
    SRK_PUBLIC=$(tail -c +3 "$w/srk.pub" | od -An -v -tx1 | tr -d ' \n')
    tpm2 tpm2_createpolicy -Q --policy-pcr -l "sha256:$index" -f "$w/pcr.bin" -L "$w/pcr.policy"
    tpm2 tpm2_create -Q -C 0x81000001 -L "$w/pcr.policy" -a 'fixedtpm|fixedparent|noda' \
        -i "$SHARED/keys/kmk-tpm2.secret" -u "$w/kmk.pub" -r "$w/kmk.priv"
    tpm2 tpm2_encodeobject -Q -C 0x81000001 -u "$w/kmk.pub" -r "$w/kmk.priv" -o "$w/kmk.tss2.pem"
    tpm_provision_stop
    put "$out" 0600 < "$w/kmk.tss2.pem"
}
# reseal_with_recovery_key PCR11_HEX: after root_native tpm2 and seal_kmk,
# as an admin makes a recovery key: `integrity-loader reseal
# --recovery-key` on the host, the kmk secret in a private session keyring,
# sealed again to PCR 11 = PCR11_HEX on the scenario's TPM. Writes the
# root's blob, its .recovery file and configuration (the host's TPM= line
# taken out again). RECOVERY_KEY: the key it printed.
RECOVERY_KEY=
reseal_with_recovery_key() {
    local pcr=$1 out
    tpm_provision_start
    mkdir -p "$S/host-sfs" "$S/host-run"
    : > "$S/host-cmdline"
    # shellcheck disable=SC2016 # expanded by that sh
    out=$(keyctl session - sh -c 'keyctl padd user kmk @s < "$1" > /dev/null && shift && exec "$@"' sh \
        "$SHARED/keys/kmk-tpm2.secret" "$BIN" reseal --root "$ROOT" --keyring @s --tpm "$TPM2TOOLS_TCTI" \
        --securityfs "$S/host-sfs" --run-dir "$S/host-run" --cmdline "$S/host-cmdline" \
        --pcrs sha256:11 --pcr-value "11=$pcr" --recovery-key 2> "$S/reseal-host.log")
    local rc=$?
    tpm_provision_stop
    ((rc == 0)) || die_setup "integrity-loader reseal --recovery-key on the host: $(tail -n3 "$S/reseal-host.log")"
    RECOVERY_KEY=$(sed -n '/^recovery key (shown this once/{n;p}' <<< "$out")
    [[ $RECOVERY_KEY =~ ^[0-9A-Z]{5}(-[0-9A-Z]{5}){7}$ ]] || die_setup "reseal printed no recovery key: $out"
    # --tpm is this host's way to the TPM, not the boot's: never recorded.
    ! grep -E '^TPM=' "$ROOT/etc/integrity-loader.conf" \
        || die_setup "reseal --tpm wrote a TPM= line into the root's configuration"
}

# root_with_recovery_key PCR11_HEX [CONF-LINE...]: a tpm2 root (root_native
# tpm2 FAILURE_ACTION=continue AUTO_RESEAL=yes CONF-LINE...) whose kmk is
# sealed to PCR 11 = PCR11_HEX and has a recovery key ($RECOVERY_KEY).
root_with_recovery_key() {
    local pcr=$1
    shift
    root_native tpm2 FAILURE_ACTION=continue AUTO_RESEAL=yes "$@"
    seal_kmk "$pcr" /etc/keys/kmk-tpm2.pem
    reseal_with_recovery_key "$pcr"
}

# tpm_clear: clears the scenario's TPM as the firmware's "Clear TPM" does
# (tpm2_clear, lockout hierarchy, empty auth): a new owner seed, the
# persistent storage key gone.
tpm_clear() {
    tpm_provision_start
    tpm2 tpm2_clear
    if tpm2_readpublic -c 0x81000001 > /dev/null 2>&1; then
        die_setup "tpm2_clear left a storage key at 0x81000001"
    fi
    tpm_provision_stop
}

# make_srk_recipe HANDLE: a new storage key as the README's recipe makes
# one (RSA-2048, noda), persistent at HANDLE, on the scenario's TPM.
make_srk_recipe() {
    local w=$S/srk-recipe
    mkdir -p "$w"
    tpm_provision_start
    tpm2 tpm2_createprimary -Q -C o -G rsa2048 -c "$w/srk.ctx" \
        -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt'
    tpm2 tpm2_evictcontrol -Q -C o -c "$w/srk.ctx" "$1"
    tpm_provision_stop
}

# reseal_typing_recovery_key ARGS...: `integrity-loader reseal ARGS` on the
# host against the scenario's root and TPM, with an empty keyring and a
# blob the TPM cannot unseal, so it asks for the recovery key on its
# terminal: a pty (script(1)) where $RECOVERY_KEY is typed once the prompt
# is there (echo is off by then). Its log: $S/reseal-typed.log, the
# terminal's: $S/reseal-typed.tty.
reseal_typing_recovery_key() {
    local log=$S/reseal-typed.log tty=$S/reseal-typed.tty fifo=$S/reseal-typed.in cmd pid rc i typist
    tpm_provision_start
    mkdir -p "$S/host-sfs" "$S/host-run"
    : > "$S/host-cmdline"
    : > "$tty"
    rm -f "$fifo"
    mkfifo "$fifo"
    cmd=$(printf '%q ' keyctl session - "$BIN" reseal --root "$ROOT" --keyring @s --tpm "$TPM2TOOLS_TCTI" \
        --securityfs "$S/host-sfs" --run-dir "$S/host-run" --cmdline "$S/host-cmdline" "$@")
    script -qfec "$cmd 2> $(printf '%q' "$log")" "$tty" < "$fifo" > /dev/null 2>&1 &
    pid=$!
    # Held open until reseal ends: an end of input would hang up its terminal.
    exec {typist}> "$fifo"
    for ((i = 0; i < 600; i++)); do
        grep -q 'Enter the recovery key' "$tty" && break
        kill -0 "$pid" 2> /dev/null || break
        sleep 0.1
    done
    printf '%s\n' "$RECOVERY_KEY" >&"$typist"
    wait "$pid"
    rc=$?
    exec {typist}>&-
    tpm_provision_stop
    ((rc == 0)) || die_setup "integrity-loader reseal $* (the key typed): $(tail -n3 "$log")"
    grep -q 'the kmk to seal again: the recovery key' "$log" \
        || die_setup "reseal $* did not take the kmk from the recovery key: $(tail -n3 "$log")"
    if grep -qF -e "$RECOVERY_KEY" -e "${RECOVERY_KEY//-/}" "$tty" "$log"; then
        die_setup "the recovery key was echoed or logged by reseal ($tty, $log)"
    fi
}
# seal_kmk_authorized PUBKEY OUT: as seal_kmk, but the kmk secret sealed to
# TPM2_PolicyAuthorize of the public key PUBKEY (PEM), empty policyRef, as
# tpm2-tools compute it (tpm2_loadexternal, tpm2_policyauthorize in a trial
# session): any PCR policy that key signs unseals it. PUBKEY goes to
# OUT.pcrpkey, where the loader looks for it.
seal_kmk_authorized() {
    local pub=$1 out=$2 w=$S/seal
    mkdir -p "$w"
    tpm_provision_start
    tpm2 tpm2_createprimary -Q -C o -g sha256 -G ecc -c "$w/srk.ctx"
    tpm2 tpm2_evictcontrol -Q -C o -c "$w/srk.ctx" 0x81000001
    tpm2 tpm2_readpublic -Q -c 0x81000001 -n "$w/srk.name"
    SRK_NAME=$(od -An -v -tx1 "$w/srk.name" | tr -d ' \n')
    tpm2 tpm2_loadexternal -Q -C o -G ecc -u "$pub" -c "$w/key.ctx" -n "$w/key.name"
    head -c 32 /dev/zero > "$w/any.policy"
    # One shell: tpm2() flushes the trial session after each command.
    tpm2 sh -c "tpm2_startauthsession -S '$w/trial.ctx' && tpm2_policyauthorize -Q -S '$w/trial.ctx' -L '$w/auth.policy' -i '$w/any.policy' -n '$w/key.name' && tpm2_flushcontext '$w/trial.ctx'"
    tpm2 tpm2_create -Q -C 0x81000001 -L "$w/auth.policy" -a 'fixedtpm|fixedparent|noda' \
        -i "$SHARED/keys/kmk-tpm2.secret" -u "$w/kmk.pub" -r "$w/kmk.priv"
    tpm2 tpm2_encodeobject -Q -C 0x81000001 -u "$w/kmk.pub" -r "$w/kmk.priv" -o "$w/kmk.tss2.pem"
    tpm_provision_stop
    put "$out" 0600 < "$w/kmk.tss2.pem"
    put "$out.pcrpkey" 0644 < "$pub"
}
# policy_key_pair DIR: an ECDSA P-256 key pair for signed PCR policies,
# DIR/policy.key and DIR/policy.pub.pem.
policy_key_pair() {
    if ! openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1/policy.key" 2> /dev/null \
        || ! openssl pkey -in "$1/policy.key" -pubout -out "$1/policy.pub.pem"; then
        die_setup "openssl could not make a P-256 key pair"
    fi
}
# sign_pcr11 KEY OUT VALUE...: integrity-loader sign-policy, offline, on the
# host: one signature over PCR 11 = VALUE for each VALUE, into OUT (inside
# the root).
sign_pcr11() {
    local key=$1 out=$2 v more=()
    shift 2
    for v in "$@"; do
        "$BIN" sign-policy --root "$ROOT" --key "$key" --pcrs sha256:11 --pcr-value "11=$v" \
            --output "$ROOT$out" "${more[@]}" >> "$S/sign-policy.log" 2>&1 \
            || die_setup "sign-policy failed: $(tail -n3 "$S/sign-policy.log")"
        more=(--append)
    done
}
# root_signed_policy FAILURE_ACTION VALUE...: a tpm2 root (root_native,
# the storage key pinned) whose kmk is sealed to PolicyAuthorize of a new
# P-256 key ($S/policy.key), with that key's signature over PCR 11 = VALUE
# for each VALUE in /etc/keys/kmk-tpm2.pem.pcrsig.
root_signed_policy() {
    local action=$1
    shift
    policy_key_pair "$S"
    seal_kmk_authorized "$S/policy.pub.pem" /etc/keys/kmk-tpm2.pem
    root_native tpm2 FAILURE_ACTION="$action" TPM2_PARENT_NAME="$SRK_NAME"
    sign_pcr11 "$S/policy.key" /etc/keys/kmk-tpm2.pem.pcrsig "$@"
}
ZERO_PCR=0000000000000000000000000000000000000000000000000000000000000000
# PCR 11 after the loader's lock (TPM2_PCRLOCK, on by default for a policy
# on PCR 11) from zero: extended with SHA-256("integrity-loader: kmk
# unsealed"), computed here independently of the loader.
locked_pcr() {
    local from=$1 event i bytes=''
    event=$(printf '%s' 'integrity-loader: kmk unsealed' | sha256sum | cut -c1-64)
    for ((i = 0; i < 64; i += 2)); do bytes+="\\x${from:i:2}"; done
    for ((i = 0; i < 64; i += 2)); do bytes+="\\x${event:i:2}"; done
    printf '%b' "$bytes" | sha256sum | cut -c1-64
}

# kernel_pcrlocked FROM: a sha256 PCR holding FROM after the kernel's
# pcrlock= (trusted keys): security/keys/trusted-keys/trusted_tpm1.c
# extends every bank with the all-zero digest its init_digests() leaves.
kernel_pcrlocked() {
    local from=$1 i bytes=''
    for ((i = 0; i < 64; i += 2)); do bytes+="\\x${from:i:2}"; done
    for ((i = 0; i < 64; i += 2)); do bytes+='\x00'; done
    printf '%b' "$bytes" | sha256sum | cut -c1-64
}

# make_srk_rsa: step 1 of the documented trusted-key procedure on the
# scenario's TPM, with tpm2-tools on the host: an RSA-2048 primary storage
# key made persistent at 0x81000001.
make_srk_rsa() {
    local w=$S/srk
    mkdir -p "$w"
    tpm_provision_start
    tpm2 tpm2_createprimary -Q --key-algorithm=rsa2048 --key-context="$w/key.ctxt"
    tpm2 tpm2_evictcontrol -Q -c "$w/key.ctxt" 0x81000001
    tpm_provision_stop
}

# put_trusted_provisioning KMK_FILE [EVM_FILE]: the agent's provisioning
# snippet running the documented lines verbatim: the kernel makes the
# trusted kmk under 0x81000001, `keyctl pipe` exports it to KMK_FILE, and
# (with EVM_FILE) an evm-key sealed by trusted:kmk is made and exported.
put_trusted_provisioning() {
    put_keyctl
    {
        echo "kmk_file=$1 evm_file=${2:-}"
        cat << 'SNIPPET'
echo "AGENT: provisioning: the documented keyctl lines"
mkdir -p "$(dirname "$kmk_file")"
if kmk=$(keyctl add trusted kmk "new 32 keyhandle=0x81000001" @u) && keyctl pipe "$kmk" > "$kmk_file"; then
    echo "AGENT: trusted kmk $kmk exported: $(wc -c < "$kmk_file") bytes to $kmk_file"
else
    bad "keyctl add trusted kmk \"new 32 keyhandle=0x81000001\" @u, then keyctl pipe, failed"
fi
if [ -n "$evm_file" ]; then
    if evm=$(keyctl add encrypted evm-key "new trusted:kmk 32" @u) && keyctl pipe "$evm" > "$evm_file"; then
        echo "AGENT: evm-key $evm exported to $evm_file: $(cut -d' ' -f1-3 "$evm_file") ..."
    else
        bad "keyctl add encrypted evm-key \"new trusted:kmk 32\" @u, then keyctl pipe, failed"
    fi
fi
SNIPPET
    } | put /etc/agent-provision
}

# swtpm_for_vm: a swtpm on the scenario's state for qemu (unix socket);
# sets TPM_SOCK and TPM_VM_PID. Stopped by boot_vm.
TPM_SOCK=
TPM_VM_PID=
swtpm_for_vm() {
    swtpm_state
    TPM_SOCK=$S/swtpm.sock
    rm -f "$TPM_SOCK"
    swtpm socket --tpm2 --tpmstate dir="$TPM_STATE" --ctrl type=unixio,path="$TPM_SOCK" \
        --terminate --log "file=$S/swtpm.log,level=${IL_TEST_SWTPM_LOG_LEVEL:-1}" > "$S/swtpm.out" 2>&1 &
    TPM_VM_PID=$!
    local i
    for _ in $(seq 100); do
        [[ -S $TPM_SOCK ]] && return 0
        sleep 0.05
    done
    die_setup "swtpm did not create $TPM_SOCK: $(cat "$S/swtpm.out")"
}

# ---- booting

# boot_vm INITRAMFS [options]: boots the cached kernel with INITRAMFS, the
# scenario's root image (vda) and the data disk (vdb, read-only), the serial
# console in $S/serial.log. Disks are used in snapshot mode: the images are
# never changed (but see --persist). Options:
#   --tpm               attach the scenario's swtpm (started here)
#   --append "ARGS"     more kernel command line
#   --stop-at REGEX     end the VM as soon as the serial log matches (e.g. a
#                       shell waiting for input); BOOT_STOPPED=yes then
#   --persist           the root image keeps what the VM writes (no snapshot)
#   --no-rng            no RDRAND for the guest (qemu's default CPU model):
#                       the kernel's random generator is seeded late, as on
#                       hardware without a fast entropy source; otherwise
#                       the guest CPU offers RDRAND (-cpu max), as real
#                       x86 machines do
#   --devkmsg-default   without printk.devkmsg=on: /dev/kmsg writes are
#                       rate-limited as the kernel does by default
#   --log NAME          serial log $S/serial-NAME.log (default $S/serial.log),
#                       for scenarios that boot more than once
#   --answer REGEX TEXT type TEXT and a newline on the serial console once
#                       the serial log matches REGEX (a prompt), once
#   --kernel KIND       debian (default: Debian's kernel, no trusted keys) or
#                       trusted (build-kernel's, trusted keys, no modules:
#                       use the minimal-builtin initramfs)
# Sets SERIAL (the serial log the checks below read).
# Sets BOOT_SECONDS and BOOT_END (exited|timeout|stopped).
BOOT_SECONDS=
BOOT_END=
BOOT_STOPPED=
boot_vm() {
    local initrd=$1 tpm='' append='' stop_at='' accel=$IL_TEST_ACCEL snapshot=,snapshot=on
    local cpu=(-cpu max) kernel=$KERNEL base=$BASE_APPEND answer_re='' answer_text='' answered=''
    SERIAL=$S/serial.log
    shift
    while (($#)); do
        case $1 in
            --tpm) tpm=1 ;;
            --append) append=$2; shift ;;
            --stop-at) stop_at=$2; shift ;;
            --log) SERIAL=$S/serial-$2.log; shift ;;
            --persist) snapshot= ;;
            --answer) answer_re=$2; answer_text=$3; shift 2 ;;
            --no-rng) cpu=() ;;
            --devkmsg-default) base=${BASE_APPEND//printk.devkmsg=on/} ;;
            --kernel)
                case $2 in
                    debian) kernel=$KERNEL ;;
                    trusted) get_trusted_kernel && kernel=$TRUSTED_KERNEL ;;
                    *) die_setup "boot_vm: --kernel $2: expected debian or trusted" ;;
                esac
                shift
                ;;
            *) die_setup "boot_vm: unknown option $1" ;;
        esac
        shift
    done
    if [[ $accel == auto ]]; then
        accel=tcg
        [[ -w /dev/kvm ]] && accel=kvm
    fi
    local args=(
        -accel "$accel" "${cpu[@]}" -machine pc -m 512 -smp 1 -nodefaults -no-reboot
        -display none -monitor none
        -kernel "$kernel" -initrd "$initrd"
        -append "$base root=/dev/vda ro rootfstype=ext4 init=/sbin/init-agent $append"
        -drive "file=$S/root.img,if=virtio,format=raw$snapshot"
        -drive "file=$SHARED/data.img,if=virtio,format=raw,readonly=on"
    )
    if [[ $tpm ]]; then
        swtpm_for_vm
        args+=(-chardev "socket,id=chrtpm,path=$TPM_SOCK" -tpmdev "emulator,id=tpm0,chardev=chrtpm"
            -device "tpm-tis,tpmdev=tpm0")
    fi
    : > "$SERIAL"
    # To type on the console: a pipe pair, the output copied to the log.
    local catpid=''
    if [[ $answer_re ]]; then
        rm -f "$S/console.in" "$S/console.out"
        mkfifo "$S/console.in" "$S/console.out"
        cat "$S/console.out" > "$SERIAL" &
        catpid=$!
        args+=(-chardev "pipe,id=con,path=$S/console" -serial chardev:con)
    else
        args+=(-serial "file:$SERIAL")
    fi
    local qlog=${SERIAL/serial/qemu}
    printf '%q ' qemu-system-x86_64 "${args[@]}" > "${qlog%.log}.cmd"
    echo >> "${qlog%.log}.cmd"
    local start=$SECONDS qpid
    # setsid: its own process group, so the timeout and a stop end qemu only.
    setsid timeout --kill-after=5 "$IL_TEST_TIMEOUT" qemu-system-x86_64 "${args[@]}" > "$qlog" 2>&1 &
    qpid=$!
    QEMU_PGID=$qpid
    BOOT_END=exited
    BOOT_STOPPED=
    while kill -0 "$qpid" 2> /dev/null; do
        if [[ $stop_at ]] && grep -qE "$stop_at" "$SERIAL"; then
            sleep 1 # let the rest of the screen arrive
            kill -TERM -- "-$qpid" 2> /dev/null
            BOOT_END=stopped
            BOOT_STOPPED=yes
            break
        fi
        if [[ $answer_re && ! $answered ]] && serial | grep -qE -- "$answer_re"; then
            printf '%s\n' "$answer_text" > "$S/console.in"
            answered=1
        fi
        sleep 0.5
    done
    wait "$qpid"
    local rc=$?
    [[ $catpid ]] && wait "$catpid"
    QEMU_PGID=
    [[ $BOOT_END == exited && $rc == 124 ]] && BOOT_END=timeout
    BOOT_SECONDS=$((SECONDS - start))
    if [[ $TPM_VM_PID ]]; then
        kill "$TPM_VM_PID" 2> /dev/null
        wait "$TPM_VM_PID" 2> /dev/null
        TPM_VM_PID=
    fi
    log "boot: $BOOT_END after ${BOOT_SECONDS}s (serial log $SERIAL)"
    if [[ $BOOT_END == exited && $rc != 0 ]]; then
        fail "qemu exited with status $rc: $(tail -n3 "$qlog")"
    fi
    [[ $BOOT_END == timeout ]] && fail "the VM did not end within ${IL_TEST_TIMEOUT}s (hard timeout)"
    return 0
}

# cleanup_scenario: ends what the scenario started and did not stop (an
# interrupted run): the VM, its swtpm, a provisioning swtpm. By process id.
QEMU_PGID=
cleanup_scenario() {
    [[ $QEMU_PGID ]] && kill -TERM -- "-$QEMU_PGID" 2> /dev/null
    [[ $TPM_VM_PID ]] && kill "$TPM_VM_PID" 2> /dev/null
    [[ $TPM_PID ]] && kill "$TPM_PID" 2> /dev/null
    return 0
}

# ---- verdicts from the serial log

# The serial log without carriage returns and ANSI colour codes.
serial() { sed -e 's/\r$//' -e 's/\x1b\[[0-9;]*m//g' "${SERIAL:-$S/serial.log}"; }

# agent_verdict: prints the agent's last verdict line ("PASS" or "FAIL ..."),
# nothing when the agent never printed one.
agent_verdict() {
    serial | sed -n 's/.*AGENT-VERDICT \(.*\)$/\1/p' | tail -n1
}

# expect_agent_pass [BOOT]: the boot reached the agent and it found what it
# expected; BOOT (e.g. "boot 1 (seal)") names the boot in the reason.
expect_agent_pass() {
    local v at=${1:+$1: }
    v=$(agent_verdict)
    case $v in
        PASS) ;;
        "") fail "${at}no agent verdict in the serial log (boot did not reach the agent)" ;;
        *) fail "${at}agent: ${v#FAIL }" ;;
    esac
}
expect_no_agent() {
    [[ -z $(agent_verdict) ]] || fail "the boot reached the agent; it should have stopped in the initramfs"
}

# The loader's own lines (kmsg, "integrity-loader[PID]: ...") in the console.
loader_lines() { serial | grep -E 'integrity-loader(\[[0-9]+\])?: '; }

# (No grep -q or -m after a pipe: with pipefail, the writer's SIGPIPE would
# turn a match into a failure.)
# expect_log REGEX DESCRIPTION / expect_no_log REGEX DESCRIPTION (serial log, ERE)
expect_log() { serial | grep -E -- "$1" > /dev/null || fail "serial log lacks $2 (/$1/)"; }
expect_no_log() {
    local hit
    hit=$(serial | grep -E -- "$1" | head -n1)
    [[ -z $hit ]] || fail "serial log has $2: $hit"
}
# expect_loader_log REGEX DESCRIPTION: a line of the loader matching REGEX.
expect_loader_log() { loader_lines | grep -E -- "$1" > /dev/null || fail "no loader line with $2 (/$1/)"; }

# No kernel oops: no BUG, Oops, GPF, or stack trace before the panic an
# exiting init causes (dracut's halt path when it has no halt command).
expect_no_oops() {
    local hit
    hit=$(serial | sed '/Kernel panic - not syncing: Attempted to kill init/,$d' \
        | grep -E 'BUG: |Oops|general protection fault|Call Trace:' | head -n1)
    [[ -z $hit ]] || fail "serial log has a kernel oops: $hit"
}

# boot_typing_recovery_key INITRAMFS [BOOT_VM-OPTION...]: a boot (root rw,
# serial log "recover") whose unseal fails: the loader must ask on the
# console, take $RECOVERY_KEY typed there, open the kmk with it and never
# show the key; the agent must pass.
boot_typing_recovery_key() {
    local initrd=$1
    shift
    boot_vm "$initrd" --tpm --append rw --log recover "$@" \
        --answer 'Enter the recovery key \(try 1 of 3' "$RECOVERY_KEY"
    expect_agent_pass "the boot typing the recovery key"
    expect_loader_log 'asking for the recovery key of .* on /dev/console' "the console prompt"
    expect_loader_log 'opened with the recovery key' "the kmk from the recovery key"
    expect_no_log "$RECOVERY_KEY" "the recovery key"
    expect_no_log "${RECOVERY_KEY//-/}" "the recovery key without dashes"
}

# boot_unsealing_unasked INITRAMFS: the boot after a recovery (serial log
# "next"): the TPM unseals the blob sealed again, nobody is asked, every
# step succeeds.
boot_unsealing_unasked() {
    boot_vm "$1" --tpm --log next
    expect_agent_pass "the boot after the recovery"
    expect_loader_log 'unsealed by the TPM' "the kmk unsealed by the TPM"
    expect_no_log 'Enter the recovery key' "a prompt for the recovery key"
    expect_loader_log 'every configured step succeeded' "success"
    expect_no_oops
}

# A root with only dracut's files (/etc/sysconfig/masterkey and evm, the
# default paths of 97masterkey/98integrity) and a user kmk: what a system set
# up for dracut's modules has.
root_dracut_dropin() {
    root_certs_and_policy
    put /etc/keys/kmk-user.blob 0600 < "$SHARED/keys/kmk-user.blob"
    put /etc/keys/evm-user.blob 0600 < "$SHARED/keys/evm-for-kmk-user.blob"
    echo 'MASTERKEYTYPE=user' | put /etc/sysconfig/masterkey
    echo 'EVMKEY=/etc/keys/evm-user.blob' | put /etc/sysconfig/evm
}

# root_native KMKTYPE [CONF-LINE...]: certificates, policy, evm-key and
# /etc/integrity-loader.conf for MASTERKEYTYPE=KMKTYPE (user: the kmk file
# /etc/keys/kmk.blob; tpm2: the evm-key sealed by the tpm2 secret, the
# sealed blob is the scenario's: seal_kmk ... /etc/keys/kmk-tpm2.pem).
root_native() {
    local type=$1
    shift
    root_certs_and_policy
    case $type in
        user)
            put /etc/keys/kmk.blob 0600 < "$SHARED/keys/kmk-user.blob"
            put /etc/keys/evm.blob 0600 < "$SHARED/keys/evm-for-kmk.blob"
            printf '%s\n' MASTERKEYTYPE=user MASTERKEY=/etc/keys/kmk.blob "$@" | put /etc/integrity-loader.conf
            ;;
        tpm2)
            put /etc/keys/evm.blob 0600 < "$SHARED/keys/evm-for-kmk-tpm2.blob"
            printf '%s\n' MASTERKEYTYPE=tpm2 MASTERKEY=/etc/keys/kmk-tpm2.pem TPM2_PCRS=sha256:11 "$@" \
                | put /etc/integrity-loader.conf
            ;;
    esac
    echo 'EVMKEY=/etc/keys/evm.blob' | put /etc/sysconfig/evm
}

# ---- initramfs-tools images (mkinitramfs with our hook and boot script)

# itools_conf: a private initramfs-tools configuration directory
# (mkinitramfs -d) holding our hook and local-bottom script as
# scripts/install stages them, the drivers for the test VM's disks, gzip.
# Nothing is installed on the host. Sets ITOOLS_CONF.
ITOOLS_CONF=
itools_conf() {
    ITOOLS_CONF=$SHARED/initramfs-tools-conf
    [[ -d $ITOOLS_CONF ]] && return 0
    local stage=$SHARED/stage-itools c=$SHARED/initramfs-tools-conf.tmp
    "$REPO/scripts/install" DESTDIR="$stage" PREFIX=/usr BIN="$BIN" > "$SHARED/install-itools.log" 2>&1 \
        || die_setup "scripts/install: $(tail -n3 "$SHARED/install-itools.log")"
    rm -rf "$c"
    mkdir -p "$c/hooks" "$c/scripts/local-bottom" "$c/conf.d"
    printf '%s\n' MODULES=list BUSYBOX=y COMPRESS=gzip RUNSIZE=10% FSTYPE=ext4 > "$c/initramfs.conf"
    printf '%s\n' crc32c_generic virtio_pci virtio_blk ext4 > "$c/modules"
    cp "$stage/usr/share/initramfs-tools/hooks/integrity-loader" "$c/hooks/"
    cp "$stage/usr/share/initramfs-tools/scripts/local-bottom/integrity-loader" "$c/scripts/local-bottom/"
    mv "$c" "$ITOOLS_CONF"
}

# with_kernel_tree CMD...: runs CMD in a private mount namespace where the
# cached kernel's modules are /lib/modules/$KVER and its config is in /boot,
# as mkinitramfs wants them (it has no option for another module tree). An
# overlay on /usr/lib takes the mount point, so the host is not changed.
with_kernel_tree() {
    # shellcheck disable=SC2016 # expanded by the inner shell
    unshare -m -- bash -c '
        set -e
        mount --make-rprivate /
        ov=$1 kver=$2 modroot=$3
        shift 3
        mkdir -p "$ov"
        mount -t tmpfs tmpfs "$ov"
        mkdir "$ov/upper" "$ov/work"
        mount -t overlay overlay -o "lowerdir=/usr/lib,upperdir=$ov/upper,workdir=$ov/work" /usr/lib
        mkdir -p "/usr/lib/modules/$kver"
        mount --bind "$modroot/lib/modules/$kver" "/usr/lib/modules/$kver"
        mount --bind "$modroot/boot" /boot
        exec "$@"' with_kernel_tree "$S/kernel-tree-ns" "$KVER" "$MODROOT" "$@"
}

# itools_initramfs [VAR=value...]: builds the scenario's initramfs-tools
# image with mkinitramfs for the cached kernel, the hook checking the
# scenario's root tree ($ROOT, as INTEGRITY_LOADER_ROOT) and copying its
# pins; VAR=value pairs go to mkinitramfs's environment. Prints the path.
# The build's output: $S/mkinitramfs.log.
itools_initramfs() {
    local img=$S/initramfs-tools.img
    command -v mkinitramfs > /dev/null || die_setup "mkinitramfs missing (apt-get install initramfs-tools-core, or scripts/install-deps)"
    itools_conf
    log "building $(basename "$img") with mkinitramfs (root $ROOT)"
    if ! with_kernel_tree env INTEGRITY_LOADER_ROOT="$ROOT" INTEGRITY_LOADER_BIN="$SHARED/stage-itools/usr/bin/integrity-loader" \
        "$@" mkinitramfs -d "$ITOOLS_CONF" -o "$img" "$KVER" > "$S/mkinitramfs.log" 2>&1; then
        die_setup "mkinitramfs: $(grep -E '^E: ' "$S/mkinitramfs.log" | tail -n5)"
    fi
    echo "$img"
}

# ---- a systemd initramfs running the loader through integrity-loader.service

# unit_initramfs: a dracut systemd initramfs WITHOUT our dracut module (no
# pre-pivot hook), holding what another initrd builder would include: the
# binary, initrd-load and integrity-loader.service enabled for initrd.target,
# as scripts/install lays them out. Built once per run; prints its path.
unit_initramfs() {
    local img=$SHARED/initramfs-systemd-unit.img stage=$SHARED/stage-unit tree=$SHARED/unit-tree
    if [[ ! -s $img ]]; then
        "$REPO/scripts/install" DESTDIR="$stage" PREFIX=/usr BIN="$BIN" > "$SHARED/install-unit.log" 2>&1 \
            || die_setup "scripts/install: $(tail -n3 "$SHARED/install-unit.log")"
        rm -rf "$tree"
        mkdir -p "$tree/usr/bin" "$tree/usr/lib/integrity-loader" "$tree/usr/lib/systemd/system/initrd.target.wants"
        cp "$stage/usr/bin/integrity-loader" "$tree/usr/bin/"
        cp "$stage/usr/lib/integrity-loader/initrd-load" "$tree/usr/lib/integrity-loader/"
        cp "$stage/usr/lib/systemd/system/integrity-loader.service" "$tree/usr/lib/systemd/system/"
        ln -s ../integrity-loader.service "$tree/usr/lib/systemd/system/initrd.target.wants/integrity-loader.service"
        log "building $(basename "$img") with dracut (systemd, no integrity-loader module, the unit included)" >&2
        mkdir -p "$SHARED/dracut-conf.d" "$SHARED/dracut-tmp"
        : > "$SHARED/dracut.conf"
        dracut --conf "$SHARED/dracut.conf" --confdir "$SHARED/dracut-conf.d" --tmpdir "$SHARED/dracut-tmp" \
            --no-hostonly --kver "$KVER" --kmoddir "$MODROOT/lib/modules/$KVER" \
            --no-early-microcode --compress gzip --force \
            -m "base systemd systemd-initrd dracut-systemd rootfs-block" \
            --add-drivers "virtio_blk virtio_pci ext4 crc32c_generic" \
            --include "$tree" / "$img" > "$SHARED/initramfs-systemd-unit.log" 2>&1 \
            || die_setup "dracut (systemd unit): $(grep -E 'ERROR|FATAL|rror' "$SHARED/initramfs-systemd-unit.log" | tail -n5)"
    fi
    echo "$img"
}
