//! Whole policies through `parse`: the kernel's built-in policies, valid
//! rules, and a table of invalid ones with the line, column and words.

use super::*;

/// The kernel's ima_policy=tcb measure rules and appraise_tcb rules.
const TCB: &str = "\
# ima_policy=tcb
dont_measure fsmagic=0x9fa0
dont_measure fsmagic=0x62656572
dont_measure fsmagic=0x64626720
dont_measure fsmagic=0x01021994 func=FILE_CHECK
dont_measure fsmagic=0x1cd1
dont_measure fsmagic=0x42494e4d
dont_measure fsmagic=0x73636673
dont_measure fsmagic=0xf97cff8c
dont_measure fsmagic=0x43415d53
dont_measure fsmagic=0x27e0eb
dont_measure fsmagic=0x63677270
dont_measure fsmagic=0x6e736673
dont_measure fsmagic=0xde5e81e4
measure func=MMAP_CHECK mask=MAY_EXEC
measure func=BPRM_CHECK mask=MAY_EXEC
measure func=FILE_CHECK mask=^MAY_READ euid=0
measure func=FILE_CHECK mask=^MAY_READ uid=0
measure func=MODULE_CHECK
measure func=FIRMWARE_CHECK
measure func=POLICY_CHECK

# ima_policy=appraise_tcb
dont_appraise fsmagic=0x9fa0
dont_appraise fsmagic=0x62656572
dont_appraise fsmagic=0x858458f6
dont_appraise fsmagic=0x01021994
appraise func=POLICY_CHECK appraise_type=imasig
appraise fowner=0
";

#[test]
fn builtin_policies_parse() {
    let p = parse(TCB.as_bytes()).unwrap();
    assert_eq!(p.rules().len(), 26);
    assert_eq!(p.measure_rule_count(), 7);
    assert_eq!(p.appraise_rule_count(), 2);
    assert!(p.requires_signatures());
    // Line numbers count comments and blank lines.
    assert_eq!(p.rules()[0].line, 2);
    assert_eq!(p.rules()[20].line, 24);
    assert_eq!(p.rules()[0].text, "dont_measure fsmagic=0x9fa0");
}

