//! Unsealing the kmk in userspace: a policy session salted to the parent
//! (so the secret crosses the bus encrypted), PolicyPCR, Load, Unseal, and
//! every transient handle flushed on every path. Five commands on success:
//! StartAuthSession, PolicyPCR, Load, Unseal, FlushContext, after a
//! ReadPublic of the storage key unless its public area came with the pin.

use super::client::{SessionKind, Tpm, TpmError};
use super::commands;
use super::keyfile::SealedBlob;
use super::parent_pin::{self, NAME_LEN, ParentMismatch};
use super::pcr::{BankMissing, PcrSelection};
use super::policy_authorize::Approval;
use super::public::{self, Public};
use super::rc;
use crate::secret::Secret;
use std::fmt;

#[derive(Debug)]
pub enum UnsealError {
    Tpm(TpmError),
    /// Nothing at the parent's persistent handle.
    ParentMissing(u32),
    /// The parent is not the pinned one (TPM2_PARENT_NAME).
    ParentNotPinned(ParentMismatch),
    /// The PCRs do not hold the values the blob was sealed to.
    PcrMismatch {
        pcrs: PcrSelection,
        values: Vec<(u8, [u8; 32])>,
    },
    /// The TPM lacks PCRs the policy names.
    Bank(BankMissing),
    /// The TPM is in dictionary-attack lockout and the storage key is not
    /// exempt from it (no noDA).
    ParentDaLockout {
        handle: u32,
        error: TpmError,
    },
    BadPublic(String),
    SecretLength(usize),
}

impl From<TpmError> for UnsealError {
    fn from(e: TpmError) -> Self {
        UnsealError::Tpm(e)
    }
}

impl fmt::Display for UnsealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnsealError::Tpm(e) => write!(f, "{e}"),
            UnsealError::ParentMissing(h) => write!(
                f,
                "no storage key at persistent handle {h:#010x}: create it with `integrity-loader seal` (or tpm2_createprimary -C o -G ecc -c srk.ctx && tpm2_evictcontrol -c srk.ctx {h:#010x}) and seal the kmk again"
            ),
            UnsealError::ParentNotPinned(m) => write!(f, "{m}"),
            UnsealError::PcrMismatch { pcrs, values } => {
                write!(
                    f,
                    "PCR policy check failed: the kmk is sealed to {pcrs}, whose current values are not the sealed ones ("
                )?;
                let shown: Vec<String> = values
                    .iter()
                    .map(|(p, v)| format!("{p}={}", crate::hex::encode(v)))
                    .collect();
                let shown = if shown.is_empty() {
                    "the TPM did not give them".to_string()
                } else {
                    shown.join(", ")
                };
                write!(
                    f,
                    "{shown}); reseal after the change that moved them, or boot the expected configuration"
                )
            }
            UnsealError::Bank(m) => write!(f, "{m}"),
            UnsealError::ParentDaLockout { handle, error } => write!(
                f,
                "{error}; the storage key at {handle:#010x} lacks noDA, so the lockout stops every use of it: make a storage key with noda, seal the kmk again under it (`integrity-loader seal --parent HANDLE`), and clear the lockout (tpm2_dictionarylockout -c) to unseal this one"
            ),
            UnsealError::BadPublic(e) => {
                write!(f, "the sealed object's public area is unusable: {e}")
            }
            UnsealError::SecretLength(n) => {
                write!(f, "the unsealed data is {n} bytes; a kmk is 1..128 bytes")
            }
        }
    }
}

impl std::error::Error for UnsealError {}

/// Whether the TPM encrypts the unsealed data on the bus. Always `On` on the
/// boot path; `Off` exists so a test can show its bus-privacy check fails
/// without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusEncryption {
    On,
    Off,
}

/// The storage key to unseal under: its persistent handle and, when
/// pinned, the Name it must have.
#[derive(Debug, Clone, Copy)]
pub struct Parent<'a> {
    pub handle: u32,
    pub pinned_name: Option<&'a [u8; NAME_LEN]>,
    /// Its public area as configured (TPM2_PARENT_PUBLIC): taken instead
    /// of asking the TPM only when its Name is the pinned one, so that a
    /// salt still goes only to the pinned key.
    pub public: Option<&'a [u8]>,
}

