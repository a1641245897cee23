//! LOCK_KEYRINGS: once `load` has put certificates into the userspace
//! `_ima`/`_evm` keyrings, nothing later (keyctl, another `load`) can add a
//! key to them; `LOCK_KEYRINGS=no` leaves them open.

mod common;
use common::*;
use std::io::Write;
use std::process::{Command, Stdio};

/// `keyctl padd asymmetric "" RING < cert`, as a root process of the booted
/// system would add its own certificate.
fn keyctl_padd(ring: integrity_loader::keyring::KeySerial, cert: &str) -> std::process::Output {
    let der = std::fs::read(std::path::Path::new(CERTS).join(cert)).unwrap();
    let mut child = Command::new("keyctl")
        .args(["padd", "asymmetric", "", &ring.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("keyctl (keyutils) installed");
    child.stdin.take().unwrap().write_all(&der).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn load_locks_ima_and_evm_keyrings_against_later_keys() {
    let f = Fixture::new("lock");
    dracut_setup(&f);
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("locked _ima");
    r.assert_contains("locked _evm");
    for ring in ["_ima", "_evm"] {
        let id = f.find("keyring", ring).expect("keyring made by load");
        let before = f.certs_in(ring);
        let out = keyctl_padd(id, "ecdsa-p384.der");
        assert!(
            !out.status.success(),
            "keyctl padd into the locked {ring} succeeded"
        );
        // EACCES from the permissions, EPERM from the restriction.
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("Permission denied") || err.contains("not permitted"),
            "{err}"
        );
        assert_eq!(f.certs_in(ring), before);
        let info = integrity_loader::keyring::describe(id).unwrap();
        assert!(info.is_write_locked(), "perm {:08x}", info.perm);
    }
    let s = f.run(&["status"]);
    s.assert_contains("_ima (id");
    s.assert_contains("locked: no key can be added until the next boot");
}

#[test]
fn a_second_load_with_a_new_certificate_says_the_keyring_is_locked() {
    let f = Fixture::new("lock-twice");
    dracut_setup(&f);
    assert_eq!(f.run(&["load"]).code, 0);
    // Unchanged input: nothing to add, the lock is no failure.
    let again = f.run(&["load"]);
    assert_eq!(again.code, 0, "{}", again.output());
    again.assert_contains("already on _ima");
    f.copy_cert("ecdsa-p384.pem", "/etc/keys/ima/later.pem");
    let r = f.run(&["load"]);
    assert_eq!(r.code, 1, "{}", r.output());
    r.assert_contains("_ima was locked by an earlier load (LOCK_KEYRINGS=yes)");
    assert_eq!(f.certs_in("_ima").len(), 2);
}

#[test]
fn lock_keyrings_no_leaves_them_open() {
    let f = Fixture::new("nolock");
    dracut_setup(&f);
    f.write("/etc/integrity-loader.conf", "LOCK_KEYRINGS=no\n");
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    assert!(!r.output().contains("locked _ima"), "{}", r.output());
    let id = f.find("keyring", "_ima").unwrap();
    let out = keyctl_padd(id, "ecdsa-p384.der");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(f.certs_in("_ima").len(), 3);
}

#[test]
fn check_shows_the_setting() {
    let f = Fixture::new("lock-check");
    dracut_setup(&f);
    let r = f.run(&["check"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("LOCK_KEYRINGS        yes");
    // check changes nothing: no keyring was made, none locked.
    assert_eq!(f.find("keyring", "_ima"), None);
}
