//! `load` end to end on the host: the built binary, real kernel keyrings in a
//! private session keyring, a fake securityfs.

mod common;
#[path = "common/kmsg.rs"]
mod kmsg;
use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;

#[test]
fn dracut_setup_loads_everything() {
    let f = Fixture::new("happy");
    dracut_setup(&f);
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());

    // The kmk is the file's exact 32 bytes, newline and NUL included.
    let kmk = f.find("user", "kmk-user").expect("kmk-user loaded");
    assert_eq!(
        integrity_loader::keyring::read_secret(kmk)
            .unwrap()
            .expose(),
        BINARY_KMK
    );
    // The evm-key was loaded, used, then unlinked as dracut does.
    assert_eq!(f.find("encrypted", "evm-key"), None);
    r.assert_contains("loaded evm-key (32 bytes, sealed by user:kmk-user)");
    r.assert_contains("unlinked evm-key");
    assert_eq!(f.certs_in("_evm").len(), 1);
    assert_eq!(f.certs_in("_ima").len(), 2);
    assert_eq!(f.sfs_text("evm"), "3\n");
    assert_eq!(f.sfs_text("ima/policy"), POLICY_RULES);
    r.assert_contains("kmk: done");
    r.assert_contains("finished in");
}

/// The kernel log's records of one `load` with the kmsg sink, as (level,
/// text).
fn load_into_kmsg(f: &Fixture) -> (i32, Vec<(u8, String)>) {
    let mut log = kmsg::Kmsg::from_now();
    let child = f
        .command(&["load"])
        .env("INTEGRITY_LOADER_LOG", "kmsg")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("run integrity-loader");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let records = kmsg::own_records(&log.records(), pid);
    (out.status.code().unwrap_or(-1), records)
}

/// Records the console prints at its default level (7: priorities 0-6).
fn on_console(records: &[(u8, String)]) -> Vec<&str> {
    records
        .iter()
        .filter(|(level, _)| *level < 7)
        .map(|(_, text)| text.as_str())
        .collect()
}

#[test]
fn a_good_boot_puts_one_line_on_the_console_and_the_details_in_the_log() {
    let f = Fixture::new("console-quiet");
    dracut_setup(&f);
    let (code, records) = load_into_kmsg(&f);
    assert_eq!(code, 0, "{records:?}");
    // printk waits for the console: on a serial one every character of
    // detail would cost boot time. One summary line, naming the steps.
    let console = on_console(&records);
    assert_eq!(console.len(), 1, "{console:#?}");
    assert!(
        console[0].starts_with("finished in ")
            && console[0].ends_with(
                "every configured step succeeded (done: kmk, evm-key, evm-certs, ima-certs, ima-policy, evm, drop-keys)"
            ),
        "{console:?}"
    );
    // dmesg and the journal keep each step's result, at debug priority.
    for detail in [
        "kmk: done: loaded user key kmk-user",
        "loaded EVM certificate",
        "ima-policy: done: wrote IMA policy",
        "drop-keys: done",
    ] {
        assert!(
            records
                .iter()
                .any(|(level, text)| *level == 7 && text.contains(detail)),
            "no debug record with {detail:?}: {records:#?}"
        );
    }
}

#[test]
fn a_failed_step_reaches_the_console() {
    let f = Fixture::new("console-failed");
    dracut_setup(&f);
    f.write("/etc/sysconfig/ima-policy", "measure func=NOPE\n");
    let (code, records) = load_into_kmsg(&f);
    assert_eq!(code, 1, "{records:?}");
    let console = on_console(&records);
    assert!(
        console
            .iter()
            .any(|l| l.starts_with("ima-policy: FAILED: ") && l.contains("invalid func value")),
        "{console:#?}"
    );
    // What went well stays detail even in a failed run.
    assert!(
        !console.iter().any(|l| l.starts_with("kmk: done")),
        "{console:#?}"
    );
}

