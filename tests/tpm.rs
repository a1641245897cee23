//! The TPM client against a real software TPM (swtpm), with tpm2-tools as
//! the independent reference: blobs sealed by tpm2-tools unseal with our
//! client, a PCR change makes unseal fail with the PCR message without
//! moving the dictionary-attack counter, the kmk never crosses the bus in
//! clear, and `load` with MASTERKEYTYPE=tpm2 works end to end.

mod common;
#[path = "common/swtpm.rs"]
mod swtpm;

use common::*;
use integrity_loader::secret::Secret;
use integrity_loader::tpm::client::Tpm;
use integrity_loader::tpm::keyfile;
use integrity_loader::tpm::pcr::PcrSelection;
use integrity_loader::tpm::tcti;
use integrity_loader::tpm::transport::{self, Recording};
use integrity_loader::tpm::unseal::{self, BusEncryption, Parent, UnsealError};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use swtpm::Swtpm;

const KMK: &[u8; 32] = b"tpm-sealed kmk, 32 bytes long!!!";

fn client(tpm: &Swtpm) -> Tpm {
    let t = tcti::parse(&tpm.tcti()).unwrap();
    Tpm::new(transport::open(&t, Duration::from_secs(10)).unwrap())
}

fn pcrs() -> PcrSelection {
    PcrSelection::parse("sha256:7,11").unwrap()
}

/// Unseals under the unpinned SRK at 0x81000001 over sha256:7,11.
fn unseal_under_srk(tpm: &Swtpm, blob: &keyfile::SealedBlob) -> Result<Secret, UnsealError> {
    unseal::unseal(
        &mut client(tpm),
        blob,
        Parent::unpinned(0x8100_0001),
        &pcrs(),
    )
}

#[test]
fn unseals_a_tss2_file_sealed_by_tpm2_tools() {
    let tpm = Swtpm::start("tss2");
    tpm.provision_srk();
    let pem = tpm.seal_with_tools(KMK, "sha256:7,11");
    let blob = keyfile::parse_tss2(&pem).unwrap();
    let mut c = client(&tpm);
    let secret = unseal::unseal(&mut c, &blob, Parent::unpinned(0x8100_0001), &pcrs()).unwrap();
    assert_eq!(secret.expose(), KMK);
    // ReadPublic, StartAuthSession, PolicyPCR, Load, Unseal, FlushContext.
    assert_eq!(c.stats.commands, 6);
    // swtpm serves one client at a time: hang up before tpm2-tools asks.
    drop(c);
    // Every transient handle was flushed: tpm2-tools sees none left.
    let left = tpm.tool(&["tpm2_getcap", "handles-transient"]);
    assert!(left.trim().is_empty(), "transient handles left: {left}");
}

#[test]
fn unseals_a_tpm2_tools_pub_priv_pair() {
    let tpm = Swtpm::start("pair");
    tpm.provision_srk();
    tpm.seal_with_tools(KMK, "sha256:7,11");
    let blob = keyfile::parse_tpm2_tools(&tpm.read("seal.pub"), &tpm.read("seal.priv")).unwrap();
    let secret = unseal_under_srk(&tpm, &blob).unwrap();
    assert_eq!(secret.expose(), KMK);
}

