# shellcheck shell=bash
# load run twice: the IMA policy written once, the second run finds it
#
# Two boots of the minimal initramfs with il.test.load-twice (minimal-init
# runs `integrity-loader load` a second time before switch_root), one with
# IMA_POLICY_WRITE=rules and one with IMA_POLICY_WRITE=path. The policy is
# spelt the way 6.1 takes but an older check refused (the action after a
# condition, '+' before numbers, fsname twice), so the kernel itself judges
# those checks. Each time: the first run writes the policy, the second
# reports it already loaded and exits 0, the kernel logs exactly one
# "policy update completed", no failed one, and one accepted audit record
# (type 1807) per rule, and after switch_root the agent finds the policy
# enforced. (Debian's kernel has neither CONFIG_IMA_READ_POLICY nor
# CONFIG_IMA_WRITE_POLICY: the policy file is gone after the first load.
# The other configurations are tested on the host, tests/load.rs.)

# The test policy's meaning in the spellings 6.1 accepts.
twice_policy() {
    cat << EOF
# the action need not come first; kstrtoul takes a '+'; the last fsname wins
dont_appraise fsmagic=+0x9FA0
fsuuid=$DATA_UUID appraise appraise_type=imasig
measure fsuuid=$DATA_UUID fsname=tmpfs fsname=ext4 pcr=+10
func=FILE_CHECK mask=^MAY_READ uid=+0 measure fsuuid=$DATA_UUID
EOF
}

scenario() {
    local mode before n
    for mode in rules path; do
        new_root
        root_native user FAILURE_ACTION=halt IMA_POLICY_WRITE=$mode
        twice_policy | put /etc/sysconfig/ima-policy
        expect KMK_NAME=kmk KMK=present EVM_KEY=absent IMA_CERTS=1 EVM_CERTS=1 EVM=3 \
            POLICY=loaded FILES="$FILES_ENFORCED" EXEC=ok
        build_root_image

        boot_vm "$(initramfs minimal)" --append il.test.load-twice --log "$mode"

        before=0
        [[ -s $S/reason ]] && before=$(wc -l < "$S/reason")
        expect_agent_pass
        case $mode in
            rules) expect_loader_log 'ima-policy: done: wrote IMA policy .*/etc/sysconfig/ima-policy as 4 rules' "the policy written rule by rule" ;;
            path) expect_loader_log 'ima-policy: done: wrote IMA policy .*/etc/sysconfig/ima-policy by path' "the policy written by path" ;;
        esac
        expect_loader_log 'ima-policy: already done: ' "the second run finding the policy loaded"
        expect_log 'minimal-init: integrity-loader load \(run 1\) exited with status 0' "the first run succeeding"
        expect_log 'minimal-init: integrity-loader load \(run 2\) exited with status 0' "the second run succeeding"
        # The console's own lines (the agent repeats dmesg as AGENT-DMESG):
        # one update, and one audit record per rule parsed (type 1807), each
        # accepted.
        n=$(serial | grep -cE '^\[ *[0-9.]+\] ima: policy update completed$' || true)
        [[ $n == 1 ]] || fail "the kernel logged \"policy update completed\" $n times, not once"
        n=$(serial | grep -cE '^\[ *[0-9.]+\] audit: type=1807 .* res=1$' || true)
        [[ $n == 4 ]] || fail "the kernel parsed $n rules, not the policy's 4 once"
        expect_no_log '^\[ *[0-9.]+\] audit: type=1807 .* res=0$' "a rule the kernel refused"
        expect_no_log 'ima: policy update failed' "a failed policy update"
        expect_no_oops
        if [[ -s $S/reason ]] && (($(wc -l < "$S/reason") > before)); then
            sed -i "$((before + 1)),\$s/^/$mode: /" "$S/reason"
        fi
    done
}
