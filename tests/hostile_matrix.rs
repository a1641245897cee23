//! A second table of hostile inputs, beside tests/bad_inputs.rs and not
//! repeating it: boundaries (one byte over and exactly at each limit),
//! damaged kmk / evm-key / TPM 2.0 blobs, certificates with huge extensions,
//! duplicates and 10,000-file directories, 100,000-line policies, config
//! files with NUL and CRLF, paths that leave the root by `..` or symlinks,
//! FIFOs and device nodes, files the loader may not read, files named twice.
//!
//! Each case states the exit code, a distinctive part of the message, and
//! the kernel state after the run: unchanged (the session keyring with
//! everything under it, and the fake securityfs `evm` and `ima/policy`), or
//! exactly what an honest run leaves. Every case must also finish in
//! `CASE_TIME_LIMIT`: a hostile root may not make the boot hang.
//!
//! Cases marked `bug: Some(..)` assert what the loader should do and fail
//! today; the note says what is wrong. Inputs are generated here (openssl
//! for certificates, byte edits of the committed TPM fixture), never stored
//! as binary blobs. `HOSTILE_SHOW=1` prints every case's exit code, time
//! and last lines of output.

mod common;
use common::*;
use integrity_loader::keyring;
use nix::sys::stat::{Mode, SFlag, makedev, mknod};
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// The kmk of these cases (its own bytes, so no other test's key matches).
const KMK: &[u8; 32] = b"hostile-matrix kmk: 32 bytes ok!";
const TPM_FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tpm");
/// No hostile input may hold the loader longer than this.
const CASE_TIME_LIMIT: Duration = Duration::from_secs(15);

/// Root without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH: the only honest
/// way to get a file root cannot read (a mode-000 file is readable by root
/// otherwise; an EIO-returning file cannot be made without a fault-injecting
/// file system, so I/O errors other than EACCES are not covered here).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Privileges {
    Root,
    NoDacOverride,
}

/// What the kernel state must be after the run.
enum After {
    /// Exactly as before: keys, certificates, `evm` and `ima/policy`.
    Unchanged,
    /// What an honest run leaves; `Err` says what differs.
    Is(fn(&Fixture, &Snapshot) -> Result<(), String>),
}

struct Case {
    name: &'static str,
    setup: fn(&Fixture),
    args: &'static [&'static str],
    privileges: Privileges,
    code: i32,
    message: &'static str,
    after: After,
    /// The loader is wrong here today: what is wrong (see the report).
    bug: Option<&'static str>,
}

impl Case {
    const fn new(
        name: &'static str,
        setup: fn(&Fixture),
        code: i32,
        message: &'static str,
    ) -> Case {
        Case {
            name,
            setup,
            args: &["load"],
            privileges: Privileges::Root,
            code,
            message,
            after: After::Unchanged,
            bug: None,
        }
    }
    const fn args(mut self, args: &'static [&'static str]) -> Case {
        self.args = args;
        self
    }
    const fn unprivileged(mut self) -> Case {
        self.privileges = Privileges::NoDacOverride;
        self
    }
    const fn after(mut self, check: fn(&Fixture, &Snapshot) -> Result<(), String>) -> Case {
        self.after = After::Is(check);
        self
    }
    #[allow(dead_code)] // kept for marking the next known bug
    const fn bug(mut self, note: &'static str) -> Case {
        self.bug = Some(note);
        self
    }
}

// ---------------------------------------------------------------- helpers

fn user_kmk(f: &Fixture) {
    f.write("/etc/sysconfig/masterkey", "MASTERKEYTYPE=user\n");
}

/// A user kmk configured and already loaded, an evm-key configured at
/// /etc/keys/evm.blob: the case is about the evm-key alone.
fn kmk_loaded(f: &Fixture) {
    user_kmk(f);
    f.write("/etc/keys/kmk-user.blob", KMK);
    keyring::add_key("user", Some("kmk-user"), KMK, f.session).unwrap();
    f.write("/etc/sysconfig/evm", "EVMKEY=/etc/keys/evm.blob\n");
}

fn evm_blob() -> String {
    make_evm_blob(KMK, "kmk-user")
}

/// MASTERKEYTYPE=tpm2 with the kmk at `path`, and a TPM nobody listens on:
/// every tpm2 case here must be refused before the TPM is asked.
fn tpm2(f: &Fixture, path: &str) {
    f.write(
        "/etc/integrity-loader.conf",
        format!("MASTERKEYTYPE=tpm2\nMASTERKEY={path}\nTPM=swtpm:host=127.0.0.1,port=9\n"),
    );
}

fn tpm_fixture(name: &str) -> Vec<u8> {
    fs::read(Path::new(TPM_FIXTURES).join(name)).unwrap()
}

/// The committed TSS2 key file as DER.
fn tss2_der() -> Vec<u8> {
    pem_body(&tpm_fixture("seal.tss2.pem"))
}