/// The kernel waits for an RCU grace period before it takes a policy in;
/// the loader expedites it through the `rcu_expedited` knob beside
/// securityfs's mount point, and leaves the knob as it found it.
#[test]
fn the_policy_close_expedites_rcu_and_puts_the_knob_back() {
    let f = Fixture::new("rcu");
    dracut_setup(&f);
    let knob = f.dir.join("rcu_expedited");
    fs::write(&knob, "0\n").unwrap();
    let r = f.run(&["load", "-v"]);
    assert_eq!(r.code, 0, "{}", r.output());
    assert_eq!(f.sfs_text("ima/policy"), POLICY_RULES);
    r.assert_contains("(its RCU grace period expedited through rcu_expedited)");
    assert_eq!(fs::read_to_string(&knob).unwrap(), "0\n");

    // An admin's rcupdate.rcu_expedited=1 stays.
    let g = Fixture::new("rcu-admin");
    dracut_setup(&g);
    fs::write(g.dir.join("rcu_expedited"), "1\n").unwrap();
    let r = g.run(&["load", "-v"]);
    assert_eq!(r.code, 0, "{}", r.output());
    assert!(
        !r.output().contains("grace period expedited"),
        "{}",
        r.output()
    );
    assert_eq!(
        fs::read_to_string(g.dir.join("rcu_expedited")).unwrap(),
        "1\n"
    );
}

#[test]
fn second_run_changes_nothing() {
    let f = Fixture::new("twice");
    dracut_setup(&f);
    assert_eq!(f.run(&["load"]).code, 0);
    let before = f.snapshot();
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    assert_eq!(f.snapshot(), before);
    r.assert_contains("kmk: already done");
    r.assert_contains("evm-key: already done: EVM HMAC is already enabled");
    r.assert_contains("already on _ima");
    r.assert_contains("ima-policy: already done");
    r.assert_contains("evm: already done: EVM is already enabled (hmac+x509, value 3)");
}

#[test]
fn load_after_failed_run_completes() {
    let f = Fixture::new("after-fail");
    dracut_setup(&f);
    // First run: the policy is broken, everything else loads.
    f.write("/etc/sysconfig/ima-policy", "measure func=NOPE\n");
    assert_eq!(f.run(&["load"]).code, 1);
    assert_eq!(f.sfs_text("ima/policy"), "");
    f.write("/etc/sysconfig/ima-policy", POLICY);
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    assert_eq!(f.sfs_text("ima/policy"), POLICY_RULES);
    assert_eq!(f.sfs_text("evm"), "3\n");
}

#[test]
fn native_config_names_kmk_and_drops_it() {
    let f = Fixture::new("native");
    f.write(
        "/etc/integrity-loader.conf",
        "MASTERKEYTYPE=user\nMASTERKEY=/etc/keys/kmk\nDROP_KMK=yes\n",
    );
    f.write("/etc/keys/kmk", b"0123456789abcdef0123456789abcdef");
    f.write("/etc/sysconfig/evm", "EVMKEY=/etc/keys/evm.blob\n");
    f.write(
        "/etc/keys/evm.blob",
        make_evm_blob(b"0123456789abcdef0123456789abcdef", "kmk"),
    );
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("loaded user key kmk (32 bytes)");
    assert_eq!(f.find("user", "kmk"), None, "DROP_KMK=yes unlinks the kmk");
    assert_eq!(f.sfs_text("evm"), "1\n");
}

#[test]
fn evm_key_sealed_by_another_kmk_never_enables_hmac() {
    let f = Fixture::new("wrong-kmk");
    dracut_setup(&f);
    // Same name, other bytes: the kernel cannot decrypt it.
    f.write(
        "/etc/keys/evm-user.blob",
        make_evm_blob(&[7u8; 32], "kmk-user"),
    );
    let r = f.run(&["load"]);
    assert_eq!(r.code, 1);
    r.assert_contains("could not decrypt it with user:kmk-user (EINVAL)");
    r.assert_contains("evm: skipped: step evm-key failed");
    assert_eq!(f.sfs_text("evm"), "", "EVM must not be enabled");
    assert_eq!(f.find("encrypted", "evm-key"), None);
    // Independent steps still ran (FAILURE_ACTION=continue); the appraise
    // policy did not, since EVM stays off.
    assert_eq!(f.certs_in("_ima").len(), 2);
    assert_eq!(f.sfs_text("ima/policy"), "");
    r.assert_contains("has appraise rules but step evm-key failed");
}

