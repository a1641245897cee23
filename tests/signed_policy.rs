//! Signed PCR policies against a real swtpm: `seal --authorized-by` seals
//! the kmk to PolicyAuthorize of a key; `sign-policy` approves PCR values;
//! `load` unseals with a signature for the current values, again after the
//! PCRs move and new values are signed (no reseal: the old evm-key blob
//! still opens), and refuses values nobody signed and tampered signatures.
//! The policy digest and key Name are checked against tpm2-tools.

mod common;
#[path = "common/swtpm.rs"]
mod swtpm;

use common::*;
use integrity_loader::keyring;
use integrity_loader::tpm::pcr::PcrSelection;
use integrity_loader::tpm::policy_authorize::PolicyKey;
use integrity_loader::tpm::{keyfile, pcrsig, seal};
use std::fs;
use std::process::Command;
use swtpm::Swtpm;

const BLOB: &str = "etc/keys/kmk-tpm2.pem";
const EVM: &str = "etc/keys/evm.blob";

fn openssl(args: &[&str]) {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A key pair outside the root: (private, public) PEM paths.
fn key_pair(f: &Fixture, name: &str, rsa: bool) -> (String, String) {
    let private = f.dir.join(format!("{name}.key")).display().to_string();
    let public = f.dir.join(format!("{name}.pub.pem")).display().to_string();
    if rsa {
        openssl(&["genrsa", "-out", &private, "2048"]);
        openssl(&["rsa", "-in", &private, "-pubout", "-out", &public]);
    } else {
        openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &private,
        ]);
        openssl(&["pkey", "-in", &private, "-pubout", "-out", &public]);
    }
    (private, public)
}

fn pcr(tpm: &Swtpm, n: u8) -> String {
    let out = tpm.tool(&["tpm2_pcrread", &format!("sha256:{n}")]);
    let line = out
        .lines()
        .find(|l| l.split(':').next().map(str::trim) == Some(&n.to_string()))
        .unwrap();
    line.rsplit("0x").next().unwrap().trim().to_lowercase()
}

