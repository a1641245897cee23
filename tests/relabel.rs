//! `integrity-audit relabel` and the `integrity-loader audit`/`relabel`
//! commands that run it. The host kernel has no IMA in fix mode, so these
//! test what relabel selects and opens and what it refuses, not the
//! kernel's labelling (initramfs-test has the VM scenario for that).

mod common;

use common::{CERTS, Fixture};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

const AUDIT: &str = env!("CARGO_BIN_EXE_integrity-audit");
const LOADER: &str = env!("CARGO_BIN_EXE_integrity-loader");

const POLICY: &str = "\
dont_appraise fowner=1000
appraise func=BPRM_CHECK appraise_type=imasig
appraise func=MODULE_CHECK
appraise func=FILE_CHECK fowner=0
";

const FIX: &str = "root=/dev/vda ro ima_appraise=fix evm=fix\n";

fn relabel(f: &Fixture, extra: &[&str]) -> (i32, String) {
    let out = Command::new(AUDIT)
        .arg("relabel")
        .arg("--root")
        .arg(f.root())
        .arg("--cmdline")
        .arg(f.dir.join("cmdline"))
        .arg("--efivars")
        .arg(f.dir.join("efivars"))
        .args(["-q", "--evm", "off"])
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn exe(f: &Fixture, path: &str, owner: u32) -> std::path::PathBuf {
    let p = f.write(path, format!("#!/bin/sh\necho {path}\n"));
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&p, Some(owner), Some(owner)).unwrap();
    p
}

/// Returns the number of files FILE_CHECK covers (opened by relabel).
fn tree(f: &Fixture) -> usize {
    f.write("/etc/sysconfig/ima-policy", POLICY);
    f.write("/data/a", "a");
    f.write("/data/b", "b");
    let user = f.write("/home/user/notes", "out of policy");
    std::os::unix::fs::chown(&user, Some(1000), Some(1000)).unwrap();
    exe(f, "/usr/bin/unsigned", 0);
    let signed = exe(f, "/usr/bin/signed", 0);
    let key = format!("{CERTS}/rsa2048.key.pem");
    let ok = Command::new("evmctl")
        .args(["ima_sign", "-a", "sha256", "--key", &key])
        .arg(&signed)
        .status()
        .expect("evmctl (ima-evm-utils) is installed by scripts/install-deps")
        .success();
    assert!(ok, "evmctl ima_sign");
    // Not owned by root: no FILE_CHECK rule, only MODULE_CHECK.
    let module = f.write("/lib/modules/6.1/extra/x.ko", "module");
    std::os::unix::fs::chown(&module, Some(2000), Some(2000)).unwrap();
    // Executable by 2000: BPRM imasig only.
    exe(f, "/opt/tool", 2000);
    // The policy, /data/a, /data/b, /usr/bin/signed; /usr/bin/unsigned is
    // opened too but listed as needing a signature.
    4
}

fn count(out: &str, words: &str) -> usize {
    out.lines()
        .find(|l| {
            l.trim_start()
                .split_once("  ")
                .is_some_and(|(_, w)| w == words)
        })
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count for {words:?} in:\n{out}"))
}

