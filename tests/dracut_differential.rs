//! Differential test against dracut's own 97masterkey and 98integrity
//! scripts (Debian's dracut-core) on the same inputs. Each side runs in its
//! own user namespace, which gives it a private `@u` user keyring, so both
//! use their defaults unchanged. The state each leaves behind (keys with
//! payload lengths, certificates per keyring, the EVM and policy files) is
//! dumped by the same shell function and compared.
//!
//! Like an initramfs process (no session keyring, so lookups go through the
//! user-session keyring to @u), each side runs in a session keyring that
//! links the namespace's @u: the kernel finds the kmk there when it loads
//! the evm-key.
//!
//! dracut's hooks run through scripts/run-dracut-integrity, which provides
//! the dracut-lib helpers they call and says what it changes.

mod common;
use common::*;
use std::fs;
use std::process::Command;

const RUNNER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/run-dracut-integrity");

/// Prints the state of @u and the fake securityfs, sorted.
const DUMP: &str = r#"
dump() {
    for k in $(keyctl rlist @u); do
        d=$(keyctl rdescribe "$k"); t=${d%%;*}; n=${d##*;}
        if [ "$t" = keyring ]; then
            echo "keyring:$n"
            for c in $(keyctl rlist "$k"); do cd=$(keyctl rdescribe "$c"); echo "$n/${cd%%;*}:${cd##*;}"; done
        else
            echo "$t:$n:$(keyctl pipe "$k" 2>/dev/null | wc -c)"
        fi
    done | sort
    echo "evm=[$(cat "$SECURITYFSDIR/evm")]"
    echo "policy=[$(cat "$SECURITYFSDIR/ima/policy")]"
}
"#;

/// Runs `body` in a fresh user namespace (private @u) and returns the dump.
fn in_userns(f: &Fixture, body: &str) -> String {
    let script = format!(
        "keyctl link @u @s >/dev/null\n{DUMP}\nexport NEWROOT='{root}' SECURITYFSDIR='{sfs}' CMDLINE_FILE='{cmdline}'\n{body}\necho ----\ndump\n",
        root = f.root().display(),
        sfs = f.dir.join("sfs").display(),
        cmdline = f.dir.join("cmdline").display(),
    );
    let out = Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "keyctl",
            "session",
            "-",
            "sh",
            "-c",
            &script,
        ])
        .env("INTEGRITY_LOADER_LOG", "stderr")
        .output()
        .expect("unshare (util-linux) runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        stdout.contains("----"),
        "user namespace run failed:\n{stdout}\n{stderr}"
    );
    stdout
        .split_once("----\n")
        .map(|(_, d)| d.to_string())
        .unwrap_or_default()
}

fn reset_securityfs(f: &Fixture) {
    fs::write(f.dir.join("sfs/evm"), b"").unwrap();
    fs::write(f.dir.join("sfs/ima/policy"), b"").unwrap();
}

fn run_dracut(f: &Fixture) -> String {
    reset_securityfs(f);
    in_userns(f, &format!("'{RUNNER}'"))
}

fn run_ours(f: &Fixture) -> String {
    reset_securityfs(f);
    let body = format!(
        "'{BIN}' load --root \"$NEWROOT\" --securityfs \"$SECURITYFSDIR\" --cmdline \"$CMDLINE_FILE\"",
    );
    in_userns(f, &body)
}

/// A kmk dracut's `read -r` can carry: one line of text.
const TEXT_KMK: &[u8] = b"kmk-for-the-differential-test-32";

fn setup(f: &Fixture, kmk: &[u8]) {
    dracut_setup(f);
    // evmctl (1.4) exits 0 without importing PEM files; compare on DER.
    fs::remove_dir_all(f.root().join("etc/keys/ima")).unwrap();
    f.copy_cert("ecdsa-p256.der", "/etc/keys/ima/ecdsa.der");
    f.copy_cert("rsa2048.der", "/etc/keys/ima/rsa.der");
    f.write("/etc/keys/kmk-user.blob", kmk);
    f.write("/etc/keys/evm-user.blob", make_evm_blob(kmk, "kmk-user"));
}