#[test]
fn changed_pcr_fails_with_the_pcr_message_and_no_lockout() {
    let tpm = Swtpm::start("pcr");
    tpm.provision_srk();
    let blob = keyfile::parse_tss2(&tpm.seal_with_tools(KMK, "sha256:7,11")).unwrap();
    let before = tpm.lockout_counter();
    tpm.tool(&[
        "tpm2_pcrextend",
        "7:sha256=0000000000000000000000000000000000000000000000000000000000000001",
    ]);
    let err = unseal_under_srk(&tpm, &blob).unwrap_err();
    assert!(matches!(err, UnsealError::PcrMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("PCR policy check failed: the kmk is sealed to sha256:7,11"),
        "{msg}"
    );
    assert!(msg.contains("7=") && msg.contains("11="), "{msg}");
    assert_eq!(tpm.lockout_counter(), before, "the DA counter moved");
    let left = tpm.tool(&["tpm2_getcap", "handles-transient"]);
    assert!(left.trim().is_empty(), "transient handles left: {left}");
}

#[test]
fn missing_parent_says_how_to_create_it() {
    let tpm = Swtpm::start("noparent");
    tpm.provision_srk();
    let blob = keyfile::parse_tss2(&tpm.seal_with_tools(KMK, "sha256:7,11")).unwrap();
    tpm.tool(&["tpm2_evictcontrol", "-Q", "-C", "o", "-c", "0x81000001"]);
    let err = unseal_under_srk(&tpm, &blob).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("no storage key at persistent handle 0x81000001: create it with"),
        "{err}"
    );
}

fn recorded_unseal(tpm: &Swtpm, blob: &keyfile::SealedBlob, encryption: BusEncryption) -> Vec<u8> {
    let t = tcti::parse(&tpm.tcti()).unwrap();
    let inner = transport::open(&t, Duration::from_secs(10)).unwrap();
    let record = Arc::new(Mutex::new(Vec::new()));
    let mut c = Tpm::new(Box::new(Recording::new(inner, record.clone())));
    let secret = unseal::unseal_with(
        &mut c,
        blob,
        Parent::unpinned(0x8100_0001),
        &pcrs(),
        encryption,
    )
    .unwrap();
    assert_eq!(secret.expose(), KMK);
    record.lock().unwrap().clone()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_kmk_never_crosses_the_bus_in_clear() {
    let tpm = Swtpm::start("bus");
    tpm.provision_srk();
    let blob = keyfile::parse_tss2(&tpm.seal_with_tools(KMK, "sha256:7,11")).unwrap();
    let traffic = recorded_unseal(&tpm, &blob, BusEncryption::On);
    assert!(!traffic.is_empty());
    assert!(!contains(&traffic, KMK), "the kmk crossed the bus in clear");
    assert!(
        !contains(&traffic, &KMK[..8]),
        "part of the kmk crossed the bus in clear"
    );
    // The check can fail: without response encryption the kmk is visible.
    let traffic = recorded_unseal(&tpm, &blob, BusEncryption::Off);
    assert!(
        contains(&traffic, KMK),
        "the recording should show the clear kmk"
    );
}

#[test]
fn load_with_a_tpm2_kmk_end_to_end() {
    let tpm = Swtpm::start("load");
    tpm.provision_srk();
    let pem = tpm.seal_with_tools(KMK, "sha256:7,11");
    let f = Fixture::new("tpm2-load");
    f.write(
        "/etc/integrity-loader.conf",
        format!(
            "MASTERKEYTYPE=tpm2\nMASTERKEY=/etc/keys/kmk.tss2.pem\nTPM={}\nTPM2_PCRS=sha256:7,11\n",
            tpm.tcti()
        ),
    );
    f.write("/etc/keys/kmk.tss2.pem", pem);
    f.write("/etc/sysconfig/evm", "EVMKEY=/etc/keys/evm.blob\n");
    f.write("/etc/keys/evm.blob", make_evm_blob(KMK, "kmk"));
    // `check` takes the evm-key sealed by user:kmk as the tpm2 kmk's (it
    // once compared it with "tpm2:kmk" and failed).
    let r = f.run(&["check"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("would load evm-key (32 bytes, sealed by user:kmk)");
    let r = f.run(&["load", "-v"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("loaded user key kmk (32 bytes, unsealed by the TPM)");
    // ReadPublic, StartAuthSession, PolicyPCR, Load, Unseal, FlushContext,
    // and the PCR lock's PCR_Read and PCR_Extend.
    r.assert_contains("TPM: 8 commands");
    assert_eq!(f.sfs_text("evm"), "1\n");
    // Secret hygiene on this path too.
    let hex: String = KMK.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!r.output().contains(&hex) && !r.output().contains("tpm-sealed kmk"));

    // A changed PCR: the step fails with the PCR message, nothing is loaded.
    let g = Fixture::new("tpm2-pcr");
    std::fs::create_dir_all(g.root().join("etc/keys")).unwrap();
    for file in [
        "etc/integrity-loader.conf",
        "etc/keys/kmk.tss2.pem",
        "etc/sysconfig/evm",
        "etc/keys/evm.blob",
    ] {
        std::fs::create_dir_all(g.root().join(file).parent().unwrap()).unwrap();
        std::fs::copy(f.root().join(file), g.root().join(file)).unwrap();
    }
    tpm.tool(&[
        "tpm2_pcrextend",
        "11:sha256=0000000000000000000000000000000000000000000000000000000000000002",
    ]);
    let before = g.snapshot();
    let r = g.run(&["load"]);
    assert_eq!(r.code, 1);
    r.assert_contains("PCR policy check failed: the kmk is sealed to sha256:7,11");
    r.assert_contains("evm-key: skipped: step kmk failed");
    assert_eq!(g.snapshot(), before);
}

#[test]
fn a_tpm_that_does_not_answer_fails_the_step_in_time() {
    // A listener that accepts and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _hold = std::thread::spawn(move || {
        let conns: Vec<_> = listener.incoming().take(2).collect();
        std::thread::sleep(Duration::from_secs(10));
        drop(conns);
    });
    let f = Fixture::new("tpm2-silent");
    f.write(
        "/etc/integrity-loader.conf",
        format!("MASTERKEYTYPE=tpm2\nMASTERKEY=/etc/keys/kmk.pem\nTPM=swtpm:host=127.0.0.1,port={port}\nTPM_TIMEOUT=1\n"),
    );
    f.write(
        "/etc/keys/kmk.pem",
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/tpm/seal.tss2.pem"
        ))
        .unwrap(),
    );
    let start = std::time::Instant::now();
    let r = f.run(&["load"]);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(r.code, 1);
    r.assert_contains("did not answer");
    assert!(f.keys().is_empty());
}

