//! The storage key pinned by its Name (TPM2_PARENT_NAME), against a real
//! swtpm. ReadPublic is not authenticated, so a device on the bus can
//! present a key of its own and learn the salt of the session that
//! protects the kmk. These tests stand in for that device by steering
//! ReadPublic and StartAuthSession to another storage key of the same
//! TPM: unpinned, the client is fooled; pinned, it refuses before any salt
//! goes out. The pin itself is checked against tpm2-tools' Name, and
//! `seal` writes and honours it.

mod common;
#[path = "common/swtpm.rs"]
mod swtpm;

use common::*;
use integrity_loader::tpm::client::Tpm;
use integrity_loader::tpm::constants::CommandCode;
use integrity_loader::tpm::keyfile::{self, SealedBlob};
use integrity_loader::tpm::parent_pin;
use integrity_loader::tpm::pcr::PcrSelection;
use integrity_loader::tpm::tcti;
use integrity_loader::tpm::transport::{self, Transport, TransportError};
use integrity_loader::tpm::unseal::{self, Parent, UnsealError};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use swtpm::Swtpm;

const KMK: &[u8; 32] = b"kmk under a pinned storage key!!";
const SRK: u32 = 0x8100_0001;
/// Another storage key of the same TPM, standing in for the interposer's.
const IMPOSTOR: u32 = 0x8100_0002;
const CC_READ_PUBLIC: u32 = CommandCode::ReadPublic.code();
const CC_START_AUTH_SESSION: u32 = CommandCode::StartAuthSession.code();

/// Steers the commands in `steer` that name the storage key by handle and
/// carry no authorization (ReadPublic, StartAuthSession's tpmKey) to the
/// impostor, as a bus interposer answering for the SRK would; records every
/// command code it passes on.
struct Interposer {
    inner: Box<dyn Transport>,
    steer: &'static [u32],
    sent: Arc<Mutex<Vec<u32>>>,
}

impl Transport for Interposer {
    fn transact(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let mut command = command.to_vec();
        let cc = u32::from_be_bytes(command[6..10].try_into().unwrap());
        if self.steer.contains(&cc) && command[10..14] == SRK.to_be_bytes() {
            command[10..14].copy_from_slice(&IMPOSTOR.to_be_bytes());
        }
        self.sent.lock().unwrap().push(cc);
        self.inner.transact(&command)
    }
}

fn pcrs() -> PcrSelection {
    PcrSelection::parse("sha256:7").unwrap()
}

/// A swtpm with the SRK, an impostor (an ECC P-256 storage key too, from
/// the endorsement hierarchy, so another key of the same kind) and a kmk
/// sealed under the SRK by tpm2-tools.
fn provisioned(name: &str) -> (Swtpm, SealedBlob) {
    let tpm = Swtpm::start(name);
    tpm.provision_srk();
    let ctx = tpm.path("impostor.ctx");
    tpm.tool(&[
        "tpm2_createprimary",
        "-Q",
        "-C",
        "e",
        "-G",
        "ecc",
        "-g",
        "sha256",
        "-c",
        &ctx,
    ]);
    tpm.persist(&ctx, "0x81000002");
    let blob = keyfile::parse_tss2(&tpm.seal_with_tools(KMK, "sha256:7")).unwrap();
    (tpm, blob)
}

/// The Name of a persistent key as tpm2-tools compute it.
fn tools_name(tpm: &Swtpm, handle: &str) -> [u8; parent_pin::NAME_LEN] {
    let out = tpm.path(&format!("{handle}.name"));
    tpm.tool(&["tpm2_readpublic", "-Q", "-c", handle, "-n", &out]);
    std::fs::read(&out).unwrap().try_into().unwrap()
}

const STEER_BOTH: &[u32] = &[CC_READ_PUBLIC, CC_START_AUTH_SESSION];

/// The SRK's and the impostor's Names in hex, as tpm2-tools give them.
fn srk_and_impostor_names(tpm: &Swtpm) -> (String, String) {
    (
        parent_pin::name_hex(&tools_name(tpm, "0x81000001")),
        parent_pin::name_hex(&tools_name(tpm, "0x81000002")),
    )
}

