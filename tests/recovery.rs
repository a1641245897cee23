//! The recovery key against a real swtpm: `seal --recovery-key` prints it
//! once; after the PCRs move, `load` asks for it on a terminal (a pty the
//! test types on), and the right key loads the kmk that opens the evm-key
//! blob made at seal; wrong keys or no answer within RECOVERY_TIMEOUT fail
//! the kmk step with nothing loaded; `reseal` takes the kmk from the key.

mod common;
#[path = "common/pty.rs"]
mod pty;
#[path = "common/swtpm.rs"]
mod swtpm;

use common::*;
use integrity_loader::keyring;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use swtpm::Swtpm;

const BLOB: &str = "etc/keys/kmk-tpm2.pem";
const RECOVERY: &str = "etc/keys/kmk-tpm2.pem.recovery";
const EVM: &str = "etc/keys/evm.blob";

/// The key line of seal's stdout.
fn key_of(stdout: &str) -> String {
    let mut lines = stdout.lines();
    lines
        .find(|l| l.starts_with("recovery key (shown this once"))
        .expect("a recovery key on stdout");
    lines.next().unwrap().to_string()
}

/// Sealed with a recovery key and booted once; returns the key.
fn provisioned(name: &str, extra: &str) -> (Swtpm, Fixture, String) {
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
        "--recovery-key",
    ]);
    assert_eq!(r.code, 0, "{}", r.output());
    let key = key_of(&r.stdout);
    // Printed once, on stdout only.
    assert_eq!(r.stdout.matches(&key).count(), 1, "{}", r.stdout);
    assert!(!r.stderr.contains(&key), "{}", r.stderr);
    let groups: Vec<&str> = key.split('-').collect();
    assert_eq!(groups.len(), 8, "{key}");
    assert!(groups.iter().all(|g| g.len() == 5), "{key}");
    let file = f.root().join(RECOVERY);
    let meta = fs::metadata(&file).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = fs::read_to_string(&file).unwrap();
    assert!(text.contains("kdf argon2id m=65536 t=3 p=1\n"), "{text}");
    assert!(!text.contains(&key));
    f.write("/etc/sysconfig/evm", format!("EVMKEY=/{EVM}\n"));
    let conf = f.root().join("etc/integrity-loader.conf");
    let mut text = fs::read_to_string(&conf).unwrap();
    text.push_str(extra);
    fs::write(&conf, text).unwrap();
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    f.run(&["status"])
        .assert_contains(&format!("recovery key: yes ({})", file.display()));
    (tpm, f, key)
}

/// The next boot, with PCR 7 moved (a firmware update): the blob does
/// not unseal.
fn next_boot_pcrs_changed(tpm: &mut Swtpm, f: &Fixture) {
    tpm.reboot();
    for id in keyring::list(f.session).unwrap() {
        keyring::unlink(id, f.session).unwrap();
    }
    fs::write(f.dir.join("sfs/evm"), b"").unwrap();
    let _ = fs::remove_dir_all(f.dir.join("run"));
    tpm.tool(&["tpm2_pcrextend", &format!("7:sha256={}", "42".repeat(32))]);
}

fn load_answering(f: &Fixture, answers: &[&str]) -> pty::Answered {
    pty::run_answering(f.command(&["load"]), answers)
}

/// The boot after one that sealed the kmk again, with the same PCR values:
/// the TPM unseals, nobody is asked, EVM comes on.
fn next_boot_unseals_unasked(tpm: &mut Swtpm, f: &Fixture) -> pty::Answered {
    next_boot_pcrs_changed(tpm, f);
    let r = load_answering(f, &[]);
    assert_eq!(r.code, 0, "{}", r.output());
    assert!(
        r.output()
            .contains("loaded user key kmk (32 bytes, unsealed by the TPM)"),
        "{}",
        r.output()
    );
    assert_not_asked(&r);
    assert_eq!(f.sfs_text("evm"), "1\n");
    r
}

