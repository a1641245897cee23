//! The kmk never leaves the places it must be: every path that touches it
//! (user kmk loaded, already there, refused; evm-key refusals; a tpm2 kmk
//! unsealed by a software TPM, refused by its PCR policy; `seal`) is run
//! with a known kmk, at -v and -vv, to stderr and to the kernel log
//! (/dev/kmsg), and stdout, stderr, the kernel log records written during
//! the run and every file left under the fixture (the root and the fake
//! securityfs) are searched for the kmk as raw bytes, as the kernel log
//! escapes them, as lowercase and uppercase hex and as base64 at any byte
//! alignment, whole or any 8-byte piece of it. A control shows the scanner
//! finds each form. The kmk reaches the loader only from files: the command
//! line has no option that takes key material, the loader reads no
//! environment variable but two switches and the path of the recovery
//! prompt's terminal, and it starts no other program.

mod common;
#[path = "common/kmsg.rs"]
mod kmsg;
#[path = "common/pty.rs"]
mod pty;
#[path = "common/swtpm.rs"]
mod swtpm;

use common::*;
use integrity_loader::keyring;
use kmsg::Kmsg;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use swtpm::Swtpm;

/// The user kmk: binary, with NUL, newline, CR, backslash, 0x7f and 0xff,
/// the bytes a careless logger mangles or escapes.
const USER_KMK: [u8; 32] = [
    0x00, 0x0a, 0x5c, 0xff, 0x7f, 0x0d, 0x41, 0xc3, 0x28, 0x9e, 0x3b, 0x71, 0xd4, 0x02, 0xe8, 0x66,
    0x17, 0xb5, 0x4f, 0x8a, 0x23, 0xfe, 0x90, 0x6c, 0x35, 0xa9, 0x1e, 0xcb, 0x58, 0xf3, 0x0b, 0x87,
];
/// The kmk sealed in the software TPM.
const TPM_KMK: [u8; 32] = [
    0xc1, 0x5e, 0x00, 0x0a, 0x92, 0x3f, 0xe7, 0x44, 0x5c, 0x18, 0xbb, 0x76, 0x2d, 0xf0, 0x63, 0x09,
    0xa4, 0x31, 0xde, 0x7a, 0x0f, 0x88, 0x55, 0xcc, 0x12, 0xef, 0x67, 0x3a, 0x9d, 0x04, 0xb2, 0x7e,
];
const OTHER_KMK: [u8; 32] = [0x42; 32];

// ------------------------------------------------------------- the scanner