#[test]
fn valid_rules() {
    let cases = [
        "measure func=KEY_CHECK",
        "measure func=KEY_CHECK keyrings=.builtin_trusted_keys|.ima",
        "measure func=KEY_CHECK keyrings=.ima uid=0 pcr=11 template=ima-buf",
        "measure func=CRITICAL_DATA label=selinux",
        "measure func=CRITICAL_DATA label=kernel_info|selinux pcr=10",
        "measure func=KEXEC_KERNEL_CHECK pcr=4",
        "measure func=KEXEC_INITRAMFS_CHECK pcr=5",
        "measure func=KEXEC_CMDLINE fsname=rootfs",
        "appraise func=KEXEC_KERNEL_CHECK appraise_type=imasig|modsig",
        "appraise func=MODULE_CHECK appraise_type=imasig|modsig appraise_flag=check_blacklist",
        "appraise func=FIRMWARE_CHECK appraise_type=imasig",
        "appraise func=SETXATTR_CHECK appraise_algos=sha256,sha384,sha512",
        "appraise func=SETXATTR_CHECK appraise_algos=sha3-256 obj_type=bin_t",
        "measure func=FILE_CHECK digest_type=verity template=ima-ngv2",
        "measure func=BPRM_CHECK digest_type=verity template=d-ngv2|n-ng|sig",
        "appraise func=BPRM_CHECK digest_type=verity appraise_type=sigv3",
        "dont_measure obj_type=var_log_t",
        "dont_appraise obj_type=auditd_log_t",
        "measure subj_user=system_u func=FILE_CHECK mask=MAY_READ",
        "measure subj_role=system_r subj_type=init_t obj_user=u obj_role=r func=FILE_CHECK",
        "measure subj_user=_ func=FILE_CHECK mask=MAY_READ",
        "measure func=BPRM_CHECK uid<1000",
        "measure func=FILE_CHECK euid>999 fgroup<100 gid=5",
        "appraise fowner>0 appraise_type=imasig",
        "appraise fowner<1000 fgroup=0",
        "measure func=FILE_CHECK mask=^MAY_READ",
        "measure func=FILE_MMAP mask=MAY_EXEC",
        "measure func=PATH_CHECK mask=MAY_WRITE",
        "measure func=MMAP_CHECK_REQPROT mask=^MAY_EXEC",
        "measure func=CREDS_CHECK",
        "measure func=FILE_CHECK mask=MAY_APPEND fsuuid=8bcbe394-4f13-4144-be8e-5aa9ea2ce2f6",
        "dont_appraise fsuuid=8BCBE394-4F13-4144-BE8E-5AA9EA2CE2F6",
        "appraise func=BPRM_CHECK permit_directio appraise_type=imasig appraise_algos=sha256",
        "audit func=BPRM_CHECK mask=MAY_EXEC",
        "dont_audit fsname=fuse fs_subtype=sshfs",
        "hash func=FILE_CHECK",
        "dont_hash fsmagic=9FA0",
        "measure fsname=ext4 fsmagic=0XEF53",
        "measure func=BPRM_CHECK template=ima-sig pcr=0",
        "measure func=FILE_CHECK uid=4294967294",
        "dont_measure fsmagic=0xffffffffffffffff",
        "measure func=KEXEC_CMDLINE subj_type=kexec_t",
        // What 6.1's ima_parse_rule() takes that an older check refused:
        // the action anywhere, a '+' before numbers (kstrtoul), any
        // appraise_flag naming "blacklist" (strstr), and the options it
        // stores without testing for an earlier one.
        "func=BPRM_CHECK measure",
        "mask=MAY_EXEC func=BPRM_CHECK measure template=ima-ng",
        "measure uid=+0",
        "measure func=FILE_CHECK fowner>+999 egid<+5",
        "dont_measure fsmagic=+9fa0",
        "dont_measure fsmagic=+0x9fa0",
        "measure pcr=+10",
        "measure pcr=-0",
        "appraise func=MODULE_CHECK appraise_type=imasig|modsig appraise_flag=blacklist",
        "appraise func=MODULE_CHECK appraise_type=imasig|modsig appraise_flag=no_blacklist_x",
        "measure fsname=tmpfs fsname=ext4",
        "measure pcr=1 pcr=2",
        "appraise permit_directio permit_directio",
        "measure func=FILE_CHECK digest_type=verity digest_type=verity",
        "appraise func=MODULE_CHECK appraise_type=imasig appraise_type=imasig",
        "appraise func=MODULE_CHECK appraise_type=imasig appraise_type=imasig|modsig appraise_flag=check_blacklist",
        "appraise func=MODULE_CHECK appraise_type=imasig|modsig appraise_type=imasig appraise_flag=check_blacklist",
        "appraise func=MODULE_CHECK appraise_flag=check_blacklist appraise_flag=check_blacklist appraise_type=imasig|modsig",
        "appraise func=BPRM_CHECK digest_type=verity appraise_type=sigv3 appraise_type=sigv3",
        "dont_measure fsmagic=0 fsmagic=0x9fa0",
        "dont_measure fsmagic=0 fsmagic=0 fsmagic=1",
        "measure fsuuid=00000000-0000-0000-0000-000000000000 fsuuid=8bcbe394-4f13-4144-be8e-5aa9ea2ce2f6",
    ];
    for case in cases {
        let p = parse(case.as_bytes()).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(p.rules().len(), 1, "{case}");
        assert_eq!(p.rules()[0].text, case);
        // Recognised as written and in its normal form.
        assert!(p.is_shown_in(case.as_bytes()), "{case}");
        assert!(p.is_shown_in(p.normal_form().as_bytes()), "{case}");
    }
}

#[test]
fn text_is_trimmed_and_comments_are_not_written() {
    let p =
        parse(b"  # c\n\tmeasure\t func=BPRM_CHECK  \n\nappraise fowner=0 # root files\n").unwrap();
    let units: Vec<Vec<u8>> = p.write_units().collect();
    assert_eq!(
        units,
        [
            b"measure\t func=BPRM_CHECK\n".to_vec(),
            b"appraise fowner=0\n".to_vec()
        ]
    );
    assert_eq!((p.rules()[0].line, p.rules()[1].line), (2, 4));
    assert_eq!(p.rules()[1].action, Action::Appraise);
    assert_eq!(p.rules()[0].func, Some(Func::Bprm));
    // No final newline is fine: write_units adds it.
    let p = parse(b"measure func=FILE_MMAP").unwrap();
    assert_eq!(p.write_units().next().unwrap(), b"measure func=FILE_MMAP\n");
    assert_eq!(p.rules()[0].func, Some(Func::Mmap));
}

