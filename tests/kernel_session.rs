//! The policy session the loader makes for a PCR-bound trusted kmk
//! (`policyhandle=`), against swtpm: its digest is the PCR policy
//! tpm2-tools compute for the same PCRs, and nothing is left in the TPM
//! once it is flushed.

#[path = "common/swtpm.rs"]
mod swtpm;

use integrity_loader::tpm::client::{Session, SessionKind, Tpm};
use integrity_loader::tpm::pcr::PcrSelection;
use integrity_loader::tpm::{commands, kernel_session, tcti, transport};
use std::time::Duration;
use swtpm::Swtpm;

fn client(tpm: &Swtpm) -> Tpm {
    let t = tcti::parse(&tpm.tcti()).unwrap();
    Tpm::new(transport::open(&t, Duration::from_secs(10)).unwrap())
}

#[test]
fn the_session_holds_the_pcr_policy_tpm2_tools_compute() {
    let tpm = Swtpm::start("kernel-session");
    // Not all zeros: the policy must take the TPM's current value.
    tpm.tool(&["tpm2_pcrextend", &format!("11:sha256={}", "5a".repeat(32))]);
    tpm.tool(&[
        "tpm2_pcrread",
        "-Q",
        "-o",
        &tpm.path("pcr.bin"),
        "sha256:11",
    ]);
    tpm.tool(&[
        "tpm2_createpolicy",
        "-Q",
        "--policy-pcr",
        "-l",
        "sha256:11",
        "-f",
        &tpm.path("pcr.bin"),
        "-L",
        &tpm.path("policy.digest"),
    ]);
    let expected = tpm.read("policy.digest");

    let mut c = client(&tpm);
    let pcrs = PcrSelection::parse("sha256:11").unwrap();
    let handle = kernel_session::pcr_policy_session(&mut c, &pcrs).unwrap();
    // A policy session handle (0x03......), as policyhandle= takes it.
    assert_eq!(handle >> 24, 0x03, "{handle:#x}");
    let session = Session::new(handle, SessionKind::Policy, Default::default(), Vec::new());
    let digest = commands::policy_get_digest(&mut c, &session).unwrap();
    assert_eq!(digest, expected);
    commands::flush(&mut c, handle).unwrap();
    // StartAuthSession, PolicyPCR, PolicyGetDigest, FlushContext.
    assert_eq!(c.stats.commands, 4);
    drop(c);
    let left = tpm.tool(&["tpm2_getcap", "handles-loaded-session"]);
    assert!(left.trim().is_empty(), "sessions left: {left}");
}

mod common;
use common::*;

/// `load` of a PCR-bound trusted kmk on a host kernel without trusted
/// keys: the session is made, the kernel says ENODEV, and the session is
/// flushed all the same.
#[test]
fn load_flushes_the_session_whatever_the_kernel_says() {
    let tpm = Swtpm::start("kernel-session-load");
    let f = Fixture::new("trusted-pcr-bound");
    f.write("/etc/keys/kmk-trusted.blob", "0011aabb\n");
    f.write(
        "/etc/integrity-loader.conf",
        format!("TPM={}\nTPM2_PCRS=sha256:11\n", tpm.tcti()),
    );
    let r = f.run(&["load"]);
    assert_eq!(r.code, 1);
    r.assert_contains("load trusted key kmk-trusted (PCR-bound, TPM2_PCRS=sha256:11)");
    assert!(
        r.output().contains("this kernel has no trusted keys")
            || r.output()
                .contains("the TPM refused the blob under its PCR policy over sha256:11"),
        "{}",
        r.output()
    );
    let left = tpm.tool(&["tpm2_getcap", "handles-loaded-session"]);
    assert!(left.trim().is_empty(), "sessions left: {left}");
    // check names the session it would make.
    let r = f.run(&["check"]);
    r.assert_contains("under a policy session over sha256:11 made on swtpm:");
    // The resource manager's sessions are no use to the kernel.
    f.write(
        "/etc/integrity-loader.conf",
        "TPM=device:/dev/tpmrm0\nTPM2_PCRS=sha256:11\n",
    );
    let r = f.run(&["load"]);
    assert_eq!(r.code, 1);
    r.assert_contains("TPM=device:/dev/tpmrm0 (");
    r.assert_contains(
        "is the kernel's resource manager: a session made there is swapped out between commands",
    );
}
