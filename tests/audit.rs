//! `integrity-audit` on a tree labelled with evmctl: signed (RSA and ECDSA),
//! unsigned, tampered, hash-labelled, signed by an unloaded key and out of
//! policy. Verdicts are asserted file by file, and every signature verdict
//! is compared with what `evmctl ima_verify` says of the same file.
//! security.* xattrs need root, as the rest of the suite does.

mod common;

use common::{CERTS, Fixture};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

const AUDIT: &str = env!("CARGO_BIN_EXE_integrity-audit");

const POLICY: &str = "\
dont_appraise fsmagic=0x9fa0
dont_appraise fowner=1000
appraise func=BPRM_CHECK appraise_type=imasig
appraise func=FILE_CHECK fowner=0
";

fn evmctl(args: &[&str], file: &Path) -> bool {
    Command::new("evmctl")
        .args(args)
        .arg(file)
        .output()
        .expect("evmctl (ima-evm-utils) is installed by scripts/install-deps")
        .status
        .success()
}

fn sign(file: &Path, algo: &str, key: &str) {
    let key = format!("{CERTS}/{key}.key.pem");
    assert!(
        evmctl(&["ima_sign", "-a", algo, "--key", &key], file),
        "sign {file:?}"
    );
}

fn hash(file: &Path, algo: &str) {
    assert!(evmctl(&["ima_hash", "-a", algo], file), "hash {file:?}");
}