/// Nobody was asked for the recovery key.
fn assert_not_asked(r: &pty::Answered) {
    assert!(
        !r.transcript.contains("Enter the recovery key"),
        "{}",
        r.transcript
    );
}

/// `check --write-pins`: the pins an initramfs built now would hold.
fn write_pins(f: &Fixture) -> std::path::PathBuf {
    let pins = f.dir.join("initramfs.pins");
    let r = f.run(&["check", "--write-pins", pins.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.output());
    pins
}

fn load_pinned(f: &Fixture, pins: &std::path::Path, answers: &[&str]) -> pty::Answered {
    pty::run_answering(
        f.command(&["load", "--pins", pins.to_str().unwrap()]),
        answers,
    )
}

/// The root's integrity-loader.conf with `from` replaced by `to`.
fn edit_conf(f: &Fixture, from: &str, to: &str) {
    let conf = f.root().join("etc/integrity-loader.conf");
    let text = fs::read_to_string(&conf).unwrap().replace(from, to);
    fs::write(&conf, text).unwrap();
}

#[test]
fn the_right_key_loads_the_kmk_that_opens_the_evm_key_and_reseal_takes_it() {
    let (mut tpm, f, key) = provisioned("recovery-right", "");
    let evm_blob = fs::read(f.root().join(EVM)).unwrap();
    next_boot_pcrs_changed(&mut tpm, &f);
    // Typed sloppily: lowercase, spaces for dashes; one wrong try first.
    let sloppy = key.to_lowercase().replace('-', " ");
    let r = load_answering(&f, &["AAAAA-BBBBB", &sloppy]);
    assert_eq!(r.code, 0, "{}\n{}", r.output(), r.transcript);
    let out = r.output();
    assert!(out.contains("PCR policy check failed"), "{out}");
    assert!(
        out.contains("opened with the recovery key, as the TPM did not unseal it: run `integrity-loader reseal`"),
        "{out}"
    );
    assert!(
        out.contains("recovery key try 1 of 3: not the key"),
        "{out}"
    );
    assert!(
        out.contains("loaded evm-key (32 bytes, sealed by user:kmk)"),
        "{out}"
    );
    assert_eq!(f.sfs_text("evm"), "1\n");
    assert!(r.transcript.contains("try 2 of 3"), "{}", r.transcript);
    assert!(r.transcript.contains("recovery key accepted"));
    // Echo was off: the key is not on the terminal, nor in any output.
    assert!(
        !r.transcript.to_lowercase().contains(&sloppy),
        "{}",
        r.transcript
    );
    assert!(!out.to_lowercase().contains(&sloppy), "{out}");
    assert_eq!(fs::read(f.root().join(EVM)).unwrap(), evm_blob);

    // reseal: the kmk was dropped and the PCRs do not match, so it comes
    // from the recovery key; then the next boot (same PCRs) needs no key.
    assert!(f.find("user", "kmk").is_none());
    let r = pty::run_answering(f.command(&["reseal"]), &[&key]);
    assert_eq!(r.code, 0, "{}\n{}", r.output(), r.transcript);
    assert!(
        r.output()
            .contains("the kmk to seal again: the recovery key"),
        "{}",
        r.output()
    );
    assert!(
        r.output().contains("it opens the evm-key blob"),
        "{}",
        r.output()
    );
    next_boot_unseals_unasked(&mut tpm, &f);
}

#[test]
fn three_wrong_keys_fail_the_kmk_step_with_nothing_loaded() {
    let (mut tpm, f, key) = provisioned("recovery-wrong", "");
    next_boot_pcrs_changed(&mut tpm, &f);
    // A well-formed other key, garbage, and the key one character off.
    let mut off = key.clone().into_bytes();
    off[0] = if off[0] == b'2' { b'3' } else { b'2' };
    let off = String::from_utf8(off).unwrap();
    let r = load_answering(
        &f,
        &[
            "ABCDE-FGHJK-MNPQR-STVWX-YZ012-34567-89ABC-DEFGH",
            "no",
            &off,
            &key,
        ],
    );
    assert_eq!(r.code, 1, "{}", r.output());
    assert!(
        r.output().contains("3 recovery keys given on"),
        "{}",
        r.output()
    );
    assert!(f.find("user", "kmk").is_none(), "{:?}", f.keys());
    assert!(f.find("encrypted", "evm-key").is_none(), "{:?}", f.keys());
    assert_ne!(f.sfs_text("evm"), "1\n");
    // Three prompts, no fourth.
    assert_eq!(
        r.transcript.matches("Enter the recovery key").count(),
        3,
        "{}",
        r.transcript
    );
}

#[test]
fn no_answer_in_time_fails_within_the_bound() {
    let (mut tpm, f, _key) = provisioned("recovery-timeout", "RECOVERY_TIMEOUT=2\n");
    next_boot_pcrs_changed(&mut tpm, &f);
    let r = load_answering(&f, &[]);
    assert_eq!(r.code, 1, "{}", r.output());
    assert!(
        r.output().contains("no recovery key was given on")
            && r.output().contains("within RECOVERY_TIMEOUT (2 s)"),
        "{}",
        r.output()
    );
    assert!(r.seconds >= 2.0 && r.seconds < 15.0, "{} s", r.seconds);
    assert!(f.find("user", "kmk").is_none());
    assert_ne!(f.sfs_text("evm"), "1\n");

    // RECOVERY_TIMEOUT=0 never asks.
    edit_conf(&f, "RECOVERY_TIMEOUT=2", "RECOVERY_TIMEOUT=0");
    let r = load_answering(&f, &[]);
    assert_eq!(r.code, 1, "{}", r.output());
    assert!(
        r.output().contains("RECOVERY_TIMEOUT=0 says never to ask"),
        "{}",
        r.output()
    );
    assert!(r.transcript.is_empty(), "{}", r.transcript);
}

#[test]
fn a_seal_without_the_option_removes_the_stale_recovery_file() {
    let (_tpm, f, _key) = provisioned("recovery-stale", "");
    assert!(f.root().join(RECOVERY).exists());
    let r = f.run(&["seal", "--force", "--replace-kmk-and-orphan-labels"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("it opened the kmk this seal replaced");
    assert!(!f.root().join(RECOVERY).exists());
    assert!(f.root().join(BLOB).exists());
    f.run(&["status"]).assert_contains("recovery key: none");
    assert!(!r.stdout.contains("recovery key"), "{}", r.stdout);
}

/// With the kmk pinned by the initramfs, only the recovery file it pins
/// beside it is ever asked for: one planted on the disk (whose maker knows
/// its key) or added after the build is refused before any prompt.
#[test]
fn an_initramfs_that_pins_the_kmk_takes_only_its_recovery_file() {
    let (mut tpm, f, key) = provisioned("recovery-pinned", "");
    let pins = write_pins(&f);
    let text = fs::read_to_string(&pins).unwrap();
    assert!(text.contains("\nRECOVERY_SHA256="), "{text}");
    assert!(!text.contains("RECOVERY_SHA256=none"), "{text}");
    let load = |answers: &[&str]| load_pinned(&f, &pins, answers);

    // The pinned file: asked for, and it opens the kmk.
    next_boot_pcrs_changed(&mut tpm, &f);
    let r = load(&[&key]);
    assert_eq!(r.code, 0, "{}\n{}", r.output(), r.transcript);
    assert!(
        r.output().contains("opened with the recovery key"),
        "{}",
        r.output()
    );

    // Replaced on the disk: refused, no prompt.
    next_boot_pcrs_changed(&mut tpm, &f);
    let file = f.root().join(RECOVERY);
    let mut planted = fs::read(&file).unwrap();
    planted.push(b'\n');
    fs::write(&file, &planted).unwrap();
    let r = load(&[&key]);
    assert_eq!(r.code, 1, "{}", r.output());
    assert!(
        r.output().contains("is not the one the initramfs pins"),
        "{}",
        r.output()
    );
    assert_not_asked(&r);
    assert!(f.find("user", "kmk").is_none());

    // An initramfs built before any recovery key existed takes none.
    fs::write(
        &pins,
        text.replace(
            &text
                .lines()
                .find(|l| l.starts_with("RECOVERY_SHA256="))
                .unwrap()
                .to_string(),
            "RECOVERY_SHA256=none",
        ),
    )
    .unwrap();
    let r = load(&[&key]);
    assert_eq!(r.code, 1, "{}", r.output());
    assert!(
        r.output()
            .contains("the initramfs pins the kmk and no recovery file"),
        "{}",
        r.output()
    );
    assert_not_asked(&r);
}

/// AUTO_RESEAL=yes: the boot the recovery key opened the kmk in seals it
/// again to its PCR values once the evm-key opens with it, so the next
/// boot with the same PCRs needs no key; the recovery file (same kmk)
/// stays as it is.
#[test]
fn auto_reseal_seals_the_recovered_kmk_again_so_the_next_boot_needs_no_key() {
    let (mut tpm, f, key) = provisioned("recovery-auto", "AUTO_RESEAL=yes\n");
    let blob = fs::read(f.root().join(BLOB)).unwrap();
    let recovery = fs::read(f.root().join(RECOVERY)).unwrap();
    let evm_blob = fs::read(f.root().join(EVM)).unwrap();
    next_boot_pcrs_changed(&mut tpm, &f);
    let r = load_answering(&f, &[&key]);
    assert_eq!(r.code, 0, "{}\n{}", r.output(), r.transcript);
    let out = r.output();
    assert!(
        out.contains("AUTO_RESEAL seals it again once the evm-key opens with it"),
        "{out}"
    );
    assert!(
        out.contains("AUTO_RESEAL: the kmk opened with the recovery key is sealed again"),
        "{out}"
    );
    assert!(out.contains("sealed the same 32-byte kmk again"), "{out}");
    // Locked as an unseal locks: nothing later in this boot unseals the
    // new blob (reseal finds the lock, and wrong keys get nothing).
    assert!(out.contains("locked PCR 11: the kmk sealed again"), "{out}");
    let again = pty::run_answering(f.command(&["reseal"]), &["x", "x", "x"]);
    assert_eq!(again.code, 1, "{}", again.output());
    assert!(
        again.output().contains("PCR 11 holds the PCR lock"),
        "{}",
        again.output()
    );
    assert!(!out.to_lowercase().contains(&key.to_lowercase()), "{out}");
    assert_ne!(fs::read(f.root().join(BLOB)).unwrap(), blob);
    assert_eq!(fs::read(f.root().join(RECOVERY)).unwrap(), recovery);
    assert_eq!(fs::read(f.root().join(EVM)).unwrap(), evm_blob);
    assert_eq!(f.sfs_text("evm"), "1\n");
    f.run(&["status"]).assert_contains("no reseal due");

    // The next boot, same PCRs: the TPM unseals, nobody is asked.
    let r = next_boot_unseals_unasked(&mut tpm, &f);
    assert!(!r.output().contains("AUTO_RESEAL"), "{}", r.output());
}

/// A host-only initramfs pins the blob's SHA-256: a blob sealed at boot
/// would be refused by that same initramfs next boot, so AUTO_RESEAL
/// writes nothing and says what to do; without AUTO_RESEAL the boot says
/// the next one will ask again.
#[test]
fn auto_reseal_leaves_a_blob_the_initramfs_pins_alone() {
    let (mut tpm, f, key) = provisioned("recovery-auto-pinned", "AUTO_RESEAL=yes\n");
    let pins = write_pins(&f);
    let blob = fs::read(f.root().join(BLOB)).unwrap();
    next_boot_pcrs_changed(&mut tpm, &f);
    let r = load_pinned(&f, &pins, &[&key]);
    assert_eq!(r.code, 0, "{}\n{}", r.output(), r.transcript);
    let out = r.output();
    assert!(
        out.contains(
            "AUTO_RESEAL: not sealed again: this initramfs pins the kmk blob (MASTERKEY_SHA256"
        ),
        "{out}"
    );
    assert!(
        out.contains("run `integrity-loader reseal` once booted"),
        "{out}"
    );
    assert_eq!(fs::read(f.root().join(BLOB)).unwrap(), blob);
    assert_eq!(f.sfs_text("evm"), "1\n");
    f.run(&["status"]).assert_contains("reseal due");

    // AUTO_RESEAL off: the blob stays, and the log says the next boot asks.
    edit_conf(&f, "AUTO_RESEAL=yes\n", "");
    next_boot_pcrs_changed(&mut tpm, &f);
    let r = load_answering(&f, &[&key]);
    assert_eq!(r.code, 0, "{}\n{}", r.output(), r.transcript);
    assert!(
        r.output().contains("the next boot will ask again"),
        "{}",
        r.output()
    );
    assert!(!r.output().contains("AUTO_RESEAL:"), "{}", r.output());
    assert_eq!(fs::read(f.root().join(BLOB)).unwrap(), blob);
}

/// The files under the root's /etc, with their bytes.
fn etc_files(f: &Fixture) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut dirs = vec![f.root().join("etc")];
    while let Some(d) = dirs.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                out.push((p.clone(), fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// A reseal cut short past its switch left the configuration naming the
/// blob beside its place (MASTERKEY=...pem.next): AUTO_RESEAL does not
/// finish that move at boot (a switch and renames; sealing over the file
/// in force would do neither), writes nothing and says to run reseal,
/// which finishes it.
#[test]
fn auto_reseal_leaves_a_move_cut_short_to_reseal() {
    let (mut tpm, f, key) = provisioned("recovery-auto-beside", "DROP_KMK=no\nAUTO_RESEAL=yes\n");
    // Another PCR set: beside (blob, recovery file), the switch, crash.
    f.crash_past_the_switch(&["reseal", "--pcrs", "sha256:7"], 3, BLOB);
    assert!(f.root().join(format!("{BLOB}.next.recovery")).exists());
    let before = etc_files(&f);
    next_boot_pcrs_changed(&mut tpm, &f);
    let r = load_answering(&f, &[&key]);
    assert_eq!(r.code, 0, "{}\n{}", r.output(), r.transcript);
    let out = r.output();
    assert!(
        out.contains(&format!(
            "AUTO_RESEAL: not sealed again: MASTERKEY=/{BLOB}.next ({}:",
            f.root().join("etc/integrity-loader.conf").display()
        )),
        "{out}"
    );
    assert!(
        out.contains("moving them there is `integrity-loader reseal`'s, not a boot's: run `integrity-loader reseal` once booted"),
        "{out}"
    );
    assert_eq!(f.sfs_text("evm"), "1\n");
    assert!(etc_files(&f) == before, "AUTO_RESEAL wrote files");
    // reseal (the kmk this boot kept) moves the set into place.
    let r = f.run(&["reseal"]);
    assert_eq!(r.code, 0, "{}", r.output());
    let conf = fs::read_to_string(f.root().join("etc/integrity-loader.conf")).unwrap();
    assert!(
        conf.contains(&format!("MASTERKEY=/{BLOB}\n")) && !conf.contains(".next"),
        "{conf}"
    );
    next_boot_unseals_unasked(&mut tpm, &f);
}

/// A stand-in for systemd-ask-password: records its arguments, answers
/// the Nth call with line N of `answers` (or sleeps, for `hang`).
fn fake_agent(f: &Fixture, answers: &[&str], hang: bool) -> std::path::PathBuf {
    let dir = f.dir.join("agent");
    fs::create_dir_all(&dir).unwrap();
    let mut text = String::new();
    for a in answers {
        text.push_str(a);
        text.push('\n');
    }
    fs::write(dir.join("answers"), text).unwrap();
    let d = dir.display();
    let script = format!(
        "#!/bin/sh\nn=$(cat {d}/count 2>/dev/null || echo 0); n=$((n + 1)); echo $n > {d}/count\nprintf '%s\\n' \"$*\" >> {d}/argv\nenv >> {d}/env\n{}sed -n \"${{n}}p\" {d}/answers\n",
        if hang { "exec sleep 30\n" } else { "" }
    );
    let path = dir.join("systemd-ask-password");
    fs::write(&path, script).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn load_through_agent(f: &Fixture, agent: &std::path::Path) -> Run {
    let out = f
        .command(&["load"])
        .env("INTEGRITY_LOADER_ASK_PASSWORD", agent)
        .env_remove("INTEGRITY_LOADER_RECOVERY_TTY")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    finished(out)
}

/// In a systemd initramfs the key is asked for through the password agent:
/// the answer comes back on its stdout through a pipe; its command line
/// and environment never hold the key; a wrong answer is a try.
#[test]
fn the_password_agent_is_asked_and_the_key_never_reaches_its_arguments() {
    let (mut tpm, f, key) = provisioned("recovery-agent", "");
    next_boot_pcrs_changed(&mut tpm, &f);
    let agent = fake_agent(&f, &["AAAAA-BBBBB", &key], false);
    let r = load_through_agent(&f, &agent);
    assert_eq!(r.code, 0, "{}", r.output());
    let out = r.output();
    assert!(
        out.contains(&format!("through {}", agent.display())),
        "{out}"
    );
    assert!(
        out.contains("recovery key try 1 of 3: not the key"),
        "{out}"
    );
    assert!(out.contains("opened with the recovery key"), "{out}");
    assert!(!out.contains(&key), "{out}");
    assert_eq!(f.sfs_text("evm"), "1\n");
    let argv = fs::read_to_string(f.dir.join("agent/argv")).unwrap();
    let calls: Vec<&str> = argv.lines().collect();
    assert_eq!(calls.len(), 2, "{argv}");
    assert!(calls[0].starts_with("--timeout="), "{argv}");
    assert!(
        calls[0].contains(&format!(
            "--id=integrity-loader:{}",
            f.root().join(BLOB).display()
        )),
        "{argv}"
    );
    assert!(calls[0].contains("try 1 of 3"), "{argv}");
    assert!(
        calls[1].contains("try 2 of 3 (the last was not the key)"),
        "{argv}"
    );
    assert!(!argv.contains(&key), "{argv}");
    let env = fs::read_to_string(f.dir.join("agent/env")).unwrap();
    assert!(!env.contains(&key), "the key in the agent's environment");
}

/// An agent that never answers is ended at RECOVERY_TIMEOUT (and a grace
/// for its exit): the kmk step fails, nothing is loaded.
#[test]
fn a_password_agent_that_hangs_is_ended_at_the_bound() {
    let (mut tpm, f, _key) = provisioned("recovery-agent-hang", "RECOVERY_TIMEOUT=2\n");
    next_boot_pcrs_changed(&mut tpm, &f);
    let agent = fake_agent(&f, &[], true);
    let start = std::time::Instant::now();
    let r = load_through_agent(&f, &agent);
    let seconds = start.elapsed().as_secs_f64();
    assert_eq!(r.code, 1, "{}", r.output());
    assert!(
        r.output().contains(&format!(
            "no recovery key was given through {} within RECOVERY_TIMEOUT (2 s)",
            agent.display()
        )),
        "{}",
        r.output()
    );
    assert!(seconds < 12.0, "{seconds} s");
    assert!(f.find("user", "kmk").is_none());
    assert_ne!(f.sfs_text("evm"), "1\n");
}
