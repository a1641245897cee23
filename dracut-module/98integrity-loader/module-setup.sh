#!/bin/bash
# dracut module "integrity-loader": runs the static integrity-loader binary in
# the pre-pivot stage (real root mounted on $NEWROOT, before switch_root) to
# load the IMA/EVM keys, certificates and policy. It replaces 97masterkey and
# 98integrity: no keyctl, no evmctl, no shell reading the real root.
#
# Shell and systemd initramfs alike: in the shell initramfs 99base's init.sh
# sources the pre-pivot hooks after the root is mounted; in a systemd
# initramfs 98dracut-systemd's dracut-pre-pivot.service (After=sysroot.mount
# initrd.target, Before=initrd-cleanup.service, NEWROOT=/sysroot) sources the
# same hook directory through /bin/dracut-pre-pivot. So the one hook below
# serves both, and dracut-lib's die/warn do the right thing in each.
#
# Environment read at build time:
#   INTEGRITY_LOADER_BIN  the binary to install, a path on the build host
#                         (default: usr/bin/integrity-loader in the root the
#                         initramfs is built for; scripts/install writes the
#                         PREFIX it installed to into the line marked below)
#   INTEGRITY_LOADER_REPIN  set: copy the root's storage key pin even when it
#                         differs from the one this boot checked
#
# dracut sets moddir, hostonly, add_dracutmodules, dracutsysrootdir.
# shellcheck disable=SC2154

# The binary to install and to run the host-only check with.
_integrity_loader_bin() {
    local _default=/usr/bin/integrity-loader # set by scripts/install
    echo "${INTEGRITY_LOADER_BIN:-${dracutsysrootdir}${_default}}"
}

# Host-only mode: validate, at build time, everything the boot would use, on
# the root this initramfs is for ($dracutsysrootdir from `dracut --sysroot`,
# else the running system). A broken setup fails the build here rather than
# the boot later. --audit-boot: when the policy appraises and the kernel
# command line (/proc/cmdline) has no ima_appraise=fix, the files the boot
# needs (init, /bin/sh, systemd, loader, libraries) must pass appraisal too
# (integrity-audit --boot-files, beside the binary). Prints the check's
# report through derror on failure.
_integrity_loader_host_check() {
    local _bin _root _out _rc _line
    _bin=$(_integrity_loader_bin)
    _root=${dracutsysrootdir:-/}
    if [[ ! -x $_bin ]]; then
        derror "integrity-loader: $_bin is missing or not executable; install it (scripts/install) or set INTEGRITY_LOADER_BIN"
        return 1
    fi
    _out=$("$_bin" check --root "$_root" --audit-boot 2>&1)
    _rc=$?
    if ((_rc != 0)); then
        derror "integrity-loader: host-only check of $_root failed (exit status $_rc); an initramfs built now could not set up IMA/EVM at boot:"
        while IFS= read -r _line; do
            derror "integrity-loader:   $_line"
        done <<< "$_out"
        derror "integrity-loader: fix the configuration (run '$_bin check --root $_root' to see it again), or leave out the integrity-loader module"
        return 1
    fi
    dinfo "integrity-loader: host-only check of $_root passed"
    _integrity_loader_host_checked=yes
    return 0
}

# called by dracut
check() {
    # Only included when asked for (add_dracutmodules+=" integrity-loader ",
    # --add, -m). dracut shows $hostonly to check() only for --add and
    # add_dracutmodules; for -m and --force-add it unsets it here, and
    # install() runs the check instead.
    if [[ $hostonly ]] && [[ " $add_dracutmodules " == *" integrity-loader "* ]]; then
        _integrity_loader_host_check || return 1
    fi
    return 255
}

# called by dracut
depends() {
    # 96securityfs mounts /sys/kernel/security early (the binary would mount
    # it too, but other modules' hooks may want it).
    echo securityfs
    return 0
}

# called by dracut (not with --no-kernel)
installkernel() {
    # The key types when built as modules (what 97masterkey installs) and the
    # TPM drivers a trusted or TPM-sealed kmk needs (what 91tpm2-tss
    # installs); missing ones are skipped.
    instmods trusted encrypted-keys '=drivers/char/tpm'
}

# called by dracut
install() {
    local _bin _twice=()
    _bin=$(_integrity_loader_bin)

    if [[ $hostonly ]] && [[ $_integrity_loader_host_checked != yes ]]; then
        if ! _integrity_loader_host_check; then
            dfatal "integrity-loader: host-only check failed; not building this initramfs"
            exit 1
        fi
    fi

    dracut_module_included masterkey && _twice+=(97masterkey)
    dracut_module_included integrity && _twice+=(98integrity)
    if ((${#_twice[@]} == 2)); then
        dwarning "integrity-loader: 97masterkey and 98integrity also included: they load the same keys, certificates and policy, so the job is done twice; leave them out (omit_dracutmodules+=\" masterkey integrity \", or -o \"masterkey integrity\")"
    elif ((${#_twice[@]} == 1)); then
        dwarning "integrity-loader: ${_twice[0]} also included: it loads the same keys, certificates or policy, so the job is done twice; leave it out (omit_dracutmodules+=\" ${_twice[0]#9[78]} \", or -o ${_twice[0]#9[78]})"
    fi

    if [[ ! -x $_bin ]]; then
        dfatal "integrity-loader: $_bin is missing or not executable; install it (scripts/install) or set INTEGRITY_LOADER_BIN"
        exit 1
    fi
    # A static binary: nothing else to install (no libraries, no keyctl or
    # evmctl). $_bin is a host path, so install it without the sysroot prefix
    # dracut-install would otherwise add.
    if ! dracutsysrootdir='' inst_simple "$_bin" /usr/bin/integrity-loader; then
        dfatal "integrity-loader: could not install $_bin into the initramfs"
        exit 1
    fi
    # 61: after 97masterkey's slot (60), where 98integrity loads its keys.
    inst_hook pre-pivot 61 "$moddir/integrity-loader-hook.sh"

    # Host-only: the root's pins (the kmk's type, blob digest and storage
    # key, TPM2_PCRLOCK, halt) go into the initramfs,
    # where someone who can write to the disk cannot remove them; the hook
    # passes them back with --pins.
    if [[ $hostonly ]]; then
        local _out _line
        mkdir -p "$initdir/etc"
        # For the booted system, the pin must be the one this boot checked
        # (/run/integrity-loader): a root edited since is not copied.
        if ! _out=$("$_bin" check --root "${dracutsysrootdir:-/}" \
            --write-pins "$initdir/etc/integrity-loader.pins" \
            ${INTEGRITY_LOADER_REPIN:+--repin} 2>&1); then
            dfatal "integrity-loader: could not copy the root's pins into the initramfs:"
            while IFS= read -r _line; do
                dfatal "integrity-loader:   $_line"
            done <<< "$_out"
            exit 1
        fi
        if [[ -e $initdir/etc/integrity-loader.pins ]]; then
            dinfo "integrity-loader: the root's pins (the kmk's type and blob, the storage key, halt) are in the initramfs; rebuild it after provisioning again"
        fi
    fi
}