fn unseal_through_interposer(
    tpm: &Swtpm,
    blob: &SealedBlob,
    steer: &'static [u32],
    pinned: Option<&[u8; parent_pin::NAME_LEN]>,
) -> (Result<Vec<u8>, UnsealError>, Vec<u32>) {
    unseal_carrying(tpm, blob, steer, pinned, None)
}

/// As `unseal_through_interposer`, with the parent's public area carried
/// (TPM2_PARENT_PUBLIC).
fn unseal_carrying(
    tpm: &Swtpm,
    blob: &SealedBlob,
    steer: &'static [u32],
    pinned: Option<&[u8; parent_pin::NAME_LEN]>,
    public: Option<&[u8]>,
) -> (Result<Vec<u8>, UnsealError>, Vec<u32>) {
    let t = tcti::parse(&tpm.tcti()).unwrap();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let interposer = Interposer {
        inner: transport::open(&t, Duration::from_secs(10)).unwrap(),
        steer,
        sent: sent.clone(),
    };
    let mut c = Tpm::new(Box::new(interposer));
    let parent = Parent {
        handle: SRK,
        pinned_name: pinned,
        public,
    };
    let result = unseal::unseal(&mut c, blob, parent, &pcrs()).map(|k| k.expose().to_vec());
    let sent = sent.lock().unwrap().clone();
    (result, sent)
}

#[test]
fn a_substituted_storage_key_fools_an_unpinned_client_and_not_a_pinned_one() {
    let (tpm, blob) = provisioned("impostor");
    let srk_name = tools_name(&tpm, "0x81000001");
    assert_ne!(srk_name, tools_name(&tpm, "0x81000002"));

    // Unpinned: the session is salted to the impostor's key and the unseal
    // succeeds, so whoever holds that key could have read the kmk.
    let (result, sent) = unseal_through_interposer(&tpm, &blob, STEER_BOTH, None);
    assert_eq!(result.unwrap(), KMK, "the interposer should go unnoticed");
    assert!(sent.contains(&CC_START_AUTH_SESSION));

    // Pinned: refused after ReadPublic, before StartAuthSession.
    let (result, sent) = unseal_through_interposer(&tpm, &blob, STEER_BOTH, Some(&srk_name));
    let err = result.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("the storage key at 0x81000001 is not the pinned one: its Name is 000b"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "TPM2_PARENT_NAME is {}; nothing was sent to it",
            parent_pin::name_hex(&srk_name)
        )),
        "{text}"
    );
    assert_eq!(sent, vec![CC_READ_PUBLIC], "only ReadPublic may go out");

    // The pin checked on the real key, the salt sent to another: the TPM
    // derives another session key, so our Unseal's HMAC fails there (and
    // nothing comes back that our session key could decrypt).
    let steer_salt: &'static [u32] = &[CC_START_AUTH_SESSION];
    let (result, _) = unseal_through_interposer(&tpm, &blob, steer_salt, Some(&srk_name));
    let err = result.expect_err("an unseal through a session salted to another key");
    assert!(
        err.to_string()
            .starts_with("TPM2_Unseal: authorization failed"),
        "{err}"
    );

    // The same pin, without the interposer: unseals.
    let t = tcti::parse(&tpm.tcti()).unwrap();
    let mut c = Tpm::new(transport::open(&t, Duration::from_secs(10)).unwrap());
    let parent = Parent {
        handle: SRK,
        pinned_name: Some(&srk_name),
        public: None,
    };
    assert_eq!(
        unseal::unseal(&mut c, &blob, parent, &pcrs())
            .unwrap()
            .expose(),
        KMK
    );
}

