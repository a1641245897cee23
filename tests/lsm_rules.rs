//! A policy with LSM-label rules: what the initramfs writes, what it leaves
//! for `load --lsm-rules` after the LSM's policy load, and the attestation
//! warnings, on a stand-in securityfs.
mod common;
use common::{Fixture, dracut_setup};

/// The usual SELinux-style measure policy: line 3 has a label, line 4
/// could measure what line 3 excludes, lines 1, 2 and 5 go first.
const POLICY: &str = "\
dont_measure fsmagic=0x9fa0
appraise func=BPRM_CHECK
dont_measure obj_type=var_log_t
measure func=FILE_CHECK uid=0
measure func=KEY_CHECK keyrings=_ima|_evm
";

fn setup(f: &Fixture, mode: &str) {
    dracut_setup(f);
    f.write("/etc/sysconfig/ima-policy", POLICY);
    f.write(
        "/etc/integrity-loader.conf",
        format!("IMA_LSM_RULES={mode}\n"),
    );
}

#[test]
fn split_writes_what_needs_no_lsm_then_the_rest_in_order() {
    let f = Fixture::new("lsm-split");
    setup(&f, "split");
    let r = f.run(&["check"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("would write IMA policy ");
    r.assert_contains("as 3 rules; IMA_LSM_RULES=split: the 2 rule(s) with LSM labels and those kept after them wait for the LSM's policy load (integrity-loader-lsm.service appends them): 1 rule(s) with LSM labels (line 3) and 1 rule(s) after them that could match the same events (line 4)");
    assert_eq!(f.sfs_text("ima/policy"), "");

    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    assert_eq!(
        f.sfs_text("ima/policy"),
        "dont_measure fsmagic=0x9fa0\nappraise func=BPRM_CHECK\nmeasure func=KEY_CHECK keyrings=_ima|_evm\n"
    );
    let r = f.run(&["status"]);
    r.assert_contains("ima policy: 2 rule(s) wait for the LSM's policy load");
    // A second load in the initramfs writes nothing.
    let r = f.run(&["load"]);
    r.assert_contains("ima-policy: already done");

    std::fs::write(f.dir.join("sfs/ima/policy"), b"").unwrap();
    let r = f.run(&["load", "--lsm-rules"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("wrote 2 rule(s) of IMA policy");
    assert_eq!(
        f.sfs_text("ima/policy"),
        "dont_measure obj_type=var_log_t\nmeasure func=FILE_CHECK uid=0\n"
    );
    // Done once: the next run finds nothing waiting.
    let r = f.run(&["load", "--lsm-rules"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("not configured: no IMA policy rules wait");
    assert!(!f.run(&["status"]).output().contains("wait for the LSM"));
}

#[test]
fn later_leaves_the_whole_policy_for_after_the_lsm() {
    // auto, with no kernel configuration file on the root: one policy per
    // boot is assumed, so nothing is written in the initramfs.
    for mode in ["later", "auto"] {
        let f = Fixture::new("lsm-later");
        setup(&f, mode);
        let r = f.run(&["load"]);
        assert_eq!(r.code, 0, "{}", r.output());
        r.assert_contains("ima-policy: done: left the whole IMA policy ");
        r.assert_contains("/etc/sysconfig/ima-policy for after the LSM's policy load (integrity-loader-lsm.service writes it as 5 rules): it has 1 rule(s) with LSM labels (line 3)");
        assert_eq!(f.sfs_text("ima/policy"), "", "{mode}");
        let r = f.run(&["load", "--lsm-rules"]);
        assert_eq!(r.code, 0, "{}", r.output());
        r.assert_contains("(the whole policy)");
        let written = f.sfs_text("ima/policy");
        assert_eq!(written, POLICY, "{mode}");
    }
}

#[test]
fn auto_splits_when_the_kernels_config_appends() {
    let f = Fixture::new("lsm-auto");
    setup(&f, "auto");
    let release = nix::sys::utsname::uname().unwrap();
    let release = release.release().to_str().unwrap();
    f.write(
        &format!("/boot/config-{release}"),
        "CONFIG_IMA=y\nCONFIG_IMA_WRITE_POLICY=y\n",
    );
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("has CONFIG_IMA_WRITE_POLICY=y");
    assert!(
        f.sfs_text("ima/policy")
            .starts_with("dont_measure fsmagic=0x9fa0\n")
    );
    let f = Fixture::new("lsm-auto-no");
    setup(&f, "auto");
    f.write(&format!("/boot/config-{release}"), "CONFIG_IMA=y\n");
    let r = f.run(&["check"]);
    r.assert_contains("has no CONFIG_IMA_WRITE_POLICY");
    r.assert_contains("would leave the whole IMA policy");
}

#[test]
fn a_split_on_a_kernel_that_takes_one_policy_fails_clearly() {
    let f = Fixture::new("lsm-no-append");
    setup(&f, "split");
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    // The kernel removes its policy file after the first load.
    std::fs::remove_file(f.dir.join("sfs/ima/policy")).unwrap();
    let r = f.run(&["load", "--lsm-rules"]);
    assert_eq!(r.code, 1, "{}", r.output());
    r.assert_contains("the kernel takes no second policy load");
    r.assert_contains("set IMA_LSM_RULES=later and reboot");
}

#[test]
fn the_waiting_rules_must_still_be_the_policys() {
    let f = Fixture::new("lsm-changed");
    setup(&f, "split");
    assert_eq!(f.run(&["load"]).code, 0);
    f.write(
        "/etc/sysconfig/ima-policy",
        POLICY.replace("var_log_t", "etc_t"),
    );
    std::fs::write(f.dir.join("sfs/ima/policy"), b"").unwrap();
    let r = f.run(&["load", "--lsm-rules"]);
    assert_eq!(r.code, 1, "{}", r.output());
    r.assert_contains("no longer gives the rules the initramfs left");
    assert_eq!(f.sfs_text("ima/policy"), "");
}

#[test]
fn initramfs_mode_and_label_free_policies_write_everything_at_once() {
    let f = Fixture::new("lsm-initramfs");
    setup(&f, "initramfs");
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    assert_eq!(f.sfs_text("ima/policy"), POLICY);
    assert!(!f.dir.join("run/ima-policy-later").exists());
}

#[test]
fn a_skipped_policy_leaves_nothing_for_later() {
    // The plan's skip rules decide for the whole policy: an appraise policy
    // whose evm-key failed is skipped, and nothing waits for the unit.
    let f = Fixture::new("lsm-skipped");
    setup(&f, "split");
    f.write("/etc/keys/evm-user.blob", "not a blob");
    let r = f.run(&["load"]);
    assert_eq!(r.code, 1, "{}", r.output());
    r.assert_contains("ima-policy: skipped");
    assert!(!f.dir.join("run/ima-policy-later").exists());
    let r = f.run(&["load", "--lsm-rules"]);
    assert_eq!(r.code, 0, "{}", r.output());
    assert_eq!(f.sfs_text("ima/policy"), "");
}

#[test]
fn check_warns_what_a_verifier_misses() {
    let f = Fixture::new("attest");
    dracut_setup(&f);
    f.write(
        "/etc/sysconfig/ima-policy",
        "measure func=BPRM_CHECK\nappraise func=BPRM_CHECK\n",
    );
    let r = f.run(&["check"]);
    r.assert_contains("no `measure func=KEY_CHECK` rule covers .ima or .evm");
    r.assert_contains("the policy measures but is written rule by rule");
    f.write(
        "/etc/sysconfig/ima-policy",
        "measure func=BPRM_CHECK\nmeasure func=KEY_CHECK\n",
    );
    f.write("/etc/integrity-loader.conf", "IMA_POLICY_WRITE=path\n");
    let r = f.run(&["check"]);
    assert!(
        !r.output().contains("KEY_CHECK` rule covers"),
        "{}",
        r.output()
    );
    assert!(
        !r.output().contains("written rule by rule"),
        "{}",
        r.output()
    );
}

#[test]
fn the_boot_keeps_policy_advice_out_of_the_console() {
    // Advice on the policy is `check`'s to give; the boot repeats it only
    // with -v, since every line costs boot time on a serial console.
    let f = Fixture::new("attest-boot");
    dracut_setup(&f);
    f.write(
        "/etc/sysconfig/ima-policy",
        "measure func=BPRM_CHECK\nappraise func=BPRM_CHECK\n",
    );
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("ima-policy: done: wrote IMA policy");
    for advice in ["KEY_CHECK` rule covers", "written rule by rule"] {
        assert!(!r.output().contains(advice), "{}", r.output());
    }
    let f = Fixture::new("attest-boot-v");
    dracut_setup(&f);
    f.write(
        "/etc/sysconfig/ima-policy",
        "measure func=BPRM_CHECK\nappraise func=BPRM_CHECK\n",
    );
    let r = f.run(&["-v", "load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("no `measure func=KEY_CHECK` rule covers .ima or .evm");
}