#[test]
fn invalid_rules() {
    let long = format!("measure fsname={}", "a".repeat(MAX_LINE_LEN - 14));
    let cases: &[(&[u8], usize, usize, &str)] = &[
        (b"measure fnc=BPRM_CHECK", 1, 9, "unknown condition \"fnc=BPRM_CHECK\""),
        (
            b"# a\n\n# b\nmeasure func=BPRM_CHECK\n\n  # c\nmeasure func=BPRM_CHECK fnc=BPRM_CHECK\n",
            7,
            25,
            "unknown condition \"fnc=BPRM_CHECK\"",
        ),
        (
            b"measure func=BPRM_CHECK\r\nmeasure func=FILE_CHECK\r\n",
            1,
            24,
            "carriage return (DOS line ending): the kernel would reject the \"\\r\" token; convert the file with dos2unix",
        ),
        (b"measure func=BPRM\0_CHECK", 1, 18, "NUL byte in a text file"),
        (b"measure func=BPRM_CHECK\nmeasure obj_type=\xff_t", 2, 18, "invalid UTF-8"),
        (b"measure obj_type=\xc3", 1, 18, "invalid UTF-8"),
        (b"measure\x0bfunc=BPRM_CHECK", 1, 8, "control character 0x0b"),
        (b"measure\x7f", 1, 8, "control character 0x7f"),
        (
            long.as_bytes(),
            1,
            4094,
            "line is 4094 bytes; the kernel cuts a rule write at 4095 bytes, so at most 4093 are accepted",
        ),
        (
            b"\xef\xbb\xbfmeasure func=BPRM_CHECK",
            1,
            1,
            "file starts with a byte order mark; save it as plain UTF-8",
        ),
        (b"", 1, 1, "policy has no rules, only comments or blank lines (the kernel fails an empty update)"),
        (b"# x\n\n \t\n", 1, 1, "policy has no rules, only comments or blank lines (the kernel fails an empty update)"),
        (
            b"meassure func=BPRM_CHECK",
            1,
            1,
            "unknown action \"meassure\": a rule needs one of measure, dont_measure, appraise, dont_appraise, audit, dont_audit, hash or dont_hash",
        ),
        (
            b"func=BPRM_CHECK mask=MAY_EXEC",
            1,
            1,
            "no action: a rule needs one of measure, dont_measure, appraise, dont_appraise, audit, dont_audit, hash or dont_hash",
        ),
        (b"func=BPRM_CHECK measure appraise", 1, 25, "second action \"appraise\" in one rule"),
        // 6.1 checks the action when it meets template=.
        (b"template=ima-ng measure", 1, 1, "\"measure\" must come before \"template=\""),
        (
            b"  /etc/ima/policy",
            1,
            3,
            "unknown action \"/etc/ima/policy\": this file must hold rules, not the path of a policy",
        ),
        (b"measure appraise", 1, 9, "second action \"appraise\" in one rule"),
        (b"measure func=", 1, 9, "missing value for \"func\""),
        (b"measure func", 1, 9, "missing value for \"func\""),
        (b"measure subj_type=", 1, 9, "missing value for \"subj_type\""),
        (b"measure uid<", 1, 9, "missing value for \"uid\""),
        (b"appraise permit_directio=1", 1, 10, "\"permit_directio\" takes no value"),
        (
            b"measure func<BPRM_CHECK",
            1,
            9,
            "\"func\" takes \"=\", not \"<\" (only uid, euid, gid, egid, fowner and fgroup compare)",
        ),
        (
            b"measure pcr>3",
            1,
            9,
            "\"pcr\" takes \"=\", not \">\" (only uid, euid, gid, egid, fowner and fgroup compare)",
        ),
        (
            b"measure func=BPRM",
            1,
            9,
            "invalid func value \"BPRM\": expected BPRM_CHECK, MMAP_CHECK, MMAP_CHECK_REQPROT, CREDS_CHECK, FILE_CHECK, MODULE_CHECK, FIRMWARE_CHECK, KEXEC_KERNEL_CHECK, KEXEC_INITRAMFS_CHECK, KEXEC_CMDLINE, POLICY_CHECK, KEY_CHECK, CRITICAL_DATA or SETXATTR_CHECK",
        ),
        (
            b"measure mask=MAY_RED",
            1,
            9,
            "invalid mask value \"MAY_RED\": expected MAY_READ, MAY_WRITE, MAY_APPEND or MAY_EXEC, optionally after ^",
        ),
        (
            b"measure mask=^^MAY_READ",
            1,
            9,
            "invalid mask value \"^^MAY_READ\": expected MAY_READ, MAY_WRITE, MAY_APPEND or MAY_EXEC, optionally after ^",
        ),
        (
            b"dont_measure fsmagic=0xzz",
            1,
            14,
            "invalid fsmagic value \"0xzz\": expected a hexadecimal filesystem magic such as 0x9fa0",
        ),
        (
            b"dont_measure fsmagic=++9fa0",
            1,
            14,
            "invalid fsmagic value \"++9fa0\": expected a hexadecimal filesystem magic such as 0x9fa0",
        ),
        (
            b"dont_measure fsmagic=0x+9fa0",
            1,
            14,
            "invalid fsmagic value \"0x+9fa0\": expected a hexadecimal filesystem magic such as 0x9fa0",
        ),
        (
            b"dont_measure fsmagic=-9fa0",
            1,
            14,
            "invalid fsmagic value \"-9fa0\": expected a hexadecimal filesystem magic such as 0x9fa0",
        ),
        (
            b"dont_measure fsmagic=0x",
            1,
            14,
            "invalid fsmagic value \"0x\": expected a hexadecimal filesystem magic such as 0x9fa0",
        ),
        (
            b"dont_measure fsmagic=0x10000000000000000",
            1,
            14,
            "invalid fsmagic value \"0x10000000000000000\": expected a hexadecimal filesystem magic such as 0x9fa0",
        ),
        (
            b"measure fsuuid=8bcbe394-4f13-4144-be8e-5aa9ea2ce2f",
            1,
            9,
            "invalid fsuuid value \"8bcbe394-4f13-4144-be8e-5aa9ea2ce2f\": expected a UUID such as 8bcbe394-4f13-4144-be8e-5aa9ea2ce2f6",
        ),
        (
            b"measure fsuuid=8bcbe3944f134144be8e5aa9ea2ce2f6abcd",
            1,
            9,
            "invalid fsuuid value \"8bcbe3944f134144be8e5aa9ea2ce2f6abcd\": expected a UUID such as 8bcbe394-4f13-4144-be8e-5aa9ea2ce2f6",
        ),
        (b"measure uid=-1", 1, 9, "invalid uid value \"-1\": expected a decimal id from 0 to 4294967294"),
        (
            b"measure euid=4294967295",
            1,
            9,
            "invalid euid value \"4294967295\": expected a decimal id from 0 to 4294967294",
        ),
        (b"measure gid=++1", 1, 9, "invalid gid value \"++1\": expected a decimal id from 0 to 4294967294"),
        (b"measure gid=+", 1, 9, "invalid gid value \"+\": expected a decimal id from 0 to 4294967294"),
        (b"measure uid=0x10", 1, 9, "invalid uid value \"0x10\": expected a decimal id from 0 to 4294967294"),
        (b"appraise fowner>abc", 1, 10, "invalid fowner value \"abc\": expected a decimal id from 0 to 4294967294"),
        (b"measure pcr=24", 1, 9, "invalid pcr value \"24\": expected a decimal PCR index from 0 to 23"),
        (b"measure pcr=x", 1, 9, "invalid pcr value \"x\": expected a decimal PCR index from 0 to 23"),
        (b"measure pcr=-1", 1, 9, "invalid pcr value \"-1\": expected a decimal PCR index from 0 to 23"),
        (b"measure pcr=-+0", 1, 9, "invalid pcr value \"-+0\": expected a decimal PCR index from 0 to 23"),
        (
            b"appraise appraise_type=modsig",
            1,
            10,
            "invalid appraise_type value \"modsig\": expected imasig, imasig|modsig or sigv3",
        ),
        (
            b"appraise func=BPRM_CHECK appraise_type=sigv3",
            1,
            26,
            "\"appraise_type=sigv3\" requires \"digest_type=verity\" earlier in the rule",
        ),
        (
            b"appraise func=BPRM_CHECK appraise_type=sigv3 digest_type=verity",
            1,
            26,
            "\"appraise_type=sigv3\" requires \"digest_type=verity\" earlier in the rule",
        ),
        (
            b"appraise func=BPRM_CHECK appraise_type=imasig digest_type=verity",
            1,
            47,
            "\"digest_type=verity\" must come before \"appraise_type=\"",
        ),
        (
            b"appraise func=BPRM_CHECK digest_type=verity appraise_type=imasig",
            1,
            45,
            "\"appraise_type=imasig\" cannot be combined with \"digest_type=verity\" in one rule",
        ),
        (
            b"appraise func=BPRM_CHECK digest_type=verity",
            1,
            26,
            "\"digest_type=verity\" requires \"appraise_type=sigv3\" on appraise rules",
        ),
        (b"measure digest_type=sha256", 1, 9, "invalid digest_type value \"sha256\": expected verity"),
        (
            b"appraise appraise_flag=check_blacklist appraise_type=imasig",
            1,
            10,
            "\"appraise_flag=check_blacklist\" requires \"appraise_type=imasig|modsig\"",
        ),
        (
            b"appraise func=MODULE_CHECK appraise_flag=check_blocklist",
            1,
            28,
            "invalid appraise_flag value \"check_blocklist\": expected check_blacklist",
        ),
        (
            b"appraise func=SETXATTR_CHECK appraise_algos=sha256,md6",
            1,
            30,
            "invalid appraise_algos value \"md6\": expected comma-separated kernel hash names such as sha256,sha384,sha512",
        ),
        (
            b"appraise func=SETXATTR_CHECK appraise_algos=sha256,",
            1,
            30,
            "invalid appraise_algos value \"\": expected comma-separated kernel hash names such as sha256,sha384,sha512",
        ),
        (b"appraise func=SETXATTR_CHECK", 1, 10, "\"func=SETXATTR_CHECK\" requires \"appraise_algos=\""),
        (
            b"measure func=SETXATTR_CHECK appraise_algos=sha256",
            1,
            9,
            "func=SETXATTR_CHECK is only valid on appraise rules",
        ),
        (
            b"appraise func=SETXATTR_CHECK appraise_algos=sha256 fowner=0",
            1,
            52,
            "\"fowner\" cannot be used with func=SETXATTR_CHECK",
        ),
        (
            b"appraise func=BPRM_CHECK template=ima-ng",
            1,
            26,
            "\"template\" is only valid on measure rules",
        ),
        (b"dont_measure pcr=10", 1, 14, "\"pcr\" is only valid on measure rules"),
        (b"measure appraise_type=imasig", 1, 9, "\"appraise_type\" is only valid on appraise rules"),
        (b"dont_appraise appraise_algos=sha256", 1, 15, "\"appraise_algos\" is only valid on appraise rules"),
        (
            b"measure func=BPRM_CHECK template=ima-foo",
            1,
            25,
            "invalid template value \"ima-foo\": expected a built-in template: ima, ima-ng, ima-sig, ima-ngv2, ima-sigv2, ima-buf, ima-modsig or evm-sig",
        ),
        (b"measure keyrings=.ima", 1, 9, "\"keyrings\" is only valid with func=KEY_CHECK"),
        (
            b"measure func=FILE_CHECK label=selinux",
            1,
            25,
            "\"label\" is only valid with func=CRITICAL_DATA",
        ),
        (
            b"measure func=KEY_CHECK keyrings=.ima||.evm",
            1,
            24,
            "invalid keyrings value \".ima||.evm\": expected names separated by |, none empty",
        ),
        (
            b"appraise func=KEY_CHECK",
            1,
            10,
            "func=KEY_CHECK is only valid on measure and dont_measure rules",
        ),
        (
            b"audit func=CRITICAL_DATA label=selinux",
            1,
            7,
            "func=CRITICAL_DATA is only valid on measure and dont_measure rules",
        ),
        (b"measure func=KEY_CHECK obj_type=foo_t", 1, 24, "\"obj_type\" cannot be used with func=KEY_CHECK"),
        (b"measure func=KEY_CHECK euid=0", 1, 24, "\"euid\" cannot be used with func=KEY_CHECK"),
        (b"measure mask=MAY_READ func=CRITICAL_DATA", 1, 9, "\"mask\" cannot be used with func=CRITICAL_DATA"),
        (b"measure func=KEXEC_CMDLINE mask=MAY_READ", 1, 28, "\"mask\" cannot be used with func=KEXEC_CMDLINE"),
        (
            b"measure func=MODULE_CHECK digest_type=verity",
            1,
            27,
            "\"digest_type\" cannot be used with func=MODULE_CHECK",
        ),
        (
            b"appraise func=BPRM_CHECK appraise_type=imasig|modsig",
            1,
            26,
            "\"appraise_type=imasig|modsig\" requires func=MODULE_CHECK, KEXEC_KERNEL_CHECK or KEXEC_INITRAMFS_CHECK (appended signatures exist only there)",
        ),
        (b"measure func=BPRM_CHECK func=FILE_CHECK", 1, 25, "\"func\" given twice in one rule"),
        (b"measure obj_user=a obj_user=b", 1, 20, "\"obj_user\" given twice in one rule"),
        (b"measure fowner>0 fowner<5", 1, 18, "\"fowner\" given twice in one rule"),
        (b"measure template=ima template=ima-ng", 1, 22, "\"template\" given twice in one rule"),
        (
            b"appraise func=SETXATTR_CHECK appraise_algos=sha256 appraise_algos=sha512",
            1,
            52,
            "\"appraise_algos\" given twice in one rule",
        ),
        (b"dont_measure fsmagic=1 fsmagic=0", 1, 24, "\"fsmagic\" given twice in one rule"),
        (b"dont_measure fsmagic=0 fsmagic=1 fsmagic=2", 1, 34, "\"fsmagic\" given twice in one rule"),
        (
            b"measure fsuuid=8bcbe394-4f13-4144-be8e-5aa9ea2ce2f6 fsuuid=00000000-0000-0000-0000-000000000000",
            1,
            53,
            "\"fsuuid\" given twice in one rule",
        ),
        (
            b"appraise func=BPRM_CHECK digest_type=verity appraise_type=sigv3 digest_type=verity",
            1,
            65,
            "\"digest_type=verity\" must come before \"appraise_type=\"",
        ),
        (b"measure uid=0 euid=0", 1, 15, "\"euid\" cannot be combined with \"uid\" in one rule"),
        (b"measure egid=1 gid<1", 1, 16, "\"gid\" cannot be combined with \"egid\" in one rule"),
    ];
    for &(input, line, column, reason) in cases {
        let e = parse(input).expect_err(&String::from_utf8_lossy(input));
        assert_eq!(
            e.to_string(),
            format!("line {line}, column {column}: {reason}"),
            "input {:?}",
            String::from_utf8_lossy(input)
        );
        assert_eq!((e.line, e.column), (line, column));
    }
}