#[test]
fn evm_key_naming_an_absent_master_says_so() {
    let f = Fixture::new("absent-master");
    dracut_setup(&f);
    f.write(
        "/etc/keys/evm-user.blob",
        make_evm_blob(&BINARY_KMK, "kmk-other"),
    );
    // KMK_NAME set: the blob's header does not rename the kmk, and the
    // error names the line to change.
    f.write("/etc/integrity-loader.conf", "KMK_NAME=kmk-user\n");
    let r = f.run(&["load"]);
    assert_eq!(r.code, 1);
    r.assert_contains("is sealed by user:kmk-other, which is not loaded in keyring @s; the configured master key is user:kmk-user: change KMK_NAME (");
    r.assert_contains(
        "integrity-loader.conf:1) to kmk-other, or re-export the evm-key sealed by user:kmk-user",
    );
    assert_eq!(f.sfs_text("evm"), "");
}

#[test]
fn kmk_is_named_as_the_evm_key_blob_says() {
    // No KMK_NAME: the kmk takes the name the evm-key blob gives its master
    // key (dracut would load kmk-user, and the evm-key would find nothing).
    let f = Fixture::new("blob-names-kmk");
    dracut_setup(&f);
    f.write(
        "/etc/keys/evm-user.blob",
        make_evm_blob(&BINARY_KMK, "kmk-other"),
    );
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    assert!(f.find("user", "kmk-other").is_some());
    assert_eq!(f.find("user", "kmk-user"), None);
    r.assert_contains("loaded evm-key (32 bytes, sealed by user:kmk-other)");
    assert_eq!(f.sfs_text("evm"), "3\n");
}

#[test]
fn signature_policy_without_ima_keys_is_not_written() {
    let f = Fixture::new("brick");
    dracut_setup(&f);
    std::fs::remove_dir_all(f.root().join("etc/keys/ima")).unwrap();
    let r = f.run(&["load"]);
    assert_eq!(r.code, 1);
    r.assert_contains("has appraise rules that need signatures, but no IMA key is loaded");
    assert_eq!(f.sfs_text("ima/policy"), "");
}

#[test]
fn signature_policy_after_ima_cert_failure_is_skipped() {
    let f = Fixture::new("brick2");
    dracut_setup(&f);
    f.copy_cert("ca.pem", "/etc/keys/ima/zz-ca.pem");
    let r = f.run(&["load"]);
    assert_eq!(r.code, 1);
    r.assert_contains("zz-ca.pem");
    r.assert_contains("ima-policy: skipped");
    assert_eq!(f.sfs_text("ima/policy"), "");
    // The good certificates still loaded.
    assert_eq!(f.certs_in("_ima").len(), 2);
}

#[test]
fn bad_policy_line_names_file_line_and_column() {
    let f = Fixture::new("bad-policy");
    dracut_setup(&f);
    f.write(
        "/etc/sysconfig/ima-policy",
        "# 1\n# 2\nmeasure func=BPRM_CHECK\n\n# 5\nmeasure func=FILE_CHECK\nmeasure fnc=FILE_CHECK\n",
    );
    let r = f.run(&["load"]);
    assert_eq!(r.code, 1);
    r.assert_contains("/etc/sysconfig/ima-policy:7:9:");
    r.assert_contains("no rule was written");
    assert_eq!(f.sfs_text("ima/policy"), "");
}

