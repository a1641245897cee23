//! Hostile and broken inputs: each case asserts the message, the exit code,
//! and that the kernel keyrings and the securityfs files are exactly as
//! before the run.

mod common;
use common::*;
use std::os::unix::fs::symlink;

/// The kmk, loaded by the test before the run so evm-key cases start from a
/// state where only the evm-key is in question.
const KMK: &[u8; 32] = b"0123456789abcdef0123456789abcdef";

struct Case {
    name: &'static str,
    setup: fn(&Fixture),
    args: &'static [&'static str],
    code: i32,
    message: &'static str,
}

fn user_kmk(f: &Fixture) {
    f.write("/etc/sysconfig/masterkey", "MASTERKEYTYPE=user\n");
}

fn with_kmk_loaded(f: &Fixture) {
    user_kmk(f);
    f.write("/etc/keys/kmk-user.blob", KMK);
    integrity_loader::keyring::add_key("user", Some("kmk-user"), KMK, f.session).unwrap();
    f.write("/etc/sysconfig/evm", "EVMKEY=/etc/keys/evm.blob\n");
}

fn blob_hex(f: &Fixture) -> String {
    let _ = f;
    make_evm_blob(KMK, "kmk-user")
}

fn evm_cert(f: &Fixture, fixture: &str) {
    f.copy_cert(fixture, "/etc/keys/x509_evm.der");
}

fn policy(f: &Fixture, text: &str) {
    f.write("/etc/sysconfig/ima-policy", text);
}