#[test]
fn line_length_limit() {
    let at_limit = format!("measure fsname={}", "a".repeat(MAX_LINE_LEN - 15));
    assert_eq!(at_limit.len(), MAX_LINE_LEN);
    let p = parse(at_limit.as_bytes()).unwrap();
    // The write unit stays below the kernel's PAGE_SIZE - 1 cut.
    assert!(p.write_units().all(|u| u.len() < 4095));
    // Comments count too: the file is hostile input.
    let long_comment = format!("#{}\nmeasure func=BPRM_CHECK", "x".repeat(MAX_LINE_LEN));
    assert!(matches!(
        parse(long_comment.as_bytes()).unwrap_err().reason,
        PolicyErrorKind::LineTooLong(4094)
    ));
}

#[test]
fn requires_signatures() {
    let yes = [
        "appraise func=BPRM_CHECK appraise_type=imasig",
        "appraise func=MODULE_CHECK appraise_type=imasig|modsig",
        "appraise func=BPRM_CHECK digest_type=verity appraise_type=sigv3",
        "dont_appraise fsmagic=0x9fa0\nappraise func=POLICY_CHECK appraise_type=imasig\nappraise fowner=0",
    ];
    let no = [
        "appraise fowner=0",
        "appraise func=MODULE_CHECK",
        "appraise func=KEXEC_KERNEL_CHECK\nappraise func=POLICY_CHECK",
        "measure func=BPRM_CHECK\ndont_appraise fsmagic=0x9fa0",
        "measure func=BPRM_CHECK digest_type=verity template=ima-sigv2",
    ];
    for case in yes {
        assert!(
            parse(case.as_bytes()).unwrap().requires_signatures(),
            "{case}"
        );
    }
    for case in no {
        assert!(
            !parse(case.as_bytes()).unwrap().requires_signatures(),
            "{case}"
        );
    }
}