/// Every form of `secret` a leak could take, each with a label.
fn needles(secret: &[u8]) -> Vec<(String, Vec<u8>)> {
    const PIECE: usize = 8;
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let hex_lower = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    // Raw bytes, and as /dev/kmsg shows them (bytes < 0x20, >= 0x7f and the
    // backslash become \xNN).
    let escaped: Vec<Vec<u8>> = secret
        .iter()
        .map(|&c| {
            if !(0x20..0x7f).contains(&c) || c == b'\\' {
                format!("\\x{c:02x}").into_bytes()
            } else {
                vec![c]
            }
        })
        .collect();
    for i in 0..=secret.len().saturating_sub(PIECE) {
        let piece = &secret[i..i + PIECE];
        out.push((format!("raw bytes {i}..{}", i + PIECE), piece.to_vec()));
        out.push((
            format!("kmsg-escaped bytes {i}..{}", i + PIECE),
            escaped[i..i + PIECE].concat(),
        ));
        out.push((
            format!("lowercase hex of bytes {i}.."),
            hex_lower(piece).into_bytes(),
        ));
        out.push((
            format!("uppercase hex of bytes {i}.."),
            hex_lower(piece).to_uppercase().into_bytes(),
        ));
    }
    // Base64: whatever precedes the secret in an encoded buffer, its bytes
    // from some offset o < 3 start a 3-byte group; every run of 3 groups
    // (9 bytes, 12 characters) from there is fixed by the secret alone.
    for o in 0..3 {
        let groups = (secret.len() - o) / 3;
        let b64 = base64_encode(&secret[o..o + 3 * groups]);
        for g in 0..groups.saturating_sub(2) {
            out.push((
                format!("base64 of bytes {}..{}", o + 3 * g, o + 3 * g + 9),
                b64.as_bytes()[4 * g..4 * g + 12].to_vec(),
            ));
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The first form of the secret found in `haystack`.
fn leak(haystack: &[u8], needles: &[(String, Vec<u8>)]) -> Option<String> {
    needles
        .iter()
        .find(|(_, n)| contains(haystack, n))
        .map(|(label, _)| label.clone())
}

/// Something to search: where it came from and its bytes.
struct Capture {
    what: String,
    bytes: Vec<u8>,
}

fn scan(captures: &[Capture], secret: &[u8]) -> Vec<String> {
    let n = needles(secret);
    captures
        .iter()
        .filter_map(|c| leak(&c.bytes, &n).map(|form| format!("{}: {form}", c.what)))
        .collect()
}

#[test]
fn the_scanner_finds_every_form_of_a_secret() {
    let s = &USER_KMK;
    let noise = b"integrity-loader: loaded user key kmk (32 bytes) ";
    let hex: String = s.iter().map(|b| format!("{b:02x}")).collect();
    let embed = |middle: &[u8]| [noise.as_slice(), middle, noise.as_slice()].concat();
    let mut forms: Vec<(&str, Vec<u8>)> = vec![
        ("raw", embed(s)),
        ("a raw 8-byte piece", embed(&s[11..19])),
        ("lowercase hex", embed(hex.as_bytes())),
        ("uppercase hex", embed(hex.to_uppercase().as_bytes())),
        ("hex of a piece", embed(&hex.as_bytes()[6..22])),
    ];
    // base64 of the secret behind 0, 1 and 2 other bytes, and of a piece.
    for pad in 0..3 {
        let mut buf = vec![b'x'; pad];
        buf.extend_from_slice(s);
        buf.extend_from_slice(b"tail");
        forms.push(("base64", embed(base64_encode(&buf).as_bytes())));
    }
    forms.push((
        "base64 of a piece",
        embed(base64_encode(&s[5..20]).as_bytes()),
    ));
    // As /dev/kmsg would show a message holding the raw bytes.
    let kmsg: String = s
        .iter()
        .map(|&c| {
            if !(0x20..0x7f).contains(&c) || c == b'\\' {
                format!("\\x{c:02x}")
            } else {
                (c as char).to_string()
            }
        })
        .collect();
    forms.push(("kmsg-escaped", embed(kmsg.as_bytes())));
    let n = needles(s);
    for (what, buf) in &forms {
        assert!(
            leak(buf, &n).is_some(),
            "the scanner misses the secret as {what}"
        );
    }
    // And finds nothing where it is not: other keys, other encodings.
    for clean in [
        embed(&OTHER_KMK),
        embed(&TPM_KMK),
        embed(base64_encode(&TPM_KMK).as_bytes()),
        embed(b"0123456789abcdef0123456789ABCDEF"),
    ] {
        assert_eq!(leak(&clean, &n), None);
    }
}

// ------------------------------------------------------ running the loader

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Sink {
    Stderr,
    Kmsg,
}

/// One run's output, as bytes (a lossy conversion would hide raw secrets).
struct Output {
    code: i32,
    pid: u32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// Kernel log records written while it ran (any writer).
    kmsg: Vec<Vec<u8>>,
}

impl Output {
    fn text(&self) -> String {
        format!(
            "{}{}",
            String::from_utf8_lossy(&self.stdout),
            String::from_utf8_lossy(&self.stderr)
        )
    }

    /// This run's own records in the kernel log.
    fn own_records(&self) -> Vec<String> {
        kmsg::own_records(&self.kmsg, self.pid)
            .into_iter()
            .map(|(_, text)| text)
            .collect()
    }

    fn captures(&self, what: &str) -> Vec<Capture> {
        let mut c = vec![
            Capture {
                what: format!("{what}: stdout"),
                bytes: self.stdout.clone(),
            },
            Capture {
                what: format!("{what}: stderr"),
                bytes: self.stderr.clone(),
            },
        ];
        for (i, r) in self.kmsg.iter().enumerate() {
            c.push(Capture {
                what: format!("{what}: kernel log record {i}"),
                bytes: r.clone(),
            });
        }
        c
    }
}

fn run(f: &Fixture, args: &[&str], sink: Sink) -> Output {
    let mut cmd = f.command(args);
    if sink == Sink::Kmsg {
        cmd.env("INTEGRITY_LOADER_LOG", "kmsg");
    }
    let mut kmsg = Kmsg::from_now();
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run integrity-loader");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        pid,
        stdout: out.stdout,
        stderr: out.stderr,
        kmsg: kmsg.records(),
    }
}

/// Every regular file under `dir`, with its bytes.
fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(meta) = fs::symlink_metadata(&p) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(p);
            } else if meta.is_file() {
                out.push((p.clone(), fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// The files of a fixture as captures; `kmk_file` (inside the root), where
/// the secret is by design, is left out after checking the scanner does
/// find it there.
fn file_captures(f: &Fixture, kmk_file: Option<&str>, secret: &[u8]) -> Vec<Capture> {
    let skip = kmk_file.map(|p| f.root().join(p.trim_start_matches('/')));
    let mut out = Vec::new();
    for (path, bytes) in files_under(&f.dir) {
        if Some(&path) == skip.as_ref() {
            assert!(
                leak(&bytes, &needles(secret)).is_some(),
                "control: the scanner must find the kmk in its own file {}",
                path.display()
            );
            continue;
        }
        out.push(Capture {
            what: format!("file {}", path.display()),
            bytes,
        });
    }
    out
}

/// Runs one scenario at -v and -vv, to stderr and to the kernel log, each
/// in a fresh fixture: `load` twice (the second finds the work done), then
/// `check -v` and `status`. Returns the captures, after checking that each
/// first `load` ended with `code` and said `message`.
fn exercise(
    name: &str,
    setup: &dyn Fn(&Fixture),
    code: i32,
    message: &str,
    kmk_file: Option<&str>,
    secret: &[u8],
) -> Vec<Capture> {
    let mut captures = Vec::new();
    for sink in [Sink::Stderr, Sink::Kmsg] {
        for verbosity in ["-v", "-vv"] {
            let f = Fixture::new("secret");
            setup(&f);
            let label = format!("{name} ({sink:?}, {verbosity})");
            let first = run(&f, &["load", verbosity], sink);
            let said = match sink {
                Sink::Stderr => first.text(),
                Sink::Kmsg => {
                    format!("{}{}", first.text(), first.own_records().join("\n"))
                }
            };
            assert_eq!(first.code, code, "{label}: {said}");
            assert!(
                said.contains(message),
                "{label}: {message:?} not in\n{said}"
            );
            if sink == Sink::Kmsg {
                // The sink really was the kernel log.
                assert!(
                    !first.own_records().is_empty(),
                    "{label}: no record of pid {} in /dev/kmsg",
                    first.pid
                );
            }
            captures.extend(first.captures(&format!("{label}: load")));
            let second = run(&f, &["load", verbosity], sink);
            captures.extend(second.captures(&format!("{label}: second load")));
            captures
                .extend(run(&f, &["check", verbosity], sink).captures(&format!("{label}: check")));
            captures.extend(
                run(&f, &["status", verbosity], sink).captures(&format!("{label}: status")),
            );
            captures.extend(file_captures(&f, kmk_file, secret));
        }
    }
    captures
}

fn assert_clean(captures: &[Capture], secret: &[u8]) {
    assert!(!captures.is_empty());
    let leaks = scan(captures, secret);
    assert!(
        leaks.is_empty(),
        "the kmk leaked ({} of {} captures):\n{}",
        leaks.len(),
        captures.len(),
        leaks.join("\n")
    );
}

// ------------------------------------------------------------- user kmk

fn user_setup(f: &Fixture) {
    f.write("/etc/sysconfig/masterkey", "MASTERKEYTYPE=user\n");
    f.write("/etc/keys/kmk-user.blob", USER_KMK);
    f.write("/etc/sysconfig/evm", "EVMKEY=/etc/keys/evm.blob\n");
    f.write("/etc/keys/evm.blob", make_evm_blob(&USER_KMK, "kmk-user"));
    f.copy_cert("rsa2048.der", "/etc/keys/x509_evm.der");
}

const KMK_FILE: &str = "/etc/keys/kmk-user.blob";

#[test]
fn user_kmk_loaded_leaves_no_trace() {
    let c = exercise(
        "user kmk",
        &user_setup,
        0,
        "loaded user key kmk-user (32 bytes)",
        Some(KMK_FILE),
        &USER_KMK,
    );
    assert_clean(&c, &USER_KMK);
}

#[test]
fn user_kmk_dropped_leaves_no_trace() {
    let c = exercise(
        "user kmk, DROP_KMK=yes",
        &|f| {
            user_setup(f);
            f.write("/etc/integrity-loader.conf", "DROP_KMK=yes\n");
        },
        0,
        "unlinked kmk-user",
        Some(KMK_FILE),
        &USER_KMK,
    );
    assert_clean(&c, &USER_KMK);
}

#[test]
fn user_kmk_failures_leave_no_trace() {
    let mut c = Vec::new();
    // The evm-key names another kmk than KMK_NAME (without it, the kmk
    // would take the blob's name).
    c.extend(exercise(
        "evm-key names kmk-other",
        &|f| {
            user_setup(f);
            f.write("/etc/keys/evm.blob", make_evm_blob(&USER_KMK, "kmk-other"));
            f.write("/etc/integrity-loader.conf", "KMK_NAME=kmk-user\n");
        },
        1,
        "is sealed by user:kmk-other, which is not loaded",
        Some(KMK_FILE),
        &USER_KMK,
    ));
    // A damaged evm-key blob.
    c.extend(exercise(
        "bad evm-key blob",
        &|f| {
            user_setup(f);
            let mut blob = make_evm_blob(&USER_KMK, "kmk-user");
            blob.truncate(blob.len() - 7);
            f.write("/etc/keys/evm.blob", blob);
        },
        1,
        "(truncated or damaged blob)",
        Some(KMK_FILE),
        &USER_KMK,
    ));
    // An evm-key the kernel cannot decrypt with this kmk.
    c.extend(exercise(
        "evm-key sealed by other bytes",
        &|f| {
            user_setup(f);
            f.write("/etc/keys/evm.blob", make_evm_blob(&OTHER_KMK, "kmk-user"));
        },
        1,
        "could not decrypt it with user:kmk-user (EINVAL)",
        Some(KMK_FILE),
        &USER_KMK,
    ));
    // The secret is in the keyring and the file holds other bytes: the
    // loader reads the loaded key back to compare them.
    c.extend(exercise(
        "another kmk of the same name in the keyring",
        &|f| {
            user_setup(f);
            f.write(KMK_FILE, OTHER_KMK);
            keyring::add_key("user", Some("kmk-user"), &USER_KMK, f.session).unwrap();
        },
        1,
        "a different user key kmk-user is already in keyring @s",
        None,
        &USER_KMK,
    ));
    assert_clean(&c, &USER_KMK);
    // The same runs, searched for the other key they handled.
    let mut other = Vec::new();
    other.extend(exercise(
        "file holds a kmk other than the loaded one",
        &|f| {
            user_setup(f);
            keyring::add_key("user", Some("kmk-user"), &OTHER_KMK, f.session).unwrap();
        },
        1,
        "a different user key kmk-user is already in keyring @s",
        Some(KMK_FILE),
        &USER_KMK,
    ));
    assert_clean(&other, &USER_KMK);
    assert_clean(&other, &OTHER_KMK);
}

// ----------------------------------------------------------- tpm2 kmk

fn tpm2_setup(f: &Fixture, tpm: &Swtpm, pem: &[u8]) {
    f.write(
        "/etc/integrity-loader.conf",
        format!(
            "MASTERKEYTYPE=tpm2\nMASTERKEY=/etc/keys/kmk.pem\nTPM={}\nTPM2_PCRS=sha256:7,11\nTPM2_PCRLOCK=no\n",
            tpm.tcti()
        ),
    );
    f.write("/etc/keys/kmk.pem", pem);
    f.write("/etc/sysconfig/evm", "EVMKEY=/etc/keys/evm.blob\n");
    f.write("/etc/keys/evm.blob", make_evm_blob(&TPM_KMK, "kmk"));
}

#[test]
fn tpm2_kmk_unsealed_or_refused_leaves_no_trace() {
    let tpm = Swtpm::start("hygiene");
    tpm.provision_srk();
    let pem = tpm.seal_with_tools(&TPM_KMK, "sha256:7,11");
    let mut c = exercise(
        "tpm2 kmk",
        &|f| tpm2_setup(f, &tpm, &pem),
        0,
        "loaded user key kmk (32 bytes, unsealed by the TPM)",
        None,
        &TPM_KMK,
    );
    c.extend(exercise(
        "tpm2 kmk, evm-key sealed by other bytes",
        &|f| {
            tpm2_setup(f, &tpm, &pem);
            f.write("/etc/keys/evm.blob", make_evm_blob(&OTHER_KMK, "kmk"));
        },
        1,
        "could not decrypt it with user:kmk (EINVAL)",
        None,
        &TPM_KMK,
    ));
    // Pinned to the SRK's Name (as tpm2-tools read it), and to another.
    let name_file = tpm.path("srk.name");
    tpm.tool(&[
        "tpm2_readpublic",
        "-Q",
        "-c",
        "0x81000001",
        "-n",
        &name_file,
    ]);
    let srk: String = std::fs::read(&name_file)
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let pin = |f: &Fixture, name: &str| {
        let conf = f.root().join("etc/integrity-loader.conf");
        let text = std::fs::read_to_string(&conf).unwrap();
        std::fs::write(&conf, format!("{text}TPM2_PARENT_NAME={name}\n")).unwrap();
    };
    c.extend(exercise(
        "tpm2 kmk, pinned storage key",
        &|f| {
            tpm2_setup(f, &tpm, &pem);
            pin(f, &srk);
        },
        0,
        "loaded user key kmk (32 bytes, unsealed by the TPM)",
        None,
        &TPM_KMK,
    ));
    c.extend(exercise(
        "tpm2 kmk, storage key pinned to another Name",
        &|f| {
            tpm2_setup(f, &tpm, &pem);
            pin(f, &format!("000b{}", "ab".repeat(32)));
        },
        1,
        "the storage key at 0x81000001 is not the pinned one",
        None,
        &TPM_KMK,
    ));
    // The PCR moves: the TPM refuses to unseal.
    tpm.tool(&[
        "tpm2_pcrextend",
        "11:sha256=0000000000000000000000000000000000000000000000000000000000000003",
    ]);
    c.extend(exercise(
        "tpm2 kmk, PCR changed",
        &|f| tpm2_setup(f, &tpm, &pem),
        1,
        "PCR policy check failed: the kmk is sealed to sha256:7,11",
        None,
        &TPM_KMK,
    ));
    assert_clean(&c, &TPM_KMK);
}

#[test]
fn seal_reseal_and_the_load_after_them_leave_no_trace() {
    let mut tpm = Swtpm::start("hygiene-seal");
    let f = Fixture::new("secret-seal");
    f.write(
        "/etc/integrity-loader.conf",
        format!("TPM={}\n", tpm.tcti()),
    );
    let mut outputs = Vec::new();
    let seal = run(
        &f,
        &[
            "seal",
            "-vv",
            "--evm-key",
            "/etc/keys/evm.blob",
            "--write-config",
            "--force",
        ],
        Sink::Stderr,
    );
    assert_eq!(seal.code, 0, "{}", seal.text());
    outputs.push(("seal", seal));
    f.write("/etc/sysconfig/evm", "EVMKEY=/etc/keys/evm.blob\n");
    // Kept after the load (the PCR lock drops it by default) so that the
    // secret to look for can be read back.
    let conf = f.root().join("etc/integrity-loader.conf");
    let mut text = fs::read_to_string(&conf).unwrap();
    text.push_str("DROP_KMK=no\n");
    fs::write(&conf, text).unwrap();
    let load = run(&f, &["load", "-vv"], Sink::Kmsg);
    assert_eq!(load.code, 0, "{}", load.text());
    // The kmk seal made, as the kernel holds it now: the secret to look for.
    let kmk = keyring::read_secret(f.find("user", "kmk").expect("kmk loaded")).unwrap();
    assert_eq!(kmk.len(), 32);
    outputs.push(("load after seal", load));
    outputs.push(("status", run(&f, &["status", "-vv"], Sink::Stderr)));
    outputs.push(("check", run(&f, &["check", "-vv"], Sink::Stderr)));
    // reseal, from the kmk in the keyring, then (the next boot, nothing
    // loaded) from an unseal, then with no source of the kmk at all.
    let reseal = run(&f, &["reseal", "-vv"], Sink::Kmsg);
    assert_eq!(reseal.code, 0, "{}", reseal.text());
    assert!(reseal.text().contains("user key kmk in keyring @s"));
    outputs.push(("reseal from the keyring", reseal));
    tpm.reboot();
    let _ = fs::remove_dir_all(f.dir.join("run"));
    keyring::unlink(f.find("user", "kmk").unwrap(), f.session).unwrap();
    let reseal = run(&f, &["reseal", "-vv", "--pcrs", "sha256:7"], Sink::Stderr);
    assert_eq!(reseal.code, 0, "{}", reseal.text());
    assert!(reseal.text().contains(", unsealed"), "{}", reseal.text());
    outputs.push(("reseal from an unseal", reseal));
    tpm.tool(&["tpm2_pcrextend", &format!("7:sha256={}", "42".repeat(32))]);
    let reseal = run(&f, &["reseal", "-vv"], Sink::Stderr);
    assert_eq!(reseal.code, 1, "{}", reseal.text());
    outputs.push(("reseal without a kmk", reseal));
    let mut c: Vec<Capture> = outputs
        .iter()
        .flat_map(|(what, o)| o.captures(what))
        .collect();
    c.extend(file_captures(&f, None, kmk.expose()));
    // What seal wrote is among them.
    for written in [
        "etc/keys/kmk-tpm2.pem",
        "etc/keys/evm.blob",
        "etc/integrity-loader.conf",
    ] {
        assert!(
            c.iter().any(|x| x.what.ends_with(written)),
            "{written} not scanned"
        );
    }
    assert_clean(&c, kmk.expose());
}

/// Every form of the recovery key: as printed, without its dashes, in
/// lowercase, and the 25 bytes it stands for.
fn recovery_key_scan(captures: &[Capture], key: &str) -> Vec<String> {
    let bare = key.replace('-', "");
    let bytes = integrity_loader::recovery::parse_key(key.as_bytes()).unwrap();
    let mut leaks = Vec::new();
    for form in [
        key.as_bytes(),
        bare.as_bytes(),
        bare.to_lowercase().as_bytes(),
        bytes.expose(),
    ] {
        leaks.extend(scan(captures, form));
    }
    leaks
}

#[test]
fn the_recovery_key_is_printed_once_and_a_boot_answered_with_it_leaves_no_trace() {
    let mut tpm = Swtpm::start("hygiene-recovery");
    let f = Fixture::new("secret-recovery");
    f.write(
        "/etc/integrity-loader.conf",
        format!("TPM={}\nDROP_KMK=no\n", tpm.tcti()),
    );
    let mut outputs = Vec::new();
    let mut seal = run(
        &f,
        &[
            "seal",
            "-vv",
            "--evm-key",
            "/etc/keys/evm.blob",
            "--write-config",
            "--force",
            "--recovery-key",
        ],
        Sink::Stderr,
    );
    assert_eq!(seal.code, 0, "{}", seal.text());
    let stdout = String::from_utf8(seal.stdout.clone()).unwrap();
    let mut lines = stdout.lines();
    lines
        .find(|l| l.starts_with("recovery key (shown this once"))
        .expect("the recovery key on stdout");
    let key = lines.next().unwrap().to_string();
    // The one intended print: exactly once, on stdout; what is left of
    // stdout is scanned with everything else.
    assert_eq!(stdout.matches(key.as_str()).count(), 1, "{stdout}");
    seal.stdout = stdout.replace(key.as_str(), "").into_bytes();
    outputs.push(("seal --recovery-key", seal));
    f.write("/etc/sysconfig/evm", "EVMKEY=/etc/keys/evm.blob\n");
    let load = run(&f, &["load", "-vv"], Sink::Stderr);
    assert_eq!(load.code, 0, "{}", load.text());
    outputs.push(("load after seal", load));

    // The next boot with PCR 7 moved: answered with a wrong key then the
    // key, logging to stderr and then to the kernel log.
    let mut captures: Vec<Capture> = Vec::new();
    let mut kmk = None;
    for sink in ["stderr", "kmsg"] {
        tpm.reboot();
        for id in keyring::list(f.session).unwrap() {
            keyring::unlink(id, f.session).unwrap();
        }
        let _ = fs::remove_dir_all(f.dir.join("run"));
        tpm.tool(&["tpm2_pcrextend", &format!("7:sha256={}", "42".repeat(32))]);
        let mut cmd = f.command(&["load", "-vv"]);
        cmd.env("INTEGRITY_LOADER_LOG", sink);
        let mut kmsg = Kmsg::from_now();
        let r = pty::run_answering(
            cmd,
            &["22222-22222-22222-22222-22222-22222-22222-22222", &key],
        );
        assert_eq!(r.code, 0, "{sink}: {}\n{}", r.output(), r.transcript);
        let what = format!("load answered with the recovery key ({sink})");
        let said = format!(
            "{}{}",
            r.output(),
            String::from_utf8_lossy(&kmsg.records().concat())
        );
        assert!(
            said.contains("opened with the recovery key"),
            "{what}: {said}"
        );
        captures.push(Capture {
            what: format!("{what}: stdout"),
            bytes: r.stdout,
        });
        captures.push(Capture {
            what: format!("{what}: stderr"),
            bytes: r.stderr,
        });
        captures.push(Capture {
            what: format!("{what}: terminal"),
            bytes: r.transcript.into_bytes(),
        });
        for (i, rec) in kmsg.records().into_iter().enumerate() {
            captures.push(Capture {
                what: format!("{what}: kmsg record {i}"),
                bytes: rec,
            });
        }
        captures.push(Capture {
            what: format!("{what}: all kmsg"),
            bytes: said.into_bytes(),
        });
        kmk = Some(keyring::read_secret(f.find("user", "kmk").expect("kmk loaded")).unwrap());
    }
    let kmk = kmk.unwrap();
    for (what, o) in &outputs {
        captures.extend(o.captures(what));
    }
    captures.push(Capture {
        what: "status".into(),
        bytes: run(&f, &["status", "-vv"], Sink::Stderr)
            .text()
            .into_bytes(),
    });
    captures.extend(file_captures(&f, None, kmk.expose()));
    assert!(
        captures
            .iter()
            .any(|c| c.what.ends_with("kmk-tpm2.pem.recovery")),
        "the recovery file not scanned"
    );
    let leaks = recovery_key_scan(&captures, &key);
    assert!(
        leaks.is_empty(),
        "the recovery key leaked:\n{}",
        leaks.join("\n")
    );
    // Control: the scanner finds the key in seal's stdout as printed.
    let printed = [Capture {
        what: "control".into(),
        bytes: stdout.into_bytes(),
    }];
    assert!(!recovery_key_scan(&printed, &key).is_empty());
    assert_clean(&captures, kmk.expose());
}

// -------------------------------------- where the kmk may come from at all

/// Value names `--help` gives its options; none is key material.
const SAFE_VALUES: &[&str] = &[
    "DIR", "FILE", "SPEC", "TCTI", "PATH", "HANDLE", "N=HEX", "TYPE",
];

#[test]
fn no_option_takes_key_material() {
    let out = std::process::Command::new(BIN)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    let mut options = Vec::new();
    for line in help.lines() {
        let line = line.trim_start();
        if !line.starts_with('-') {
            continue;
        }
        let synopsis = line.split("  ").next().unwrap();
        let words: Vec<&str> = synopsis.split_whitespace().collect();
        let value = words.iter().find(|w| !w.starts_with('-')).copied();
        for w in words.iter().filter(|w| w.starts_with('-')) {
            options.push((w.trim_end_matches(',').to_string(), value));
        }
    }
    assert!(options.len() >= 15, "parsed too few options: {options:?}");
    for (name, value) in &options {
        if let Some(v) = value {
            assert!(
                SAFE_VALUES.contains(v),
                "option {name} takes {v}: review it for key material"
            );
        }
        // A flag that names the kmk only to say what it does to it.
        if name == "--replace-kmk-and-orphan-labels" {
            assert_eq!(*value, None, "{name} must take no value");
            continue;
        }
        for word in ["kmk", "secret", "password", "passphrase", "payload", "hex"] {
            assert!(
                !name.contains(word),
                "option {name} looks like it takes a key"
            );
        }
    }
    // The two options near secrets take paths: where the evm-key blob goes,
    // and a file holding the TPM owner password (not the kmk).
    let value_of = |n: &str| options.iter().find(|(o, _)| o == n).and_then(|(_, v)| *v);
    assert_eq!(value_of("--evm-key"), Some("PATH"));
    assert_eq!(value_of("--owner-auth-file"), Some("FILE"));
}

/// Code of `src/` outside `#[cfg(test)]` modules: inline ones are cut out
/// (rustfmt closes a top-level item with `}` in column 0), out-of-line ones
/// are the files named `tests.rs`.
fn non_test_sources() -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for (path, bytes) in files_under(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src")) {
        if path.extension().is_none_or(|e| e != "rs") || path.ends_with("tests.rs") {
            continue;
        }
        let text = String::from_utf8(bytes).unwrap();
        let mut code = String::new();
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            if line.trim() != "#[cfg(test)]" {
                code.push_str(line);
                code.push('\n');
                continue;
            }
            // Skip the attributes, then the item if it is an inline module.
            let mut item = lines.next().unwrap_or_default();
            while item.trim_start().starts_with("#[") || item.starts_with("    ") || item == ")]" {
                item = lines.next().unwrap_or_default();
            }
            let inline_mod = item.contains("mod ") && item.trim_end().ends_with('{');
            if inline_mod {
                for l in lines.by_ref() {
                    if l == "}" {
                        break;
                    }
                }
            }
        }
        out.push((path, code));
    }
    assert!(out.len() > 20, "found too few source files");
    out
}

#[test]
fn the_kmk_comes_only_from_files() {
    // Environment: the loader reads two switches, the recovery prompt's
    // terminal and password agent (paths for tests) and systemd's measure
    // log path, nothing else.
    let mut vars = Vec::new();
    for (path, code) in non_test_sources() {
        for call in ["env::var(", "env::var_os("] {
            for (at, _) in code.match_indices(call) {
                let rest = &code[at + call.len()..];
                // A name held in a constant would hide from this list.
                let rest = rest.strip_prefix('"').unwrap_or_else(|| {
                    panic!("{}: {call} takes a literal name here", path.display())
                });
                let name = &rest[..rest.find('"').unwrap()];
                vars.push((name.to_string(), path.clone()));
            }
        }
        // No other program is started, so no argv or environment of a
        // child can carry the kmk either; but for systemd's password agent,
        // asked for the recovery key: its arguments are a timeout, an id
        // and the prompt, and the key comes back on a pipe.
        let allowed = usize::from(path.ends_with("src/recovery.rs"));
        assert!(
            !code.contains("Command::new") && code.matches("posix_spawn(").count() == allowed,
            "{} starts a program outside tests",
            path.display()
        );
    }
    vars.sort();
    vars.dedup_by(|a, b| a.0 == b.0);
    let names: Vec<&str> = vars.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "INTEGRITY_LOADER_ASK_PASSWORD",
            // Debug builds only (seal/output.rs): the tests' crash point.
            "INTEGRITY_LOADER_CRASH_AFTER_RENAME",
            "INTEGRITY_LOADER_LOG",
            "INTEGRITY_LOADER_RECOVERY_TTY",
            "NEWROOT",
            "SYSTEMD_MEASURE_LOG_USERSPACE"
        ],
        "{vars:?}"
    );

    // The same, observed: a tpm2 load and a user-kmk load execute exactly
    // one program (themselves), and what we hand them holds no secret.
    let f = Fixture::new("secret-exec");
    user_setup(&f);
    let trace = f.dir.join("execs");
    let mut cmd = std::process::Command::new("strace");
    cmd.args(["-f", "-qq", "-e", "trace=execve,execveat", "-o"])
        .arg(&trace)
        .arg(BIN);
    let inner = f.command(&["load"]);
    cmd.args(inner.get_args());
    for (k, v) in inner.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let argv: Vec<u8> = inner
        .get_args()
        .flat_map(|a| a.as_encoded_bytes().to_vec())
        .collect();
    let env: Vec<u8> = std::env::vars_os()
        .flat_map(|(k, v)| [k.as_encoded_bytes(), b"=", v.as_encoded_bytes()].concat())
        .collect();
    assert_eq!(leak(&argv, &needles(&USER_KMK)), None);
    assert_eq!(leak(&env, &needles(&USER_KMK)), None);
    let out = cmd
        .output()
        .expect("strace must be installed (apt-get install strace)");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let execs = fs::read_to_string(&trace).unwrap();
    let calls: Vec<&str> = execs.lines().filter(|l| l.contains("execve")).collect();
    assert_eq!(calls.len(), 1, "more than one program ran:\n{execs}");
    assert!(calls[0].contains(BIN), "{execs}");
    assert!(
        f.find("user", "kmk-user").is_some(),
        "the traced load did not run"
    );
}

