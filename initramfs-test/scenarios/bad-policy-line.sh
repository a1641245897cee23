# shellcheck shell=bash
# a bad IMA policy line: file and line named, no policy loaded
#
# Two boots of the minimal initramfs, FAILURE_ACTION=continue:
#   syntax   the last line of the policy has an unknown func: the loader's
#            check refuses it before writing anything;
#   kernel   the last line is valid for the loader but not for this 6.1 kernel
#            (func=MMAP_CHECK_REQPROT arrived in 6.3): the kernel refuses it
#            while the rules are written, which drops the whole policy.
# Each time the loader's log names /etc/sysconfig/ima-policy and the line,
# the agent finds no policy (the unsigned file is readable), and the steps
# that do not depend on the policy still ran (EVM at 3, certificates).


scenario() {
    local case line n
    n=$(($(test_policy | wc -l) + 1))
    for case in syntax kernel; do
        case $case in
            syntax) line='appraise func=BOGUS_CHECK fsuuid='$DATA_UUID' appraise_type=imasig' ;;
            kernel) line='appraise func=MMAP_CHECK_REQPROT fsuuid='$DATA_UUID' appraise_type=imasig' ;;
        esac
        new_root
        root_native user FAILURE_ACTION=continue
        { test_policy; echo "$line"; } | put /etc/sysconfig/ima-policy
        expect KMK_NAME=kmk KMK=present EVM_KEY=absent IMA_CERTS=1 EVM_CERTS=1 EVM=3 \
            POLICY=none FILES="$FILES_OPEN" EXEC=ok
        build_root_image

        boot_vm "$(initramfs minimal)" --log "$case"

        local before=0
        [[ -s $S/reason ]] && before=$(wc -l < "$S/reason")
        expect_agent_pass
        expect_loader_log "ima-policy: FAILED: .*/etc/sysconfig/ima-policy:${n}[:, ]" "the policy file and line $n"
        expect_loader_log 'evm: done' "EVM enabled all the same"
        expect_no_oops
        if [[ -s $S/reason ]] && (($(wc -l < "$S/reason") > before)); then
            sed -i "$((before + 1)),\$s/^/$case: /" "$S/reason"
        fi
    done
}