fn unhex(s: &str) -> [u8; 32] {
    let v: Vec<u8> = (0..64)
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

fn fresh_boot_state(f: &Fixture) {
    for id in keyring::list(f.session).unwrap() {
        keyring::unlink(id, f.session).unwrap();
    }
    fs::write(f.dir.join("sfs/evm"), b"").unwrap();
    let _ = fs::remove_dir_all(f.dir.join("run"));
}

fn sigfile(f: &Fixture) -> String {
    f.root()
        .join(format!("{BLOB}.pcrsig"))
        .display()
        .to_string()
}

/// Sealed with --authorized-by, configuration written, no signature yet.
fn sealed(name: &str, rsa: bool) -> (Swtpm, Fixture, String, String) {
    let tpm = Swtpm::start(name);
    let f = Fixture::new(name);
    f.write(
        "/etc/integrity-loader.conf",
        format!("TPM={}\nTPM2_PCRLOCK=no\n", tpm.tcti()),
    );
    let (private, public) = key_pair(&f, "policy", rsa);
    let r = f.run(&[
        "seal",
        "--authorized-by",
        &public,
        "--evm-key",
        &format!("/{EVM}"),
        "--write-config",
        "--force",
    ]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("the kmk unseals only with a policy over sha256:7,11 signed by the key");
    f.write("/etc/sysconfig/evm", format!("EVMKEY=/{EVM}\n"));
    let key = PolicyKey::from_pem(&fs::read(&public).unwrap()).unwrap();
    let stored = fs::read(f.root().join(format!("{BLOB}.pcrpkey"))).unwrap();
    assert_eq!(PolicyKey::from_pem(&stored).unwrap(), key);
    let blob = keyfile::parse_tss2(&fs::read(f.root().join(BLOB)).unwrap()).unwrap();
    assert_eq!(blob.auth_policy(), Some(key.policy().as_slice()));
    (tpm, f, private, public)
}

fn load_opens_evm(f: &Fixture) {
    fresh_boot_state(f);
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("loaded user key kmk (32 bytes, unsealed by the TPM)");
    r.assert_contains("loaded evm-key (32 bytes, sealed by user:kmk)");
    assert_eq!(f.sfs_text("evm"), "1\n");
}

fn load_refused(f: &Fixture, why: &str) {
    fresh_boot_state(f);
    let r = f.run(&["load"]);
    assert_ne!(r.code, 0, "{}", r.output());
    r.assert_contains(why);
    assert!(f.find("user", "kmk").is_none());
}

#[test]
fn signed_values_unseal_new_signed_values_need_no_reseal_unsigned_do_not() {
    let (tpm, f, private, _) = sealed("signed-ecc", false);
    let evm_blob = fs::read(f.root().join(EVM)).unwrap();
    load_refused(&f, "there is no signed policy to unseal it with");

    // Signed for the current values (read from the TPM).
    let r = f.run(&["sign-policy", "--key", &private, "--output", &sigfile(&f)]);
    assert_eq!(r.code, 0, "{}", r.output());
    assert!(!r.output().contains("PRIVATE KEY"), "{}", r.output());
    load_opens_evm(&f);
    let r = f.run(&["status"]);
    r.assert_contains("policy: PCR policies signed by the key of fingerprint");
    r.assert_contains("a signature approves this boot's");

    // An update moves PCR 7: values nobody signed do not unseal.
    let old7 = pcr(&tpm, 7);
    tpm.tool(&["tpm2_pcrextend", &format!("7:sha256={}", "42".repeat(32))]);
    let new7 = pcr(&tpm, 7);
    assert_ne!(old7, new7);
    load_refused(&f, "no signed policy for the current values of sha256:7,11");
    f.run(&["status"])
        .assert_contains("this boot's are not signed");

    // The update ships a signature over its values, made offline: the same
    // kmk unseals (the evm-key made at seal opens), without a reseal.
    let r = f.run(&[
        "sign-policy",
        "--key",
        &private,
        "--pcrs",
        "sha256:7,11",
        "--pcr-value",
        &format!("7={new7}"),
        "--pcr-value",
        &format!("11={}", pcr(&tpm, 11)),
        "--output",
        &sigfile(&f),
        "--append",
    ]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("(2 signature(s))");
    load_opens_evm(&f);
    assert_eq!(fs::read(f.root().join(EVM)).unwrap(), evm_blob);

    // Without --append an existing file is kept.
    let r = f.run(&["sign-policy", "--key", &private, "--output", &sigfile(&f)]);
    assert_eq!(r.code, 2, "{}", r.output());
    r.assert_contains("exists: --append adds this signature");

    // Tampered: the entry for the current values carries the signature of
    // the other entry; then a signature by another key. The TPM refuses both.
    let good = fs::read(sigfile(&f)).unwrap();
    let mut entries = pcrsig::parse(&good).unwrap();
    assert_eq!(entries.len(), 2);
    let other = entries[0].sig.clone();
    entries[1].sig = other;
    fs::write(sigfile(&f), pcrsig::encode(&entries)).unwrap();
    load_refused(&f, "is not signed by the key the kmk is sealed to");
    let (stranger, _) = key_pair(&f, "stranger", false);
    let foreign = f.dir.join("foreign.pcrsig").display().to_string();
    let r = f.run(&["sign-policy", "--key", &stranger, "--output", &foreign]);
    assert_eq!(r.code, 0, "{}", r.output());
    let mut forged = pcrsig::parse(&fs::read(&foreign).unwrap()).unwrap();
    forged[0].pkfp = None; // claims no key: the TPM must tell
    fs::write(sigfile(&f), pcrsig::encode(&forged)).unwrap();
    load_refused(&f, "the signature does not verify with the key");

    // The good file again: boots.
    fs::write(sigfile(&f), good).unwrap();
    load_opens_evm(&f);
}

/// A `.pcrsig` made with openssl alone, as systemd-measure makes one
/// (RSA PKCS#1 v1.5 over SHA-256 of the policy digest), is read; and
/// `sign-policy` signs with the RSA key as openssl does.
#[test]
fn an_rsa_key_and_a_pcrsig_signed_with_openssl_unseal() {
    let (tpm, f, private, public) = sealed("signed-rsa", true);
    let pcrs = PcrSelection::parse("sha256:7,11").unwrap();
    let values: Vec<[u8; 32]> = [7, 11].iter().map(|n| unhex(&pcr(&tpm, *n))).collect();
    let pol = seal::pcr_policy(&pcrs, &values);
    let pol_file = f.dir.join("pol.bin");
    fs::write(&pol_file, pol).unwrap();
    let sig_file = f.dir.join("pol.sig").display().to_string();
    openssl(&[
        "dgst",
        "-sha256",
        "-sign",
        &private,
        "-out",
        &sig_file,
        &pol_file.display().to_string(),
    ]);
    let sig = base64_encode(&fs::read(&sig_file).unwrap());
    let json = format!(
        "{{\"sha256\": [{{\"pcrs\": [7, 11], \"pol\": \"{}\", \"sig\": \"{sig}\"}}]}}\n",
        pol.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    fs::write(sigfile(&f), json).unwrap();
    load_opens_evm(&f);
    // sign-policy signs with the same key, PKCS#8 (openssl 3's genrsa) and
    // PKCS#1 (`-traditional`, systemd-measure's usual): openssl verifies
    // the signature, it is openssl's own (PKCS#1 v1.5 is deterministic),
    // and the TPM takes it at the boot's unseal.
    let pkcs1 = f.dir.join("policy.rsa.key").display().to_string();
    openssl(&["rsa", "-in", &private, "-traditional", "-out", &pkcs1]);
    assert!(
        fs::read_to_string(&pkcs1)
            .unwrap()
            .starts_with("-----BEGIN RSA PRIVATE KEY-----")
    );
    let openssl_sig = fs::read(&sig_file).unwrap();
    for key in [&private, &pkcs1] {
        fs::remove_file(sigfile(&f)).unwrap();
        let r = f.run(&["sign-policy", "--key", key, "--output", &sigfile(&f)]);
        assert_eq!(r.code, 0, "{key}: {}", r.output());
        assert!(!r.output().contains("PRIVATE KEY"), "{}", r.output());
        let entries = pcrsig::parse(&fs::read(sigfile(&f)).unwrap()).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].pol, pol);
        assert_eq!(entries[0].sig, openssl_sig, "{key}");
        let ours = f.dir.join("ours.sig").display().to_string();
        fs::write(&ours, &entries[0].sig).unwrap();
        openssl(&[
            "dgst",
            "-sha256",
            "-verify",
            &public,
            "-signature",
            &ours,
            &pol_file.display().to_string(),
        ]);
        load_opens_evm(&f);
    }
}

/// Our key Name and PolicyAuthorize digest are those tpm2-tools compute
/// (tpm2_loadexternal, then tpm2_policyauthorize in a trial session).
#[test]
fn the_policy_digest_is_the_one_tpm2_tools_compute() {
    let tpm = Swtpm::start("signed-tools");
    let f = Fixture::new("signed-tools");
    for (name, rsa) in [("ecc", false), ("rsa", true)] {
        let (_, public) = key_pair(&f, name, rsa);
        let key = PolicyKey::from_pem(&fs::read(&public).unwrap()).unwrap();
        let d = |n: &str| f.dir.join(format!("{name}.{n}")).display().to_string();
        fs::write(d("approved"), [7u8; 32]).unwrap();
        let script = format!(
            "set -e
tpm2_loadexternal -C o -G {alg} -u {public} -c {ctx} -n {kname} >/dev/null
tpm2_flushcontext -t
tpm2_startauthsession -S {session}
tpm2_policyauthorize -S {session} -L {digest} -i {approved} -n {kname} >/dev/null
tpm2_flushcontext {session}",
            alg = if rsa { "rsa" } else { "ecc" },
            ctx = d("ctx"),
            kname = d("name"),
            session = d("session"),
            digest = d("digest"),
            approved = d("approved"),
        );
        let out = Command::new("sh")
            .args(["-c", &script])
            .env("TPM2TOOLS_TCTI", tpm.tcti())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(fs::read(d("name")).unwrap(), key.name(), "{name} key Name");
        assert_eq!(
            fs::read(d("digest")).unwrap(),
            key.policy(),
            "{name} policy"
        );
    }
}

/// `reseal` of a kmk sealed with --authorized-by: after a TPM clear, under
/// a new storage key, sealed to the same key's PolicyAuthorize again, so
/// the signature made before still unseals it; --plain-pcrs seals it to
/// the PCR values instead, and the key file and signatures go with the
/// old blob.
#[test]
fn reseal_keeps_the_signed_policy_or_drops_it_when_asked() {
    let (tpm, f, private, public) = sealed("signed-reseal", false);
    let conf = f.root().join("etc/integrity-loader.conf");
    let mut text = fs::read_to_string(&conf).unwrap();
    text.push_str("DROP_KMK=no\n");
    fs::write(&conf, text).unwrap();
    let evm_blob = fs::read(f.root().join(EVM)).unwrap();
    let key = PolicyKey::from_pem(&fs::read(&public).unwrap()).unwrap();
    let r = f.run(&["sign-policy", "--key", &private, "--output", &sigfile(&f)]);
    assert_eq!(r.code, 0, "{}", r.output());
    let signatures = fs::read(sigfile(&f)).unwrap();
    let pcrpkey = f.root().join(format!("{BLOB}.pcrpkey"));
    let stored_key = fs::read(&pcrpkey).unwrap();
    load_opens_evm(&f);

    // Values are for the key to sign, not for reseal to pick.
    let r = f.run(&["reseal", "--pcr-value", &format!("7={}", pcr(&tpm, 7))]);
    assert_eq!(r.code, 2, "{}", r.output());
    r.assert_contains("--pcr-value has no meaning for a kmk sealed to PCR policies signed by");
    r.assert_contains("add --plain-pcrs");

    // The TPM is cleared: a new SRK, the kmk kept in the keyring.
    tpm.tool(&["tpm2_clear"]);
    let old_blob = fs::read(f.root().join(BLOB)).unwrap();
    let r = f.run(&["reseal"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("created the storage key");
    r.assert_contains("sealed the same 32-byte kmk again to the signed policies over sha256:7,11");
    let blob_bytes = fs::read(f.root().join(BLOB)).unwrap();
    assert_ne!(blob_bytes, old_blob);
    let blob = keyfile::parse_tss2(&blob_bytes).unwrap();
    assert_eq!(blob.auth_policy(), Some(key.policy().as_slice()));
    assert_eq!(fs::read(&pcrpkey).unwrap(), stored_key);
    assert_eq!(fs::read(sigfile(&f)).unwrap(), signatures);
    assert!(!f.root().join(format!("{BLOB}.next")).exists());
    // The signature made before the clear unseals it; the evm-key opens.
    load_opens_evm(&f);
    assert_eq!(fs::read(f.root().join(EVM)).unwrap(), evm_blob);

    // Asked for plain PCRs: sealed to the values, key file and signatures
    // gone, and the boot unseals without them (no stale key to ignore).
    let r = f.run(&["reseal", "--plain-pcrs"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("sealed the same 32-byte kmk again to sha256:7,11");
    let blob = keyfile::parse_tss2(&fs::read(f.root().join(BLOB)).unwrap()).unwrap();
    assert_ne!(blob.auth_policy(), Some(key.policy().as_slice()));
    assert!(!pcrpkey.exists());
    assert!(!std::path::Path::new(&sigfile(&f)).exists());
    fresh_boot_state(&f);
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    assert!(
        !r.output().contains("ignored (remove it)"),
        "{}",
        r.output()
    );
    r.assert_contains("loaded evm-key (32 bytes, sealed by user:kmk)");
}

/// `sign-policy` writes its file as `seal` and `reseal` write theirs
/// (`.NAME.tmpPID` beside it, renamed over it), so it removes what a run
/// of any of them cut short left beside it, and they remove its leftovers.
/// Offline: every value given, no TPM.
#[test]
fn sign_policy_removes_the_temp_files_a_run_cut_short_left() {
    let f = Fixture::new("signed-temps");
    let (private, _) = key_pair(&f, "policy", false);
    let dir = f.root().join("etc/keys");
    fs::create_dir_all(&dir).unwrap();
    let sig = dir.join("kmk-tpm2.pem.pcrsig");
    let mut child = Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = dir.join(format!(".kmk-tpm2.pem.pcrsig.tmp{dead}"));
    // A live process's, and another file's: not ours to remove.
    let live = dir.join(format!(".kmk-tpm2.pem.pcrsig.tmp{}", std::process::id()));
    let other = dir.join(format!(".kmk-tpm2.pem.tmp{dead}"));
    for p in [&stale, &live, &other] {
        fs::write(p, "cut short").unwrap();
    }
    let r = f.run(&[
        "sign-policy",
        "--key",
        &private,
        "--pcrs",
        "sha256:7",
        "--pcr-value",
        &format!("7={}", "00".repeat(32)),
        "--output",
        &sig.display().to_string(),
    ]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("a temp file of a run cut short");
    assert!(!stale.exists());
    assert!(live.exists() && other.exists());
    let mut left: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            format!(".kmk-tpm2.pem.pcrsig.tmp{}", std::process::id()),
            format!(".kmk-tpm2.pem.tmp{dead}"),
            "kmk-tpm2.pem.pcrsig".to_string()
        ]
    );
    assert_eq!(pcrsig::parse(&fs::read(&sig).unwrap()).unwrap().len(), 1);
}
