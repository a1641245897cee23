//! The PCR lock (TPM2_PCRLOCK, PCR 11 by default when the policy uses it)
//! against a real swtpm: once `load` has unsealed the kmk, nothing later in
//! the boot can unseal it again; a second `load` says so instead of
//! failing; `seal` later in the boot seals to the values the boot unsealed
//! with, so the next boot unseals; a lock the TPM refuses means no kmk.

mod common;
#[path = "common/swtpm.rs"]
mod swtpm;

use common::*;
use integrity_loader::tpm::client::Tpm;
use integrity_loader::tpm::keyfile;
use integrity_loader::tpm::pcr::PcrSelection;
use integrity_loader::tpm::pcr_lock;
use integrity_loader::tpm::tcti;
use integrity_loader::tpm::transport;
use integrity_loader::tpm::unseal::{self, Parent, UnsealError};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;
use swtpm::Swtpm;

const KMK: &[u8; 32] = b"kmk locked away after its unseal";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn pcr11(tpm: &Swtpm) -> String {
    let out = tpm.tool(&["tpm2_pcrread", "sha256:11"]);
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("11"))
        .unwrap();
    line.rsplit("0x").next().unwrap().trim().to_lowercase()
}

/// A swtpm with the SRK and the kmk sealed by tpm2-tools to sha256:7,11.
fn sealed_tpm(name: &str) -> Swtpm {
    let tpm = Swtpm::start(name);
    tpm.provision_srk();
    tpm.seal_with_tools(KMK, "sha256:7,11");
    tpm
}

/// A root for `load` with the kmk sealed by tpm2-tools to sha256:7,11 and
/// the given extra configuration lines.
fn fixture(tpm: &Swtpm, name: &str, tcti: &str, extra: &str) -> Fixture {
    let f = Fixture::new(name);
    f.write(
        "/etc/integrity-loader.conf",
        format!(
            "MASTERKEYTYPE=tpm2\nMASTERKEY=/etc/keys/kmk.pem\nTPM={tcti}\nTPM2_PCRS=sha256:7,11\n{extra}"
        ),
    );
    f.write("/etc/keys/kmk.pem", tpm.read("seal.pem"));
    f.write("/etc/sysconfig/evm", "EVMKEY=/etc/keys/evm.blob\n");
    f.write("/etc/keys/evm.blob", make_evm_blob(KMK, "kmk"));
    f
}