#[test]
fn error_is_std_error() {
    let e: Box<dyn std::error::Error> = Box::new(parse(b"bogus").unwrap_err());
    assert!(
        e.to_string()
            .starts_with("line 1, column 1: unknown action \"bogus\"")
    );
}

#[test]
fn by_path_the_kernel_refuses_trailing_comments_and_a_last_line_without_newline() {
    type Where = Option<(usize, usize, PolicyErrorKind)>;
    let cases: &[(&[u8], Where)] = &[
        (b"measure func=BPRM_CHECK\n", None),
        (b"# c\n  # d\nmeasure\n\n", None),
        (
            b"measure func=BPRM_CHECK # measured\n",
            Some((1, 25, PolicyErrorKind::CommentAfterRule)),
        ),
        (
            b"measure func=BPRM_CHECK",
            Some((1, 24, PolicyErrorKind::NoFinalNewline)),
        ),
        // Any remainder counts, a comment or blanks too.
        (
            b"measure\n# the end",
            Some((2, 10, PolicyErrorKind::NoFinalNewline)),
        ),
        (
            b"measure\n  ",
            Some((2, 3, PolicyErrorKind::NoFinalNewline)),
        ),
        // The first problem by line.
        (
            b"measure\nmeasure #\nmeasure",
            Some((2, 9, PolicyErrorKind::CommentAfterRule)),
        ),
    ];
    for (input, expected) in cases {
        let p = parse(input).unwrap();
        let got = p
            .check_by_path()
            .err()
            .map(|e| (e.line, e.column, e.reason));
        assert_eq!(&got, expected, "{:?}", String::from_utf8_lossy(input));
        // Rule by rule these are fine: the comment is dropped, the newline added.
        assert!(
            p.write_units()
                .all(|u| u.ends_with(b"\n") && !u.contains(&b'#'))
        );
    }
    let e = parse(b"measure # x\n")
        .unwrap()
        .check_by_path()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 1, column 9: comment after a rule: the kernel reading the policy by path refuses it (6.1); put the comment on its own line"
    );
}