fn exe(f: &Fixture, path: &str) -> std::path::PathBuf {
    let p = f.write(path, format!("#!/bin/sh\necho {path}\n"));
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn audit(f: &Fixture, extra: &[&str]) -> (i32, String) {
    let out = Command::new(AUDIT)
        .arg("--root")
        .arg(f.root())
        .arg("--cmdline")
        .arg(f.dir.join("cmdline"))
        .args(["-q"])
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn verdict_of(json: &str, path: &str) -> String {
    let key = format!("{{\"path\":\"{path}\",\"verdict\":\"");
    let start = json
        .find(&key)
        .unwrap_or_else(|| panic!("{path} not in {json}"))
        + key.len();
    json[start..].split('"').next().unwrap().to_owned()
}

/// The labelled tree; returns (path, expected verdict) for each test file.
fn labelled_tree(f: &Fixture) -> Vec<(&'static str, &'static str)> {
    f.write("/etc/sysconfig/ima-policy", POLICY);
    f.copy_cert("rsa2048.der", "/etc/keys/ima/rsa2048.der");
    f.copy_cert("ecdsa-p256.der", "/etc/keys/ima/ecdsa-p256.der");
    let r = |p: &str| f.root().join(p.trim_start_matches('/'));
    sign(&exe(f, "/usr/bin/rsa-signed"), "sha256", "rsa2048");
    sign(&exe(f, "/usr/bin/rsa-sha512"), "sha512", "rsa2048");
    sign(&exe(f, "/usr/bin/ec-signed"), "sha256", "ecdsa-p256");
    exe(f, "/usr/bin/unsigned");
    hash(&exe(f, "/usr/bin/hash-only"), "sha256");
    sign(&exe(f, "/usr/bin/tampered"), "sha256", "rsa2048");
    std::fs::write(r("/usr/bin/tampered"), "#!/bin/sh\necho changed\n").unwrap();
    // Signed by a key whose certificate is not in /etc/keys/ima.
    sign(&exe(f, "/usr/bin/other-key"), "sha256", "no-keyusage");
    hash(&f.write("/data/hashed", "a"), "sha256");
    hash(&f.write("/data/hashed-sha1", "b"), "sha1");
    let t = f.write("/data/tampered-hash", "c");
    hash(&t, "sha256");
    std::fs::write(&t, "C").unwrap();
    f.write("/data/plain", "d");
    // Out of policy: owned by 1000, dont_appraise.
    let user = f.write("/home/user/notes", "e");
    std::os::unix::fs::chown(&user, Some(1000), Some(1000)).unwrap();
    vec![
        ("/usr/bin/rsa-signed", "pass_signature"),
        ("/usr/bin/rsa-sha512", "pass_signature"),
        ("/usr/bin/ec-signed", "pass_signature"),
        ("/usr/bin/unsigned", "no_ima"),
        ("/usr/bin/hash-only", "hash_not_signature"),
        ("/usr/bin/tampered", "bad_signature"),
        ("/usr/bin/other-key", "unknown_key"),
        ("/data/hashed", "pass_hash"),
        ("/data/hashed-sha1", "pass_hash"),
        ("/data/tampered-hash", "hash_mismatch"),
        ("/data/plain", "no_ima"),
        ("/home/user/notes", "not_covered"),
    ]
}

#[test]
fn verdicts_file_by_file_agree_with_evmctl() {
    let f = Fixture::new("audit");
    let expected = labelled_tree(&f);
    let (code, json) = audit(&f, &["--json", "--all", "--evm", "off"]);
    assert_eq!(code, 1, "{json}");
    let keys = format!("{CERTS}/rsa2048.der,{CERTS}/ecdsa-p256.der");
    for (path, want) in &expected {
        assert_eq!(verdict_of(&json, path), *want, "{path}");
        let file = f.root().join(path.trim_start_matches('/'));
        let signed = std::fs::read(&file).is_ok()
            && matches!(*want, "pass_signature" | "bad_signature" | "unknown_key");
        if signed {
            let ok = evmctl(&["ima_verify", "--key", &keys], &file);
            assert_eq!(ok, *want == "pass_signature", "evmctl disagrees on {path}");
        }
    }
    // Denied = every denied file of the table plus the unlabelled
    // certificates and policy under fowner=0.
    let denied = expected
        .iter()
        .filter(|(_, v)| !v.starts_with("pass") && *v != "not_covered")
        .count()
        + 3;
    assert!(
        json.contains(&format!("\"denied_total\":{denied},")),
        "{json}"
    );
}

#[test]
fn text_report_and_exit_codes() {
    let f = Fixture::new("audit-text");
    f.write("/etc/sysconfig/ima-policy", "appraise func=BPRM_CHECK\n");
    let p = exe(&f, "/usr/bin/good");
    hash(&p, "sha256");
    f.write("/usr/share/doc", "not executed");
    let (code, out) = audit(&f, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no file would be denied"), "{out}");
    assert!(out.contains("1  passes: IMA hash matches"), "{out}");

    exe(&f, "/usr/bin/bad");
    let (code, out) = audit(&f, &["--limit", "1"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("/usr/bin/bad: denied: no security.ima [policy line 1]"),
        "{out}"
    );

    // EVM on (forced): a passing file without security.evm is denied.
    let (code, out) = audit(&f, &["--evm", "on", "--json", "--all"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(verdict_of(&out, "/usr/bin/good"), "no_evm");

    // Usage and configuration errors exit 2.
    assert_eq!(audit(&f, &["--limit"]).0, 2);
    f.write("/etc/sysconfig/ima-policy", "appraise func=NOPE\n");
    let (code, out) = audit(&f, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("ima-policy:1:"), "{out}");
}

/// The walker hands files to the workers in batches: directories of more
/// files than a batch, and of fewer, are each audited once and whole, with
/// one worker and with two.
#[test]
fn every_file_once_across_batches() {
    let f = Fixture::new("audit-batches");
    f.write(
        "/etc/sysconfig/ima-policy",
        "appraise func=FILE_CHECK fowner=0\n",
    );
    let mut names = Vec::new();
    for (dir, n) in [("/big", 200), ("/small", 3), ("/big/sub", 64)] {
        for i in 0..n {
            let path = format!("{dir}/f{i}");
            let p = f.write(&path, format!("{path}\n"));
            if i % 2 == 0 {
                hash(&p, "sha256");
            }
            names.push((path, i % 2 == 0));
        }
    }
    for jobs in ["1", "2"] {
        let (code, json) = audit(&f, &["--jobs", jobs, "--json", "--all", "--limit", "1000"]);
        assert_eq!(code, 1, "{json}");
        // The policy file itself is there too, unlabelled.
        assert!(json.contains("\"files\":268,"), "{json}");
        for (path, labelled) in &names {
            let want = if *labelled { "pass_hash" } else { "no_ima" };
            assert_eq!(verdict_of(&json, path), want, "{path}, --jobs {jobs}");
            // Listed once, and once more among the denied.
            let times = if *labelled { 1 } else { 2 };
            let listed = json.matches(&format!("\"path\":\"{path}\",")).count();
            assert_eq!(listed, times, "{path}, --jobs {jobs}");
        }
    }
}

#[test]
fn lsm_conditions_are_counted_apart() {
    let f = Fixture::new("audit-lsm");
    f.write(
        "/etc/sysconfig/ima-policy",
        "dont_appraise obj_type=var_log_t\nappraise func=FILE_CHECK\n",
    );
    f.write("/var/log/x", "x");
    let (code, out) = audit(&f, &["--all"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("line 1: obj_type=var_log_t"), "{out}");
    assert!(out.contains("/var/log/x: undecided"), "{out}");
}

fn evm_sign(file: &Path, args: &[&str], key: &str) {
    let key = format!("{CERTS}/{key}.key.pem");
    let mut all = vec!["sign", "--portable", "-a", "sha256", "--key", &key];
    all.extend_from_slice(args);
    assert!(evmctl(&all, file), "evmctl sign --portable {file:?}");
}

/// Portable EVM signatures (`evmctl sign --portable`) are verified over
/// the protected xattrs, uid, gid and mode, and agree with `evmctl verify`.
#[test]
fn portable_evm_signatures_agree_with_evmctl() {
    let f = Fixture::new("audit-evm");
    f.write(
        "/etc/sysconfig/ima-policy",
        "appraise func=FILE_CHECK fowner=0\n",
    );
    f.copy_cert("rsa2048.der", "/etc/keys/ima/rsa2048.der");
    f.copy_cert("ecdsa-p256.der", "/etc/keys/ima/ecdsa-p256.der");
    // Two EVM certificates: EVMKEYSDIR holds the second.
    f.copy_cert("rsa2048.der", "/etc/keys/x509_evm.der");
    f.copy_cert("ecdsa-p256.der", "/etc/keys/evm/ecdsa-p256.der");
    let r = |p: &str| f.root().join(p.trim_start_matches('/'));
    evm_sign(&f.write("/data/rsa", "a"), &["--imasig"], "rsa2048");
    evm_sign(&f.write("/data/ec-hash", "b"), &["--imahash"], "ecdsa-p256");
    // security.capability comes after security.ima in the digest.
    let cap = f.write("/data/cap", "c");
    let ok = Command::new("setcap")
        .args(["cap_net_raw+ep"])
        .arg(&cap)
        .status()
        .unwrap()
        .success();
    assert!(ok, "setcap (libcap2-bin)");
    evm_sign(&cap, &["--imasig"], "rsa2048");
    // Metadata changed after signing: IMA still passes, EVM does not.
    let chmod = f.write("/data/chmod", "d");
    evm_sign(&chmod, &["--imasig"], "rsa2048");
    std::fs::set_permissions(&chmod, std::fs::Permissions::from_mode(0o600)).unwrap();
    let chown = f.write("/data/chown", "e");
    evm_sign(&chown, &["--imasig"], "rsa2048");
    std::os::unix::fs::lchown(&chown, Some(0), Some(4242)).unwrap();
    // The EVM signature by a key no EVM certificate has.
    let other = f.write("/data/other-key", "f");
    sign(&other, "sha256", "rsa2048");
    evm_sign(&other, &[], "no-keyusage");
    let expected = [
        ("/data/rsa", "pass_signature"),
        ("/data/ec-hash", "pass_hash"),
        ("/data/cap", "pass_signature"),
        ("/data/chmod", "bad_evm"),
        ("/data/chown", "bad_evm"),
        ("/data/other-key", "bad_evm"),
    ];
    let (code, json) = audit(&f, &["--json", "--all"]);
    assert_eq!(code, 1, "{json}");
    assert!(json.contains("\"evm\":true"), "{json}");
    let keys = format!("{CERTS}/rsa2048.der,{CERTS}/ecdsa-p256.der");
    for (path, want) in expected {
        assert_eq!(verdict_of(&json, path), want, "{path}");
        let ok = evmctl(&["verify", "--key", &keys], &r(path));
        assert_eq!(
            ok,
            want.starts_with("pass"),
            "evmctl verify disagrees on {path}"
        );
    }
    assert!(
        json.contains("which no EVM certificate has"),
        "the unknown EVM key is named: {json}"
    );
}

/// A root the boot of which needs: /sbin/init -> systemd (ELF, naming
/// /lib64/ld-linux-x86-64.so.2, an absolute link inside the root), /bin/sh
/// and libc; all signed (IMA signature and portable EVM signature).
fn bootable_root(f: &Fixture) {
    common::dracut_setup(f);
    let elf = std::fs::read("/bin/sh").unwrap();
    let put = |path: &str, bytes: &[u8]| {
        let p = f.write(path, bytes);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        evm_sign(&p, &["--imasig"], "rsa2048");
    };
    put("/usr/lib/systemd/systemd", &elf);
    put("/bin/sh", &elf);
    put("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", b"ld.so");
    put("/lib/x86_64-linux-gnu/libc.so.6", b"libc");
    std::fs::create_dir_all(f.root().join("sbin")).unwrap();
    std::os::unix::fs::symlink("../usr/lib/systemd/systemd", f.root().join("sbin/init")).unwrap();
    std::fs::create_dir_all(f.root().join("lib64")).unwrap();
    std::os::unix::fs::symlink(
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        f.root().join("lib64/ld-linux-x86-64.so.2"),
    )
    .unwrap();
}

/// `check --audit-boot` (what host-only initramfs builds run) fails when
/// the kernel would refuse a file the boot needs, naming it; passes when
/// all would pass, or when the command line puts IMA in fix mode.
#[test]
fn check_audit_boot_refuses_a_root_whose_init_would_be_denied() {
    let f = Fixture::new("audit-boot");
    bootable_root(&f);
    let r = f.run(&["check", "--audit-boot"]);
    assert_eq!(r.code, 0, "{}", r.output());
    for line in [
        "init            /sbin/init -> /usr/lib/systemd/systemd: passes: IMA signature verifies",
        "shell           /bin/sh: passes",
        "dynamic loader  /lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2: passes",
        "libc            /lib/x86_64-linux-gnu/libc.so.6: passes",
        "boot files: none would be denied",
        "check passed",
    ] {
        r.assert_contains(line);
    }
    // Without --audit-boot, no boot audit.
    let r = f.run(&["check"]);
    assert_eq!(r.code, 0, "{}", r.output());
    assert!(!r.output().contains("boot files"), "{}", r.output());

    // systemd changed after signing: its signature no longer verifies.
    let systemd = f.root().join("usr/lib/systemd/systemd");
    let mut bytes = std::fs::read(&systemd).unwrap();
    bytes.push(0);
    std::fs::write(&systemd, bytes).unwrap();
    let r = f.run(&["check", "--audit-boot"]);
    assert_eq!(r.code, 1, "{}", r.output());
    r.assert_contains(
        "/sbin/init -> /usr/lib/systemd/systemd: denied: IMA signature does not verify",
    );
    r.assert_contains("the kernel would refuse /sbin/init -> /usr/lib/systemd/systemd:");
    r.assert_contains("check FAILED");

    // A missing shell is named too.
    std::fs::remove_file(f.root().join("bin/sh")).unwrap();
    let r = f.run(&["check", "--audit-boot"]);
    assert_eq!(r.code, 1, "{}", r.output());
    r.assert_contains("shell           /bin/sh: cannot be found: ");
    r.assert_contains("root/bin/sh: no such file");
    r.assert_contains("boot files: /bin/sh cannot be found or read: ");

    // The next boot labels files: nothing is refused.
    f.set_cmdline("root=/dev/vda ima_appraise=fix evm=fix\n");
    let r = f.run(&["check", "--audit-boot"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("not audited, ima_appraise=fix on the kernel command line");

    // init= names another init, which is audited instead.
    f.set_cmdline("root=/dev/vda init=/usr/lib/systemd/systemd\n");
    std::fs::copy("/bin/sh", f.root().join("bin/sh")).unwrap();
    let r = f.run(&["check", "--audit-boot"]);
    assert_eq!(r.code, 1, "{}", r.output());
    r.assert_contains("init            /usr/lib/systemd/systemd: denied");
    r.assert_contains("shell           /bin/sh: denied: no security.ima");

    // No policy: nothing is appraised, nothing refused.
    std::fs::remove_file(f.root().join("etc/sysconfig/ima-policy")).unwrap();
    let r = f.run(&["check", "--audit-boot"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("not audited, no rule of the IMA policy /etc/sysconfig/ima-policy appraises");
}

/// The boot needs every library its executables need, not only libc: with
/// a policy that appraises mapped executable code, an unsigned libtinfo
/// (which bash needs, found as `ldd /bin/bash` finds it) fails the boot
/// audit, named, where before only init, sh, the loader and libc were
/// looked at and the audit passed.
#[test]
fn check_audit_boot_refuses_an_unsigned_library_the_init_needs() {
    let f = Fixture::new("audit-boot-libs");
    common::dracut_setup(&f);
    f.write(
        "/etc/sysconfig/ima-policy",
        format!(
            "{}appraise func=MMAP_CHECK mask=MAY_EXEC appraise_type=imasig\n",
            common::POLICY
        ),
    );
    f.set_cmdline("root=/dev/vda init=/bin/bash\n");
    // bash and what the host's loader maps for it, copied into the root.
    let ldd = Command::new("ldd").arg("/bin/bash").output().unwrap();
    let mut libs = Vec::new();
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [name, "=>", path, _] => libs.push((name.to_string(), path.to_string())),
            [path, _] if path.starts_with('/') => libs.push(("loader".into(), path.to_string())),
            _ => {}
        }
    }
    let names: Vec<&str> = libs.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"libtinfo.so.6") && names.contains(&"libc.so.6"),
        "{names:?}"
    );
    let copy = |from: &str, to: &str, mode: u32| {
        let p = f.write(to, std::fs::read(from).unwrap());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    };
    let bash = copy("/bin/bash", "/bin/bash", 0o755);
    std::os::unix::fs::symlink("bash", f.root().join("bin/sh")).unwrap();
    let mut tinfo = None;
    let mut signed = vec![bash];
    for (name, path) in &libs {
        // The loader at the path bash names; libraries mode 0644: only the
        // MMAP_CHECK rule covers them.
        let (to, mode) = match name.as_str() {
            "loader" => (path.clone(), 0o755),
            _ => (format!("/lib/x86_64-linux-gnu/{name}"), 0o644),
        };
        let p = copy(path, &to, mode);
        if name == "libtinfo.so.6" {
            tinfo = Some(p);
        } else {
            signed.push(p);
        }
    }
    for p in &signed {
        evm_sign(p, &["--imasig"], "rsa2048");
    }
    let r = f.run(&["check", "--audit-boot"]);
    assert_eq!(r.code, 1, "{}", r.output());
    for line in [
        "init            /bin/bash: passes: IMA signature verifies",
        "libc            /lib/x86_64-linux-gnu/libc.so.6: passes",
        "library         /lib/x86_64-linux-gnu/libtinfo.so.6: denied: no security.ima",
        "the kernel would refuse /lib/x86_64-linux-gnu/libtinfo.so.6: ",
        "check FAILED",
    ] {
        r.assert_contains(line);
    }
    evm_sign(&tinfo.unwrap(), &["--imasig"], "rsa2048");
    let r = f.run(&["check", "--audit-boot"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("library         /lib/x86_64-linux-gnu/libtinfo.so.6: passes");
    r.assert_contains("boot files: none would be denied");

    // A library bash needs that is not there is named with who needs it.
    std::fs::remove_file(f.root().join("lib/x86_64-linux-gnu/libtinfo.so.6")).unwrap();
    let r = f.run(&["check", "--audit-boot"]);
    assert_eq!(r.code, 1, "{}", r.output());
    r.assert_contains(
        "library         libtinfo.so.6: cannot be found: needed by /bin/bash, not in /lib/x86_64-linux-gnu,",
    );
    r.assert_contains(
        "boot files: libtinfo.so.6 cannot be found or read: the next boot would fail",
    );
}

/// Without integrity-audit beside it, `check --audit-boot` fails saying so.
#[test]
fn check_audit_boot_needs_integrity_audit() {
    let f = Fixture::new("audit-boot-alone");
    bootable_root(&f);
    let alone = f.dir.join("alone");
    std::fs::create_dir_all(&alone).unwrap();
    std::fs::copy(common::BIN, alone.join("integrity-loader")).unwrap();
    // check itself runs integrity-admin, which is there; the audit is not.
    std::fs::copy(
        env!("CARGO_BIN_EXE_integrity-admin"),
        alone.join("integrity-admin"),
    )
    .unwrap();
    let mut cmd = f.command(&["check", "--audit-boot"]);
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    cmd = Command::new(alone.join("integrity-loader"));
    cmd.args(args).env("INTEGRITY_LOADER_LOG", "stderr");
    let r = common::finished(cmd.output().unwrap());
    assert_eq!(r.code, 1, "{}", r.output());
    r.assert_contains("integrity-audit not found");
    r.assert_contains("check FAILED");
}