#[test]
fn after_the_unseal_nothing_in_this_boot_unseals_the_kmk_again() {
    let tpm = sealed_tpm("lock");
    // Kept, to see a second load find it (by default the lock drops it).
    let f = fixture(&tpm, "lock", &tpm.tcti(), "DROP_KMK=no\n");
    let r = f.run(&["load", "-v"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("loaded user key kmk (32 bytes, unsealed by the TPM)");
    r.assert_contains("DROP_KMK=no (");
    r.assert_contains("keeps the kmk as a user key that root can read after boot");
    r.assert_contains(
        "locked PCR 11 (extended with SHA-256 of \"integrity-loader: kmk unsealed\"): the kmk cannot be unsealed again until the next boot",
    );
    // Sealed by tpm2-tools: no TPM2_PARENT_PUBLIC or TPM2_PCR_VALUES, so
    // ReadPublic and PCR_Read too.
    r.assert_contains("TPM: 8 commands");
    assert!(!r.output().contains(&hex(KMK)) && !r.output().contains("locked away"));

    // PCR 11 moved by exactly the documented event; the values the unseal
    // saw are recorded.
    assert_eq!(pcr11(&tpm), hex(&pcr_lock::locked_value(&[0; 32])));
    let record = std::fs::read_to_string(f.dir.join("run/pcrs-at-unseal")).unwrap();
    assert_eq!(
        record,
        format!(
            "sha256:7={}\nsha256:11={}\n",
            "0".repeat(64),
            "0".repeat(64)
        )
    );

    // A process later in this boot, with the blob and the TPM: refused.
    let blob = keyfile::parse_tss2(&tpm.read("seal.pem")).unwrap();
    let t = tcti::parse(&tpm.tcti()).unwrap();
    let mut c = Tpm::new(transport::open(&t, Duration::from_secs(5)).unwrap());
    let pcrs = PcrSelection::parse("sha256:7,11").unwrap();
    let err = unseal::unseal(&mut c, &blob, Parent::unpinned(0x8100_0001), &pcrs).unwrap_err();
    assert!(matches!(err, UnsealError::PcrMismatch { .. }), "{err}");
    drop(c);

    // load again this boot: the kmk is there, nothing is unsealed.
    let r = f.run(&["load", "-v"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("kmk: already done: user key kmk is already loaded (id ");
    r.assert_contains("unsealed earlier this boot and PCR 11 locked since");
    assert!(!r.output().contains("TPM: "), "{}", r.output());

    // ...and after DROP_KMK dropped it: said, and EVM stays as it is.
    let kmk = f.find("user", "kmk").unwrap();
    integrity_loader::keyring::unlink(kmk, f.session).unwrap();
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("not unsealing it again, and it is not in keyring @s");
    r.assert_contains("evm-key: already done: EVM HMAC is already enabled");

    // TPM2_PCRLOCK=no: no lock, no record (a fresh boot of the TPM).
    let mut tpm = tpm;
    tpm.reboot();
    let g = fixture(&tpm, "nolock", &tpm.tcti(), "TPM2_PCRLOCK=no\n");
    let r = g.run(&["load", "-v"]);
    assert_eq!(r.code, 0, "{}", r.output());
    assert!(!r.output().contains("locked PCR"), "{}", r.output());
    assert_eq!(pcr11(&tpm), "0".repeat(64));
    assert!(!g.dir.join("run/pcrs-at-unseal").exists());
}

#[test]
fn seal_later_in_the_boot_seals_to_the_values_the_boot_unsealed_with() {
    let mut tpm = Swtpm::start("lock-seal");
    let f = Fixture::new("lock-seal");
    f.write(
        "/etc/integrity-loader.conf",
        format!("TPM={}\n", tpm.tcti()),
    );
    // First boot: provision, then the next boot unseals and locks.
    let r = f.run(&["seal", "--write-config", "--force"]);
    assert_eq!(r.code, 0, "{}", r.output());
    tpm.reboot();
    let r = f.run(&["load", "-v"]);
    assert_eq!(r.code, 0, "{}", r.output());
    assert_ne!(pcr11(&tpm), "0".repeat(64));
    // With the lock on, DROP_KMK defaults to yes: root cannot read it back.
    r.assert_contains("DROP_KMK is unset and the PCR lock is on");
    assert!(f.find("user", "kmk").is_none());
    // seal wrote the storage key's public area and the values it sealed
    // to: no ReadPublic, no PCR_Read, and the record is the same.
    let conf = std::fs::read_to_string(f.root().join("etc/integrity-loader.conf")).unwrap();
    assert!(conf.contains("\nTPM2_PARENT_PUBLIC=00"), "{conf}");
    r.assert_contains("TPM: 6 commands");
    let record = std::fs::read_to_string(f.dir.join("run/pcrs-at-unseal")).unwrap();
    assert_eq!(
        record,
        format!(
            "sha256:7={}\nsha256:11={}\n",
            "0".repeat(64),
            "0".repeat(64)
        )
    );

    // Sealing again in this (locked) boot takes the recorded values...
    let r = f.run(&["seal", "--write-config", "--force"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("sealing to the PCR values this boot had when it unsealed the kmk");

    // ...so the next boot unseals the new kmk.
    tpm.reboot();
    let next_boot = f.dir.join("run");
    std::fs::remove_dir_all(&next_boot).unwrap();
    // A locked tpm2 kmk is dropped after the run (DROP_KMK): none to unlink then.
    if let Some(old) = f.find("user", "kmk") {
        integrity_loader::keyring::unlink(old, f.session).unwrap();
    }
    // Values that are not the sealed ones (edited, or left from an older
    // seal): said, and the PCRs are read instead.
    let conf = f.root().join("etc/integrity-loader.conf");
    let text = std::fs::read_to_string(&conf).unwrap();
    let stale = format!("TPM2_PCR_VALUES=7={},11={}", "0".repeat(64), "1".repeat(64));
    let edited: Vec<&str> = text
        .lines()
        .map(|l| {
            if l.starts_with("TPM2_PCR_VALUES=") {
                stale.as_str()
            } else {
                l
            }
        })
        .collect();
    std::fs::write(&conf, edited.join("\n") + "\n").unwrap();
    let r = f.run(&["load", "-v"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("loaded user key kmk (32 bytes, unsealed by the TPM)");
    r.assert_contains("TPM2_PCR_VALUES are not the values the kmk is sealed to");
    r.assert_contains("TPM: 7 commands");
    let record = std::fs::read_to_string(next_boot.join("pcrs-at-unseal")).unwrap();
    assert!(
        record.starts_with(&format!("sha256:7={}\n", "0".repeat(64))),
        "{record}"
    );
}

/// A proxy to the TPM at `upstream`: `intercept` sees each command first
/// (with the upstream connection) and may answer it itself.
fn proxy<F>(upstream: u16, mut intercept: F) -> u16
where
    F: FnMut(&[u8], &mut TcpStream) -> Option<Vec<u8>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            let mut tpm = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
            while let Some(command) = read_frame(&mut client) {
                let answer = intercept(&command, &mut tpm).unwrap_or_else(|| {
                    tpm.write_all(&command).unwrap();
                    read_frame(&mut tpm).unwrap()
                });
                client.write_all(&answer).unwrap();
            }
        }
    });
    port
}

fn command_code(command: &[u8]) -> u32 {
    u32::from_be_bytes(command[6..10].try_into().unwrap())
}

/// Answers PCR_Extend with TPM_RC_FAILURE, as a TPM that cannot extend.
fn refusing_extend_proxy(upstream: u16) -> u16 {
    proxy(upstream, |command, _| {
        (command_code(command) == 0x182).then(|| vec![0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x01])
    })
}

/// TPM2_PCR_Extend of PCR 11 with the lock event, password session.
fn lock_command() -> Vec<u8> {
    let mut c = vec![0x80, 0x02, 0, 0, 0, 0, 0, 0, 0x01, 0x82, 0, 0, 0, 11];
    c.extend_from_slice(&9u32.to_be_bytes()); // authorization area size
    c.extend_from_slice(&[0x40, 0, 0, 0x09, 0, 0, 0x01, 0, 0]); // TPM_RS_PW
    c.extend_from_slice(&1u32.to_be_bytes());
    c.extend_from_slice(&0x000Bu16.to_be_bytes());
    c.extend_from_slice(&pcr_lock::lock_digest());
    let size = c.len() as u32;
    c[2..6].copy_from_slice(&size.to_be_bytes());
    c
}

/// One TPM command or response: the header's size says how long.
fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut frame = vec![0u8; 10];
    s.read_exact(&mut frame).ok()?;
    let size = u32::from_be_bytes(frame[2..6].try_into().unwrap()) as usize;
    frame.resize(size, 0);
    s.read_exact(&mut frame[10..]).ok()?;
    Some(frame)
}

#[test]
fn a_lock_the_tpm_refuses_means_no_kmk() {
    let tpm = sealed_tpm("lock-refused");
    let proxy = refusing_extend_proxy(tpm.port);
    let f = fixture(
        &tpm,
        "lock-refused",
        &format!("swtpm:host=127.0.0.1,port={proxy}"),
        "",
    );
    let before = f.snapshot();
    let r = f.run(&["load"]);
    assert_eq!(r.code, 1, "{}", r.output());
    r.assert_contains("but could not lock PCR 11 (TPM2_PCR_Extend:");
    r.assert_contains("not loading it, as any later process of this boot could unseal it again");
    r.assert_contains("evm-key: skipped: step kmk failed");
    assert_eq!(f.snapshot(), before);
    assert!(!r.output().contains(&hex(KMK)) && !r.output().contains("locked away"));
    assert!(!f.dir.join("run/pcrs-at-unseal").exists());
}

#[test]
fn two_loads_at_once_both_end_well() {
    // swtpm serves one connection at a time, so the second load's unseal
    // waits for the first to finish and lock: it then finds the PCR locked
    // and the record written, and says so instead of failing.
    let tpm = sealed_tpm("lock-twice");
    let f = fixture(&tpm, "lock-twice", &tpm.tcti(), "");
    let children: Vec<_> = (0..2)
        .map(|_| {
            f.command(&["load"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let runs: Vec<Run> = children
        .into_iter()
        .map(|c| finished(c.wait_with_output().unwrap()))
        .collect();
    for r in &runs {
        assert_eq!(r.code, 0, "{}", r.output());
    }
    let loaded = runs
        .iter()
        .filter(|r| {
            r.output()
                .contains("loaded user key kmk (32 bytes, unsealed by the TPM)")
        })
        .count();
    let earlier = runs
        .iter()
        .filter(|r| {
            r.output()
                .contains("unsealed earlier this boot and PCR 11 locked since")
        })
        .count();
    assert_eq!(
        (loaded, earlier),
        (1, 1),
        "{}\n{}",
        runs[0].output(),
        runs[1].output()
    );
    assert_eq!(
        pcr11(&tpm),
        hex(&pcr_lock::locked_value(&[0; 32])),
        "locked once"
    );
}

#[test]
fn a_lock_by_another_run_while_this_one_unsealed_is_taken_as_done() {
    // The other run locks PCR 11 and writes its record after this run
    // looked for a record and before its PolicyPCR: this run's unseal
    // fails on the locked PCR, and it must then find the record.
    let tpm = sealed_tpm("lock-race");
    let f = fixture(&tpm, "lock-race", "swtpm:host=127.0.0.1,port=1", "");
    // Only the kmk step: the simulated other run loads nothing.
    std::fs::remove_file(f.root().join("etc/sysconfig/evm")).unwrap();
    let record = f.dir.join("run/pcrs-at-unseal");
    let mut raced = false;
    let port = proxy(tpm.port, move |command, upstream| {
        if command_code(command) == 0x17F && !raced {
            raced = true;
            upstream.write_all(&lock_command()).unwrap();
            let answer = read_frame(upstream).unwrap();
            assert_eq!(answer[6..10], [0, 0, 0, 0], "the other run's extend");
            std::fs::create_dir_all(record.parent().unwrap()).unwrap();
            std::fs::write(&record, "sha256:7=00\n").unwrap();
        }
        None
    });
    f.write(
        "/etc/integrity-loader.conf",
        format!(
            "MASTERKEYTYPE=tpm2\nMASTERKEY=/etc/keys/kmk.pem\nTPM=swtpm:host=127.0.0.1,port={port}\nTPM2_PCRS=sha256:7,11\n"
        ),
    );
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("the kmk was unsealed earlier this boot and PCR 11 locked since");
}

/// Passes the first PCR_Extend to the TPM but answers TPM_RC_FAILURE, as
/// when the TPM extended and its answer was lost on the way back.
fn lost_extend_answer_proxy(upstream: u16) -> u16 {
    let mut lost = false;
    proxy(upstream, move |command, tpm| {
        if command_code(command) != 0x182 || lost {
            return None;
        }
        lost = true;
        tpm.write_all(command).unwrap();
        let answer = read_frame(tpm).unwrap();
        assert_eq!(answer[6..10], [0, 0, 0, 0], "the extend itself");
        Some(vec![0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x01])
    })
}

#[test]
fn after_a_lost_lock_answer_load_says_reboot_and_seal_seals_to_the_value_before_the_lock() {
    let mut tpm = sealed_tpm("lock-lost");
    let port = lost_extend_answer_proxy(tpm.port);
    let f = fixture(
        &tpm,
        "lock-lost",
        &format!("swtpm:host=127.0.0.1,port={port}"),
        "",
    );
    let r = f.run(&["load"]);
    assert_eq!(r.code, 1, "{}", r.output());
    r.assert_contains("but could not lock PCR 11");
    assert_eq!(pcr11(&tpm), hex(&pcr_lock::locked_value(&[0; 32])));
    assert!(!f.dir.join("run/pcrs-at-unseal").exists());

    // A retried load: no record, PCR 11 locked. Not "reseal".
    let r = f.run(&["load"]);
    assert_eq!(r.code, 1, "{}", r.output());
    r.assert_contains(
        "PCR 11 of sha256:7,11 holds the PCR lock applied 1 time(s) to zero, so the kmk was already unsealed and PCR 11 locked in this boot",
    );
    r.assert_contains("reboot to unseal it again");
    assert!(!r.output().contains("reseal"), "{}", r.output());

    // Locked once more (another retry's extend), then a reseal in this
    // boot: it seals to PCR 11 before the lock, not to its locked value.
    tpm.tool(&[
        "tpm2_pcrextend",
        &format!("11:sha256={}", hex(&pcr_lock::lock_digest())),
    ]);
    // A new kmk and evm-key: the old evm-key's labels go, so seal wants
    // that said by name (--force alone is refused).
    let r = f.run(&["seal", "--force", "--evm-key", "/etc/keys/evm.blob"]);
    assert_eq!(r.code, 2, "{}", r.output());
    r.assert_contains("add --replace-kmk-and-orphan-labels");
    let r = f.run(&[
        "seal",
        "--replace-kmk-and-orphan-labels",
        "--evm-key",
        "/etc/keys/evm.blob",
    ]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains(
        "PCR 11 holds the PCR lock applied 2 time(s) to zero: this boot unsealed the kmk and locked it, and no record of that is left",
    );
    r.assert_contains("sealed to PCR 11 = 0, its value before the lock");

    // The next boot unseals the new kmk, and its evm-key loads.
    tpm.reboot();
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("loaded user key kmk (32 bytes, unsealed by the TPM)");
    r.assert_contains("locked PCR 11");
}

#[test]
fn seal_warns_when_the_lock_pcr_holds_a_value_it_cannot_explain() {
    let tpm = Swtpm::start("lock-unexplained");
    // As a UKI boot leaves PCR 11: extended by something else.
    tpm.tool(&["tpm2_pcrextend", &format!("11:sha256={}", "42".repeat(32))]);
    let f = Fixture::new("lock-unexplained");
    f.write(
        "/etc/integrity-loader.conf",
        format!("TPM={}\n", tpm.tcti()),
    );
    let r = f.run(&["seal"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains(&format!(
        "PCR 11 holds {}, neither zero nor the PCR lock applied to zero, and there is no record of this boot's unseal",
        pcr11(&tpm)
    ));
    r.assert_contains("seal again with --pcr-value 11=HEX, its value before the lock");
    // Without a lock configured, nothing to say.
    f.write(
        "/etc/integrity-loader.conf",
        format!("TPM={}\nTPM2_PCRLOCK=no\n", tpm.tcti()),
    );
    let r = f.run(&["seal", "--force"]);
    assert_eq!(r.code, 0, "{}", r.output());
    assert!(!r.output().contains("neither zero"), "{}", r.output());
}