const CASES: &[Case] = &[
    Case {
        name: "kmk empty",
        setup: |f| {
            user_kmk(f);
            f.write("/etc/keys/kmk-user.blob", "");
        },
        args: &["load"],
        code: 1,
        message: "kmk-user.blob is empty",
    },
    Case {
        name: "kmk too large",
        setup: |f| {
            user_kmk(f);
            f.write("/etc/keys/kmk-user.blob", vec![1u8; 40000]);
        },
        args: &["load"],
        code: 1,
        message: "file is 40000 bytes, more than the 32767 bytes allowed",
    },
    Case {
        name: "kmk is a directory",
        setup: |f| {
            user_kmk(f);
            std::fs::create_dir_all(f.root().join("etc/keys/kmk-user.blob")).unwrap();
        },
        args: &["load"],
        code: 1,
        message: "kmk-user.blob: is a directory, not a regular file",
    },
    Case {
        name: "kmk is a FIFO",
        setup: |f| {
            user_kmk(f);
            std::fs::create_dir_all(f.root().join("etc/keys")).unwrap();
            nix::unistd::mkfifo(
                &f.root().join("etc/keys/kmk-user.blob"),
                nix::sys::stat::Mode::from_bits_truncate(0o600),
            )
            .unwrap();
        },
        args: &["load"],
        code: 1,
        message: "is a FIFO, not a regular file",
    },
    Case {
        name: "kmk is a device",
        setup: |f| {
            user_kmk(f);
            std::fs::create_dir_all(f.root().join("etc/keys")).unwrap();
            symlink("/dev/null", f.root().join("etc/keys/kmk-user.blob")).unwrap();
            f.write("/dev/null", "");
        },
        args: &["load"],
        code: 1,
        message: "kmk-user.blob is empty",
    },
    Case {
        name: "kmk symlink loop",
        setup: |f| {
            user_kmk(f);
            std::fs::create_dir_all(f.root().join("etc/keys")).unwrap();
            symlink("kmk-user.blob", f.root().join("etc/keys/kmk-user.blob")).unwrap();
        },
        args: &["load"],
        code: 1,
        message: "too many symlinks (a symlink loop?)",
    },
    Case {
        name: "kmk symlink escapes root",
        setup: |f| {
            user_kmk(f);
            std::fs::create_dir_all(f.root().join("etc/keys")).unwrap();
            symlink(
                "../../../../../../../../etc/hostname",
                f.root().join("etc/keys/kmk-user.blob"),
            )
            .unwrap();
        },
        args: &["load"],
        code: 1,
        message: "a symlink on this path leads out of the real root",
    },
    Case {
        name: "kmk path with ..",
        setup: |f| {
            f.write(
                "/etc/sysconfig/masterkey",
                "MASTERKEYTYPE=user\nMASTERKEY=/etc/../etc/keys/k\n",
            );
        },
        args: &["load"],
        code: 1,
        message: "path must not contain '..'",
    },
    Case {
        name: "relative MASTERKEY",
        setup: |f| {
            f.write("/etc/sysconfig/masterkey", "MASTERKEY=etc/keys/k\n");
        },
        args: &["load"],
        code: 1,
        message: "masterkey:1: MASTERKEY=\"etc/keys/k\" must be an absolute path",
    },
    Case {
        name: "unsupported masterkeytype on the command line",
        setup: |f| f.set_cmdline("masterkeytype=logon"),
        args: &["load"],
        code: 2,
        message: "kernel command line masterkeytype=: master key type \"logon\" is not supported",
    },
    Case {
        name: "unknown native key",
        setup: |f| {
            f.write("/etc/integrity-loader.conf", "# c\nFAILURE_ACTON=halt\n");
        },
        args: &["load"],
        code: 2,
        message: "integrity-loader.conf:2: unknown key FAILURE_ACTON",
    },
    Case {
        name: "malformed native line",
        setup: |f| {
            f.write("/etc/integrity-loader.conf", "FAILURE_ACTION halt\n");
        },
        args: &["check"],
        code: 2,
        message: "integrity-loader.conf:1:1: expected NAME=value",
    },
    Case {
        name: "shell expansion in sysconfig",
        setup: |f| {
            f.write("/etc/sysconfig/evm", "EVMKEY=${ROOT}/k\n");
        },
        args: &["load"],
        code: 1,
        message: "evm:1:8: shell expansion",
    },
    Case {
        // Only the steps reading the file fail, and a failure halts.
        name: "a line of /etc/sysconfig/ima that is not data, FAILURE_ACTION=halt",
        setup: |f| {
            f.write("/etc/integrity-loader.conf", "FAILURE_ACTION=halt\n");
            f.write("/etc/sysconfig/ima", "IMAKEYSDIR=/k; echo hi\n");
        },
        args: &["load"],
        code: 1,
        message: "ima:1:16: expected NAME=value, export NAME, unset NAME, a comment or an empty line",
    },
    Case {
        name: "CRLF in sysconfig",
        setup: |f| {
            f.write("/etc/sysconfig/ima", "IMAPOLICY=/p\r\n");
        },
        args: &["load"],
        code: 1,
        message: "ima:1:13: carriage return (DOS line ending)",
    },
    Case {
        name: "NUL in native config",
        setup: |f| {
            f.write("/etc/integrity-loader.conf", "DROP_KMK=no\0\n");
        },
        args: &["load"],
        code: 2,
        message: "integrity-loader.conf:1:12: NUL byte",
    },
    Case {
        name: "evm blob empty",
        setup: |f| {
            with_kmk_loaded(f);
            f.write("/etc/keys/evm.blob", "");
        },
        args: &["load"],
        code: 1,
        message: "evm.blob: the file is empty",
    },
    Case {
        name: "evm blob truncated",
        setup: |f| {
            with_kmk_loaded(f);
            let b = blob_hex(f);
            f.write("/etc/keys/evm.blob", &b[..b.len() - 10]);
        },
        args: &["load"],
        code: 1,
        message: "the hex data is 152 characters, a key of this length needs 162",
    },
    Case {
        name: "evm blob odd hex",
        setup: |f| {
            with_kmk_loaded(f);
            let b = blob_hex(f);
            f.write("/etc/keys/evm.blob", &b[..b.len() - 1]);
        },
        args: &["load"],
        code: 1,
        message: "the hex data is 161 characters",
    },
    Case {
        name: "evm blob binary garbage",
        setup: |f| {
            with_kmk_loaded(f);
            f.write("/etc/keys/evm.blob", [0u8, 1, 2, 3, 255]);
        },
        args: &["load"],
        code: 1,
        message: "not an exported encrypted key (binary data)",
    },
    Case {
        name: "evm blob naming trusted kmk",
        setup: |f| {
            with_kmk_loaded(f);
            let b = blob_hex(f).replace("user:kmk-user", "trusted:kmk-trusted");
            f.write("/etc/keys/evm.blob", b);
        },
        args: &["load"],
        code: 1,
        message: "is sealed by trusted:kmk-trusted, which is not loaded in keyring @s; the configured master key is user:kmk-user",
    },
    Case {
        name: "evm blob sealed by another kmk",
        setup: |f| {
            with_kmk_loaded(f);
            f.write("/etc/keys/evm.blob", make_evm_blob(&[9u8; 32], "kmk-user"));
        },
        args: &["load"],
        code: 1,
        message: "the kernel could not decrypt it with user:kmk-user (EINVAL)",
    },
    Case {
        name: "evm blob with bad master syntax",
        setup: |f| {
            with_kmk_loaded(f);
            f.write("/etc/keys/evm.blob", "default kmk-user 32 00");
        },
        args: &["load"],
        code: 1,
        message: "master key \"kmk-user\" must be user:NAME or trusted:NAME",
    },
    Case {
        name: "EVM cert garbage",
        setup: |f| {
            f.write("/etc/keys/x509_evm.der", b"\x30\x03\x02\x01");
        },
        args: &["load"],
        code: 1,
        message: "EVM certificate",
    },
    Case {
        name: "EVM cert is a CA",
        setup: |f| evm_cert(f, "ca.der"),
        args: &["load"],
        code: 1,
        message: "x509_evm.der: ",
    },
    Case {
        name: "EVM cert without SKI",
        setup: |f| evm_cert(f, "no-ski.der"),
        args: &["load"],
        code: 1,
        message: "subjectKeyIdentifier",
    },
    Case {
        name: "EVM cert without digitalSignature",
        setup: |f| evm_cert(f, "no-digsig.der"),
        args: &["load"],
        code: 1,
        message: "digitalSignature",
    },
    Case {
        name: "EVM cert Ed25519",
        setup: |f| evm_cert(f, "ed25519.der"),
        args: &["load"],
        code: 1,
        message: "x509_evm.der: ",
    },
    Case {
        name: "PEM with junk after END",
        setup: |f| {
            let mut p = std::fs::read(format!("{CERTS}/rsa2048.pem")).unwrap();
            p.extend_from_slice(b"junk junk\n");
            f.write("/etc/keys/ima/a.pem", p);
        },
        args: &["load"],
        code: 1,
        message: "a.pem: ",
    },
    Case {
        name: "keys dir is a file",
        setup: |f| {
            f.write("/etc/sysconfig/ima", "IMAKEYSDIR=/etc/keys/ima\n");
            f.write("/etc/keys/ima", "x");
        },
        args: &["load"],
        code: 1,
        message: "/etc/keys/ima: is not a directory",
    },
    Case {
        name: "policy bad rule on line 7",
        setup: |f| {
            policy(
                f,
                "#1\n#2\n#3\nmeasure func=FILE_CHECK\n\n\nappraise func=BPRM_CHECK appraise_type=nosuch\n",
            )
        },
        args: &["load"],
        code: 1,
        message: "ima-policy:7:",
    },
    Case {
        name: "policy with CRLF",
        setup: |f| policy(f, "measure func=FILE_CHECK\r\n"),
        args: &["load"],
        code: 1,
        message: "ima-policy:1:",
    },
    Case {
        name: "policy without rules",
        setup: |f| policy(f, "# nothing\n\n"),
        args: &["load"],
        code: 1,
        message: "ima-policy:",
    },
    Case {
        name: "policy 4096-byte rule",
        setup: |f| {
            policy(
                f,
                &format!("measure func=FILE_CHECK obj_type={}\n", "x".repeat(4096)),
            )
        },
        args: &["load"],
        code: 1,
        message: "ima-policy:1:",
    },
    Case {
        name: "policy over 8 MiB",
        setup: |f| policy(f, &"measure func=FILE_CHECK\n".repeat(400_000)),
        args: &["load"],
        code: 1,
        message: "more than the 8388608 bytes allowed",
    },
    Case {
        name: "EVM bits unknown",
        setup: |f| {
            f.write("/etc/sysconfig/evm", "EVM_ACTIVATION_BITS=0x10\n");
            evm_cert(f, "rsa2048.der");
        },
        args: &["check"],
        code: 1,
        message: "EVM_ACTIVATION_BITS has bits 0x10 the kernel does not know",
    },
    Case {
        name: "missing --cmdline file",
        setup: |f| {
            let _ = std::fs::remove_file(f.dir.join("cmdline"));
        },
        args: &["load"],
        code: 2,
        message: "read kernel command line",
    },
    Case {
        name: "bad --keyring",
        setup: |_| {},
        args: &["load", "--keyring", "@nope"],
        code: 2,
        message: "--keyring @nope: expected @u, @s, @us, @p, @t or a key id",
    },
    Case {
        name: "unknown option",
        setup: |_| {},
        args: &["--frobnicate"],
        code: 2,
        message: "unknown option --frobnicate",
    },
];