/// The TSS2 DER with the last arc of its type OID replaced.
fn tss2_der_with_oid_arc(arc: u8) -> Vec<u8> {
    let mut der = tss2_der();
    // SEQUENCE (long form, 4 bytes of header), then OID 2.23.133.10.1.x.
    let oid = [0x06, 0x06, 0x67, 0x81, 0x05, 0x0a, 0x01];
    assert_eq!(&der[4..11], &oid, "fixture layout changed");
    der[11] = arc;
    der
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64_encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

fn cert_bytes(fixture: &str) -> Vec<u8> {
    fs::read(Path::new(CERTS).join(fixture)).unwrap()
}

/// A leaf certificate for IMA/EVM signed by `rsa2048.key.pem` (so it shares
/// that key and its subjectKeyIdentifier), subject CN=`cn`, with an opaque
/// private extension of `ext_len` bytes. Made by openssl in the fixture's
/// directory; returns DER.
fn openssl_cert(f: &Fixture, cn: &str, ext_len: usize, tag: &str) -> Vec<u8> {
    let conf = f.dir.join(format!("{tag}.cnf"));
    let out = f.dir.join(format!("{tag}.der"));
    let mut text = format!(
        "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = {cn}\n[v3]\n\
         basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n\
         subjectKeyIdentifier = hash\n"
    );
    if ext_len > 0 {
        text.push_str("1.3.6.1.4.1.55555.1 = ASN1:FORMAT:HEX,OCTETSTRING:");
        text.push_str(&"5a".repeat(ext_len));
        text.push('\n');
    }
    fs::write(&conf, text).unwrap();
    let st = std::process::Command::new("openssl")
        .args(["req", "-x509", "-new", "-key"])
        .arg(Path::new(CERTS).join("rsa2048.key.pem"))
        .arg("-config")
        .arg(&conf)
        .args([
            "-extensions",
            "v3",
            "-days",
            "3650",
            "-outform",
            "DER",
            "-out",
        ])
        .arg(&out)
        .status()
        .expect("openssl must be installed");
    assert!(st.success(), "openssl req failed");
    fs::read(&out).unwrap()
}

fn put(f: &Fixture, path: &str, bytes: impl AsRef<[u8]>) {
    f.write(path, bytes);
}

fn mkfifo(f: &Fixture, path: &str) {
    let p = f.root().join(path.trim_start_matches('/'));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    nix::unistd::mkfifo(&p, Mode::from_bits_truncate(0o600)).unwrap();
}

/// A character device node inside the root.
fn mkchr(f: &Fixture, path: &str, major: u64, minor: u64) {
    let p = f.root().join(path.trim_start_matches('/'));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    mknod(
        &p,
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o600),
        makedev(major, minor),
    )
    .unwrap();
}

fn link(f: &Fixture, path: &str, target: &str) {
    let p = f.root().join(path.trim_start_matches('/'));
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    symlink(target, p).unwrap();
}

fn private(f: &Fixture, path: &str) {
    make_private(&f.root().join(path.trim_start_matches('/')));
}

/// One rule of exactly `len` characters (an LSM label makes up the length).
fn long_rule(len: usize) -> String {
    let head = "measure func=FILE_CHECK obj_type=";
    format!("{head}{}", "x".repeat(len - head.len()))
}

fn policy(f: &Fixture, text: impl AsRef<[u8]>) {
    f.write("/etc/sysconfig/ima-policy", text);
}

/// A file outside the root, on the host, that no case may read.
fn host_file(f: &Fixture) -> String {
    let p = f.dir.join("host-only-file");
    fs::write(&p, "this is outside the root\n").unwrap();
    p.display().to_string()
}

// ------------------------------------------------ checks for changed state

fn expect(what: &str, got: impl std::fmt::Debug, want: impl std::fmt::Debug) -> Result<(), String> {
    let (g, w) = (format!("{got:?}"), format!("{want:?}"));
    if g == w {
        Ok(())
    } else {
        Err(format!("{what}: got {g}, want {w}"))
    }
}

/// One certificate on `_ima`, nothing else changed in securityfs.
fn one_ima_cert(f: &Fixture, before: &Snapshot) -> Result<(), String> {
    expect("certs on _ima", f.certs_in("_ima").len(), 1)?;
    expect("evm", f.sfs("evm"), &before.evm)?;
    expect("policy", f.sfs("ima/policy"), &before.policy)
}

// ------------------------------------------------------------------ cases