#[test]
fn halt_stops_at_first_failure_and_cleans_up() {
    let f = Fixture::new("halt");
    dracut_setup(&f);
    f.write("/etc/integrity-loader.conf", "FAILURE_ACTION=halt\n");
    f.write("/etc/keys/x509_evm.der", b"not a certificate");
    let r = f.run(&["load"]);
    assert_eq!(r.code, 1);
    r.assert_contains("evm-certs: FAILED");
    // The one stdout line the dracut hook reads to choose die over warn.
    assert!(
        r.stdout
            .starts_with("integrity-loader: FAILURE_ACTION=halt: evm-certs: "),
        "{}",
        r.stdout
    );
    r.assert_contains("ima-certs: skipped: an earlier step failed and FAILURE_ACTION=halt");
    r.assert_contains("unlinked evm-key");
    assert_eq!(
        f.find("encrypted", "evm-key"),
        None,
        "no half-configured evm-key left"
    );
    assert_eq!(f.sfs_text("evm"), "");
    assert_eq!(f.sfs_text("ima/policy"), "");
}

#[test]
fn check_changes_nothing_and_reports_the_plan() {
    let f = Fixture::new("check");
    dracut_setup(&f);
    let before = f.snapshot();
    let r = f.run(&["check"]);
    assert_eq!(r.code, 0, "{}", r.output());
    assert_eq!(f.snapshot(), before);
    r.assert_contains("would load user key kmk-user (32 bytes)");
    r.assert_contains("would write 3 (hmac+x509)");
    r.assert_contains("skipped if kmk failed");
    r.assert_contains("check passed");
}