/// Rules of a file and how 6.1's ima_policy_show() prints them back
/// (read from its source: action, then each option in its fixed order, each
/// followed by a space).
const SHOWN: &[(&str, &str)] = &[
    ("dont_measure fsmagic=9FA0", "dont_measure fsmagic=0x9fa0 "),
    (
        "dont_measure fsmagic=+0X01021994",
        "dont_measure fsmagic=0x1021994 ",
    ),
    (
        "func=BPRM_CHECK mask=MAY_EXEC measure",
        "measure func=BPRM_CHECK mask=MAY_EXEC ",
    ),
    (
        "measure func=PATH_CHECK mask=^MAY_READ uid=+0",
        "measure func=FILE_CHECK mask=^MAY_READ uid=0 ",
    ),
    (
        "measure func=FILE_MMAP euid>999",
        "measure func=MMAP_CHECK euid>999 ",
    ),
    (
        "measure func=FILE_CHECK uid=4294967294",
        "measure func=FILE_CHECK uid=-2 ",
    ),
    (
        "dont_appraise fsuuid=8BCBE394-4F13-4144-BE8E-5AA9EA2CE2F6",
        "dont_appraise fsuuid=8bcbe394-4f13-4144-be8e-5aa9ea2ce2f6 ",
    ),
    (
        "measure\tfsname=tmpfs fsname=ext4 pcr=+11 template=d-ng|n-ng|sig",
        "measure fsname=ext4 pcr=11 template=ima-sig ",
    ),
    (
        "appraise func=SETXATTR_CHECK appraise_algos=sha512,sha256,sha256",
        "appraise func=SETXATTR_CHECK appraise_algos=sha256,sha512 ",
    ),
    (
        "appraise func=BPRM_CHECK digest_type=verity appraise_type=sigv3",
        "appraise func=BPRM_CHECK appraise_type=sigv3 digest_type=verity ",
    ),
    (
        "appraise func=MODULE_CHECK appraise_type=imasig appraise_type=imasig|modsig appraise_flag=blacklist",
        "appraise func=MODULE_CHECK appraise_type=imasig|modsig appraise_flag=check_blacklist ",
    ),
    (
        "measure func=KEY_CHECK keyrings=.ima|.evm",
        "measure func=KEY_CHECK keyrings=.ima|.evm ",
    ),
    (
        "appraise fowner=0 permit_directio appraise_type=imasig",
        "appraise fowner=0 appraise_type=imasig permit_directio ",
    ),
    (
        "measure subj_type=init_t func=FILE_CHECK",
        "measure func=FILE_CHECK subj_type=init_t ",
    ),
];