#[test]
fn every_bad_input_is_refused_and_changes_nothing() {
    assert!(CASES.len() >= 25);
    let mut failures = Vec::new();
    for case in CASES {
        let f = Fixture::new("bad");
        (case.setup)(&f);
        let before = f.snapshot();
        let r = f.run(case.args);
        let after = f.snapshot();
        if r.code != case.code {
            failures.push(format!(
                "{}: exit {} (want {})\n{}",
                case.name,
                r.code,
                case.code,
                r.output()
            ));
        } else if !r.output().contains(case.message) {
            failures.push(format!(
                "{}: message {:?} missing\n{}",
                case.name,
                case.message,
                r.output()
            ));
        } else if before != after {
            failures.push(format!(
                "{}: kernel state changed\nbefore {before:?}\nafter {after:?}",
                case.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n\n")
    );
}

/// The boot binary reads argv itself (it starts without std's runtime): an
/// argument that is not UTF-8 is a usage error naming it, not a panic, and
/// nothing changes.
#[test]
fn an_argument_that_is_not_utf8_is_a_usage_error() {
    use std::os::unix::ffi::OsStrExt;
    let f = Fixture::new("bad-utf8");
    let before = f.snapshot();
    let mut cmd = f.command(&["load"]);
    cmd.arg("--config")
        .arg(std::ffi::OsStr::from_bytes(b"/etc/caf\xe9.conf"));
    // Counted from 1 after the program's name, as argv counts them.
    let n = cmd.get_args().count();
    let r = common::finished(cmd.output().unwrap());
    assert_eq!(r.code, 2, "{}", r.output());
    let said = format!("argument {n} is not UTF-8; no option takes such a value");
    assert!(r.output().contains(&said), "{}", r.output());
    assert_eq!(f.snapshot(), before);
}