impl Parent<'_> {
    /// A parent taken as the TPM presents it (tests, and configurations
    /// that have not pinned one: those get a warning).
    pub fn unpinned(handle: u32) -> Parent<'static> {
        Parent {
            handle,
            pinned_name: None,
            public: None,
        }
    }
}

/// Unseals `blob` under `parent` with a PolicyPCR session over `pcrs`.
pub fn unseal(
    tpm: &mut Tpm,
    blob: &SealedBlob,
    parent: Parent,
    pcrs: &PcrSelection,
) -> Result<Secret, UnsealError> {
    unseal_with(tpm, blob, parent, pcrs, BusEncryption::On)
}

/// `unseal`, choosing whether the answer is encrypted on the bus.
pub fn unseal_with(
    tpm: &mut Tpm,
    blob: &SealedBlob,
    parent: Parent,
    pcrs: &PcrSelection,
    encryption: BusEncryption,
) -> Result<Secret, UnsealError> {
    unseal_inner(tpm, blob, parent, pcrs, encryption, None)
}

/// `unseal` of a blob sealed to signed policies: PolicyAuthorize with
/// `approval` after PolicyPCR.
pub fn unseal_authorized(
    tpm: &mut Tpm,
    blob: &SealedBlob,
    parent: Parent,
    pcrs: &PcrSelection,
    approval: &Approval,
) -> Result<Secret, UnsealError> {
    unseal_inner(tpm, blob, parent, pcrs, BusEncryption::On, Some(approval))
}

fn unseal_inner(
    tpm: &mut Tpm,
    blob: &SealedBlob,
    parent: Parent,
    pcrs: &PcrSelection,
    encryption: BusEncryption,
    approval: Option<&Approval>,
) -> Result<Secret, UnsealError> {
    let public =
        Public::parse(blob.public_area()).map_err(|e| UnsealError::BadPublic(e.to_string()))?;
    let pinned = parent.pinned_name;
    let carried = carried_public(parent);
    let parent = parent.handle;
    let parent_public = match &carried {
        Some(p) => p.clone(),
        None => read_parent(tpm, parent, pinned)?,
    };
    // Before the salt goes out: a substituted key would learn it.
    parent_pin::check(parent, &parent_public, pinned).map_err(UnsealError::ParentNotPinned)?;
    if pinned.is_none() {
        log::warn!(
            "the storage key at {parent:#010x} is not pinned, so a device on the TPM bus could stand in for it; pin it: TPM2_PARENT_NAME={} in /etc/integrity-loader.conf, once this Name agrees with the one `integrity-loader seal` printed (or `tpm2_readpublic -c {parent:#010x}` on a boot you trust)",
            parent_pin::name_hex(&parent_public.name())
        );
    }
    let mut session =
        match commands::start_salted_session(tpm, parent, &parent_public, SessionKind::Policy) {
            Ok(s) => s,
            Err(e) if carried.is_some() => return Err(diagnose(tpm, parent, pinned, e)),
            Err(e) => return Err(e.into()),
        };
    let target = Target {
        blob,
        public: &public,
        parent,
        parent_public: &parent_public,
    };
    let result = unseal_in_session(tpm, &target, pcrs, approval, &mut session, encryption);
    if session.open {
        // Unseal consumes the session only when it succeeds.
        let _ = commands::flush(tpm, session.handle);
    }
    match result {
        Err(UnsealError::Tpm(e)) if e.rc().is_some_and(|rc| rc.base() == rc::POLICY_FAIL) => {
            // A TPM without the bank fails the policy as a changed PCR does.
            if let Ok(banks) = commands::pcr_banks(tpm)
                && let Err(m) = banks.check(pcrs)
            {
                return Err(UnsealError::Bank(m));
            }
            let values = commands::pcr_read(tpm, pcrs).unwrap_or_default();
            Err(UnsealError::PcrMismatch {
                pcrs: pcrs.clone(),
                values,
            })
        }
        Err(UnsealError::Tpm(e))
            if e.rc().is_some_and(|rc| rc.base() == rc::LOCKOUT)
                && parent_public.attributes & public::ATTR_NO_DA == 0 =>
        {
            Err(UnsealError::ParentDaLockout {
                handle: parent,
                error: e,
            })
        }
        // The key at the handle may not be the one whose public area was
        // configured: a salt it cannot read, an object it did not wrap.
        Err(UnsealError::Tpm(e)) if carried.is_some() => Err(diagnose(tpm, parent, pinned, e)),
        other => other,
    }
}

