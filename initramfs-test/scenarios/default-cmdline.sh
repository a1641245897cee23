# shellcheck shell=bash
# `integrity-loader load` with no --cmdline: it reads /proc/cmdline itself
#
# The dracut hook and the minimal /init pass the kernel command line as a
# regular file (--cmdline). Here the minimal /init runs plain
# `integrity-loader load --root /sysroot` (il.test.default-cmdline), so the
# loader reads /proc/cmdline, a procfs file whose size stat reports as 0.
# Same root and expectations as user-kmk-minimal.

scenario() {
    new_root
    root_native user DROP_KMK=yes FAILURE_ACTION=halt
    expect KMK_NAME=kmk KMK=absent EVM_KEY=absent IMA_CERTS=1 EVM_CERTS=1 EVM=3 \
        POLICY=loaded FILES="$FILES_ENFORCED" EXEC=ok
    build_root_image

    boot_vm "$(initramfs minimal)" --append il.test.default-cmdline

    expect_agent_pass
    expect_no_log 'integrity-loader.*/proc/cmdline: ' "an error reading /proc/cmdline"
    expect_loader_log 'every configured step succeeded' "success"
    expect_no_oops
}
