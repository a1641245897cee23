//! A policy session for the kernel's trusted keys: a PCR-bound trusted key
//! (`policydigest=`) loads only with `policyhandle=` naming a policy
//! session that holds the PCR policy in the TPM at that moment. It must be
//! made on the raw device (/dev/tpm0): a session made through /dev/tpmrm0
//! is virtualized and swapped out between commands, so the kernel cannot
//! use its handle. The caller flushes it, whatever the load did.

use super::client::{Request, Session, SessionKind, Tpm, TpmError};
use super::commands;
use super::constants::{ALG_NULL, ALG_SHA256, CommandCode, RH_NULL, SE_POLICY};
use super::crypto;
use super::pcr::PcrSelection;
use super::wire::{Reader, Writer};
use zeroize::Zeroizing;

/// TPM2_StartAuthSession: a policy session, unsalted and unbound, no
/// parameter encryption, SHA-256. The kernel sends no HMAC and asks for no
/// encryption with `policyhandle=`, so a salt would protect nothing.
pub fn start_policy_session(tpm: &mut Tpm) -> Result<Session, TpmError> {
    const C: CommandCode = CommandCode::StartAuthSession;
    let nonce_caller = crypto::random_bytes(32).map_err(|e| TpmError::Crypto(e.to_string()))?;
    let mut p = Writer::new();
    p.tpm2b(&nonce_caller).tpm2b(&[]);
    p.u8(SE_POLICY).u16(ALG_NULL).u16(ALG_SHA256);
    let resp = tpm.execute(
        Request {
            handles: &[RH_NULL, RH_NULL],
            params: p.into_vec(),
            response_handles: 1,
            ..Request::new(C)
        },
        &mut [],
    )?;
    let handle = resp.handle(C, "no session handle")?;
    let mut r = Reader::new(&resp.params);
    let nonce_tpm = r
        .tpm2b()
        .map_err(|e| TpmError::Malformed {
            command: C.name(),
            why: e.to_string(),
        })?
        .to_vec();
    Ok(Session::new(
        handle,
        SessionKind::Policy,
        Zeroizing::new(Vec::new()),
        nonce_tpm,
    ))
}

/// A policy session with TPM2_PolicyPCR over `pcrs` at their current
/// values: its handle, for `policyhandle=`. Flushed again if PolicyPCR fails.
pub fn pcr_policy_session(tpm: &mut Tpm, pcrs: &PcrSelection) -> Result<u32, TpmError> {
    let session = start_policy_session(tpm)?;
    if let Err(e) = commands::policy_pcr(tpm, &session, pcrs) {
        let _ = commands::flush(tpm, session.handle);
        return Err(e);
    }
    Ok(session.handle)
}
