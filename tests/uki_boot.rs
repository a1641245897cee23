//! The loader as a citizen of systemd's boot, against a real swtpm: on a
//! UKI boot (systemd-stub's StubPcrKernelImage EFI variable, in a fake
//! efivarfs) it never extends PCR 11 and latches PCR 15 instead; every
//! extension it makes is in systemd's measure log and replays to the PCR;
//! `check` and `status` say what Secure Boot means for fix mode.

mod common;
#[path = "common/swtpm.rs"]
mod swtpm;

use common::*;
use sha2::{Digest, Sha256};
use swtpm::Swtpm;

const KMK: &[u8; 32] = b"kmk for a boot that systemd runs";
const LOADER_GUID: &str = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";
const GLOBAL_GUID: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn pcr(tpm: &Swtpm, n: u8) -> String {
    let out = tpm.tool(&["tpm2_pcrread", &format!("sha256:{n}")]);
    let line = out
        .lines()
        .find(|l| {
            l.trim_start().starts_with(&format!("{n} "))
                || l.trim_start().starts_with(&format!("{n}:"))
        })
        .unwrap_or_else(|| panic!("no PCR {n} in {out}"));
    line.rsplit("0x").next().unwrap().trim().to_lowercase()
}

/// The fake efivarfs: a UKI measured into PCR 11 (as systemd-stub writes
/// it: attributes, then "11" in UTF-16LE with its NUL), Secure Boot as
/// given.
fn efivars(f: &Fixture, uki: bool, secure_boot: Option<u8>) {
    let dir = f.dir.join("efivars");
    std::fs::create_dir_all(&dir).unwrap();
    if uki {
        let mut v = vec![6u8, 0, 0, 0];
        v.extend("11\0".encode_utf16().flat_map(u16::to_le_bytes));
        std::fs::write(dir.join(format!("StubPcrKernelImage-{LOADER_GUID}")), v).unwrap();
    }
    if let Some(sb) = secure_boot {
        std::fs::write(
            dir.join(format!("SecureBoot-{GLOBAL_GUID}")),
            [6, 0, 0, 0, sb],
        )
        .unwrap();
    }
}

/// A root with the kmk sealed by tpm2-tools to `pcrs` (their values now)
/// and the given configuration lines.
fn fixture(tpm: &Swtpm, name: &str, pcrs: &str, conf: &str) -> Fixture {
    tpm.seal_with_tools(KMK, pcrs);
    let f = Fixture::new(name);
    f.write(
        "/etc/integrity-loader.conf",
        format!(
            "MASTERKEYTYPE=tpm2\nMASTERKEY=/etc/keys/kmk.pem\nTPM={}\n{conf}",
            tpm.tcti()
        ),
    );
    f.write("/etc/keys/kmk.pem", tpm.read("seal.pem"));
    f.write("/etc/sysconfig/evm", "EVMKEY=/etc/keys/evm.blob\n");
    f.write("/etc/keys/evm.blob", make_evm_blob(KMK, "kmk"));
    f
}

/// The records of systemd's measure log: (pcr, sha256 digest, string),
/// read back as a verifier would (RFC 7464: 0x1E before each record).
fn records(f: &Fixture) -> Vec<(u8, String, String)> {
    let text = std::fs::read_to_string(f.dir.join("tpm2-measure.log")).unwrap();
    assert!(text.starts_with('\x1e'), "{text:?}");
    let field = |r: &str, name: &str| -> String {
        let at = r
            .find(&format!("\"{name}\":"))
            .unwrap_or_else(|| panic!("no {name} in {r}"));
        let rest = &r[at + name.len() + 3..];
        match rest.strip_prefix('"') {
            Some(s) => s[..s.find('"').unwrap()].to_string(),
            None => rest[..rest.find([',', '}']).unwrap()].to_string(),
        }
    };
    text.split('\x1e')
        .skip(1)
        .map(|r| {
            assert!(r.ends_with("}\n"), "{r:?}");
            assert!(r.contains("\"hashAlg\":\"sha256\""), "{r}");
            assert!(r.contains("\"content_type\":\"systemd\""), "{r}");
            assert_eq!(field(r, "bootId").len(), 32, "{r}");
            (
                field(r, "pcr").parse().unwrap(),
                field(r, "digest"),
                field(r, "string"),
            )
        })
        .collect()
}

/// PCR `n`'s value from zero after the log's records for it.
fn replay(records: &[(u8, String, String)], n: u8) -> String {
    let mut v = [0u8; 32];
    for (p, digest, string) in records.iter().filter(|r| r.0 == n) {
        assert_eq!(*p, n);
        // The digest is the hash of the record's text, as systemd-pcrlock checks.
        assert_eq!(*digest, hex(&Sha256::digest(string.as_bytes())), "{string}");
        let mut h = Sha256::new();
        h.update(v);
        h.update(unhex(digest));
        v = h.finalize().into();
    }
    hex(&v)
}