fn seal_fixture(tpm: &Swtpm, name: &str) -> Fixture {
    let f = Fixture::new(name);
    f.write(
        "/etc/integrity-loader.conf",
        format!("TPM={}\n", tpm.tcti()),
    );
    f
}

#[test]
fn seal_provisions_and_load_unseals() {
    let tpm = Swtpm::start("seal");
    let f = seal_fixture(&tpm, "seal");
    // No storage key yet: seal creates it.
    let conf = f.root().join("etc/integrity-loader.conf");
    let r = f.run(&["seal", "--evm-key", "/etc/keys/evm.blob"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("created the storage key (ECC P-256 SRK) at 0x81000001");
    r.assert_contains("sealed a new 32-byte kmk to sha256:7,11 under 0x81000001");
    let blob = f.root().join("etc/keys/kmk-tpm2.pem");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&blob).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // A second seal refuses to replace the blob.
    let before = std::fs::read(&blob).unwrap();
    let r = f.run(&["seal"]);
    assert_eq!(r.code, 2);
    r.assert_contains("exists; not replacing it without --force");
    assert_eq!(std::fs::read(&blob).unwrap(), before);

    // The loader unseals it and the evm-key sealed by it loads.
    std::fs::write(
        &conf,
        format!(
            "TPM={}\nMASTERKEYTYPE=tpm2\nMASTERKEY=/etc/keys/kmk-tpm2.pem\nTPM2_PCRLOCK=no\n",
            tpm.tcti()
        ),
    )
    .unwrap();
    f.write("/etc/sysconfig/evm", "EVMKEY=/etc/keys/evm.blob\n");
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("loaded user key kmk (32 bytes, unsealed by the TPM)");
    assert_eq!(f.sfs_text("evm"), "1\n");
    let kmk = integrity_loader::keyring::read_secret(f.find("user", "kmk").unwrap()).unwrap();

    // tpm2-tools unseals our blob with a PCR policy session: same bytes.
    let item = tpm.path("item.ctx");
    let session = tpm.path("session.ctx");
    let out = tpm.path("unsealed");
    let script = format!(
        "tpm2_load -Q -r {} -c {item} && tpm2_startauthsession -Q --policy-session -S {session} && \
         tpm2_policypcr -Q -S {session} -l sha256:7,11 && tpm2_unseal -p session:{session} -c {item} -o {out}",
        blob.display()
    );
    let st = std::process::Command::new("sh")
        .args(["-c", &script])
        .env("TPM2TOOLS_TCTI", tpm.tcti())
        .status()
        .unwrap();
    assert!(st.success(), "tpm2-tools could not unseal our blob");
    assert!(
        kmk.constant_time_eq(&std::fs::read(&out).unwrap()),
        "tpm2_unseal gave other bytes"
    );
    std::fs::remove_file(&out).unwrap();
}

#[test]
fn seal_for_future_pcr_values() {
    use sha2::{Digest, Sha256};
    let tpm = Swtpm::start("future");
    let f = seal_fixture(&tpm, "future");
    // PCR 11 after one extend with d, from all zeros.
    let d = [0x42u8; 32];
    let mut h = Sha256::new();
    h.update([0u8; 32]);
    h.update(d);
    let future: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let r = f.run(&[
        "seal",
        "--pcrs",
        "sha256:11",
        "--pcr-value",
        &format!("11={future}"),
        "--write-config",
        "--force",
    ]);
    assert_eq!(r.code, 0, "{}", r.output());
    // The new blob's SHA-256 is not the one a host-only initramfs pins.
    r.assert_contains("rebuild it (dracut -f) before the next boot");
    let conf = std::fs::read_to_string(f.root().join("etc/integrity-loader.conf")).unwrap();
    assert!(
        conf.contains("MASTERKEYTYPE=tpm2\n") && conf.contains("TPM2_PCRS=sha256:11\n"),
        "{conf}"
    );
    assert!(conf.contains(&format!("TPM={}\n", tpm.tcti())), "{conf}");
    // Not yet: PCR 11 is still zero.
    let r = f.run(&["load"]);
    assert_eq!(r.code, 1);
    r.assert_contains("PCR policy check failed: the kmk is sealed to sha256:11");
    assert!(f.find("user", "kmk").is_none());
    // After the expected extend, it unseals.
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    tpm.tool(&["tpm2_pcrextend", &format!("11:sha256={hex}")]);
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("loaded user key kmk (32 bytes, unsealed by the TPM)");
}

#[test]
fn seal_options_are_checked_before_the_tpm_is_touched() {
    for (args, msg) in [
        (
            vec!["seal", "--pcrs", "sha1:7"],
            "--pcrs: PCR selection \"sha1:7\"",
        ),
        (
            vec!["seal", "--pcr-value", "7=abc"],
            "--pcr-value 7=abc: expected N=64 hex digits",
        ),
        (
            vec!["seal", "--parent", "0x40000001"],
            "--parent 0x40000001: expected a persistent handle",
        ),
        (vec!["load", "--force"], "are options of seal"),
        (
            vec!["seal", "--output", "keys/kmk.pem"],
            "must be an absolute path without '..'",
        ),
    ] {
        let f = Fixture::new("seal-usage");
        f.write(
            "/etc/integrity-loader.conf",
            "TPM=swtpm:host=127.0.0.1,port=9\n",
        );
        let r = f.run(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.output());
        r.assert_contains(msg);
    }
}

#[test]
fn seal_writes_inside_the_root_through_symlinks() {
    let tpm = Swtpm::start("seal-symlinks");
    let f = seal_fixture(&tpm, "seal-symlinks");
    // The root's /etc/keys points at an absolute path that exists on the
    // host too: seal must follow it inside the root, as the boot will.
    let host_dir = std::env::temp_dir().join(format!("il-host-keys-{}", std::process::id()));
    std::fs::create_dir_all(&host_dir).unwrap();
    std::os::unix::fs::symlink(&host_dir, f.root().join("etc/keys")).unwrap();
    let r = f.run(&["seal", "--pcrs", "sha256:7", "--write-config", "--force"]);
    assert_eq!(r.code, 0, "{}", r.output());
    let inside = f
        .root()
        .join(host_dir.strip_prefix("/").unwrap())
        .join("kmk-tpm2.pem");
    assert!(inside.is_file(), "{}", r.output());
    r.assert_contains(&format!("{}", inside.display()));
    assert_eq!(std::fs::read_dir(&host_dir).unwrap().count(), 0);
    std::fs::remove_dir(&host_dir).unwrap();
    // And the boot finds it the same way.
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());

    // A symlink that climbs out of the root is refused before the TPM.
    let g = seal_fixture(&tpm, "seal-escape");
    std::os::unix::fs::symlink("../../../../../../../../tmp", g.root().join("etc/keys")).unwrap();
    let r = g.run(&["seal", "--pcrs", "sha256:7"]);
    assert_eq!(r.code, 2, "{}", r.output());
    r.assert_contains("etc/keys/kmk-tpm2.pem");
    r.assert_contains("a symlink on this path leads out of the real root");
}

