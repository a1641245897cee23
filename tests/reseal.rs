//! `reseal` against a real swtpm: the same kmk sealed again (proved by a
//! `load` in a fresh keyring opening the evm-key blob made before, never by
//! reading the kmk), from each source of the kmk, after a TPM clear under a
//! new SRK, a crash while the files are staged; `seal` refusing to orphan
//! the labels; `status` saying when a reseal is due.

mod common;
#[path = "common/swtpm.rs"]
mod swtpm;

use common::*;
use integrity_loader::keyring;
use sha2::{Digest, Sha256};
use std::fs;
use swtpm::Swtpm;

const BLOB: &str = "etc/keys/kmk-tpm2.pem";
const EVM: &str = "etc/keys/evm.blob";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn pcr(tpm: &Swtpm, n: u8) -> String {
    let out = tpm.tool(&["tpm2_pcrread", &format!("sha256:{n}")]);
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{n}:")))
        .unwrap();
    line.rsplit("0x").next().unwrap().trim().to_lowercase()
}

/// A machine provisioned by `seal` (kmk and evm-key, configuration
/// written) with `extra` configuration lines, booted once: `load` unsealed
/// the kmk, loaded the evm-key and enabled EVM.
fn provisioned(name: &str, extra: &str) -> (Swtpm, Fixture) {
    let tpm = Swtpm::start(name);
    let f = Fixture::new(name);
    f.write(
        "/etc/integrity-loader.conf",
        format!("TPM={}\n", tpm.tcti()),
    );
    let r = f.run(&[
        "seal",
        "--evm-key",
        &format!("/{EVM}"),
        "--write-config",
        "--force",
    ]);
    assert_eq!(r.code, 0, "{}", r.output());
    f.write("/etc/sysconfig/evm", format!("EVMKEY=/{EVM}\n"));
    let conf = f.root().join("etc/integrity-loader.conf");
    let mut text = fs::read_to_string(&conf).unwrap();
    text.push_str(extra);
    fs::write(&conf, text).unwrap();
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    assert_eq!(f.sfs_text("evm"), "1\n");
    (tpm, f)
}

/// The next boot: the TPM restarts (PCRs from zero), nothing in the
/// keyring, EVM off, no record of this boot.
fn next_boot(tpm: &mut Swtpm, f: &Fixture) {
    tpm.reboot();
    empty_keyring(f);
    let _ = fs::remove_dir_all(f.dir.join("run"));
}

fn empty_keyring(f: &Fixture) {
    for id in keyring::list(f.session).unwrap() {
        keyring::unlink(id, f.session).unwrap();
    }
    fs::write(f.dir.join("sfs/evm"), b"").unwrap();
}

/// `load` in a fresh keyring opens the evm-key blob made at provisioning:
/// the kmk it unsealed is the first one.
fn assert_boot_opens_the_old_evm_key(f: &Fixture, evm_blob: &[u8]) {
    assert_eq!(fs::read(f.root().join(EVM)).unwrap(), evm_blob);
    assert!(f.keys().is_empty(), "{:?}", f.keys());
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("loaded user key kmk (32 bytes, unsealed by the TPM)");
    r.assert_contains("loaded evm-key (32 bytes, sealed by user:kmk)");
    assert_eq!(f.sfs_text("evm"), "1\n");
}

/// PCR `n` after one extend of `d` from zero.
fn extended_from_zero(d: &[u8; 32]) -> String {
    let mut h = Sha256::new();
    h.update([0u8; 32]);
    h.update(d);
    hex(&h.finalize())
}