const CASES: &[Case] = &[
    // ---- kmk, user ----
    Case::new(
        "user kmk one byte over the kernel's user-key limit",
        |f| {
            user_kmk(f);
            f.write("/etc/keys/kmk-user.blob", vec![0xa5u8; 32768]);
        },
        1,
        "kmk-user.blob: file is 32768 bytes, more than the 32767 bytes allowed",
    ),
    Case::new(
        "user kmk exactly at the limit loads whole",
        |f| {
            user_kmk(f);
            f.write("/etc/keys/kmk-user.blob", vec![0xa5u8; 32767]);
        },
        0,
        "loaded user key kmk-user (32767 bytes)",
    )
    .after(|f, _| expect("keys", f.keys(), ["user:kmk-user:32767"])),
    Case::new(
        "user kmk truncated: the evm-key sealed by the whole kmk does not decrypt",
        |f| {
            user_kmk(f);
            f.write("/etc/keys/kmk-user.blob", &KMK[..16]);
            f.write("/etc/sysconfig/evm", "EVMKEY=/etc/keys/evm.blob\n");
            f.write("/etc/keys/evm.blob", evm_blob());
        },
        1,
        "the kernel could not decrypt it with user:kmk-user (EINVAL)",
    )
    // The kmk step itself succeeded (a user kmk has no fixed length), so
    // its key stays, as in dracut; the evm-key is not left behind.
    .after(|f, before| {
        expect("keys", f.keys(), ["user:kmk-user:16"])?;
        expect("evm", f.sfs("evm"), &before.evm)
    }),
    Case::new(
        "a different kmk of the same name is already loaded",
        |f| {
            user_kmk(f);
            f.write("/etc/keys/kmk-user.blob", KMK);
            keyring::add_key("user", Some("kmk-user"), &[7u8; 32], f.session).unwrap();
        },
        1,
        "a different user key kmk-user is already in keyring @s",
    ),
    Case::new(
        "user kmk the loader may not read",
        |f| {
            user_kmk(f);
            f.write("/etc/keys/kmk-user.blob", KMK);
            private(f, "/etc/keys/kmk-user.blob");
        },
        1,
        "read master key /",
    )
    .unprivileged(),
    Case::new(
        "user kmk is a character device node (1,3) inside the root",
        |f| {
            user_kmk(f);
            mkchr(f, "/etc/keys/kmk-user.blob", 1, 3);
        },
        1,
        "kmk-user.blob: is a device, not a regular file",
    ),
    Case::new(
        "user kmk is a device node of a driver that is not there (240,0)",
        |f| {
            user_kmk(f);
            mkchr(f, "/etc/keys/kmk-user.blob", 240, 0);
        },
        1,
        "kmk-user.blob: is a device, not a regular file",
    ),
    Case::new(
        "user kmk through an absolute symlink with '..' that climbs out",
        |f| {
            user_kmk(f);
            link(
                f,
                "/etc/keys/kmk-user.blob",
                "/../../../../../../etc/hostname",
            );
        },
        1,
        "kmk-user.blob: a symlink on this path leads out of the real root",
    ),
    Case::new(
        "user kmk through an absolute symlink to a host path: taken inside the root",
        |f| {
            user_kmk(f);
            f.write("/etc/integrity-loader.conf", "REQUIRE=kmk\n");
            let host = host_file(f);
            link(f, "/etc/keys/kmk-user.blob", &host);
        },
        1,
        "kmk: FAILED: no master key file",
    ),
    // ---- kmk, trusted (refused before the kernel is asked) ----
    Case::new(
        "trusted kmk blob of odd length",
        |f| {
            f.write("/etc/keys/kmk-trusted.blob", "0011aab\n");
        },
        1,
        "kmk-trusted.blob has 7 hex digits; a blob is an even number of at most 1024",
    ),
    Case::new(
        "trusted kmk blob longer than a TPM blob can be",
        |f| {
            f.write("/etc/keys/kmk-trusted.blob", "ab".repeat(513));
        },
        1,
        "kmk-trusted.blob has 1026 hex digits",
    ),
    Case::new(
        "trusted kmk blob with a non-hex character",
        |f| {
            f.write("/etc/keys/kmk-trusted.blob", "00zz11\n");
        },
        1,
        "kmk-trusted.blob is not hex (offset 2)",
    ),
    Case::new(
        "trusted kmk blob file over 64 KiB",
        |f| {
            f.write("/etc/keys/kmk-trusted.blob", "a".repeat(70_000));
        },
        1,
        "kmk-trusted.blob: file is 70000 bytes, more than the 65536 bytes allowed",
    ),
    // ---- kmk, tpm2 (refused before the TPM is asked) ----
    Case::new(
        "TSS2 PEM truncated before its END line",
        |f| {
            tpm2(f, "/etc/keys/kmk.pem");
            let pem = String::from_utf8(tpm_fixture("seal.tss2.pem")).unwrap();
            let cut: Vec<&str> = pem.lines().take(3).collect();
            f.write("/etc/keys/kmk.pem", cut.join("\n") + "\n");
        },
        1,
        "PEM key file has no -----END TSS2 PRIVATE KEY----- line: truncated?",
    ),
    Case::new(
        "TSS2 DER truncated",
        |f| {
            tpm2(f, "/etc/keys/kmk.der");
            f.write("/etc/keys/kmk.der", &tss2_der()[..100]);
        },
        1,
        "kmk.der: malformed TSS2 key at byte 4: truncated: 265 bytes needed, 96 left",
    ),
    Case::new(
        "TSS2 file over 64 KiB",
        |f| {
            tpm2(f, "/etc/keys/kmk.pem");
            let mut pem = tpm_fixture("seal.tss2.pem");
            pem.resize(70_000, b'\n');
            f.write("/etc/keys/kmk.pem", pem);
        },
        1,
        "kmk.pem: file is 70000 bytes, more than the 65536 bytes allowed",
    ),
    Case::new(
        "TSS2 DER with the importable-key OID",
        |f| {
            tpm2(f, "/etc/keys/kmk.der");
            f.write("/etc/keys/kmk.der", tss2_der_with_oid_arc(4));
        },
        1,
        "not a TSS2 key file: OID 2.23.133.10.1.4 is an importable key, not sealed data",
    ),
    Case::new(
        "TSS2 PEM with an OID that is no TPM key type",
        |f| {
            tpm2(f, "/etc/keys/kmk.pem");
            f.write(
                "/etc/keys/kmk.pem",
                pem("TSS2 PRIVATE KEY", &tss2_der_with_oid_arc(9)),
            );
        },
        1,
        "not a TSS2 key file: OID 2.23.133.10.1.9 is not a TPM 2.0 key type",
    ),
    Case::new(
        "TSS2 DER with trailing bytes",
        |f| {
            tpm2(f, "/etc/keys/kmk.der");
            let mut der = tss2_der();
            der.extend_from_slice(&[0, 0, 0]);
            f.write("/etc/keys/kmk.der", der);
        },
        1,
        "kmk.der: trailing 3 bytes after the key",
    ),
    Case::new(
        "TSS2 PEM whose base64 holds trailing bytes after the key",
        |f| {
            tpm2(f, "/etc/keys/kmk.pem");
            let mut der = tss2_der();
            der.extend_from_slice(b"junk");
            f.write("/etc/keys/kmk.pem", pem("TSS2 PRIVATE KEY", &der));
        },
        1,
        "kmk.pem: trailing 4 bytes after the key",
    ),
    Case::new(
        "TSS2 PEM with text after its END line",
        |f| {
            tpm2(f, "/etc/keys/kmk.pem");
            let mut pem = tpm_fixture("seal.tss2.pem");
            pem.extend_from_slice(b"garbage\n");
            f.write("/etc/keys/kmk.pem", pem);
        },
        1,
        "kmk.pem: PEM key file: line 9 is not base64 of the key",
    ),
    Case::new(
        "TSS2 slot holding a PKCS#8 private key",
        |f| {
            tpm2(f, "/etc/keys/kmk.pem");
            f.write("/etc/keys/kmk.pem", cert_bytes("rsa2048.key.pem"));
        },
        1,
        "not a TSS2 key file: PEM label \"PRIVATE KEY\", not TSS2 PRIVATE KEY",
    ),
    Case::new(
        "tpm2-tools .pub truncated",
        |f| {
            tpm2(f, "/etc/keys/kmk.pub");
            let public = tpm_fixture("seal.pub");
            f.write("/etc/keys/kmk.pub", &public[..public.len() - 10]);
            f.write("/etc/keys/kmk.priv", tpm_fixture("seal.priv"));
        },
        1,
        "kmk.pub: the .pub file is not a TPM2B_PUBLIC (size field",
    ),
    Case::new(
        "tpm2-tools .priv with bytes beyond its size field",
        |f| {
            tpm2(f, "/etc/keys/kmk.pub");
            f.write("/etc/keys/kmk.pub", tpm_fixture("seal.pub"));
            let mut private = tpm_fixture("seal.priv");
            private.extend_from_slice(&[0u8; 64]);
            f.write("/etc/keys/kmk.priv", private);
        },
        1,
        "the .priv file is not a TPM2B_PRIVATE (size field",
    ),
    Case::new(
        "tpm2-tools .pub without its .priv",
        |f| {
            tpm2(f, "/etc/keys/kmk.pub");
            f.write("/etc/keys/kmk.pub", tpm_fixture("seal.pub"));
        },
        1,
        "kmk.priv: no such file",
    ),
    // ---- evm-key ----
    Case::new(
        "evm-key blob naming trusted:<the user kmk's name>",
        |f| {
            kmk_loaded(f);
            f.write(
                "/etc/keys/evm.blob",
                evm_blob().replace("user:kmk-user", "trusted:kmk-user"),
            );
        },
        1,
        "is sealed by trusted:kmk-user, which is not loaded in keyring @s; the configured master key is user:kmk-user",
    ),
    Case::new(
        "evm-key hex of odd length, one digit too many",
        |f| {
            kmk_loaded(f);
            f.write("/etc/keys/evm.blob", evm_blob() + "a");
        },
        1,
        "the hex data is 163 characters, a key of this length needs 162",
    ),
    Case::new(
        "evm-key blob cut inside its header",
        |f| {
            kmk_loaded(f);
            f.write("/etc/keys/evm.blob", "default user:kmk-user");
        },
        1,
        "truncated: the key length is missing",
    ),
    Case::new(
        "evm-key blob file over 64 KiB",
        |f| {
            kmk_loaded(f);
            f.write("/etc/keys/evm.blob", "a".repeat(70_000));
        },
        1,
        "evm.blob: file is 70000 bytes, more than the 65536 bytes allowed",
    ),
    Case::new(
        "evm-key blob declaring a key longer than the kernel allows",
        |f| {
            kmk_loaded(f);
            let hex = "ab".repeat(16 + 1 + 4112 + 32);
            f.write(
                "/etc/keys/evm.blob",
                format!("default user:kmk-user 4097 {hex}"),
            );
        },
        1,
        "key length 4097 is outside 20..4096",
    ),
    Case::new(
        "evm-key blob with a DOS line ending",
        |f| {
            kmk_loaded(f);
            f.write("/etc/keys/evm.blob", evm_blob() + "\r\n");
        },
        1,
        "carriage return",
    ),
    Case::new(
        "evm-key blob written twice into one file",
        |f| {
            kmk_loaded(f);
            f.write("/etc/keys/evm.blob", format!("{0}\n{0}\n", evm_blob()));
        },
        1,
        "more than one line; an exported encrypted key is one line",
    ),
    Case::new(
        "an evm-key sealed by another master is already loaded",
        |f| {
            kmk_loaded(f);
            f.write("/etc/keys/evm.blob", evm_blob());
            keyring::add_key("user", Some("kmk-other"), &[3u8; 32], f.session).unwrap();
            keyring::add_key(
                "encrypted",
                Some("evm-key"),
                b"new user:kmk-other 32",
                f.session,
            )
            .unwrap();
        },
        1,
        "an evm-key sealed by user:kmk-other is already in keyring @s",
    ),
    Case::new(
        "an evm-key whose master is gone is already loaded",
        |f| {
            kmk_loaded(f);
            f.write("/etc/keys/evm.blob", evm_blob());
            let other = keyring::add_key("user", Some("kmk-other"), &[3u8; 32], f.session).unwrap();
            keyring::add_key(
                "encrypted",
                Some("evm-key"),
                b"new user:kmk-other 32",
                f.session,
            )
            .unwrap();
            // The kernel exports an encrypted key only while its master is there.
            keyring::unlink(other, f.session).unwrap();
        },
        1,
        "and cannot be read back to check which master key seals it; remove it with `keyctl unlink",
    ),
    Case::new(
        "evm-key blob is a FIFO",
        |f| {
            kmk_loaded(f);
            mkfifo(f, "/etc/keys/evm.blob");
        },
        1,
        "evm.blob: is a FIFO, not a regular file",
    ),
    Case::new(
        "evmkey= on the command line with '..'",
        |f| {
            kmk_loaded(f);
            f.write("/etc/keys/evm.blob", evm_blob());
            f.set_cmdline("ro evmkey=/etc/keys/../keys/evm.blob\n");
        },
        1,
        "evm.blob: path must not contain '..'",
    ),
    Case::new(
        "evmkey= on the command line, relative",
        |f| f.set_cmdline("ro evmkey=keys/evm.blob\n"),
        2,
        "kernel command line evmkey=: EVMKEY=\"keys/evm.blob\" must be an absolute path",
    ),
    Case::new(
        "evm-key under a directory symlink that climbs out (relative)",
        |f| {
            kmk_loaded(f);
            f.write("/etc/sysconfig/evm", "EVMKEY=/etc/evmkeys/evm.blob\n");
            link(f, "/etc/evmkeys", "../../../../../../../../tmp");
        },
        1,
        "evm.blob: a symlink on this path leads out of the real root",
    ),
    // ---- certificates ----
    Case::new(
        "IMA certificate with a 70,000-byte extension",
        |f| {
            let der = openssl_cert(f, "huge extension", 70_000, "huge");
            f.write("/etc/keys/ima/huge.der", der);
        },
        1,
        "huge.der: file is 70805 bytes, more than the 65536 bytes allowed",
    ),
    Case::new(
        "IMA certificate with a 30,000-byte extension loads (the kernel takes it)",
        |f| {
            let der = openssl_cert(f, "big extension", 30_000, "big");
            f.write("/etc/keys/ima/big.der", der);
        },
        0,
        "loaded 1 IMA certificate(s) into _ima",
    )
    .after(one_ima_cert),
    Case::new(
        "the same IMA certificate as DER and as PEM",
        |f| {
            f.copy_cert("rsa2048.der", "/etc/keys/ima/a.der");
            f.copy_cert("rsa2048.pem", "/etc/keys/ima/b.pem");
        },
        0,
        "b.pem is the same as",
    )
    .after(one_ima_cert),
    Case::new(
        "two different certificates with the same subject and key id",
        |f| {
            let one = openssl_cert(f, "same name", 0, "one");
            std::thread::sleep(Duration::from_millis(1100)); // another notBefore
            let two = openssl_cert(f, "same name", 0, "two");
            assert_ne!(one, two);
            f.write("/etc/keys/ima/one.der", one);
            f.write("/etc/keys/ima/two.der", two);
        },
        0,
        "loaded 1 IMA certificate(s) into _ima",
    )
    .after(one_ima_cert),
    Case::new(
        "EVMX509 names a file that is also in EVMKEYSDIR",
        |f| {
            f.write(
                "/etc/sysconfig/evm",
                "EVMX509=/etc/keys/evm/a.der\nEVMKEYSDIR=/etc/keys/evm\n",
            );
            f.copy_cert("rsa2048.der", "/etc/keys/evm/a.der");
        },
        0,
        "loaded 1 EVM certificate(s) into _evm",
    )
    .after(|f, before| {
        expect("certs on _evm", f.certs_in("_evm").len(), 1)?;
        expect("evm", f.sfs_text("evm"), "2\n")?;
        expect("policy", f.sfs("ima/policy"), &before.policy)
    }),
    Case::new(
        "EVMX509 is a symlink to a file in EVMKEYSDIR",
        |f| {
            f.copy_cert("rsa2048.der", "/etc/keys/evm/a.der");
            link(f, "/etc/keys/x509_evm.der", "evm/a.der");
        },
        0,
        "loaded 1 EVM certificate(s) into _evm",
    )
    .after(|f, _| {
        expect("certs on _evm", f.certs_in("_evm").len(), 1)?;
        expect("evm", f.sfs_text("evm"), "2\n")
    }),
    Case::new(
        "a directory of 10,000 certificates is refused, in bounded time",
        |f| {
            let first = f.write("/etc/keys/ima/c00000.der", cert_bytes("rsa2048.der"));
            for i in 1..10_000 {
                fs::hard_link(&first, first.with_file_name(format!("c{i:05}.der"))).unwrap();
            }
        },
        1,
        "/etc/keys/ima: directory holds more than 1024 entries",
    ),
    Case::new(
        "a directory of exactly 1024 copies of one certificate loads it once",
        |f| {
            let first = f.write("/etc/keys/ima/c0000.der", cert_bytes("rsa2048.der"));
            for i in 1..1024 {
                fs::hard_link(&first, first.with_file_name(format!("c{i:04}.der"))).unwrap();
            }
        },
        0,
        "loaded 1 IMA certificate(s) into _ima",
    )
    .after(one_ima_cert),
    Case::new(
        "two certificates in one PEM file",
        |f| {
            let mut p = cert_bytes("rsa2048.pem");
            p.extend_from_slice(&cert_bytes("ecdsa-p256.pem"));
            f.write("/etc/keys/ima/two.pem", p);
        },
        1,
        "starts a second PEM block (CERTIFICATE); the kernel takes one certificate per file",
    ),
    Case::new(
        "DER certificate with trailing bytes",
        |f| {
            let mut d = cert_bytes("rsa2048.der");
            d.extend_from_slice(&[0u8; 5]);
            f.write("/etc/keys/ima/t.der", d);
        },
        1,
        "t.der: 5 bytes follow the DER certificate",
    ),
    Case::new(
        "DER certificate truncated",
        |f| {
            let d = cert_bytes("rsa2048.der");
            f.write("/etc/keys/ima/t.der", &d[..d.len() / 2]);
        },
        1,
        "t.der: not a valid DER X.509 certificate",
    ),
    Case::new(
        "IMA certificate is a FIFO",
        |f| mkfifo(f, "/etc/keys/ima/fifo.der"),
        1,
        "fifo.der: is a FIFO, not a regular file",
    ),
    Case::new(
        "IMA certificate is a character device node",
        |f| mkchr(f, "/etc/keys/ima/null.der", 1, 3),
        1,
        "null.der: is a device, not a regular file",
    ),
    Case::new(
        "IMA certificate directory the loader may not search",
        |f| {
            f.copy_cert("rsa2048.der", "/etc/keys/ima/a.der");
            private(f, "/etc/keys/ima");
        },
        1,
        "list /",
    )
    .unprivileged(),
    Case::new(
        "IMA certificate the loader may not read",
        |f| {
            f.copy_cert("rsa2048.der", "/etc/keys/ima/a.der");
            private(f, "/etc/keys/ima/a.der");
        },
        1,
        "a.der: Permission denied",
    )
    .unprivileged(),
    Case::new(
        "IMAKEYSDIR is an absolute symlink with '..' that climbs out",
        |f| {
            f.write("/etc/sysconfig/ima", "IMAKEYSDIR=/etc/keys/ima\n");
            link(f, "/etc/keys/ima", "/../../../../etc/ssl/certs");
        },
        1,
        "/etc/keys/ima: a symlink on this path leads out of the real root",
    ),
    Case::new(
        "IMA certificate symlinked to a host path (taken inside the root: dangling, skipped as dracut skips it)",
        |f| {
            let host = host_file(f);
            link(f, "/etc/keys/ima/host.der", &host);
        },
        0,
        "host.der: skipped, a symlink to a file the root does not have",
    ),
    Case::new(
        "IMA certificate beside a symlink to nothing: the certificate loads",
        |f| {
            f.copy_cert("rsa2048.der", "/etc/keys/ima/a.der");
            link(f, "/etc/keys/ima/b.der", "/etc/keys/removed.der");
        },
        0,
        "b.der: skipped, a symlink to a file the root does not have",
    )
    .after(one_ima_cert),
    Case::new(
        "IMA certificate whose file name is not UTF-8 loads",
        |f| {
            use std::os::unix::ffi::OsStrExt;
            let dir = f.root().join("etc/keys/ima");
            fs::create_dir_all(&dir).unwrap();
            let name = std::ffi::OsStr::from_bytes(b"caf\xe9.der");
            fs::write(dir.join(name), cert_bytes("rsa2048.der")).unwrap();
        },
        0,
        "loaded 1 IMA certificate(s) into _ima",
    )
    .after(one_ima_cert),
    // ---- IMA policy ----
    Case::new(
        "policy of 100,000 rules is written whole, in bounded time",
        |f| policy(f, "measure func=FILE_CHECK\n".repeat(100_000)),
        0,
        "as 100000 rules",
    )
    .after(|f, before| {
        let want = "measure func=FILE_CHECK\n".repeat(100_000);
        if f.sfs_text("ima/policy") != want {
            return Err(format!(
                "policy is {} bytes, want the 100,000 rules ({} bytes)",
                f.sfs("ima/policy").len(),
                want.len()
            ));
        }
        expect("keys", f.keys(), &before.keys)
    }),
    Case::new(
        "policy of 100,000 lines whose last rule is bad: nothing written",
        |f| {
            let mut text = "measure func=FILE_CHECK\n".repeat(99_999);
            text.push_str("measure func=FILE_CHEK\n");
            policy(f, text);
        },
        1,
        "ima-policy:100000:9: invalid func value \"FILE_CHEK\"",
    ),
    Case::new(
        "a single 4,096-byte rule (4,095 characters and its newline)",
        |f| policy(f, long_rule(4095) + "\n"),
        1,
        "ima-policy:1:4094: line is 4095 bytes; the kernel cuts a rule write at 4095 bytes, so at most 4093 are accepted",
    ),
    Case::new(
        "a rule of exactly 4,093 characters is written",
        |f| {
            policy(f, long_rule(4093) + "\n");
            // Its padding is an LSM label: written in the initramfs, as
            // the length is what is tried here.
            f.write("/etc/integrity-loader.conf", "IMA_LSM_RULES=initramfs\n");
        },
        0,
        "as 1 rules",
    )
    .after(|f, _| expect("policy", f.sfs_text("ima/policy"), long_rule(4093) + "\n")),
    Case::new(
        "policy with a NUL byte",
        |f| policy(f, "measure func=FILE_CHECK\nmeasure\0 func=BPRM_CHECK\n"),
        1,
        "ima-policy:2:8: NUL byte in a text file",
    ),
    Case::new(
        "policy starting with a byte order mark",
        |f| policy(f, "\u{feff}measure func=FILE_CHECK\n"),
        1,
        "ima-policy:1:1: file starts with a byte order mark",
    ),
    Case::new(
        "policy is a FIFO",
        |f| mkfifo(f, "/etc/sysconfig/ima-policy"),
        1,
        "ima-policy: is a FIFO, not a regular file",
    ),
    Case::new(
        "policy through a relative symlink that climbs out",
        |f| {
            link(
                f,
                "/etc/sysconfig/ima-policy",
                "../../../../../../../etc/passwd",
            )
        },
        1,
        "ima-policy: a symlink on this path leads out of the real root",
    ),
    Case::new(
        "policy the loader may not read",
        |f| {
            policy(f, "measure func=FILE_CHECK\n");
            private(f, "/etc/sysconfig/ima-policy");
        },
        1,
        "read IMA policy ",
    )
    .unprivileged(),
    Case::new(
        "IMAPOLICY names a certificate that IMAKEYSDIR also loads",
        |f| {
            f.write("/etc/sysconfig/ima", "IMAPOLICY=/etc/keys/ima/a.der\n");
            f.copy_cert("rsa2048.der", "/etc/keys/ima/a.der");
        },
        1,
        "a.der:1:2: invalid UTF-8; no rule was written",
    )
    .after(one_ima_cert),
    // ---- configuration files ----
    Case::new(
        "NUL byte in /etc/sysconfig/masterkey",
        |f| {
            put(
                f,
                "/etc/sysconfig/masterkey",
                "# kmk\nMASTERKEYTYPE=us\0er\n",
            )
        },
        1,
        "masterkey:2:17: NUL byte in a text file",
    ),
    Case::new(
        "NUL byte in /etc/sysconfig/ima",
        |f| put(f, "/etc/sysconfig/ima", "\0IMAPOLICY=/p\n"),
        1,
        "ima:1:1: NUL byte in a text file",
    ),
    Case::new(
        "CRLF in /etc/integrity-loader.conf",
        |f| put(f, "/etc/integrity-loader.conf", "FAILURE_ACTION=halt\r\n"),
        2,
        "integrity-loader.conf:1:20: carriage return (DOS line ending)",
    ),
    Case::new(
        "CRLF on line 2 of /etc/sysconfig/evm",
        |f| {
            put(
                f,
                "/etc/sysconfig/evm",
                "# evm\nEVMKEY=/etc/keys/evm.blob\r\n",
            )
        },
        1,
        "evm:2:26: carriage return (DOS line ending)",
    ),
    Case::new(
        "invalid UTF-8 in /etc/integrity-loader.conf",
        |f| put(f, "/etc/integrity-loader.conf", b"KMK_NAME=k\xffm\n"),
        2,
        "integrity-loader.conf:1:11: line is not valid UTF-8",
    ),
    Case::new(
        "/etc/integrity-loader.conf over 64 KiB",
        |f| {
            let mut t = "# padding\n".repeat(7000);
            t.push_str("DROP_KMK=no\n");
            f.write("/etc/integrity-loader.conf", t);
        },
        2,
        "integrity-loader.conf: file is 70012 bytes, more than the 65536 bytes allowed",
    ),
    Case::new(
        "/etc/sysconfig/evm is a FIFO",
        |f| mkfifo(f, "/etc/sysconfig/evm"),
        1,
        "evm: is a FIFO, not a regular file",
    ),
    Case::new(
        "/etc/sysconfig/ima is a character device node",
        |f| mkchr(f, "/etc/sysconfig/ima", 1, 3),
        1,
        "ima: is a device, not a regular file",
    ),
    Case::new(
        "/etc/sysconfig/masterkey the loader may not read",
        |f| {
            f.write("/etc/sysconfig/masterkey", "MASTERKEYTYPE=user\n");
            private(f, "/etc/sysconfig/masterkey");
        },
        1,
        "masterkey: Permission denied",
    )
    .unprivileged(),
    Case::new(
        "/etc/integrity-loader.conf is a symlink that climbs out",
        |f| {
            link(
                f,
                "/etc/integrity-loader.conf",
                "../../../../../../../etc/hostname",
            )
        },
        2,
        "integrity-loader.conf: a symlink on this path leads out of the real root",
    ),
    Case::new(
        "--config names a directory",
        |_| {},
        2,
        "cannot read the --config file: is a directory, not a regular file",
    )
    .args(&["load", "--config", "/tmp"]),
    Case::new(
        "kernel command line over 64 KiB",
        |f| f.set_cmdline(&format!("ro {}\n", "x".repeat(70_000))),
        2,
        "cmdline: file is 70004 bytes, more than the 65536 bytes allowed",
    ),
    Case::new(
        "EVM_ACTIVATION_BITS beyond 32 bits",
        |f| put(f, "/etc/sysconfig/evm", "EVM_ACTIVATION_BITS=0x100000000\n"),
        1,
        "EVM_ACTIVATION_BITS=\"0x100000000\" is not a number",
    ),
    Case::new(
        "EVMKEYTYPE naming a trusted key",
        |f| put(f, "/etc/sysconfig/evm", "EVMKEYTYPE=trusted\n"),
        1,
        "evm:1: EVMKEYTYPE=\"trusted\": the kernel's EVM only takes an encrypted key named evm-key",
    ),
];