#[test]
fn seal_refuses_a_parent_that_is_not_a_storage_key_of_this_tpm() {
    let tpm = Swtpm::start("seal-weak-parent");
    tpm.provision_srk();
    // A storage key that may leave the TPM (no fixedTPM/fixedParent), made
    // under the SRK and persisted: whoever duplicated it knows its key.
    let (public, private, ctx) = (
        tpm.path("dup.pub"),
        tpm.path("dup.priv"),
        tpm.path("dup.ctx"),
    );
    tpm.tool(&[
        "tpm2_create",
        "-Q",
        "-C",
        "0x81000001",
        "-G",
        "ecc",
        "-a",
        "restricted|decrypt|sensitivedataorigin|userwithauth",
        "-u",
        &public,
        "-r",
        &private,
    ]);
    tpm.tool(&[
        "tpm2_load",
        "-Q",
        "-C",
        "0x81000001",
        "-u",
        &public,
        "-r",
        &private,
        "-c",
        &ctx,
    ]);
    tpm.persist(&ctx, "0x81000003");
    let f = seal_fixture(&tpm, "seal-weak-parent");
    let r = f.run(&["seal", "--pcrs", "sha256:7", "--parent", "0x81000003"]);
    assert_eq!(r.code, 1, "{}", r.output());
    r.assert_contains(
        "the key at 0x81000003 (attributes 0x00030060) is not a storage key generated in this TPM",
    );
    assert!(!f.root().join("etc/keys/kmk-tpm2.pem").exists());
}