#[test]
fn reseal_from_the_keyring_to_the_pcr_values_of_an_update() {
    let (mut tpm, f) = provisioned("reseal-keyring", "DROP_KMK=no\n");
    let evm_blob = fs::read(f.root().join(EVM)).unwrap();
    let old_blob = fs::read(f.root().join(BLOB)).unwrap();
    let r = f.run(&["status"]);
    r.assert_contains(&format!("kmk (tpm2): {}", f.root().join(BLOB).display()));
    r.assert_contains("PCR set: sha256:7,11");
    r.assert_contains(
        "this boot's before the PCR lock on PCR 11 satisfy the policy; no reseal due",
    );

    // An update will measure `d` into PCR 7: sealed to that, from the kmk
    // this boot kept, the next boot unseals the same kmk.
    let d = [0x42u8; 32];
    let r = f.run(&[
        "reseal",
        "--pcr-value",
        &format!("7={}", extended_from_zero(&d)),
        "--pcr-value",
        &format!("11={}", "0".repeat(64)),
    ]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("the kmk to seal again: user key kmk in keyring @s");
    r.assert_contains("it opens the evm-key blob");
    r.assert_contains("sealed the same 32-byte kmk again to sha256:7,11 under 0x81000001");
    r.assert_contains("rebuild it (dracut -f) before the next boot");
    assert_ne!(fs::read(f.root().join(BLOB)).unwrap(), old_blob);
    // The configuration records the values sealed to (TPM2_PCR_VALUES,
    // which spares the boot a PCR_Read): rewritten with the new ones.
    let conf = fs::read_to_string(f.root().join("etc/integrity-loader.conf")).unwrap();
    assert!(
        conf.contains(&format!("TPM2_PCR_VALUES=7={}", extended_from_zero(&d))),
        "{conf}"
    );

    // The next boot without the update: not unsealed, and status says so.
    next_boot(&mut tpm, &f);
    let r = f.run(&["load"]);
    assert_eq!(r.code, 1, "{}", r.output());
    r.assert_contains("PCR policy check failed");
    let r = f.run(&["status"]);
    r.assert_contains("do not satisfy the policy: reseal due");
    // With it: the same kmk, the old evm-key opens.
    next_boot(&mut tpm, &f);
    tpm.tool(&["tpm2_pcrextend", &format!("7:sha256={}", hex(&d))]);
    assert_boot_opens_the_old_evm_key(&f, &evm_blob);
    let r = f.run(&["status"]);
    r.assert_contains("no reseal due");
}

#[test]
fn reseal_by_unsealing_the_current_blob_to_another_pcr_set() {
    // DROP_KMK defaults to yes with the lock: nothing in the keyring.
    let (mut tpm, f) = provisioned("reseal-unseal", "");
    let evm_blob = fs::read(f.root().join(EVM)).unwrap();
    assert!(f.find("user", "kmk").is_none());
    // This boot locked PCR 11: the blob does not unseal, nothing is loaded.
    let before = fs::read(f.root().join(BLOB)).unwrap();
    let r = f.run(&["reseal"]);
    assert_eq!(r.code, 1, "{}", r.output());
    r.assert_contains("no kmk to seal again: no user key kmk in keyring @s");
    r.assert_contains("PCR 11 holds the PCR lock: this boot unsealed the kmk already");
    r.assert_contains("nothing was written");
    assert_eq!(fs::read(f.root().join(BLOB)).unwrap(), before);

    // Before the next boot's load (the PCRs still match): unsealed, and
    // the lock PCR left alone.
    next_boot(&mut tpm, &f);
    let r = f.run(&["reseal", "--pcrs", "sha256:7"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("the kmk to seal again: ");
    r.assert_contains(", unsealed");
    r.assert_contains("sealed the same 32-byte kmk again to sha256:7 under 0x81000001");
    r.assert_contains("wrote ");
    assert_eq!(pcr(&tpm, 11), "0".repeat(64), "reseal must not lock");
    let conf = fs::read_to_string(f.root().join("etc/integrity-loader.conf")).unwrap();
    assert!(conf.contains("TPM2_PCRS=sha256:7\n"), "{conf}");
    assert_eq!(conf.matches("TPM2_PCRS=").count(), 1, "{conf}");

    // PCR 11 no longer counts.
    next_boot(&mut tpm, &f);
    tpm.tool(&["tpm2_pcrextend", &format!("11:sha256={}", "17".repeat(32))]);
    assert_boot_opens_the_old_evm_key(&f, &evm_blob);
}

#[test]
fn a_kmk_that_does_not_open_the_evm_key_is_not_sealed() {
    let (_tpm, f) = provisioned("reseal-wrong", "DROP_KMK=no\n");
    let kmk = f.find("user", "kmk").unwrap();
    keyring::unlink(kmk, f.session).unwrap();
    keyring::add_key("user", Some("kmk"), &[7u8; 32], f.session).unwrap();
    let before = fs::read(f.root().join(BLOB)).unwrap();
    let r = f.run(&["reseal"]);
    assert_eq!(r.code, 1, "{}", r.output());
    r.assert_contains("does not open the evm-key blob");
    r.assert_contains("nothing was sealed or written");
    assert_eq!(fs::read(f.root().join(BLOB)).unwrap(), before);
}

#[test]
fn after_a_tpm_clear_reseal_under_a_new_srk_from_the_kept_kmk() {
    let (mut tpm, f) = provisioned("reseal-clear", "DROP_KMK=no\n");
    let evm_blob = fs::read(f.root().join(EVM)).unwrap();
    let conf = f.root().join("etc/integrity-loader.conf");
    let old_conf = fs::read_to_string(&conf).unwrap();
    tpm.tool(&["tpm2_clear"]);
    let r = f.run(&["status"]);
    r.assert_contains("storage key: none at 0x81000001");

    let r = f.run(&["reseal"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("the kmk to seal again: user key kmk in keyring @s");
    r.assert_contains("created the storage key (ECC P-256 SRK) at 0x81000001");
    r.assert_contains("is replaced by");
    // This boot locked PCR 11: sealed to the values its unseal saw.
    r.assert_contains("sealing to the PCR values this boot had when it unsealed the kmk");
    let new_conf = fs::read_to_string(&conf).unwrap();
    let pin = |c: &str| {
        c.lines()
            .find(|l| l.starts_with("TPM2_PARENT_NAME="))
            .unwrap()
            .to_string()
    };
    assert_ne!(pin(&old_conf), pin(&new_conf));
    // The pin this boot now stands by, for the next host-only build.
    let recorded = fs::read_to_string(f.dir.join("run/storage-key-name")).unwrap();
    assert_eq!(
        format!("TPM2_PARENT_NAME={}", recorded.trim()),
        pin(&new_conf)
    );

    next_boot(&mut tpm, &f);
    assert_boot_opens_the_old_evm_key(&f, &evm_blob);
}

#[test]
fn a_crash_while_staging_leaves_the_old_files_usable() {
    use std::os::unix::process::CommandExt;
    use std::os::unix::process::ExitStatusExt;
    let (mut tpm, f) = provisioned("reseal-crash", "DROP_KMK=no\n");
    let evm_blob = fs::read(f.root().join(EVM)).unwrap();
    let blob = fs::read(f.root().join(BLOB)).unwrap();
    let conf = fs::read(f.root().join("etc/integrity-loader.conf")).unwrap();
    // A file-size limit below the blob's size: the kernel kills reseal
    // (SIGXFSZ) in the middle of writing its temp file.
    let limit = (blob.len() / 2) as u64;
    let mut cmd = f.command(&["reseal", "--pcrs", "sha256:7"]);
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_FSIZE, limit, limit)
                .map_err(std::io::Error::from)
        });
    }
    let out = cmd.output().unwrap();
    assert_eq!(
        out.status.signal(),
        Some(nix::sys::signal::Signal::SIGXFSZ as i32),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read(f.root().join(BLOB)).unwrap(), blob);
    assert_eq!(
        fs::read(f.root().join("etc/integrity-loader.conf")).unwrap(),
        conf
    );
    // The next boot unseals the old blob; a reseal then goes through.
    next_boot(&mut tpm, &f);
    assert_boot_opens_the_old_evm_key(&f, &evm_blob);
    let r = f.run(&["reseal", "--pcrs", "sha256:7"]);
    assert_eq!(r.code, 0, "{}", r.output());
    next_boot(&mut tpm, &f);
    assert_boot_opens_the_old_evm_key(&f, &evm_blob);
}

/// Where the files of the root are now, by path inside it (temp files of
/// an interrupted write left out), for a crash test to start each run
/// from the same root.
fn files_of(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_of(&p));
        } else {
            out.push((p.clone(), fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

fn restore(f: &Fixture, files: &[(std::path::PathBuf, Vec<u8>)]) {
    fs::remove_dir_all(f.root().join("etc")).unwrap();
    for (p, bytes) in files {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, bytes).unwrap();
    }
}

#[test]
fn a_crash_between_the_renames_leaves_files_that_load() {
    // A move to another storage key and PCR set, with a new recovery key:
    // blob, recovery file and configuration all change, and the old
    // configuration cannot load the new blob nor the new the old.
    let (mut tpm, f) = provisioned("reseal-renames", "DROP_KMK=no\n");
    let evm_blob = fs::read(f.root().join(EVM)).unwrap();
    // A new storage key as the README's recipe makes one.
    tpm.provision_primary_with(
        "rsa2048",
        "0x81000002",
        &[
            "-a",
            "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt",
        ],
    );
    let before = files_of(&f.root());
    let args = [
        "reseal",
        "--parent",
        "0x81000002",
        "--pcrs",
        "sha256:7",
        "--recovery-key",
    ];
    let mut crashed = 0;
    for n in 1.. {
        next_boot(&mut tpm, &f);
        restore(&f, &before);
        if f.run_crashing_after_rename(&args, n).is_none() {
            break;
        }
        crashed = n;
        // The next boot loads a kmk that opens the old evm-key...
        next_boot(&mut tpm, &f);
        let r = f.run(&["load"]);
        assert_eq!(r.code, 0, "after a crash at rename {n}: {}", r.output());
        r.assert_contains("loaded evm-key (32 bytes, sealed by user:kmk)");
        assert_eq!(fs::read(f.root().join(EVM)).unwrap(), evm_blob);
        // ...and a reseal run again finishes the move.
        let r = f.run(&args);
        assert_eq!(r.code, 0, "reseal again after rename {n}: {}", r.output());
        next_boot(&mut tpm, &f);
        assert_boot_opens_the_old_evm_key(&f, &evm_blob);
        let conf = fs::read_to_string(f.root().join("etc/integrity-loader.conf")).unwrap();
        assert!(
            conf.contains(&format!("MASTERKEY=/{BLOB}\n"))
                && conf.contains("TPM2_PARENT=0x81000002\n")
                && conf.contains("TPM2_PCRS=sha256:7\n"),
            "after rename {n}: {conf}"
        );
    }
    // Every rename of the run was a crash point: blob, recovery file and
    // configuration beside the old ones, then in their places.
    assert_eq!(crashed, 6, "crash points");
    next_boot(&mut tpm, &f);
    assert_boot_opens_the_old_evm_key(&f, &evm_blob);
}

fn tpm_lines(conf: &str) -> Vec<&str> {
    conf.lines().filter(|l| l.starts_with("TPM=")).collect()
}

#[test]
fn tpm_given_with_the_option_is_not_written_into_the_configuration() {
    // The boot's TPM is the default device; this host reaches the TPM
    // (here a swtpm) with --tpm, as a provisioning host does.
    let (tpm, f) = provisioned("reseal-tpm-option", "DROP_KMK=no\n");
    let conf = f.root().join("etc/integrity-loader.conf");
    let text = fs::read_to_string(&conf).unwrap();
    let without: String = text
        .lines()
        .filter(|l| !l.starts_with("TPM="))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&conf, &without).unwrap();
    let tcti = tpm.tcti();
    let r = f.run(&["reseal", "--tpm", &tcti, "--pcrs", "sha256:7"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("names the TPM for this run only and is not written");
    let after = fs::read_to_string(&conf).unwrap();
    assert!(after.contains("TPM2_PCRS=sha256:7\n"), "{after}");
    assert!(tpm_lines(&after).is_empty(), "{after}");

    // A TPM= line the administrator wrote stays as written.
    let mine = format!("TPM={tcti}\n{without}");
    fs::write(&conf, &mine).unwrap();
    let r = f.run(&["reseal", "--pcrs", "sha256:7"]);
    assert_eq!(r.code, 0, "{}", r.output());
    let after = fs::read_to_string(&conf).unwrap();
    assert_eq!(tpm_lines(&after), [format!("TPM={tcti}")], "{after}");
    assert!(after.starts_with(&format!("TPM={tcti}\n")), "{after}");

    // seal --write-config alike, on a new system (its own session keyring).
    let g = Fixture::new("seal-tpm-option");
    let r = g.run(&[
        "seal",
        "--tpm",
        &tcti,
        "--write-config",
        "--pcrs",
        "sha256:7",
    ]);
    assert_eq!(r.code, 0, "{}", r.output());
    let written = fs::read_to_string(g.root().join("etc/integrity-loader.conf")).unwrap();
    assert!(written.contains("MASTERKEYTYPE=tpm2\n"), "{written}");
    assert!(tpm_lines(&written).is_empty(), "{written}");
}

#[test]
fn seal_refuses_to_orphan_the_labels() {
    let (mut tpm, f) = provisioned("reseal-orphan", "");
    let blob = fs::read(f.root().join(BLOB)).unwrap();
    let evm_blob = fs::read(f.root().join(EVM)).unwrap();
    for args in [
        vec!["seal", "--force"],
        vec!["seal", "--force", "--evm-key", "/etc/keys/evm.blob"],
        vec![
            "seal",
            "--force",
            "--output",
            "/etc/keys/new.pem",
            "--write-config",
        ],
    ] {
        let r = f.run(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.output());
        r.assert_contains("is sealed by user:kmk, the kmk of");
        r.assert_contains("this seal would make a new kmk");
        r.assert_contains(
            "every EVM HMAC made with it (the labels of the files) becomes unverifiable",
        );
        r.assert_contains("run `integrity-loader reseal`");
        r.assert_contains("add --replace-kmk-and-orphan-labels");
        assert_eq!(fs::read(f.root().join(BLOB)).unwrap(), blob);
        assert_eq!(fs::read(f.root().join(EVM)).unwrap(), evm_blob);
        assert!(!f.root().join("etc/keys/new.pem").exists());
    }
    // Beside it, leaving the configuration alone, nothing is lost.
    let r = f.run(&["seal", "--output", "/etc/keys/spare.pem"]);
    assert_eq!(r.code, 0, "{}", r.output());
    // Asked by name: replaced, and the old evm-key no longer opens.
    let r = f.run(&["seal", "--replace-kmk-and-orphan-labels"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("replacing it, as --replace-kmk-and-orphan-labels asks");
    assert_ne!(fs::read(f.root().join(BLOB)).unwrap(), blob);
    next_boot(&mut tpm, &f);
    let r = f.run(&["load"]);
    assert_eq!(r.code, 1, "{}", r.output());
    assert!(f.find("encrypted", "evm-key").is_none());
}

/// After a reseal cut short past its switch MASTERKEY names the blob
/// beside its place: a seal over that place (where the configuration
/// will name it) replaces the kmk as much as one over the file named now.
#[test]
fn seal_refuses_to_orphan_the_labels_after_a_move_cut_short() {
    let (mut tpm, f) = provisioned("reseal-orphan-beside", "DROP_KMK=no\n");
    f.crash_past_the_switch(&["reseal", "--pcrs", "sha256:7"], 2, BLOB);
    let before = files_of(&f.root());
    for args in [
        vec!["seal", "--force"],
        vec!["seal", "--force", "--output", "/etc/keys/kmk-tpm2.pem"],
        vec!["seal", "--force", "--output", "/etc/keys/kmk-tpm2.pem.next"],
    ] {
        let r = f.run(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.output());
        r.assert_contains("this seal would make a new kmk: it replaces");
        r.assert_contains("add --replace-kmk-and-orphan-labels");
        assert!(files_of(&f.root()) == before, "{args:?} wrote files");
    }
    // Asked by name: the new kmk in place, named there, nothing beside.
    let r = f.run(&["seal", "--replace-kmk-and-orphan-labels"]);
    assert_eq!(r.code, 0, "{}", r.output());
    let conf = fs::read_to_string(f.root().join("etc/integrity-loader.conf")).unwrap();
    assert!(
        conf.contains(&format!("MASTERKEY=/{BLOB}\n")) && !conf.contains(".next"),
        "{conf}"
    );
    let left: Vec<_> = files_of(&f.root())
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.to_string_lossy().contains(".next"))
        .collect();
    assert!(left.is_empty(), "side files left: {left:?}");
    next_boot(&mut tpm, &f);
    let r = f.run(&["load"]);
    r.assert_contains("loaded user key kmk (32 bytes, unsealed by the TPM)");
}

#[test]
fn seal_refuses_to_orphan_the_labels_of_a_user_kmk_too() {
    // dracut's user kmk and the evm-key sealed by it: a tpm2 kmk that the
    // configuration switches to, or an evm-key exported over it, loses them.
    // Refused before any TPM is asked (there is none here).
    let f = Fixture::new("orphan-user");
    dracut_setup(&f);
    let evm_blob = fs::read(f.root().join("etc/keys/evm-user.blob")).unwrap();
    for args in [
        vec!["seal", "--write-config", "--force"],
        vec!["seal", "--force", "--evm-key", "/etc/keys/evm-user.blob"],
    ] {
        let r = f.run(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.output());
        r.assert_contains("is sealed by user:kmk-user, the kmk of");
        r.assert_contains("add --replace-kmk-and-orphan-labels");
    }
    assert_eq!(
        fs::read(f.root().join("etc/keys/evm-user.blob")).unwrap(),
        evm_blob
    );
    assert!(!f.root().join(BLOB).exists());
}

/// The evm-key the configuration names now (EVMKEY of our file over
/// /etc/sysconfig/evm's), and the blob MASTERKEY names.
fn configured(f: &Fixture) -> (Vec<u8>, Vec<u8>) {
    let conf = fs::read_to_string(f.root().join("etc/integrity-loader.conf")).unwrap();
    let get = |key: &str, default: &str| {
        conf.lines()
            .rev()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or(default)
            .trim_matches('"')
            .trim_start_matches('/')
            .to_string()
    };
    let blob = fs::read(f.root().join(get("MASTERKEY", BLOB))).unwrap();
    let evm = fs::read(f.root().join(get("EVMKEY", EVM))).unwrap();
    (blob, evm)
}

#[test]
fn a_seal_of_a_new_kmk_crashed_at_any_rename_leaves_the_old_set_or_the_new() {
    let (mut tpm, f) = provisioned("seal-renames", "DROP_KMK=no\n");
    let old_blob = fs::read(f.root().join(BLOB)).unwrap();
    let old_evm = fs::read(f.root().join(EVM)).unwrap();
    let before = files_of(&f.root());
    // A new kmk and evm-key over the old: with the configuration rewritten
    // for another PCR set and a recovery key, and without --write-config.
    let runs: [(&[&str], usize); 2] = [
        (
            &[
                "seal",
                "--replace-kmk-and-orphan-labels",
                "--evm-key",
                "/etc/keys/evm.blob",
                "--write-config",
                "--recovery-key",
                "--pcrs",
                "sha256:7",
            ],
            8,
        ),
        (
            &[
                "seal",
                "--replace-kmk-and-orphan-labels",
                "--evm-key",
                "/etc/keys/evm.blob",
            ],
            6,
        ),
    ];
    for (args, points) in runs {
        let mut crashed = 0;
        for n in 1.. {
            next_boot(&mut tpm, &f);
            restore(&f, &before);
            if f.run_crashing_after_rename(args, n).is_none() {
                break;
            }
            crashed = n;
            // The old kmk with the old evm-key, or the new with the new.
            let (blob, evm) = configured(&f);
            assert_eq!(
                blob == old_blob,
                evm == old_evm,
                "{args:?}: a mix after a crash at rename {n}"
            );
            next_boot(&mut tpm, &f);
            let r = f.run(&["load"]);
            assert_eq!(
                r.code,
                0,
                "{args:?} crash at rename {n}: {}\n{}",
                r.output(),
                fs::read_to_string(f.root().join("etc/integrity-loader.conf")).unwrap()
            );
            r.assert_contains("loaded evm-key (32 bytes, sealed by user:kmk)");
            assert_eq!(f.sfs_text("evm"), "1\n");
            // A reseal (the kmk this boot kept) moves the set into place.
            let r = f.run(&["reseal"]);
            assert_eq!(r.code, 0, "{args:?} reseal after {n}: {}", r.output());
            let conf = fs::read_to_string(f.root().join("etc/integrity-loader.conf")).unwrap();
            assert!(
                conf.contains(&format!("MASTERKEY=/{BLOB}\n")) && !conf.contains(".next"),
                "{args:?} after {n}: {conf}"
            );
            assert!(
                !files_of(&f.root())
                    .iter()
                    .map(|(p, _)| p.file_name().unwrap().to_string_lossy().to_string())
                    // Temp files the crash cut short are not part of a set.
                    .any(|name| name.ends_with(".next")
                        || name.contains(".next.") && !name.contains(".tmp")),
                "{args:?} after {n}: a side file is left: {:?}",
                files_of(&f.root())
                    .iter()
                    .map(|(p, _)| p.clone())
                    .collect::<Vec<_>>()
            );
            let (_, evm) = configured(&f);
            next_boot(&mut tpm, &f);
            let r = f.run(&["load"]);
            assert_eq!(r.code, 0, "{args:?} after {n}: {}", r.output());
            r.assert_contains("loaded evm-key (32 bytes, sealed by user:kmk)");
            assert_eq!(fs::read(f.root().join(EVM)).unwrap(), evm);
        }
        assert_eq!(crashed, points, "{args:?}: crash points");
        // Uninterrupted: the new set, in place, and it loads.
        let (blob, evm) = configured(&f);
        assert_ne!(blob, old_blob);
        assert_ne!(evm, old_evm);
        let conf = fs::read_to_string(f.root().join("etc/integrity-loader.conf")).unwrap();
        assert!(!conf.contains(".next"), "{conf}");
        next_boot(&mut tpm, &f);
        let r = f.run(&["load"]);
        assert_eq!(r.code, 0, "{args:?}: {}", r.output());
        r.assert_contains("loaded evm-key (32 bytes, sealed by user:kmk)");
    }
}

#[test]
fn a_reseal_after_an_interrupted_one_crashed_at_any_rename_leaves_files_that_load() {
    let (mut tpm, f) = provisioned("reseal-after-switch", "DROP_KMK=no\n");
    let evm_blob = fs::read(f.root().join(EVM)).unwrap();
    tpm.provision_primary_with(
        "rsa2048",
        "0x81000002",
        &[
            "-a",
            "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt",
        ],
    );
    // A move to another storage key cut short right after its switch: the
    // configuration names the blob beside its place.
    f.crash_past_the_switch(
        &["reseal", "--parent", "0x81000002", "--pcrs", "sha256:7"],
        2,
        BLOB,
    );
    let before = files_of(&f.root());
    // The next run moves to another PCR set: the old configuration cannot
    // load its blob, so it goes beside too, and not over the blob in use.
    let args = ["reseal", "--pcrs", "sha256:0,7"];
    let mut crashed = 0;
    for n in 1.. {
        next_boot(&mut tpm, &f);
        restore(&f, &before);
        if f.run_crashing_after_rename(&args, n).is_none() {
            break;
        }
        crashed = n;
        next_boot(&mut tpm, &f);
        let r = f.run(&["load"]);
        assert_eq!(
            r.code,
            0,
            "after a crash at rename {n}: {}\n{}",
            r.output(),
            fs::read_to_string(f.root().join("etc/integrity-loader.conf")).unwrap()
        );
        r.assert_contains("loaded evm-key (32 bytes, sealed by user:kmk)");
        let r = f.run(&args);
        assert_eq!(r.code, 0, "reseal again after rename {n}: {}", r.output());
        let conf = fs::read_to_string(f.root().join("etc/integrity-loader.conf")).unwrap();
        assert!(
            conf.contains(&format!("MASTERKEY=/{BLOB}\n"))
                && conf.contains("TPM2_PCRS=sha256:0,7\n")
                && !conf.contains(".next"),
            "after rename {n}: {conf}"
        );
        next_boot(&mut tpm, &f);
        assert_boot_opens_the_old_evm_key(&f, &evm_blob);
    }
    // Beside (.next2), the switch, in place, the switch back.
    assert_eq!(crashed, 4, "crash points");
    let left: Vec<_> = files_of(&f.root())
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.to_string_lossy().contains(".next"))
        .collect();
    assert!(left.is_empty(), "side files left: {left:?}");
    next_boot(&mut tpm, &f);
    assert_boot_opens_the_old_evm_key(&f, &evm_blob);
}

/// The temp files (`.NAME.tmpPID`) under the root.
fn temp_files(f: &Fixture) -> Vec<String> {
    files_of(&f.root())
        .into_iter()
        .map(|(p, _)| p.file_name().unwrap().to_string_lossy().to_string())
        .filter(|n| n.starts_with('.') && n.contains(".tmp"))
        .collect()
}

#[test]
fn temp_files_a_crash_left_are_removed_by_the_next_run() {
    let (mut tpm, f) = provisioned("reseal-temps", "DROP_KMK=no\n");
    let evm_blob = fs::read(f.root().join(EVM)).unwrap();
    // Cut short after the first rename: the recovery file and the
    // configuration were staged, never renamed.
    let args = ["reseal", "--pcrs", "sha256:7", "--recovery-key"];
    f.run_crashing_after_rename(&args, 1)
        .expect("the run reaches rename 1");
    let left = temp_files(&f);
    assert!(
        left.iter()
            .any(|n| n.starts_with(".kmk-tpm2.pem.next.recovery.tmp"))
            && left
                .iter()
                .any(|n| n.starts_with(".integrity-loader.conf.tmp")),
        "{left:?}"
    );
    // Not ours: another file's temp name, and a symlink by one of ours.
    let keys = f.root().join("etc/keys");
    fs::write(keys.join(".notes.tmp1"), "mine").unwrap();
    std::os::unix::fs::symlink(
        "evm.blob",
        keys.join(format!(".kmk-tpm2.pem.tmp{}", out_of_range_pid())),
    )
    .unwrap();
    next_boot(&mut tpm, &f);
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    let r = f.run(&args);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("a temp file of a run cut short");
    let left = temp_files(&f);
    assert_eq!(
        left,
        [
            format!(".kmk-tpm2.pem.tmp{}", out_of_range_pid()),
            ".notes.tmp1".to_string()
        ],
        "{left:?}"
    );
    assert_eq!(fs::read(keys.join(".notes.tmp1")).unwrap(), b"mine");
    next_boot(&mut tpm, &f);
    assert_boot_opens_the_old_evm_key(&f, &evm_blob);
}

/// A PID no process has (above the largest the kernel gives).
fn out_of_range_pid() -> u32 {
    let max: u32 = fs::read_to_string("/proc/sys/kernel/pid_max")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    max + 1
}
