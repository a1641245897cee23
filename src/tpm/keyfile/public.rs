//! Checks on the marshalled TPM2B blobs: a sealed data object's public area.

use super::error::{Blob, KeyFileError, PublicProblem};
use crate::tpm::constants::{ALG_KEYEDHASH, ALG_NULL, ALG_SHA256};
use crate::tpm::wire::Reader;

pub(super) const SHA256_LEN: usize = 32;

/// objectAttributes and authPolicy of a TPMT_PUBLIC (type, nameAlg, attributes, policy).
pub(super) fn public_head(area: &[u8]) -> Option<(u32, &[u8])> {
    let mut r = Reader::new(area);
    r.take(4).ok()?;
    let attributes = r.u32().ok()?;
    Some((attributes, r.tpm2b().ok()?))
}

/// A u16 size then exactly that many bytes, at least one; returns them.
pub(super) fn check_tpm2b(bytes: &[u8], blob: Blob) -> Result<&[u8], KeyFileError> {
    let [hi, lo, body @ ..] = bytes else {
        return Err(KeyFileError::NotTpm2b {
            blob,
            size: None,
            follows: bytes.len(),
        });
    };
    let size = u16::from_be_bytes([*hi, *lo]);
    if usize::from(size) != body.len() || body.is_empty() {
        return Err(KeyFileError::NotTpm2b {
            blob,
            size: Some(size),
            follows: body.len(),
        });
    }
    Ok(body)
}

/// A TPM2B_PUBLIC of a sealed data object: keyedhash, sha256 name, null scheme.
pub(super) fn check_public(bytes: &[u8], blob: Blob) -> Result<(), KeyFileError> {
    let area = check_tpm2b(bytes, blob)?;
    let mut r = Reader::new(area);
    let fail = |problem| KeyFileError::Public { blob, problem };
    let short = |r: &Reader<'_>| fail(PublicProblem::Truncated(area.len() - r.remaining()));
    match r.u16().map_err(|_| short(&r))? {
        ALG_KEYEDHASH => {}
        other => return Err(fail(PublicProblem::Type(other))),
    }
    match r.u16().map_err(|_| short(&r))? {
        ALG_SHA256 => {}
        other => return Err(fail(PublicProblem::NameAlg(other))),
    }
    r.u32().map_err(|_| short(&r))?;
    match r.tpm2b().map_err(|_| short(&r))?.len() {
        0 | SHA256_LEN => {}
        other => return Err(fail(PublicProblem::AuthPolicySize(other))),
    }
    match r.u16().map_err(|_| short(&r))? {
        ALG_NULL => {}
        other => return Err(fail(PublicProblem::Scheme(other))),
    }
    r.tpm2b().map_err(|_| short(&r))?; // unique
    match r.remaining() {
        0 => Ok(()),
        n => Err(fail(PublicProblem::Trailing(n))),
    }
}