fn run_case(f: &Fixture, case: &Case) -> Run {
    let mut cmd = f.command(case.args);
    if case.privileges == Privileges::NoDacOverride {
        // SAFETY: prctl only, between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                for cap in [1, 2] {
                    // CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
                    if nix::libc::prctl(nix::libc::PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }
    finished(cmd.output().expect("run integrity-loader"))
}

#[test]
fn every_hostile_input_is_refused_or_bounded_and_honest() {
    assert!(CASES.len() >= 40, "{} cases", CASES.len());
    let mut failures = Vec::new();
    let mut bugs_fixed = Vec::new();
    for case in CASES {
        let f = Fixture::new("hostile");
        (case.setup)(&f);
        let before = f.snapshot();
        let start = Instant::now();
        let r = run_case(&f, case);
        let took = start.elapsed();
        if std::env::var_os("HOSTILE_SHOW").is_some() {
            eprintln!(
                "== {} ({} ms, exit {})\n{}",
                case.name,
                took.as_millis(),
                r.code,
                tail(&r.output())
            );
        }
        let problem = if r.code != case.code {
            Some(format!("exit {} (want {})", r.code, case.code))
        } else if !r.output().contains(case.message) {
            Some(format!("message {:?} missing", case.message))
        } else if took > CASE_TIME_LIMIT {
            Some(format!("took {took:?}, more than {CASE_TIME_LIMIT:?}"))
        } else {
            match &case.after {
                After::Unchanged => {
                    let after = f.snapshot();
                    (after != before).then(|| {
                        format!("kernel state changed\nbefore {before:?}\nafter  {after:?}")
                    })
                }
                After::Is(check) => check(&f, &before).err(),
            }
        };
        match (problem, case.bug) {
            (Some(p), bug) => failures.push(format!(
                "{}{}: {p}\n{}",
                case.name,
                bug.map(|b| format!(" [KNOWN BUG: {b}]"))
                    .unwrap_or_default(),
                tail(&r.output())
            )),
            (None, Some(_)) => bugs_fixed.push(case.name),
            (None, None) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n\n")
    );
    // A case marked as a bug that passes: the mark is stale, remove it.
    assert!(
        bugs_fixed.is_empty(),
        "cases marked as bugs now pass; drop their bug note: {bugs_fixed:?}"
    );
}

/// The last lines of a run's output, enough to see why a case failed.
fn tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    let from = lines.len().saturating_sub(12);
    lines[from..]
        .iter()
        .map(|l| l.chars().take(400).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_unprivileged_runs_really_lack_dac_override() {
    // Control for the NoDacOverride cases: the same mode-000 file that a
    // full root reads is refused once the two capabilities are dropped.
    let f = Fixture::new("dac-control");
    user_kmk(&f);
    f.write("/etc/keys/kmk-user.blob", KMK);
    private(&f, "/etc/keys/kmk-user.blob");
    assert_eq!(
        fs::metadata(f.root().join("etc/keys/kmk-user.blob"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0
    );
    let denied = run_case(&f, &Case::new("control", |_| {}, 1, "").unprivileged());
    assert_eq!(denied.code, 1, "{}", denied.output());
    denied.assert_contains("kmk-user.blob: Permission denied");
    let g = Fixture::new("dac-control-root");
    user_kmk(&g);
    g.write("/etc/keys/kmk-user.blob", KMK);
    private(&g, "/etc/keys/kmk-user.blob");
    let full = g.run(&["load"]);
    assert_eq!(full.code, 0, "{}", full.output());
    full.assert_contains("loaded user key kmk-user (32 bytes)");
}