// --------------------------------------------------- the kernel-log sink

/// Not a secrecy check but what the kernel-log scan above rests on: every
/// line the loader logs reaches the kernel log. /dev/kmsg limits each open
/// file to 10 records per 5 s unless printk.devkmsg=on (the default is
/// `ratelimit`, as in an initramfs), and drops the rest.
#[test]
fn the_kernel_log_gets_every_line() {
    let devkmsg = fs::read_to_string("/proc/sys/kernel/printk_devkmsg").unwrap_or_default();
    // A whole dracut setup: 13 lines at the default verbosity.
    let f = Fixture::new("kmsg-lines");
    dracut_setup(&f);
    let to_stderr = run(&f, &["load"], Sink::Stderr);
    let g = Fixture::new("kmsg-lines2");
    dracut_setup(&g);
    let to_kmsg = run(&g, &["load"], Sink::Kmsg);
    assert_eq!(
        (to_stderr.code, to_kmsg.code),
        (0, 0),
        "{}",
        to_stderr.text()
    );
    let stderr_lines = String::from_utf8_lossy(&to_stderr.stderr).lines().count();
    let records = to_kmsg.own_records();
    assert!(
        stderr_lines > 10,
        "the scenario should log more than 10 lines"
    );
    assert_eq!(
        records.len(),
        stderr_lines,
        "printk_devkmsg={}: {} of {} lines reached the kernel log; the last one it got: {:?}",
        devkmsg.trim(),
        records.len(),
        stderr_lines,
        records.last()
    );
    assert!(records.last().unwrap().contains("finished in"));
}