/// The configured public area of the parent, when it is the pinned one.
fn carried_public(parent: Parent) -> Option<Public> {
    let (pinned, bytes) = (parent.pinned_name?, parent.public?);
    match Public::parse(bytes) {
        Ok(p) if p.name().as_slice() == pinned.as_slice() => Some(p),
        _ => {
            log::warn!(
                "TPM2_PARENT_PUBLIC is not the public area of the storage key TPM2_PARENT_NAME pins; asking the TPM for it instead (one more command): seal again with --write-config, or remove TPM2_PARENT_PUBLIC"
            );
            None
        }
    }
}

/// The parent's public area as the TPM presents it (TPM2_ReadPublic).
fn read_parent(
    tpm: &mut Tpm,
    parent: u32,
    pinned: Option<&[u8; NAME_LEN]>,
) -> Result<Public, UnsealError> {
    match commands::read_public(tpm, parent) {
        Ok(p) => Ok(p),
        Err(e) if e.rc().is_some_and(|rc| rc.base() == rc::HANDLE) => Err(match pinned {
            Some(pinned) => UnsealError::ParentNotPinned(ParentMismatch::missing(parent, pinned)),
            None => UnsealError::ParentMissing(parent),
        }),
        Err(e) => Err(e.into()),
    }
}

/// Why a command failed when the parent's public area was taken from the
/// configuration: the handle empty or holding another key is said as
/// ReadPublic would have said it; otherwise the TPM's own error.
fn diagnose(
    tpm: &mut Tpm,
    parent: u32,
    pinned: Option<&[u8; NAME_LEN]>,
    error: TpmError,
) -> UnsealError {
    match read_parent(tpm, parent, pinned) {
        Ok(found) => match parent_pin::check(parent, &found, pinned) {
            Err(m) => UnsealError::ParentNotPinned(m),
            Ok(()) => UnsealError::Tpm(error),
        },
        Err(e @ (UnsealError::ParentNotPinned(_) | UnsealError::ParentMissing(_))) => e,
        Err(_) => UnsealError::Tpm(error),
    }
}

/// The object to unseal and the parent it loads under.
struct Target<'a> {
    blob: &'a SealedBlob,
    public: &'a Public,
    parent: u32,
    parent_public: &'a Public,
}

fn unseal_in_session(
    tpm: &mut Tpm,
    target: &Target,
    pcrs: &PcrSelection,
    approval: Option<&Approval>,
    session: &mut super::client::Session,
    encryption: BusEncryption,
) -> Result<Secret, UnsealError> {
    commands::policy_pcr(tpm, session, pcrs)?;
    if let Some(a) = approval {
        a.apply(tpm, session.handle)?;
    }
    let (item, item_name) = commands::load(
        tpm,
        target.parent,
        &target.parent_public.name(),
        &target.blob.private,
        &target.blob.public,
        target.public,
    )?;
    let data = commands::unseal(
        tpm,
        item,
        &item_name,
        session,
        encryption == BusEncryption::On,
    );
    let flushed = commands::flush(tpm, item);
    let data = data?;
    flushed?;
    if data.is_empty() || data.len() > 128 {
        return Err(UnsealError::SecretLength(data.len()));
    }
    Ok(Secret::new(data.to_vec()))
}