#[test]
fn same_state_as_dracut_when_policy_is_written_by_path() {
    let f = Fixture::new("diff-same");
    setup(&f, TEXT_KMK);
    // dracut always writes the policy by path; ask for that.
    f.write("/etc/integrity-loader.conf", "IMA_POLICY_WRITE=path\n");
    let dracut = run_dracut(&f);
    let ours = run_ours(&f);
    assert_eq!(ours, dracut, "ours:\n{ours}\ndracut:\n{dracut}");
    assert!(ours.contains("user:kmk-user:32"), "{ours}");
    assert!(ours.contains("evm=[3]"), "{ours}");
    assert_eq!(ours.matches("_ima/asymmetric:").count(), 2, "{ours}");
    assert_eq!(ours.matches("_evm/asymmetric:").count(), 1, "{ours}");
}

#[test]
fn differs_on_purpose_unsigned_policy_goes_rule_by_rule() {
    // dracut writes the path even for an unsigned policy; we write the rules
    // (the kernel reads a path as a POLICY_CHECK file, which fails for an
    // unsigned policy when signed policies are required). All else is equal.
    let f = Fixture::new("diff-policy");
    setup(&f, TEXT_KMK);
    let dracut = run_dracut(&f);
    let ours = run_ours(&f);
    let policy_path = f.root().join("etc/sysconfig/ima-policy");
    assert!(
        dracut.contains(&format!("policy=[{}]", policy_path.display())),
        "{dracut}"
    );
    assert!(
        ours.contains(&format!("policy=[{}]", POLICY_RULES.trim_end())),
        "{ours}"
    );
    let strip = |s: &str| {
        s.lines()
            .filter(|l| {
                !l.starts_with("policy=")
                    && !l.starts_with("measure")
                    && !l.starts_with("appraise")
                    && !l.starts_with("dont_")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&ours), strip(&dracut));
}

#[test]
fn differs_on_purpose_binary_kmk_is_loaded_whole() {
    // dracut's `read -r` stops at the newline in the key: its kmk-user is 1
    // byte, the evm-key does not decrypt, and EVM gets only the x509 bit.
    let f = Fixture::new("diff-binary");
    setup(&f, &BINARY_KMK);
    let dracut = run_dracut(&f);
    let ours = run_ours(&f);
    assert!(ours.contains("user:kmk-user:32"), "{ours}");
    assert!(ours.contains("evm=[3]"), "{ours}");
    assert!(!dracut.contains("user:kmk-user:32"), "{dracut}");
    assert!(dracut.contains("evm=[2]"), "{dracut}");
}

#[test]
fn differs_on_purpose_pem_certificates_are_loaded() {
    // evmctl import reports success for a PEM certificate but adds nothing;
    // we convert PEM to DER and load it.
    let f = Fixture::new("diff-pem");
    dracut_setup(&f);
    f.write("/etc/keys/kmk-user.blob", TEXT_KMK);
    f.write(
        "/etc/keys/evm-user.blob",
        make_evm_blob(TEXT_KMK, "kmk-user"),
    );
    let dracut = run_dracut(&f);
    let ours = run_ours(&f);
    assert_eq!(dracut.matches("_ima/asymmetric:").count(), 0, "{dracut}");
    assert_eq!(ours.matches("_ima/asymmetric:").count(), 2, "{ours}");
}

#[test]
fn differs_on_purpose_kmk_named_as_the_evm_key_blob_says() {
    // The chapter's layout through dracut's files: the kmk made as `kmk`,
    // the evm-key sealed by user:kmk. dracut loads the kmk as kmk-user and
    // the evm-key then finds no master key; we name the kmk as the blob's
    // header does (no KMK_NAME set), so the evm-key loads and EVM is on.
    let f = Fixture::new("diff-chapter");
    setup(&f, TEXT_KMK);
    f.write("/etc/keys/kmk", TEXT_KMK);
    f.write("/etc/keys/evm-key", make_evm_blob(TEXT_KMK, "kmk"));
    f.write(
        "/etc/sysconfig/masterkey",
        "MASTERKEYTYPE=user\nMASTERKEY=/etc/keys/kmk\n",
    );
    f.write("/etc/sysconfig/evm", "EVMKEY=/etc/keys/evm-key\n");
    f.write("/etc/integrity-loader.conf", "IMA_POLICY_WRITE=path\n");
    let dracut = run_dracut(&f);
    let ours = run_ours(&f);
    assert!(dracut.contains("user:kmk-user:32"), "{dracut}");
    assert!(!dracut.contains("evm=[3]"), "{dracut}");
    assert!(ours.contains("user:kmk:32"), "{ours}");
    assert!(!ours.contains("user:kmk-user"), "{ours}");
    assert!(ours.contains("evm=[3]"), "{ours}");
}

/// A case where dracut's scripts and ours must leave the same state.
struct Same {
    name: &'static str,
    /// Changes to the base root: `setup` with the policy written by path.
    setup: fn(&Fixture),
    cmdline: &'static str,
    /// In both dumps: what shows the case took the path it is about.
    shows: &'static [&'static str],
    /// In neither dump.
    lacks: &'static [&'static str],
}