#[test]
fn on_a_uki_boot_pcr_11_is_left_to_systemd_and_pcr_15_latches() {
    let tpm = Swtpm::start("uki-latch");
    tpm.provision_srk();
    // No TPM2_PCRS: on a UKI boot the default is sha256:7,15.
    let f = fixture(&tpm, "uki-latch", "sha256:7,15", "");
    efivars(&f, true, None);
    let r = f.run(&["check"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("UKI: yes, systemd-stub measured it into PCR 11");
    r.assert_contains("PCR lock: PCR 15 (default: the policy sha256:7,15 has PCR 15");
    r.assert_contains("would unseal user key kmk from");
    r.assert_contains("then lock PCR 15");

    let r = f.run(&["load", "-v"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("loaded user key kmk (32 bytes, unsealed by the TPM)");
    r.assert_contains("locked PCR 15");
    r.assert_contains("recorded the extend of PCR 15 in systemd's measure log");
    assert_eq!(pcr(&tpm, 11), "0".repeat(64), "PCR 11 touched");
    let pcr15 = pcr(&tpm, 15);
    assert_ne!(pcr15, "0".repeat(64));
    // The record replays to the PCR.
    let recs = records(&f);
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0].2, "integrity-loader: kmk unsealed");
    assert_eq!(replay(&recs, 15), pcr15);
    assert!(
        !std::fs::read_to_string(f.dir.join("tpm2-measure.log"))
            .unwrap()
            .contains(&hex(KMK))
    );
}

#[test]
fn without_a_uki_the_dracut_lock_stays_and_is_logged_too() {
    let tpm = Swtpm::start("no-uki");
    tpm.provision_srk();
    let f = fixture(&tpm, "no-uki", "sha256:7,11", "");
    efivars(&f, false, Some(0));
    let r = f.run(&["check"]);
    r.assert_contains("UKI: no");
    r.assert_contains("PCR lock: PCR 11 (default: the policy sha256:7,11 has PCR 11, dracut's lock PCR); no UKI booted");
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    let recs = records(&f);
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(replay(&recs, 11), pcr(&tpm, 11));
}

#[test]
fn an_explicit_lock_of_pcr_11_on_a_uki_boot_is_refused() {
    let tpm = Swtpm::start("uki-11");
    tpm.provision_srk();
    let f = fixture(
        &tpm,
        "uki-11",
        "sha256:7,11",
        "TPM2_PCRS=sha256:7,11\nTPM2_PCRLOCK=11\n",
    );
    efivars(&f, true, None);
    for cmd in ["check", "load"] {
        let r = f.run(&[cmd]);
        assert_eq!(r.code, 2, "{}", r.output());
        r.assert_contains(
            "integrity-loader.conf:5: TPM2_PCRLOCK=11: this kernel was booted from a UKI",
        );
        r.assert_contains("TPM2_PCRLOCK=15");
    }
    assert_eq!(pcr(&tpm, 11), "0".repeat(64));
    // Without the line, PCR 11 is not locked, and the loader says why that
    // is weak.
    let g = fixture(
        &tpm,
        "uki-11-default",
        "sha256:7,11",
        "TPM2_PCRS=sha256:7,11\n",
    );
    efivars(&g, true, None);
    let r = g.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("so the loader does not lock it there");
    assert_eq!(pcr(&tpm, 11), "0".repeat(64));
    assert!(!g.dir.join("tpm2-measure.log").exists());
}

#[test]
fn check_and_status_say_what_secure_boot_means_for_fix_mode() {
    let f = Fixture::new("secure-boot");
    dracut_setup(&f);
    f.set_cmdline("root=/dev/vda ima_appraise=fix evm=fix");
    efivars(&f, false, Some(1));
    for cmd in ["check", "status"] {
        let r = f.run(&[cmd]);
        r.assert_contains("Secure Boot: on: the kernel ignores ima_appraise=fix");
        r.assert_contains("ima_appraise=fix is on the kernel command line, but Secure Boot is on");
        r.assert_contains("`relabel` cannot label files in this boot");
    }
    efivars(&f, false, Some(0));
    let r = f.run(&["status"]);
    r.assert_contains("Secure Boot: off");
    r.assert_contains("IMA fix mode, `relabel` can label files in this boot");
    f.set_cmdline("root=/dev/vda");
    let r = f.run(&["check"]);
    assert!(
        !r.output().contains("ima_appraise=fix is on"),
        "{}",
        r.output()
    );
}