#[test]
fn refuses_unless_the_kernel_is_in_fix_mode() {
    let f = Fixture::new("relabel-refuse");
    tree(&f);
    // Fixture's command line: no ima_appraise=.
    let (code, out) = relabel(&f, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("relabel refused: the kernel is not in IMA fix mode (ima_appraise=<absent>"),
        "{out}"
    );
    assert!(!out.contains("files opened"), "{out}");

    f.set_cmdline("ima_appraise=fix\n");
    let (code, out) = relabel(&f, &["--evm", "on"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("not in EVM fix mode (evm=<absent>"), "{out}");

    // Secure Boot on: the kernel ignores ima_appraise=fix.
    f.set_cmdline(FIX);
    let var = f
        .dir
        .join("efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c");
    std::fs::create_dir_all(var.parent().unwrap()).unwrap();
    std::fs::write(&var, [6, 0, 0, 0, 1]).unwrap();
    let (code, out) = relabel(&f, &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("secure boot is on"), "{out}");
    std::fs::write(&var, [6, 0, 0, 0, 0]).unwrap();
    let (code, out) = relabel(&f, &[]);
    assert_ne!(code, 2, "{out}");
}

#[test]
fn opens_the_covered_files_and_lists_those_to_sign() {
    let f = Fixture::new("relabel-run");
    let opened = tree(&f);
    f.set_cmdline(FIX);
    let (code, out) = relabel(&f, &["--jobs", "2"]);
    assert_eq!(code, 1, "{out}");
    assert_eq!(
        count(&out, "opened: the kernel in fix mode labels it"),
        opened
    );
    assert!(
        out.contains(&format!("{opened} files opened for the kernel to label")),
        "{out}"
    );
    assert!(
        out.contains("/usr/bin/unsigned: needs an IMA signature (appraise_type=imasig): evmctl ima_sign [policy line 2]"),
        "{out}"
    );
    assert!(out.contains("/opt/tool: needs an IMA signature"), "{out}");
    assert!(!out.contains("/usr/bin/signed:"), "{out}");
    assert!(
        out.contains("/lib/modules/6.1/extra/x.ko: appraised only when executed, mapped or read by the kernel"),
        "{out}"
    );
    assert!(out.contains("left to label by hand (3)"), "{out}");
    assert!(out.contains("evmctl ima_sign --key"), "{out}");
    assert_eq!(count(&out, "not appraised by the policy"), 1);

    // Again: the same selection, nothing changed by the first run.
    let (code2, out2) = relabel(&f, &["--jobs", "1"]);
    assert_eq!((code2, out2), (code, out));

    // Nothing left by hand: exit 0.
    std::fs::remove_file(f.root().join("usr/bin/unsigned")).unwrap();
    std::fs::remove_file(f.root().join("opt/tool")).unwrap();
    std::fs::remove_file(f.root().join("lib/modules/6.1/extra/x.ko")).unwrap();
    let (code, out) = relabel(&f, &[]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn stays_on_the_roots_filesystem_unless_told() {
    let f = Fixture::new("relabel-onefs");
    let opened = tree(&f);
    f.set_cmdline(FIX);
    let mnt = f.root().join("mnt/other");
    std::fs::create_dir_all(&mnt).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "relabel-test", mnt.to_str().unwrap()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "mount tmpfs (the tests run as root)");
    std::fs::write(mnt.join("f"), "on another filesystem").unwrap();
    let (_, one) = relabel(&f, &[]);
    let (_, all) = relabel(&f, &["--all-filesystems"]);
    let _ = Command::new("umount").arg(&mnt).status();
    assert!(
        one.contains("not walked: /mnt/other (another filesystem)"),
        "{one}"
    );
    assert_eq!(
        count(&one, "opened: the kernel in fix mode labels it"),
        opened
    );
    assert_eq!(
        count(&all, "opened: the kernel in fix mode labels it"),
        opened + 1
    );
}

#[test]
fn loader_runs_the_sibling_binary() {
    // Cargo puts both binaries in the same directory.
    let out = Command::new(LOADER)
        .args(["audit", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: integrity-audit [OPTIONS]"));
    let out = Command::new(LOADER)
        .args(["relabel", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: integrity-audit relabel"));
    let help = Command::new(LOADER).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("\n  audit ") && help.contains("\n  relabel "),
        "{help}"
    );

    // Alone in a directory: says where it looked and how to install it.
    let f = Fixture::new("relabel-sibling");
    let lone = f.dir.join("bin/integrity-loader");
    std::fs::create_dir_all(lone.parent().unwrap()).unwrap();
    std::fs::copy(LOADER, &lone).unwrap();
    // Another test's child forked while the copy was open for writing holds
    // it until its exec: ETXTBSY for that moment.
    let out = loop {
        match Command::new(&lone).args(["relabel", "-q"]).output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => break other.unwrap(),
        }
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let looked = f.dir.join("bin/integrity-audit");
    assert!(
        err.contains(&format!(
            "integrity-loader: relabel: {} not found",
            looked.display()
        )),
        "{err}"
    );
    assert!(err.contains("scripts/install"), "{err}");
}

#[test]
fn audit_warns_that_it_labels_on_a_kernel_in_fix_mode() {
    let f = Fixture::new("relabel-audit-fix");
    tree(&f);
    let audit = |cmdline: &str| {
        f.set_cmdline(cmdline);
        let out = Command::new(AUDIT)
            .arg("--root")
            .arg(f.root())
            .arg("--cmdline")
            .arg(f.dir.join("cmdline"))
            .args(["-q", "--evm", "off"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = audit(FIX);
    assert!(
        out.contains("warning: the kernel is in IMA fix mode (ima_appraise=fix in "),
        "{out}"
    );
    let out = audit("root=/dev/vda ro\n");
    assert!(!out.contains("fix mode"), "{out}");
}