fn same_state_cases(cases: &[Same]) {
    let mut failures = Vec::new();
    for case in cases {
        let f = Fixture::new("diff-case");
        setup(&f, TEXT_KMK);
        f.write("/etc/integrity-loader.conf", "IMA_POLICY_WRITE=path\n");
        (case.setup)(&f);
        f.set_cmdline(&format!("BOOT_IMAGE=/vmlinuz ro {}\n", case.cmdline));
        let dracut = run_dracut(&f);
        let ours = run_ours(&f);
        let missing: Vec<&&str> = case.shows.iter().filter(|s| !dracut.contains(*s)).collect();
        let present: Vec<&&str> = case.lacks.iter().filter(|s| dracut.contains(*s)).collect();
        if ours != dracut || !missing.is_empty() || !present.is_empty() {
            failures.push(format!(
                "{}: missing {missing:?}, present {present:?}\nours:\n{ours}dracut:\n{dracut}",
                case.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn mv(f: &Fixture, from: &str, to: &str) {
    let root = f.root();
    let to = root.join(to.trim_start_matches('/'));
    fs::create_dir_all(to.parent().unwrap()).unwrap();
    fs::rename(root.join(from.trim_start_matches('/')), to).unwrap();
}

/// The kernel command line through dracut's own getarg: an empty or bare
/// option drops the files' value for the built-in default; quotes inside a
/// value or a name stay.
#[test]
fn same_state_as_dracut_for_the_command_line() {
    same_state_cases(&[
        Same {
            name: "masterkey= is the default path, not the file's MASTERKEY",
            setup: |f| {
                f.write(
                    "/etc/sysconfig/masterkey",
                    "MASTERKEYTYPE=user\nMASTERKEY=/etc/keys/file-kmk.blob\n",
                );
                f.write("/etc/keys/file-kmk.blob", "not-the-kmk");
            },
            cmdline: "masterkey=",
            shows: &["user:kmk-user:32", "evm=[3]"],
            lacks: &["user:kmk-user:11"],
        },
        Same {
            name: "a bare masterkey after masterkey=PATH is the default path",
            setup: |f| {
                f.write("/etc/keys/other-kmk.blob", "not-the-kmk");
            },
            cmdline: "masterkey=/etc/keys/other-kmk.blob masterkey",
            shows: &["user:kmk-user:32", "evm=[3]"],
            lacks: &["user:kmk-user:11"],
        },
        Same {
            name: "masterkeytype= is trusted, not the file's user",
            setup: |f| {
                // No evm-key either way, so only the kmk differs.
                fs::remove_file(f.root().join("etc/keys/evm-user.blob")).unwrap();
            },
            cmdline: "masterkeytype=",
            shows: &["evm=[2]"],
            lacks: &["kmk-user"],
        },
        Same {
            name: "quotes inside a value stay in it",
            setup: |f| mv(f, "/etc/keys/kmk-user.blob", "/etc/keys/q\"b"),
            cmdline: "masterkey=\"/etc/keys/q\"b",
            shows: &["user:kmk-user:32", "evm=[3]"],
            lacks: &[],
        },
        Same {
            name: "quotes inside a name make it another option",
            setup: |_| {},
            cmdline: "master\"key\"=/etc/keys/nothing",
            shows: &["user:kmk-user:32", "evm=[3]"],
            lacks: &[],
        },
        Same {
            name: "a bare evmkey after evmkey=PATH is the default path",
            setup: |f| mv(f, "/etc/keys/evm-user.blob", "/etc/keys/evm-trusted.blob"),
            cmdline: "evmkey=/etc/keys/evm-user.blob evmkey",
            shows: &["evm=[3]"],
            lacks: &[],
        },
        Same {
            name: "evmkey= is the default path, not the file's EVMKEY",
            setup: |f| mv(f, "/etc/keys/evm-user.blob", "/etc/keys/evm-trusted.blob"),
            cmdline: "evmkey=",
            shows: &["evm=[3]"],
            lacks: &[],
        },
        Same {
            name: "evmx509= is the default path, not the file's EVMX509",
            setup: |f| {
                f.write(
                    "/etc/sysconfig/evm",
                    "EVMKEY=/etc/keys/evm-user.blob\nEVMX509=/etc/keys/file-x509.der\n",
                );
                f.copy_cert("ecdsa-p256.der", "/etc/keys/file-x509.der");
            },
            cmdline: "evmx509=",
            shows: &["evm=[3]", "_evm/asymmetric:integrity-loader tests: rsa2048"],
            lacks: &["_evm/asymmetric:integrity-loader tests: ecdsa-p256"],
        },
    ]);
}

/// Lines of dracut's files that the shell takes as plain data.
#[test]
fn same_state_as_dracut_for_sysconfig_lines_that_are_data() {
    same_state_cases(&[
        Same {
            name: "export NAME alone",
            setup: |f| {
                f.write(
                    "/etc/sysconfig/evm",
                    "export EVMKEY\nEVMKEY=/etc/keys/evm-user.blob\n",
                );
            },
            cmdline: "",
            shows: &["user:kmk-user:32", "evm=[3]"],
            lacks: &[],
        },
        Same {
            name: "two assignments separated by ;",
            setup: |f| {
                mv(f, "/etc/keys/kmk-user.blob", "/etc/keys/k.blob");
                f.write(
                    "/etc/sysconfig/masterkey",
                    "MASTERKEYTYPE=user; MASTERKEY=/etc/keys/k.blob\n",
                );
            },
            cmdline: "",
            shows: &["user:kmk-user:32", "evm=[3]"],
            lacks: &[],
        },
        Same {
            name: "two assignments in one command",
            setup: |f| {
                mv(f, "/etc/keys/kmk-user.blob", "/etc/keys/k.blob");
                f.write(
                    "/etc/sysconfig/masterkey",
                    "MASTERKEYTYPE=user MASTERKEY='/etc/keys/k.blob'\n",
                );
            },
            cmdline: "",
            shows: &["user:kmk-user:32", "evm=[3]"],
            lacks: &[],
        },
        Same {
            name: "export A=1 B=2",
            setup: |f| {
                mv(f, "/etc/keys/ima", "/etc/keys/ima2");
                mv(f, "/etc/sysconfig/ima-policy", "/etc/sysconfig/policy2");
                f.write(
                    "/etc/sysconfig/ima",
                    "export IMAKEYSDIR=/etc/keys/ima2 IMAPOLICY=/etc/sysconfig/policy2\n",
                );
            },
            cmdline: "",
            shows: &["/etc/sysconfig/policy2]", "keyring:_ima"],
            lacks: &[],
        },
        Same {
            name: "unset NAME: the default",
            setup: |f| {
                mv(f, "/etc/keys/evm-user.blob", "/etc/keys/evm-trusted.blob");
                f.write(
                    "/etc/sysconfig/evm",
                    "EVMKEY=/etc/keys/evm-user.blob\nunset EVMKEY\n",
                );
            },
            cmdline: "",
            shows: &["evm=[3]"],
            lacks: &[],
        },
    ]);
}

#[test]
fn differs_on_purpose_a_line_that_is_not_data_fails_only_its_file() {
    // dracut runs the command; we read the file as data, so its steps
    // (ima-certs, ima-policy) fail and the other files' steps run as
    // dracut's do.
    let f = Fixture::new("diff-not-data");
    setup(&f, TEXT_KMK);
    f.write("/etc/integrity-loader.conf", "IMA_POLICY_WRITE=path\n");
    f.write(
        "/etc/sysconfig/ima",
        "IMAKEYSDIR=/etc/keys/ima; echo not data\n",
    );
    let dracut = run_dracut(&f);
    let ours = run_ours(&f);
    let others = |s: &str| {
        s.lines()
            .filter(|l| {
                !l.starts_with("keyring:_ima")
                    && !l.starts_with("_ima/")
                    && !l.starts_with("policy=")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(others(&ours), others(&dracut));
    assert!(
        ours.contains("user:kmk-user:32") && ours.contains("evm=[3]"),
        "{ours}"
    );
    assert!(
        !ours.contains("_ima") && ours.contains("policy=[]"),
        "{ours}"
    );
    assert_eq!(dracut.matches("_ima/asymmetric:").count(), 2, "{dracut}");
}