fn load_fixture(tpm: &Swtpm, name: &str, pin_line: &str) -> Fixture {
    let f = Fixture::new(name);
    f.write(
        "/etc/integrity-loader.conf",
        format!(
            "MASTERKEYTYPE=tpm2\nMASTERKEY=/etc/keys/kmk.pem\nTPM={}\nTPM2_PCRS=sha256:7\n{pin_line}",
            tpm.tcti()
        ),
    );
    f.write("/etc/keys/kmk.pem", tpm.read("seal.pem"));
    f.write("/etc/sysconfig/evm", "EVMKEY=/etc/keys/evm.blob\n");
    f.write("/etc/keys/evm.blob", make_evm_blob(KMK, "kmk"));
    f
}

#[test]
fn load_checks_the_pin_from_the_config() {
    let (tpm, _) = provisioned("load-pin");
    let (srk, impostor) = srk_and_impostor_names(&tpm);

    // Unpinned: works, and says how to pin with tpm2-tools' Name.
    let f = load_fixture(&tpm, "unpinned", "");
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains(&format!(
        "the storage key at 0x81000001 is not pinned, so a device on the TPM bus could stand in for it; pin it: TPM2_PARENT_NAME={srk} in /etc/integrity-loader.conf"
    ));

    let r = f.run(&["check"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("storage key not pinned (no TPM2_PARENT_NAME)");

    // Pinned right: works, no warning.
    let f = load_fixture(&tpm, "pinned", &format!("TPM2_PARENT_NAME={srk}\n"));
    let r = f.run(&["check"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("storage key pinned by TPM2_PARENT_NAME (");
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    assert!(!r.output().contains("not pinned"), "{}", r.output());
    r.assert_contains("loaded user key kmk (32 bytes, unsealed by the TPM)");

    // Pinned to another key: the kmk step fails naming the config line,
    // everything after it is skipped and nothing changes in the kernel.
    let f = load_fixture(&tpm, "mispinned", &format!("TPM2_PARENT_NAME={impostor}\n"));
    let before = f.snapshot();
    let r = f.run(&["load"]);
    assert_eq!(r.code, 1, "{}", r.output());
    r.assert_contains(&format!(
        "the storage key at 0x81000001 is not the pinned one: its Name is {srk}, TPM2_PARENT_NAME is {impostor}; nothing was sent to it"
    ));
    r.assert_contains("integrity-loader.conf:5)");
    r.assert_contains("evm-key: skipped: step kmk failed");
    assert_eq!(f.snapshot(), before);
    assert!(f.keys().is_empty());

    // Pinned, and the storage key is gone (a cleared TPM).
    tpm.tool(&["tpm2_evictcontrol", "-Q", "-C", "o", "-c", "0x81000001"]);
    let f = load_fixture(&tpm, "cleared", &format!("TPM2_PARENT_NAME={srk}\n"));
    let r = f.run(&["load"]);
    assert_eq!(r.code, 1, "{}", r.output());
    r.assert_contains(&format!(
        "no storage key at 0x81000001, but TPM2_PARENT_NAME pins {srk}: the TPM was cleared and the blob sealed under the old key is lost. If the kmk is still loaded somewhere (DROP_KMK=no), `integrity-loader reseal`"
    ));
    assert!(f.keys().is_empty());
}

#[test]
fn a_malformed_pin_is_a_configuration_error() {
    let f = Fixture::new("badpin");
    f.write(
        "/etc/integrity-loader.conf",
        "MASTERKEYTYPE=tpm2\nTPM2_PARENT_NAME=000b1234\n",
    );
    let before = f.snapshot();
    let r = f.run(&["load"]);
    assert_eq!(r.code, 2, "{}", r.output());
    r.assert_contains(
        "integrity-loader.conf:2: TPM2_PARENT_NAME: 8 characters; expected 68 hex digits",
    );
    assert_eq!(f.snapshot(), before);
}

/// A fresh swtpm provisioned by `seal --write-config` (which creates the
/// SRK and pins it), and that run's output.
fn provisioned_by_seal(name: &str) -> (Swtpm, Fixture, Run) {
    let tpm = Swtpm::start(name);
    let f = Fixture::new(name);
    f.write(
        "/etc/integrity-loader.conf",
        format!("TPM={}\n", tpm.tcti()),
    );
    let r = f.run(&["seal", "--pcrs", "sha256:7", "--write-config", "--force"]);
    assert_eq!(r.code, 0, "{}", r.output());
    (tpm, f, r)
}

#[test]
fn seal_writes_the_pin_and_honours_it() {
    let (tpm, f, r) = provisioned_by_seal("seal-pin");
    let srk = parent_pin::name_hex(&tools_name(&tpm, "0x81000001"));
    r.assert_contains(&format!("storage key 0x81000001: Name {srk}"));
    let conf_path = f.root().join("etc/integrity-loader.conf");
    let conf = std::fs::read_to_string(&conf_path).unwrap();
    assert!(
        conf.contains(&format!("\nTPM2_PARENT_NAME={srk}\n")),
        "{conf}"
    );
    // ...and records it as the pin this system stands by now.
    assert_eq!(
        std::fs::read_to_string(f.dir.join("run/storage-key-name")).unwrap(),
        format!("{srk}\n")
    );

    // The boot unseals under the pin it wrote, without the warning.
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    assert!(!r.output().contains("not pinned"), "{}", r.output());

    // A pin for another key: seal refuses before sealing anything.
    tpm.provision_primary("rsa2048", "0x81000002");
    let impostor = parent_pin::name_hex(&tools_name(&tpm, "0x81000002"));
    std::fs::write(&conf_path, conf.replace(&srk, &impostor)).unwrap();
    let blob_before = std::fs::read(f.root().join("etc/keys/kmk-tpm2.pem")).unwrap();
    let r = f.run(&["seal", "--pcrs", "sha256:7", "--force"]);
    assert_eq!(r.code, 1, "{}", r.output());
    r.assert_contains("is not the pinned one");
    assert_eq!(
        std::fs::read(f.root().join("etc/keys/kmk-tpm2.pem")).unwrap(),
        blob_before
    );

    // Another key put at the pinned handle: not taken even when the run
    // rewrites the config (a clear would have emptied the handle).
    std::fs::write(&conf_path, &conf).unwrap();
    tpm.tool(&["tpm2_evictcontrol", "-Q", "-C", "o", "-c", "0x81000001"]);
    tpm.provision_primary("rsa2048", "0x81000001");
    let r = f.run(&["seal", "--pcrs", "sha256:7", "--write-config", "--force"]);
    assert_eq!(r.code, 1, "{}", r.output());
    r.assert_contains("the storage key at 0x81000001 is not the pinned one");
    assert_eq!(std::fs::read_to_string(&conf_path).unwrap(), conf);

    // A pin and no storage key (the TPM cleared: a new owner seed, so a new
    // SRK would have another Name): seal does not create one...
    tpm.tool(&["tpm2_clear", "-Q"]);
    let r = f.run(&["seal", "--pcrs", "sha256:7", "--force"]);
    assert_eq!(r.code, 1, "{}", r.output());
    r.assert_contains("no storage key at 0x81000001, but TPM2_PARENT_NAME pins");
    let persistent = tpm.tool(&["tpm2_getcap", "handles-persistent"]);
    assert!(!persistent.contains("0x81000001"), "{persistent}");

    // ...unless the run provisions again and records the new key; the
    // other settings of the config stay, the next boot (a fresh keyring)
    // unseals the new kmk.
    std::fs::write(&conf_path, format!("FAILURE_ACTION=halt\n{conf}")).unwrap();
    let r = f.run(&["seal", "--pcrs", "sha256:7", "--write-config", "--force"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("created the storage key (ECC P-256 SRK) at 0x81000001");
    r.assert_contains(&format!("TPM2_PARENT_NAME {srk} ("));
    r.assert_contains(") is replaced by 000b");
    let conf = std::fs::read_to_string(&conf_path).unwrap();
    assert!(conf.starts_with("FAILURE_ACTION=halt\n"), "{conf}");
    assert!(!conf.contains(&srk), "{conf}");
    let old_kmk = f.find("user", "kmk").unwrap();
    integrity_loader::keyring::unlink(old_kmk, f.session).unwrap();
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
}

#[test]
fn seal_under_another_handle_needs_the_config_rewritten() {
    let (tpm, f, _) = provisioned_by_seal("seal-move");
    tpm.provision_primary("rsa2048", "0x81000002");
    let rsa = parent_pin::name_hex(&tools_name(&tpm, "0x81000002"));

    // The blob would go under a key the pin does not name: the boot would
    // refuse it, so seal does.
    let seal_under_rsa = [
        "seal",
        "--pcrs",
        "sha256:7",
        "--parent",
        "0x81000002",
        "--force",
    ];
    let r = f.run(&seal_under_rsa);
    assert_eq!(r.code, 1, "{}", r.output());
    r.assert_contains("the storage key at 0x81000002 is not the pinned one");

    // Recording the move: the new parent and its Name, and the boot unseals.
    let r = f.run(&[&seal_under_rsa[..], &["--write-config"]].concat());
    assert_eq!(r.code, 0, "{}", r.output());
    let conf = std::fs::read_to_string(f.root().join("etc/integrity-loader.conf")).unwrap();
    assert!(
        conf.contains("TPM2_PARENT=0x81000002\n")
            && conf.contains(&format!("TPM2_PARENT_NAME={rsa}\n")),
        "{conf}"
    );
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    assert!(!r.output().contains("not pinned"), "{}", r.output());
}

#[test]
fn a_tpm2_tools_pair_is_checked_against_the_pin_too() {
    // A .pub/.priv pair names no parent: TPM2_PARENT does, and the pin
    // applies to the key found there.
    let (tpm, _) = provisioned("pair-pin");
    let (srk, impostor) = srk_and_impostor_names(&tpm);
    for (pin, code) in [(&srk, 0), (&impostor, 1)] {
        let f = Fixture::new("pair-pin");
        f.write(
            "/etc/integrity-loader.conf",
            format!(
                "MASTERKEYTYPE=tpm2\nMASTERKEY=/etc/keys/kmk.pub\nTPM={}\nTPM2_PCRS=sha256:7\nTPM2_PARENT_NAME={pin}\n",
                tpm.tcti()
            ),
        );
        f.write("/etc/keys/kmk.pub", tpm.read("seal.pub"));
        f.write("/etc/keys/kmk.priv", tpm.read("seal.priv"));
        let r = f.run(&["load"]);
        assert_eq!(r.code, code, "{}", r.output());
        if code == 0 {
            r.assert_contains("loaded user key kmk (32 bytes, unsealed by the TPM)");
        } else {
            r.assert_contains("the storage key at 0x81000001 is not the pinned one");
            assert!(f.keys().is_empty());
        }
    }
}

#[test]
fn the_initramfs_pins_win_over_the_root() {
    let (tpm, _) = provisioned("initramfs-pins");
    let (srk, impostor) = srk_and_impostor_names(&tpm);

    // The host-only build's copy of the root's pin.
    let f = load_fixture(&tpm, "pins-write", &format!("TPM2_PARENT_NAME={srk}\n"));
    let pins = f.dir.join("integrity-loader.pins");
    let r = f.run(&["check", "--write-pins", pins.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.output());
    let text = std::fs::read_to_string(&pins).unwrap();
    let pin_line = format!("TPM2_PARENT_NAME={srk}");
    let line = 1 + text.lines().position(|l| l == pin_line).expect(&text);
    let pins_arg = pins.to_str().unwrap();

    // Someone with the disk removed the pin from the root: the initramfs's
    // still holds, with no unpinned warning.
    let g = load_fixture(&tpm, "pins-root-unpinned", "");
    let r = g.run(&["load", "--pins", pins_arg]);
    assert_eq!(r.code, 0, "{}", r.output());
    assert!(!r.output().contains("not pinned"), "{}", r.output());

    // ...or replaced it with their own key's Name: the initramfs's wins,
    // with a warning naming both.
    let g = load_fixture(
        &tpm,
        "pins-root-other",
        &format!("TPM2_PARENT_NAME={impostor}\n"),
    );
    let r = g.run(&["load", "--pins", pins_arg]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains(&format!("TPM2_PARENT_NAME {impostor} ("));
    r.assert_contains(&format!(
        "differs from the initramfs's pin {srk} ({pins_arg}:{line}), which is the one checked"
    ));

    // The initramfs pins another key than the TPM has: refused, naming the
    // pins file.
    std::fs::write(&pins, format!("TPM2_PARENT_NAME={impostor}\n")).unwrap();
    let g = load_fixture(&tpm, "pins-other", "");
    let r = g.run(&["load", "--pins", pins_arg]);
    assert_eq!(r.code, 1, "{}", r.output());
    r.assert_contains(&format!("is not the pinned one: its Name is {srk}"));
    r.assert_contains(&format!("({pins_arg}:1)"));
    assert!(g.keys().is_empty());

    // Only pins belong there.
    std::fs::write(&pins, "EVMKEY=/etc/keys/other.blob\n").unwrap();
    let r = g.run(&["load", "--pins", pins_arg]);
    assert_eq!(r.code, 2, "{}", r.output());
    r.assert_contains(&format!(
        "{pins_arg}:1: EVMKEY cannot be pinned in the initramfs (only MASTERKEYTYPE, "
    ));

    // A root without a storage key pin: --write-pins pins the kmk, not a
    // storage key.
    let r = g.run(&["check", "--write-pins", pins_arg]);
    assert_eq!(r.code, 0, "{}", r.output());
    let text = std::fs::read_to_string(&pins).unwrap();
    assert!(text.contains("\nMASTERKEYTYPE=tpm2\n"), "{text}");
    assert!(!text.contains("TPM2_PARENT_NAME"), "{text}");
}

#[test]
fn a_rebuild_does_not_copy_a_pin_changed_since_the_boot() {
    let (tpm, _) = provisioned("rebuild-guard");
    let (srk, impostor) = srk_and_impostor_names(&tpm);
    // The boot: unsealed under the pinned key, which it records.
    let f = load_fixture(&tpm, "rebuild-guard", &format!("TPM2_PARENT_NAME={srk}\n"));
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    let run = f.dir.join("run");
    assert_eq!(
        std::fs::read_to_string(run.join("storage-key-name")).unwrap(),
        format!("{srk}\n")
    );

    // A host-only build for the booted system (--root /) with the root's
    // configuration as it is now (--config).
    let conf = f.dir.join("now.conf");
    let pins = f.dir.join("pins");
    let build = |pin_line: &str, extra: &[&str]| {
        std::fs::write(&conf, format!("MASTERKEYTYPE=tpm2\n{pin_line}")).unwrap();
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(["check", "--root", "/", "--config"])
            .arg(&conf)
            .arg("--securityfs")
            .arg(f.dir.join("sfs"))
            .arg("--cmdline")
            .arg(f.dir.join("cmdline"))
            .arg("--run-dir")
            .arg(&run)
            .arg("--write-pins")
            .arg(&pins)
            .args(extra)
            .env("INTEGRITY_LOADER_LOG", "stderr");
        finished(cmd.output().unwrap())
    };
    let r = build(&format!("TPM2_PARENT_NAME={srk}\n"), &[]);
    assert_eq!(r.code, 0, "{}", r.output());
    assert!(std::fs::read_to_string(&pins).unwrap().contains(&srk));

    // The pin removed or replaced on the root since the boot: refused.
    for (line, now) in [
        (String::new(), "pins none now".to_string()),
        (
            format!("TPM2_PARENT_NAME={impostor}\n"),
            format!("pins {impostor} ("),
        ),
    ] {
        let r = build(&line, &[]);
        assert_eq!(r.code, 1, "{}", r.output());
        r.assert_contains(&format!("this boot checked the storage key Name {srk} ("));
        r.assert_contains(&now);
        r.assert_contains("build with INTEGRITY_LOADER_REPIN=1");
        assert!(
            std::fs::read_to_string(&pins).unwrap().contains(&srk),
            "unchanged"
        );
    }
    // On purpose: --repin.
    let r = build(&format!("TPM2_PARENT_NAME={impostor}\n"), &["--repin"]);
    assert_eq!(r.code, 0, "{}", r.output());
    assert!(std::fs::read_to_string(&pins).unwrap().contains(&impostor));

    // Building for another root (--root elsewhere): this boot's record
    // does not apply.
    let r = f.run(&[
        "check",
        "--run-dir",
        run.to_str().unwrap(),
        "--write-pins",
        pins.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.output());
}

/// TPMT_PUBLIC of a persistent key, as tpm2-tools read it.
fn tools_public(tpm: &Swtpm, handle: &str) -> Vec<u8> {
    let out = tpm.path(&format!("{handle}.pub"));
    tpm.tool(&["tpm2_readpublic", "-Q", "-c", handle, "-o", &out]);
    // TPM2B_PUBLIC: the size, then the TPMT_PUBLIC.
    std::fs::read(&out).unwrap()[2..].to_vec()
}

#[test]
fn a_carried_public_area_spares_readpublic_and_still_salts_only_to_the_pinned_key() {
    const CC_POLICY_PCR: u32 = 0x17F;
    const CC_LOAD: u32 = 0x157;
    const CC_UNSEAL: u32 = 0x15E;
    const CC_FLUSH: u32 = 0x165;
    let (tpm, blob) = provisioned("carried");
    let srk_name = tools_name(&tpm, "0x81000001");
    let srk_public = tools_public(&tpm, "0x81000001");
    let impostor_public = tools_public(&tpm, "0x81000002");

    // The pinned key's public area: five commands, no ReadPublic.
    let (result, sent) = unseal_carrying(&tpm, &blob, &[], Some(&srk_name), Some(&srk_public));
    assert_eq!(result.unwrap(), KMK);
    assert_eq!(
        sent,
        vec![
            CC_START_AUTH_SESSION,
            CC_POLICY_PCR,
            CC_LOAD,
            CC_UNSEAL,
            CC_FLUSH
        ]
    );

    // Another key's public area with the pin: not taken; ReadPublic is.
    let (result, sent) = unseal_carrying(&tpm, &blob, &[], Some(&srk_name), Some(&impostor_public));
    assert_eq!(result.unwrap(), KMK);
    assert_eq!(sent.first(), Some(&CC_READ_PUBLIC));

    // Without a pin the carried area is not trusted either.
    let (result, sent) = unseal_carrying(&tpm, &blob, &[], None, Some(&srk_public));
    assert_eq!(result.unwrap(), KMK);
    assert_eq!(sent.first(), Some(&CC_READ_PUBLIC));

    // The salt steered to the impostor: it cannot read a salt sealed to the
    // pinned key, the unseal fails, and ReadPublic (of the real key, which
    // is the pinned one) finds nothing to blame but the TPM's answer.
    let steer_salt: &'static [u32] = &[CC_START_AUTH_SESSION];
    let (result, _) = unseal_carrying(&tpm, &blob, steer_salt, Some(&srk_name), Some(&srk_public));
    let err = result.unwrap_err().to_string();
    assert!(
        err.starts_with("TPM2_Unseal: authorization failed"),
        "{err}"
    );

    // Both steered, as a device answering for the SRK would: said as the
    // ReadPublic path says it.
    let (result, _) = unseal_carrying(&tpm, &blob, STEER_BOTH, Some(&srk_name), Some(&srk_public));
    let err = result.unwrap_err().to_string();
    assert!(
        err.starts_with("the storage key at 0x81000001 is not the pinned one"),
        "{err}"
    );

    // The handle emptied: as a cleared TPM.
    tpm.tool(&["tpm2_evictcontrol", "-Q", "-C", "o", "-c", "0x81000001"]);
    let (result, _) = unseal_carrying(&tpm, &blob, &[], Some(&srk_name), Some(&srk_public));
    let err = result.unwrap_err().to_string();
    assert!(
        err.starts_with("no storage key at 0x81000001, but TPM2_PARENT_NAME pins"),
        "{err}"
    );
}
