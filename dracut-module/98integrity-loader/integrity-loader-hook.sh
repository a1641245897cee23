#!/bin/sh
# pre-pivot hook of the integrity-loader dracut module, installed as
# /lib/dracut/hooks/pre-pivot/61-integrity-loader-hook.sh. dracut sources it
# (init.sh in a shell initramfs, /bin/dracut-pre-pivot from
# dracut-pre-pivot.service in a systemd one) with the real root mounted on
# $NEWROOT, before switch_root. Sourced, not run: no exit, no set -e, and the
# variables it sets are unset at the end.
#
# Nothing from the real root is sourced or executed here: the binary reads
# dracut's /etc/sysconfig files and /etc/integrity-loader.conf as data.

# shellcheck source=/dev/null # the initramfs's dracut-lib, not the real root's
type getarg > /dev/null 2>&1 || . /lib/dracut-lib.sh

# The kernel command line as dracut's getarg sees it: the binary joins
# /etc/cmdline.d/*.conf and /etc/cmdline in the initramfs, then
# /proc/cmdline, as getcmdline does (--dracut-cmdline), so no shell loop,
# temp file or rm runs here.

# The binary logs every step to /dev/kmsg; on a failed step (exit 1) or a
# configuration error (exit 2) it prints one line on stdout:
#   integrity-loader: FAILURE_ACTION=<halt|continue>: <step>: <reason>
# (<step> is "configuration" for exit 2).
# A host-only build copies the root's pins into the initramfs: they win over
# the real root's configuration, which anyone with the disk could edit.
if [ -e /etc/integrity-loader.pins ]; then
    _il_out=$(/usr/bin/integrity-loader load --root "${NEWROOT:-/sysroot}" --dracut-cmdline \
        --pins /etc/integrity-loader.pins)
else
    _il_out=$(/usr/bin/integrity-loader load --root "${NEWROOT:-/sysroot}" --dracut-cmdline)
fi
_il_rc=$?

case $_il_rc in
    0) ;;
    1)
        case $_il_out in
            *FAILURE_ACTION=halt:*)
                # die: the reason goes to the kernel log and the emergency
                # shell's banner; the boot does not go on (rd.shell decides
                # between the emergency shell and halting).
                die "$_il_out"
                ;;
            *)
                warn "${_il_out:-integrity-loader: a step failed; see the kernel log (dmesg | grep integrity-loader)}"
                ;;
        esac
        ;;
    2)
        # A usage or configuration error. A broken configuration is caught
        # when the initramfs is built in host-only mode (the module runs
        # `integrity-loader check` then), so here it means the root changed
        # since, or the initramfs is generic. The loader still reads what
        # it can: when the initramfs's pins or the root's own config ask
        # for halt, its line says FAILURE_ACTION=halt and the boot stops (a
        # syntax error must not switch halt off); otherwise a typo on the
        # root must not make the machine unbootable: warn and go on.
        case $_il_out in
            *FAILURE_ACTION=halt:*)
                die "$_il_out"
                ;;
            *)
                warn "integrity-loader: configuration error, IMA/EVM keys and policy not loaded; see the kernel log (dmesg | grep integrity-loader) or run 'integrity-loader check' after boot${_il_out:+: $_il_out}"
                ;;
        esac
        ;;
    *)
        warn "integrity-loader: exited with status $_il_rc, IMA/EVM keys and policy may not be loaded; see the kernel log (dmesg | grep integrity-loader)"
        ;;
esac

unset _il_out _il_rc