/// The same, for one long line: /dev/kmsg refuses a record over 1024 bytes
/// (EINVAL) and the line is lost whole. A path deep in the root makes one.
#[test]
fn a_long_line_reaches_the_kernel_log() {
    let f = Fixture::new("kmsg-long");
    let deep = vec!["d".repeat(200); 5].join("/");
    f.write(
        "/etc/sysconfig/masterkey",
        format!("MASTERKEYTYPE=user\nMASTERKEY=/etc/keys/{deep}/kmk\n"),
    );
    let out = run(&f, &["load"], Sink::Kmsg);
    assert_eq!(out.code, 0, "{}", out.text());
    let records = out.own_records();
    assert!(
        records.iter().any(|r| r.starts_with("drop-keys: ")),
        "the run's records did not arrive: {records:?}"
    );
    assert!(
        records
            .iter()
            .any(|r| r.starts_with("kmk: not configured: no master key file")),
        "the kmk line (over 1024 bytes) is missing from the kernel log; got:\n{}",
        records.join("\n")
    );
}

/// A core dump or a peer's ptrace while the loader holds the kmk (waiting
/// on the TPM after Unseal, say) would copy it out of memory. The loader
/// makes itself non-dumpable with a core limit of 0 before anything else:
/// run as an unprivileged user and held waiting for the securityfs lock
/// (which this test holds), its /proc files belong to root (the kernel's
/// sign of a non-dumpable process) and its core limit is 0, soft and hard.
#[test]
fn the_process_is_not_dumpable_before_any_secret() {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::process::CommandExt;
    const NOBODY: u32 = 65534;
    let dir = std::env::temp_dir().join(format!("il-nodump-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("root/etc")).unwrap();
    fs::create_dir_all(dir.join("sfs")).unwrap();
    fs::write(dir.join("cmdline"), "").unwrap();
    let sfs = File::open(dir.join("sfs")).unwrap();
    // SAFETY: flock on a descriptor we own.
    assert_eq!(
        unsafe { nix::libc::flock(sfs.as_raw_fd(), nix::libc::LOCK_EX) },
        0
    );
    let mut child = std::process::Command::new(BIN)
        .args(["load", "--keyring", "@s", "--root"])
        .arg(dir.join("root"))
        .arg("--cmdline")
        .arg(dir.join("cmdline"))
        .arg("--securityfs")
        .arg(dir.join("sfs"))
        .env("INTEGRITY_LOADER_LOG", "stderr")
        .uid(NOBODY)
        .gid(NOBODY)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let proc_dir = PathBuf::from(format!("/proc/{}", child.id()));
    // Wait until the loader (not yet the forked test) sleeps between two
    // tries of the lock, well past main's first lines.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let exec_done =
            fs::read_link(proc_dir.join("exe")).is_ok_and(|p| p.ends_with("integrity-loader"));
        let stat = fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
        let sleeping = stat.rsplit(") ").next().is_some_and(|s| s.starts_with('S'));
        if exec_done && sleeping {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the loader never waited for the lock ({stat:?})"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    let owner = fs::metadata(proc_dir.join("environ")).unwrap().uid();
    let limits = fs::read_to_string(proc_dir.join("limits")).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    drop(sfs);
    let _ = fs::remove_dir_all(&dir);
    assert_eq!(
        owner, 0,
        "/proc/PID of a loader run as uid {NOBODY} belongs to uid {owner}: it is dumpable"
    );
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    let words: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&words[4..6], ["0", "0"], "core limit not 0: {core}");
}