#[test]
fn seal_refuses_a_tpm_without_the_sha256_bank_and_names_it() {
    let tpm = Swtpm::start_with_banks("sha1-only", "sha1");
    let f = seal_fixture(&tpm, "sha1-only");
    let zero = "0".repeat(64);
    let (v7, v11) = (format!("7={zero}"), format!("11={zero}"));
    let future = ["--pcr-value", v7.as_str(), "--pcr-value", v11.as_str()];
    for extra in [&[][..], &future[..]] {
        let args: Vec<&str> = ["seal"].iter().chain(extra).copied().collect();
        let r = f.run(&args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.output());
        r.assert_contains(
            "the TPM has no sha256 PCR bank (its allocated banks: sha1), so a policy over sha256:7,11 can never be satisfied: allocate the sha256 bank",
        );
        assert!(!r.output().contains("malformed"), "{}", r.output());
        assert!(!f.root().join("etc/keys/kmk-tpm2.pem").exists());
    }
    // Refused before anything was made in the TPM either.
    let handles = tpm.tool(&["tpm2_getcap", "handles-persistent"]);
    assert!(!handles.contains("0x81"), "{handles}");
}

#[test]
fn an_unseal_on_a_tpm_that_lost_its_sha256_bank_names_it() {
    let mut tpm = Swtpm::start("bank-gone");
    tpm.provision_srk();
    let blob = keyfile::parse_tss2(&tpm.seal_with_tools(KMK, "sha256:7,11")).unwrap();
    tpm.tool(&[
        "tpm2_pcrallocate",
        "sha1:all+sha256:none+sha384:none+sha512:none",
    ]);
    tpm.reboot();
    let err = unseal_under_srk(&tpm, &blob).unwrap_err();
    assert!(matches!(err, UnsealError::Bank(_)), "{err}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("the TPM has no sha256 PCR bank (its allocated banks: sha1)"),
        "{msg}"
    );
}