#[test]
fn rules_are_recognised_in_the_kernels_normal_form() {
    for &(ours, kernel) in SHOWN {
        let p = parse(ours.as_bytes()).unwrap_or_else(|e| panic!("{ours}: {e}"));
        assert!(p.is_shown_in(format!("{kernel}\n").as_bytes()), "{ours}");
    }
    // The record of a load is the same for the same rules however spelt.
    assert_eq!(
        parse(b"func=PATH_CHECK measure uid=+0\n")
            .unwrap()
            .normal_form(),
        parse(b"measure uid=0 func=FILE_CHECK # x")
            .unwrap()
            .normal_form()
    );
    let differ = [
        (
            "measure func=BPRM_CHECK",
            "measure func=BPRM_CHECK mask=MAY_EXEC ",
        ),
        ("measure uid=0", "measure euid=0 "),
        ("measure uid<5", "measure uid>5 "),
        ("appraise appraise_type=imasig", "appraise "),
        ("measure fsmagic=0x9fa0", "dont_measure fsmagic=0x9fa0 "),
        ("measure pcr=10", "measure pcr=11 "),
        ("measure fsname=a fsname=b", "measure fsname=a "),
        (
            "measure func=FILE_CHECK",
            "measure func=FILE_CHECK fs_subtype=x ",
        ),
    ];
    for (ours, kernel) in differ {
        let p = parse(ours.as_bytes()).unwrap();
        assert!(!p.is_shown_in(kernel.as_bytes()), "{ours} vs {kernel}");
    }
}

