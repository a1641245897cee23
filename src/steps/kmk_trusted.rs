//! A PCR-bound trusted kmk: MASTERKEYTYPE=trusted with TPM2_PCRS set. The
//! kernel unseals a blob made with `policydigest=` only under a policy
//! session named by `policyhandle=`, which nobody else makes in an
//! initramfs (dracut cannot load such a kmk at all). The loader starts it
//! on the raw device, runs PolicyPCR over TPM2_PCRS, hands its handle to
//! the kernel and flushes it whatever the load did.

use crate::config::{MasterKeyType, Settings};
use crate::keyring::{self, KeySerial};
use crate::secret::Secret;
use crate::tpm::client::{self, StepBound, Tpm};
use crate::tpm::pcr::PcrSelection;
use crate::tpm::tcti::{self, Tcti};
use crate::tpm::{commands, kernel_session};
use nix::errno::Errno;
use std::path::PathBuf;

use super::Context;

/// The raw device: the kernel cannot use a session of /dev/tpmrm0.
const RAW_DEVICE: &str = "/dev/tpm0";

/// Whether the trusted kmk is loaded under a PCR policy session.
pub fn pcr_bound(s: &Settings) -> bool {
    s.masterkey_type.value == MasterKeyType::Trusted && !s.tpm.pcrs.source.is_default()
}

/// The TPM the session is made on: TPM when set (not the resource
/// manager), else the raw device.
pub fn session_tcti(s: &Settings) -> Result<Tcti, String> {
    let setting = &s.tpm.tcti;
    if setting.source.is_default() {
        return Ok(Tcti::Device(PathBuf::from(RAW_DEVICE)));
    }
    let t = tcti::parse(&setting.value).map_err(|e| format!("{e} ({})", setting.source))?;
    if let Tcti::Device(path) = &t
        && path.to_string_lossy().contains("tpmrm")
    {
        return Err(format!(
            "TPM={} ({}) is the kernel's resource manager: a session made there is swapped out between commands, so the kernel cannot use it for a PCR-bound trusted kmk; set TPM=device:{RAW_DEVICE} or remove the line",
            setting.value, setting.source
        ));
    }
    Ok(t)
}

/// What `check` says it would do.
pub fn plan(s: &Settings) -> Result<String, String> {
    let pcrs = PcrSelection::parse(&s.tpm.pcrs.value).map_err(|e| e.to_string())?;
    Ok(format!(
        "under a policy session over {pcrs} made on {}",
        session_tcti(s)?
    ))
}

/// Adds the trusted kmk (`payload` is `load <hex> ...`) with a PolicyPCR
/// session over TPM2_PCRS; the session is flushed whatever happens.
pub fn add(ctx: &Context, name: &str, payload: &Secret) -> Result<KeySerial, String> {
    let s = ctx.settings;
    let pcrs = PcrSelection::parse(&s.tpm.pcrs.value)
        .map_err(|e| format!("{e} ({})", s.tpm.pcrs.source))?;
    let tcti = session_tcti(s)?;
    let step = StepBound::starting_now(s.tpm.step_timeout);
    let mut tpm = client::open_bounded(&tcti, s.tpm.timeout, step)
        .map_err(|e| format!("open {tcti} for the kmk's policy session: {e}"))?;
    let handle = kernel_session::pcr_policy_session(&mut tpm, &pcrs)
        .map_err(|e| format!("start the kmk's policy session over {pcrs} on {tcti}: {e}"))?;
    let mut with_session = payload.expose().to_vec();
    with_session.extend_from_slice(format!(" policyhandle={handle:#010x}").as_bytes());
    let with_session = Secret::new(with_session);
    let added = keyring::add_key("trusted", Some(name), with_session.expose(), ctx.keyring);
    // The kernel continues the session: it stays in the TPM until flushed.
    if let Err(e) = commands::flush(&mut tpm, handle) {
        log::warn!("could not flush the kmk's policy session {handle:#010x} on {tcti}: {e}");
    }
    added.map_err(|e| match e {
        Errno::EPERM | Errno::EINVAL => refused(&mut tpm, &pcrs, e),
        e => super::kmk::add_error_words(MasterKeyType::Trusted, e),
    })
}

/// The kernel's EPERM/EINVAL under a PCR policy: name the PCRs and what
/// they hold now.
fn refused(tpm: &mut Tpm, pcrs: &PcrSelection, e: Errno) -> String {
    let now = match commands::pcr_read(tpm, pcrs) {
        Ok(values) => values
            .iter()
            .map(|(pcr, v)| format!("sha256:{pcr}={}", crate::hex::encode(v)))
            .collect::<Vec<_>>()
            .join(", "),
        Err(e) => format!("unknown (PCR_Read: {e})"),
    };
    format!(
        "the TPM refused the blob under its PCR policy over {pcrs} ({}): the PCRs hold {now} now, not the values the kmk was sealed to (the boot changed, or a pcrlock= of this boot extended them), or the blob is damaged; nothing loaded",
        super::keyring_errno_words(e)
    )
}