/// The attributes of the README's RSA storage key recipe.
const README_RSA_ATTRIBUTES: &str =
    "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt";

#[test]
fn seal_warns_of_a_storage_key_without_noda_and_the_readme_recipe_sets_it() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.contains(&format!("-a '{README_RSA_ATTRIBUTES}'")),
        "the README's RSA recipe must set these attributes"
    );
    let tpm = Swtpm::start("seal-noda");
    // tpm2-tools' defaults: no noDA.
    tpm.provision_primary("rsa2048", "0x81000002");
    tpm.provision_primary_with("rsa2048", "0x81000003", &["-a", README_RSA_ATTRIBUTES]);
    let f = seal_fixture(&tpm, "seal-noda");
    let seal = |parent: &str, output: &str| {
        f.run(&[
            "seal", "--pcrs", "sha256:7", "--parent", parent, "--output", output,
        ])
    };
    let r = seal("0x81000002", "/etc/keys/da.pem");
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains(
        "the storage key at 0x81000002 lacks noDA (attributes 0x00030072): while the TPM is in dictionary-attack lockout",
    );
    let r = seal("0x81000003", "/etc/keys/noda.pem");
    assert_eq!(r.code, 0, "{}", r.output());
    assert!(!r.output().contains("lacks noDA"), "{}", r.output());

    // Why: one wrong password with maxTries 1 puts the TPM in lockout; the
    // kmk under the key without noDA no longer unseals, the other does.
    tpm.tool(&[
        "tpm2_dictionarylockout",
        "-Q",
        "-s",
        "-n",
        "1",
        "-t",
        "600",
        "-l",
        "600",
    ]);
    let wrong = std::process::Command::new("tpm2_create")
        .args(["-Q", "-C", "0x81000002", "-P", "wrong", "-G", "ecc"])
        .args(["-u", &tpm.path("x.pub"), "-r", &tpm.path("x.priv")])
        .env("TPM2TOOLS_TCTI", tpm.tcti())
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    let pcrs = PcrSelection::parse("sha256:7").unwrap();
    let unseal_file = |name: &str, parent: u32| {
        let blob = keyfile::parse_tss2(&std::fs::read(f.root().join(name)).unwrap()).unwrap();
        unseal::unseal(&mut client(&tpm), &blob, Parent::unpinned(parent), &pcrs)
    };
    let err = unseal_file("etc/keys/da.pem", 0x8100_0002).unwrap_err();
    assert!(matches!(err, UnsealError::ParentDaLockout { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("dictionary-attack lockout")
            && msg.contains("the storage key at 0x81000002 lacks noDA"),
        "{msg}"
    );
    assert!(unseal_file("etc/keys/noda.pem", 0x8100_0003).is_ok());
}

/// `seal --type trusted` on a kernel without trusted keys (Debian's, this
/// host's): the usage exit with the fix, before the TPM is touched or a
/// file written.
#[test]
fn seal_type_trusted_needs_a_kernel_with_trusted_keys() {
    let probe = integrity_loader::keyring::add_key(
        "trusted",
        Some("probe"),
        b"",
        integrity_loader::keyring::SESSION_KEYRING,
    );
    if probe != Err(nix::errno::Errno::ENODEV) {
        eprintln!(
            "this kernel has trusted keys: the VM scenario trusted-seal-in-vm covers seal --type trusted"
        );
        return;
    }
    let tpm = Swtpm::start("seal-trusted");
    let f = seal_fixture(&tpm, "seal-trusted");
    let r = f.run(&[
        "seal",
        "--type",
        "trusted",
        "--evm-key",
        "/etc/keys/evm.blob",
        "--write-config",
        "--force",
    ]);
    assert_eq!(r.code, 2, "{}", r.output());
    r.assert_contains("this kernel has no trusted keys (CONFIG_TRUSTED_KEYS is off");
    r.assert_contains("run `integrity-loader seal` without --type trusted");
    assert!(!f.root().join("etc/keys/kmk-trusted.blob").exists());
    assert!(!f.root().join("etc/keys/evm.blob").exists());
    assert_eq!(
        std::fs::read_to_string(f.root().join("etc/integrity-loader.conf")).unwrap(),
        format!("TPM={}\n", tpm.tcti())
    );
    // The storage key was not made: the TPM was not asked.
    let persistent = tpm.tool(&["tpm2_getcap", "handles-persistent"]);
    assert!(persistent.trim().is_empty(), "{persistent}");
}

/// `seal --type trusted` keeps the guard of the labels: a new kmk where the
/// evm-key blob's kmk is (the configured blob, or with MULTIKERNELMODE=YES
/// a release without its blob yet) is refused before the kernel is asked.
#[test]
fn seal_type_trusted_refuses_to_orphan_the_labels() {
    let evm = format!("default trusted:kmk 32 {}\n", "ab".repeat(81));
    let f = Fixture::new("seal-trusted-orphan");
    f.write("/etc/sysconfig/masterkey", "MULTIKERNELMODE=YES\n");
    f.write("/etc/sysconfig/evm", "EVMKEY=/etc/keys/evm-key\n");
    f.write("/etc/keys/evm-key", &evm);
    let r = f.run(&["seal", "--type", "trusted"]);
    assert_eq!(r.code, 2, "{}", r.output());
    r.assert_contains("with MULTIKERNELMODE=YES one evm-key serves every release and every release's blob must hold its kmk: the evm-key blob");
    r.assert_contains("is sealed by trusted:kmk, and this seal would make a new kmk for release");
    r.assert_contains("which that boot could not open the evm-key with");
    r.assert_contains("add --replace-kmk-and-orphan-labels");
    // A new evm-key in its place loses the labels the old one made.
    let r = f.run(&[
        "seal",
        "--type",
        "trusted",
        "--evm-key",
        "/etc/keys/evm-key",
        "--force",
    ]);
    assert_eq!(r.code, 2, "{}", r.output());
    r.assert_contains("and --evm-key would replace that evm-key");
    assert_eq!(
        std::fs::read_dir(f.root().join("etc/keys"))
            .unwrap()
            .count(),
        1
    );
    assert_eq!(
        std::fs::read_to_string(f.root().join("etc/keys/evm-key")).unwrap(),
        evm
    );

    // Without MULTIKERNELMODE: the configured blob would be replaced.
    f.write("/etc/sysconfig/masterkey", "MASTERKEY=/etc/keys/kmk\n");
    f.write("/etc/keys/kmk", "00ab\n");
    let r = f.run(&["seal", "--type", "trusted", "--force"]);
    assert_eq!(r.code, 2, "{}", r.output());
    r.assert_contains("is sealed by trusted:kmk, the kmk of");
    r.assert_contains("it replaces /etc/keys/kmk");
    assert_eq!(
        std::fs::read(f.root().join("etc/keys/kmk")).unwrap(),
        b"00ab\n"
    );
}