#[test]
fn check_catches_blob_sealed_by_other_master() {
    let f = Fixture::new("check-master");
    dracut_setup(&f);
    f.write("/etc/keys/evm-user.blob", make_evm_blob(&BINARY_KMK, "kmk"));
    let r = f.run(&["check"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("the header of the evm-key blob /etc/keys/evm-user.blob");
    // Another type than the configured one: MASTERKEYTYPE is the fix.
    f.write(
        "/etc/keys/evm-user.blob",
        make_evm_blob(&BINARY_KMK, "kmk").replace("user:kmk", "trusted:kmk"),
    );
    let r = f.run(&["check"]);
    assert_eq!(r.code, 1);
    r.assert_contains("is sealed by trusted:kmk, but the configured master key is user:kmk-user; set MASTERKEYTYPE=trusted and MASTERKEY to the blob of that key (MASTERKEYTYPE is user, ");
    r.assert_contains(
        "/etc/sysconfig/masterkey:1), or re-export the evm-key sealed by the configured kmk",
    );
}

#[test]
fn status_shows_keys_evm_and_policy() {
    let f = Fixture::new("status");
    dracut_setup(&f);
    assert_eq!(f.run(&["load"]).code, 0);
    let r = f.run(&["status"]);
    assert_eq!(r.code, 0);
    r.assert_contains("user kmk-user");
    r.assert_contains("_ima (id");
    r.assert_contains("evm: 3 (hmac+x509)");
    r.assert_contains("ima policy: 4 rule(s)");
}

#[test]
fn required_step_without_input_fails() {
    let f = Fixture::new("required");
    f.write("/etc/integrity-loader.conf", "REQUIRE=kmk\n");
    let r = f.run(&["load"]);
    assert_eq!(r.code, 1);
    r.assert_contains("kmk: FAILED: no master key file");
    r.assert_contains("and REQUIRE lists kmk");
    // Without REQUIRE an empty root is simply not configured.
    let g = Fixture::new("empty");
    let r = g.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("kmk: not configured");
}

#[test]
fn kernel_command_line_overrides_sysconfig() {
    let f = Fixture::new("cmdline");
    dracut_setup(&f);
    f.write("/etc/keys/other-kmk", BINARY_KMK);
    f.set_cmdline("ro masterkey=/etc/keys/nothing masterkey=/etc/keys/other-kmk rd.debug\n");
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("/etc/keys/other-kmk into @s");
}

#[test]
fn trusted_kmk_on_a_kernel_without_trusted_keys_says_so() {
    let f = Fixture::new("trusted");
    f.write("/etc/keys/kmk-trusted.blob", "0011aabb\n");
    let r = f.run(&["load"]);
    assert_eq!(r.code, 1);
    // The host kernel may or may not have trusted keys; either way the
    // message explains (no trusted keys, or the TPM refused the blob).
    assert!(
        r.output().contains("this kernel has no trusted keys")
            || r.output().contains("the kernel could not unseal the blob"),
        "{}",
        r.output()
    );
    assert!(f.keys().is_empty());
}

#[test]
fn trusted_kmk_loaded_with_pcrlock_earlier_this_boot_is_not_loaded_again() {
    let f = Fixture::new("trusted-again");
    f.write("/etc/keys/kmk-trusted.blob", "0011aabb\n");
    // A failed load leaves no record: the next run tries again.
    let r = f.run(&["load"]);
    assert_eq!(r.code, 1);
    assert!(!f.dir.join("run/trusted-pcrlock").exists());
    // What a load of this boot that succeeded (PCR 11 extended) left, the
    // kmk dropped since.
    fs::create_dir_all(f.dir.join("run")).unwrap();
    fs::write(
        f.dir.join("run/trusted-pcrlock"),
        "pcrlock=11 kmk=kmk-trusted\n",
    )
    .unwrap();
    let r = f.run(&["load"]);
    assert_eq!(r.code, 1);
    r.assert_contains("the trusted kmk was loaded earlier in this boot with pcrlock=11");
    r.assert_contains("not loading it again: a blob sealed to PCR 11 no longer unseals, and one that is not would extend PCR 11 once more. Reboot to load it");
    assert!(!r.output().contains("this kernel has no trusted keys"));
    assert!(f.keys().is_empty());
}

#[test]
fn secrets_never_appear_in_output() {
    let f = Fixture::new("secret");
    dracut_setup(&f);
    // Successful run, then a run that fails on the kmk (a different key of
    // the same name is loaded), then check.
    let mut outputs = vec![f.run(&["load", "-v", "-v"]).output()];
    outputs.push(f.run(&["check", "-v"]).output());
    outputs.push(f.run(&["status"]).output());
    let g = Fixture::new("secret2");
    dracut_setup(&g);
    integrity_loader::keyring::add_key(
        "user",
        Some("kmk-user"),
        b"another key entirely 32 bytes!!",
        g.session,
    )
    .unwrap();
    outputs.push(g.run(&["load", "-v"]).output());
    let hex: String = BINARY_KMK.iter().map(|b| format!("{b:02x}")).collect();
    let raw = String::from_utf8_lossy(&BINARY_KMK[16..]).into_owned();
    for out in outputs {
        assert!(!out.contains(&hex), "kmk hex leaked:\n{out}");
        assert!(!out.contains(&hex[..16]), "kmk hex prefix leaked");
        assert!(!out.contains(&raw), "kmk bytes leaked");
        assert!(!out.contains("WgoAEzfA"), "kmk base64 leaked"); // base64 of the first bytes
    }
}

#[test]
fn failed_kmk_leaves_evm_off_and_appraise_policy_unwritten() {
    // The kmk is missing: evm-key is skipped, so EVM must not be enabled
    // with certificates only, and the appraise policy must not be written
    // half-configured. The measure-only policy case below still loads.
    let f = Fixture::new("kmk-fails");
    dracut_setup(&f);
    f.write("/etc/keys/kmk-user.blob", "");
    let r = f.run(&["load"]);
    assert_eq!(r.code, 1, "{}", r.output());
    r.assert_contains("evm-key: skipped: step kmk failed");
    r.assert_contains("evm: skipped: step evm-key was skipped");
    r.assert_contains("has appraise rules but step evm-key was skipped, so EVM stays off");
    assert_eq!(f.sfs_text("evm"), "");
    assert_eq!(f.sfs_text("ima/policy"), "");
    // The certificates still load: they are harmless on their own.
    assert_eq!(f.certs_in("_evm").len(), 1);
}

#[test]
fn failed_kmk_still_writes_a_measure_only_policy() {
    let f = Fixture::new("kmk-fails-measure");
    dracut_setup(&f);
    f.write("/etc/keys/kmk-user.blob", "");
    f.write("/etc/sysconfig/ima-policy", "measure func=BPRM_CHECK\n");
    let r = f.run(&["load"]);
    assert_eq!(r.code, 1, "{}", r.output());
    assert_eq!(f.sfs_text("evm"), "");
    assert_eq!(f.sfs_text("ima/policy"), "measure func=BPRM_CHECK\n");
}

#[test]
fn reads_the_real_proc_cmdline_by_default() {
    // /proc/cmdline stats as 0 bytes: reading it must still work.
    let f = Fixture::new("proc-cmdline");
    dracut_setup(&f);
    let out = std::process::Command::new(BIN)
        .args(["check", "--securityfs"])
        .arg(f.dir.join("sfs"))
        .arg("--root")
        .arg(f.root())
        .arg("--keyring")
        .arg("@s")
        .env("INTEGRITY_LOADER_LOG", "stderr")
        .env_remove("NEWROOT")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!text.contains("kernel command line"), "{text}");
    assert_eq!(out.status.code(), Some(0), "{text}");
}

/// EVM_ACTIVATION_BITS=0x2 with no EVM certificate and no evm-key: EVM in
/// x509 mode would fail every file it checks, so it is not enabled (as
/// dracut does not), and the policy goes in as for any EVM that is off.
/// With an evm-key but no certificate, HMAC mode only.
#[test]
fn no_evm_mode_without_its_key() {
    let f = Fixture::new("x509-no-key");
    f.write("/etc/sysconfig/evm", "EVM_ACTIVATION_BITS=0x2\n");
    f.copy_cert("rsa2048.pem", "/etc/keys/ima/rsa.pem");
    f.write("/etc/sysconfig/ima-policy", POLICY);
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    assert_eq!(f.sfs_text("ima/policy"), POLICY_RULES);
    r.assert_contains("evm: not configured: no evm-key and no EVM certificate loaded; EVM stays off (EVM_ACTIVATION_BITS=0x2 at ");
    assert_eq!(f.sfs_text("evm"), "", "EVM enabled without a key");

    // REQUIRE=evm makes it a failure.
    f.write("/etc/integrity-loader.conf", "REQUIRE=evm\n");
    let r = f.run(&["load"]);
    assert_eq!(r.code, 1, "{}", r.output());
    assert_eq!(f.sfs_text("evm"), "");

    let f = Fixture::new("x509-hmac-only");
    dracut_setup(&f);
    std::fs::remove_file(f.root().join("etc/keys/x509_evm.der")).unwrap();
    f.write(
        "/etc/sysconfig/evm",
        "EVMKEY=/etc/keys/evm-user.blob\nEVM_ACTIVATION_BITS=0x2\n",
    );
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("no EVM certificate loaded: enabling HMAC verification only");
    assert_eq!(f.sfs_text("evm"), "1\n");
}

/// POLICY_RULES as 6.1's `ima_policy_show()` prints them back, after an
/// arch rule the kernel keeps before a custom policy.
const POLICY_SHOWN: &str = "\
appraise func=KEXEC_KERNEL_CHECK appraise_type=imasig|modsig 
dont_measure fsmagic=0x9fa0 
dont_appraise fsmagic=0x62656572 
measure func=BPRM_CHECK mask=MAY_EXEC 
appraise func=BPRM_CHECK appraise_type=imasig 
";

/// The stand-in policy file turned into what a kernel shows after the first
/// load: its read-back, with the write bit (CONFIG_IMA_WRITE_POLICY) or
/// without (CONFIG_IMA_READ_POLICY only).
fn kernel_shows(f: &Fixture, text: &str, mode: u32) {
    let path = f.dir.join("sfs/ima/policy");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn second_load_finds_the_policy_in_the_kernels_normal_form() {
    // Both write modes, both kernel configurations that keep the file: the
    // read-back is never the bytes written, and nothing is written again.
    for (write, mode) in [
        ("rules", 0o600),
        ("rules", 0o400),
        ("path", 0o600),
        ("path", 0o400),
    ] {
        let f = Fixture::new("twice-shown");
        dracut_setup(&f);
        f.write(
            "/etc/integrity-loader.conf",
            format!("IMA_POLICY_WRITE={write}\n"),
        );
        let r = f.run(&["load"]);
        assert_eq!(r.code, 0, "{}", r.output());
        r.assert_contains("ima-policy: done");
        kernel_shows(&f, POLICY_SHOWN, mode);
        let r = f.run(&["load"]);
        assert_eq!(r.code, 0, "{write} {mode:o}: {}", r.output());
        r.assert_contains("ima-policy: already done: the IMA policy from ");
        r.assert_contains(
            "/etc/sysconfig/ima-policy is already loaded (the kernel shows its rules",
        );
        assert_eq!(f.sfs_text("ima/policy"), POLICY_SHOWN, "{write} {mode:o}");
        // check says the same.
        let r = f.run(&["check"]);
        r.assert_contains("is already loaded");
    }
}

#[test]
fn read_only_policy_file_is_never_opened_for_writing() {
    // READ_POLICY only: after a load root's open gets EBUSY; a policy the
    // kernel has, but not ours, is reported, not written over.
    let f = Fixture::new("read-only-other");
    dracut_setup(&f);
    kernel_shows(&f, "measure func=FILE_CHECK \n", 0o400);
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("ima-policy: already done: ");
    r.assert_contains("is read-only: the kernel already has a custom policy this boot and takes no other; it does not show the rules of ");
    assert_eq!(f.sfs_text("ima/policy"), "measure func=FILE_CHECK \n");
}

#[test]
fn rules_shown_without_a_record_of_this_boot_are_written() {
    // With CONFIG_IMA_WRITE_POLICY the read-back shows the boot policy until
    // a first load: rules that happen to be there are not proof of a load.
    let f = Fixture::new("boot-policy");
    dracut_setup(&f);
    kernel_shows(&f, POLICY_SHOWN, 0o600);
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("ima-policy: done: wrote IMA policy");
    // The record then makes the next load find it.
    kernel_shows(
        &f,
        &format!("{POLICY_SHOWN}{}", POLICY_SHOWN.split_once('\n').unwrap().1),
        0o600,
    );
    let r = f.run(&["load"]);
    r.assert_contains("ima-policy: already done");
}

#[test]
fn by_path_refuses_what_the_kernel_refuses_in_a_file() {
    for (text, at) in [
        (
            "measure func=BPRM_CHECK # binaries\n",
            "1:25: comment after a rule",
        ),
        (
            "# policy\nmeasure func=BPRM_CHECK",
            "2:24: the last line has no newline",
        ),
    ] {
        let f = Fixture::new("by-path-file");
        dracut_setup(&f);
        f.write("/etc/sysconfig/ima-policy", text);
        f.write("/etc/integrity-loader.conf", "IMA_POLICY_WRITE=path\n");
        let r = f.run(&["load"]);
        assert_eq!(r.code, 1, "{}", r.output());
        r.assert_contains(&format!("/etc/sysconfig/ima-policy:{at}"));
        r.assert_contains("ima-policy: FAILED: ");
        assert_eq!(f.sfs_text("ima/policy"), "");
        // Rule by rule the same file loads: the comment is not written, the
        // newline is added.
        f.write("/etc/integrity-loader.conf", "IMA_POLICY_WRITE=rules\n");
        let r = f.run(&["load"]);
        assert_eq!(r.code, 0, "{}", r.output());
        assert_eq!(f.sfs_text("ima/policy"), "measure func=BPRM_CHECK\n");
    }
}