#[test]
fn the_policy_must_stand_as_one_block() {
    let p = parse(b"measure func=BPRM_CHECK\nappraise fowner=0\n").unwrap();
    let a = "measure func=BPRM_CHECK \n";
    let b = "appraise fowner=0 \n";
    let x = "appraise func=KEXEC_KERNEL_CHECK appraise_type=imasig|modsig \n";
    let yes = [
        format!("{a}{b}"),
        format!("{x}{a}{b}"),
        format!("{a}{b}{x}"),
        format!("{x}\n{a}{b}"),
    ];
    let no = [
        String::new(),
        a.to_owned(),
        format!("{a}{x}{b}"),
        format!("{b}{a}"),
        format!("{x}{b}"),
    ];
    for k in yes {
        assert!(p.is_shown_in(k.as_bytes()), "{k:?}");
    }
    for k in no {
        assert!(!p.is_shown_in(k.as_bytes()), "{k:?}");
    }
    // A line we cannot read matches nothing, and does not stop the search.
    let mut bytes = b"measure obj_type=\xff \n".to_vec();
    bytes.extend_from_slice(format!("{a}{b}").as_bytes());
    assert!(p.is_shown_in(&bytes));

    // The kernel does not print a rule whose LSM label is inactive.
    let lsm =
        parse(b"measure func=BPRM_CHECK\ndont_measure obj_type=var_log_t\nappraise fowner=0\n")
            .unwrap();
    assert!(lsm.is_shown_in(format!("{a}{b}").as_bytes()));
    assert!(lsm.is_shown_in(format!("{a}dont_measure obj_type=var_log_t \n{b}").as_bytes()));
    // But some rule must be seen.
    let only_lsm = parse(b"dont_measure obj_type=var_log_t\n").unwrap();
    assert!(!only_lsm.is_shown_in(x.as_bytes()));
}
