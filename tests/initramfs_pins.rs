//! What the initramfs carries wins over a root that someone with the disk
//! edited (issue: the pin bypassed by changing the kmk type; halt switched
//! off by a syntax error). Each test plays the attacker's or the careless
//! admin's edit against the built binary, real keyrings and a fake
//! securityfs, and checks that nothing the edit wanted reaches the kernel.

mod common;
use common::*;
use std::path::PathBuf;

const ATTACKER_KMK: &[u8; 32] = b"attacker-known-kmk-0123456789abc";
const NAME: &str = "000b5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

fn pins(f: &Fixture, text: &str) -> PathBuf {
    let p = f.root().parent().unwrap().join("initramfs.pins");
    std::fs::write(&p, text).unwrap();
    p
}

/// A root edited to load a user kmk of the attacker's and an evm-key
/// sealed by it, with the EVM certificate still there.
fn attacker_root(f: &Fixture) {
    dracut_setup(f);
    f.write(
        "/etc/integrity-loader.conf",
        "MASTERKEYTYPE=user\nMASTERKEY=/etc/keys/mine\nFAILURE_ACTION=continue\n",
    );
    f.write("/etc/keys/mine", ATTACKER_KMK);
    f.write("/etc/sysconfig/evm", "EVMKEY=/etc/keys/mine-evm.blob\n");
    f.write(
        "/etc/keys/mine-evm.blob",
        make_evm_blob(ATTACKER_KMK, "kmk"),
    );
}

fn assert_attacker_kmk_refused(f: &Fixture, r: &Run) {
    assert_eq!(r.code, 1, "{}", r.output());
    assert_eq!(f.find("user", "kmk"), None, "the attacker's kmk was loaded");
    assert_eq!(f.find("encrypted", "evm-key"), None);
    r.assert_contains("evm-key: skipped: step kmk failed");
    let evm = f.sfs_text("evm");
    assert!(
        evm.is_empty() || evm == "2\n",
        "EVM enabled with the HMAC bit from the attacker's key: {evm:?}"
    );
}

/// The initramfs of an older build pins only the storage key: a root
/// switched to a user kmk must not get one loaded, nor EVM's HMAC.
#[test]
fn a_storage_key_pin_refuses_a_user_kmk() {
    let f = Fixture::new("pin-user-kmk");
    attacker_root(&f);
    let p = pins(&f, &format!("TPM2_PARENT_NAME={NAME}\n"));
    let r = f.run(&["load", "--pins", p.to_str().unwrap()]);
    r.assert_contains("but the initramfs pins a storage key");
    assert_attacker_kmk_refused(&f, &r);
}

/// A whole pins file: the type, the blob's path and digest come from the
/// initramfs; the root's replacement of the blob at the pinned path is
/// refused before the TPM is asked for anything.
#[test]
fn a_kmk_pin_refuses_another_type_and_another_blob() {
    let f = Fixture::new("pin-blob");
    attacker_root(&f);
    let genuine = b"-----BEGIN TSS2 PRIVATE KEY-----\n";
    let digest: String = integrity_loader::pins::blob_digest(genuine)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let p = pins(
        &f,
        &format!(
            "MASTERKEYTYPE=tpm2\nMASTERKEY=/etc/keys/kmk-tpm2.pem\nMASTERKEY_SHA256={digest}\nKMK_NAME=kmk\nTPM2_PARENT_NAME={NAME}\n"
        ),
    );
    // The attacker's own sealed blob at the pinned path.
    f.write(
        "/etc/keys/kmk-tpm2.pem",
        b"-----BEGIN TSS2 PRIVATE KEY-----\nmine\n",
    );
    let r = f.run(&[
        "load",
        "--pins",
        p.to_str().unwrap(),
        "--tpm",
        "swtpm:path=/nonexistent",
    ]);
    r.assert_contains("MASTERKEYTYPE user");
    r.assert_contains("is not the one the initramfs pins");
    assert!(
        !r.output().contains("/nonexistent"),
        "the TPM was asked: {}",
        r.output()
    );
    assert_attacker_kmk_refused(&f, &r);
}

/// FAILURE_ACTION=halt in the native config holds when another file does
/// not parse: a line of dracut's file that is not data fails the steps
/// reading it, and the run halts with the line the hook dies on.
#[test]
fn a_configuration_error_halts_when_halt_was_asked() {
    let f = Fixture::new("cfg-error-halt");
    dracut_setup(&f);
    f.write("/etc/integrity-loader.conf", "FAILURE_ACTION=halt\n");
    f.write(
        "/etc/sysconfig/masterkey",
        "MASTERKEYTYPE=user; rm -rf /x\n",
    );
    let r = f.run(&["load"]);
    assert_eq!(r.code, 1, "{}", r.output());
    assert!(
        r.stdout
            .starts_with("integrity-loader: FAILURE_ACTION=halt: kmk: "),
        "stdout: {:?}",
        r.stdout
    );
    assert!(r.stdout.contains("masterkey:1"), "{}", r.stdout);
    assert_eq!(f.sfs_text("evm"), "");
    assert_eq!(f.sfs_text("ima/policy"), "");

    // The native config itself broken: its halt line still counts.
    f.write(
        "/etc/integrity-loader.conf",
        "export FAILURE_ACTION='halt'\nBOGUS=1\n",
    );
    f.write("/etc/sysconfig/masterkey", "MASTERKEYTYPE=user\n");
    let r = f.run(&["load"]);
    assert_eq!(r.code, 2, "{}", r.output());
    assert!(
        r.stdout.contains("FAILURE_ACTION=halt: configuration: "),
        "{}",
        r.stdout
    );

    // The root asks for nothing, but the initramfs does.
    f.write("/etc/integrity-loader.conf", "BOGUS=1\n");
    let r = f.run(&["load"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stdout
            .contains("FAILURE_ACTION=continue: configuration: "),
        "{}",
        r.stdout
    );
    let p = pins(&f, "FAILURE_ACTION=halt\n");
    let r = f.run(&["load", "--pins", p.to_str().unwrap()]);
    assert_eq!(r.code, 2);
    assert!(
        r.stdout.contains("FAILURE_ACTION=halt: configuration: "),
        "{}",
        r.stdout
    );
}
