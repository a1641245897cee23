//! Sealing a fresh kmk to PCR values: the TPM side of `integrity-loader
//! seal`. Makes sure the storage key exists (creating the standard ECC SRK
//! when absent), draws the kmk from the TPM mixed with the kernel's
//! randomness, and seals it with the secret encrypted on the bus.

use super::client::{SessionKind, Tpm, TpmError};
use super::commands;
use super::constants::CommandCode;
use super::crypto;
use super::keyfile::{KeyType, PolicyCommand, SealedBlob};
use super::parent_pin::{self, NAME_LEN, ParentMismatch};
use super::pcr::{BankMissing, PcrSelection};
use super::pcr_lock;
use super::public::{self, Public};
use super::rc;
use crate::secret::Secret;
use std::fmt;

pub const KMK_LEN: usize = 32;

/// What a parent must be: generated in this TPM and never leaving it, and a
/// storage key (restricted decryption).
const STORAGE_KEY_ATTRIBUTES: u32 = public::ATTR_FIXED_TPM
    | public::ATTR_SENSITIVE_DATA_ORIGIN
    | public::ATTR_RESTRICTED
    | public::ATTR_DECRYPT;

#[derive(Debug)]
pub enum SealError {
    Tpm(TpmError),
    /// The storage key is not the pinned one: sealing under it could hand
    /// the kmk to whoever holds its private key.
    Parent(ParentMismatch),
    /// The key at the parent handle is not a storage key made in this TPM.
    NotAStorageKey {
        handle: u32,
        attributes: u32,
    },
    /// The TPM lacks PCRs of the selection: nothing sealed to them unseals.
    Bank(BankMissing),
}

impl From<TpmError> for SealError {
    fn from(e: TpmError) -> Self {
        SealError::Tpm(e)
    }
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealError::Tpm(e) => write!(f, "{e}"),
            SealError::Parent(m) => write!(f, "{m}"),
            SealError::NotAStorageKey { handle, attributes } => write!(
                f,
                "the key at {handle:#010x} (attributes {attributes:#010x}) is not a storage key generated in this TPM: a parent must be fixedTPM, sensitiveDataOrigin, restricted and decrypt, or its private part may be known outside the TPM; name another with --parent"
            ),
            SealError::Bank(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for SealError {}

/// The PCR values to seal to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Values {
    /// Given, in ascending PCR order (--pcr-value, or the record of this
    /// boot's unseal).
    Given(Vec<[u8; 32]>),
    /// The current values. With a PCR lock on `lock` (a PCR of the
    /// selection), a lock PCR that holds the lock applied to zero is taken
    /// back to zero: the next boot starts it there.
    Current { lock: Option<u8> },
}

/// What the lock PCR held when sealing to the current values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockState {
    /// No lock to look at: values given, or no lock PCR in the selection.
    NotLooked,
    /// Zero: not locked.
    Open,
    /// The lock applied `times` times to zero: sealed to zero instead.
    LockedFromZero { pcr: u8, times: usize },
    /// Neither zero nor the lock applied to zero (a PCR something else
    /// extends, as PCR 11 in a UKI boot): sealed to it as it is.
    Unexplained { pcr: u8, value: [u8; 32] },
}

/// Whether the sha256 bank holds every PCR of `pcrs`.
pub fn check_bank(tpm: &mut Tpm, pcrs: &PcrSelection) -> Result<(), SealError> {
    commands::pcr_banks(tpm)?
        .check(pcrs)
        .map_err(SealError::Bank)
}

/// The values to seal to and what the lock PCR held.
pub fn values_to_seal(
    tpm: &mut Tpm,
    pcrs: &PcrSelection,
    values: Values,
) -> Result<(Vec<[u8; 32]>, LockState), SealError> {
    let lock = match values {
        Values::Given(v) => return Ok((v, LockState::NotLooked)),
        Values::Current { lock } => lock,
    };
    let mut current = commands::pcr_read(tpm, pcrs)?;
    let Some((pcr, value)) = lock.and_then(|l| current.iter_mut().find(|(p, _)| *p == l)) else {
        return Ok((
            current.into_iter().map(|(_, v)| v).collect(),
            LockState::NotLooked,
        ));
    };
    let pcr = *pcr;
    let state = if *value == [0u8; 32] {
        LockState::Open
    } else if let Some(times) = pcr_lock::times_locked(value, &[0u8; 32]) {
        *value = [0u8; 32];
        LockState::LockedFromZero { pcr, times }
    } else {
        LockState::Unexplained { pcr, value: *value }
    };
    Ok((current.into_iter().map(|(_, v)| v).collect(), state))
}

#[derive(Debug)]
pub struct Sealed {
    pub blob: SealedBlob,
    pub kmk: Secret,
    /// Whether the storage key was created by this run.
    pub created_parent: bool,
    /// The storage key's Name, for TPM2_PARENT_NAME.
    pub parent_name: Vec<u8>,
    /// The storage key's object attributes (noDA matters to the unseal).
    pub parent_attributes: u32,
    /// The storage key's TPMT_PUBLIC, for TPM2_PARENT_PUBLIC.
    pub parent_public: Vec<u8>,
    /// The values sealed to, for TPM2_PCR_VALUES.
    pub values: Vec<(u8, [u8; 32])>,
    /// What the lock PCR held, when sealing to the current values.
    pub lock: LockState,
}

/// What `seal` accepts at the parent handle when TPM2_PARENT_NAME pins a
/// storage key.
#[derive(Debug, Clone, Copy, Default)]
pub struct PinRule<'a> {
    pub pinned: Option<&'a [u8; NAME_LEN]>,
    /// A present key with another Name is taken: the run moves the kmk to
    /// another handle on purpose and records its Name.
    pub accept_other_key: bool,
    /// An empty handle gets a new SRK: the run provisions again after a TPM
    /// clear and records the new Name. (A clear empties the handle; a
    /// different key there is never taken for one.)
    pub accept_new_key: bool,
}

/// Reads the storage key at `parent`, creating and persisting the TCG ECC
/// P-256 SRK there when the handle is empty, as `rule` allows.
pub fn ensure_parent(
    tpm: &mut Tpm,
    parent: u32,
    rule: PinRule,
    owner_auth: &[u8],
) -> Result<(Public, bool), SealError> {
    match commands::read_public(tpm, parent) {
        Ok(p) => {
            if !rule.accept_other_key {
                parent_pin::check(parent, &p, rule.pinned).map_err(SealError::Parent)?;
            }
            // A key imported or duplicated into the TPM may have a private
            // part known outside it: no use salting to it or sealing under it.
            if p.attributes & STORAGE_KEY_ATTRIBUTES != STORAGE_KEY_ATTRIBUTES {
                return Err(SealError::NotAStorageKey {
                    handle: parent,
                    attributes: p.attributes,
                });
            }
            Ok((p, false))
        }
        Err(e) if e.rc().is_some_and(|rc| rc.base() == rc::HANDLE) => {
            if let (Some(pinned), false) = (rule.pinned, rule.accept_new_key) {
                return Err(SealError::Parent(ParentMismatch::missing(parent, pinned)));
            }
            let (handle, created) =
                commands::create_primary(tpm, owner_auth, &public::srk_ecc_template())?;
            let persisted =
                commands::evict_control(tpm, owner_auth, handle, &created.name(), parent);
            let flushed = commands::flush(tpm, handle);
            persisted?;
            flushed?;
            let read = commands::read_public(tpm, parent)?;
            if read.name() != created.name() {
                return Err(TpmError::Malformed {
                    command: "ReadPublic",
                    why: format!(
                        "the key at {parent:#010x} is not the one CreatePrimary just made and EvictControl persisted there"
                    ),
                }
                .into());
            }
            Ok((read, true))
        }
        Err(e) => Err(e.into()),
    }
}

/// The policy digest of PolicyPCR over `values` (ascending PCR order).
pub fn pcr_policy(pcrs: &PcrSelection, values: &[[u8; 32]]) -> [u8; 32] {
    crypto::policy_pcr_digest(&[0u8; 32], &pcrs.marshal(), values)
}

/// Seals a new kmk under `parent` (checked against a pin by `rule`) to
/// `pcrs` having `values`. A TPM without those PCRs is refused before
/// anything is made.
pub fn seal_new_kmk(
    tpm: &mut Tpm,
    parent: u32,
    rule: PinRule,
    owner_auth: &[u8],
    pcrs: &PcrSelection,
    values: Values,
) -> Result<Sealed, SealError> {
    seal_kmk(
        tpm,
        parent,
        rule,
        owner_auth,
        pcrs,
        Policy::Pcr(values),
        None,
    )
}

/// Seals a new kmk under `parent` to `auth_policy`, the PolicyAuthorize of
/// a key that signs PCR policies over `pcrs` (see `policy_authorize`): no
/// PCR values go into the object.
pub fn seal_new_kmk_authorized(
    tpm: &mut Tpm,
    parent: u32,
    rule: PinRule,
    owner_auth: &[u8],
    pcrs: &PcrSelection,
    auth_policy: [u8; 32],
) -> Result<Sealed, SealError> {
    let policy = Policy::Authorized(auth_policy);
    seal_kmk(tpm, parent, rule, owner_auth, pcrs, policy, None)
}

/// What the sealed object's authPolicy is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// PolicyPCR over these values.
    Pcr(Values),
    /// A given digest (PolicyAuthorize of a signing key).
    Authorized([u8; 32]),
}

/// Seals `kmk`, the machine's existing kmk, again (`reseal`): as
/// `seal_new_kmk` (or `seal_new_kmk_authorized`, to the same signing key's
/// policies), but the evm-key it seals stays openable.
pub fn reseal_kmk(
    tpm: &mut Tpm,
    parent: u32,
    rule: PinRule,
    owner_auth: &[u8],
    pcrs: &PcrSelection,
    policy: Policy,
    kmk: Secret,
) -> Result<Sealed, SealError> {
    seal_kmk(tpm, parent, rule, owner_auth, pcrs, policy, Some(kmk))
}

/// A fresh kmk: TPM randomness XOR the kernel's, so neither alone decides it.
fn new_kmk(tpm: &mut Tpm) -> Result<Secret, SealError> {
    let from_tpm = commands::get_random(tpm, KMK_LEN as u16)?;
    let from_kernel = zeroize::Zeroizing::new(
        crypto::random_bytes(KMK_LEN).map_err(|e| TpmError::Crypto(e.to_string()))?,
    );
    if from_tpm.len() != KMK_LEN {
        return Err(TpmError::Malformed {
            command: "GetRandom",
            why: format!("{} bytes instead of {KMK_LEN}", from_tpm.len()),
        }
        .into());
    }
    let mut kmk = Secret::zeroed(KMK_LEN);
    for ((k, a), b) in kmk
        .expose_mut()
        .iter_mut()
        .zip(from_tpm.iter())
        .zip(from_kernel.iter())
    {
        *k = a ^ b;
    }
    Ok(kmk)
}

fn seal_kmk(
    tpm: &mut Tpm,
    parent: u32,
    rule: PinRule,
    owner_auth: &[u8],
    pcrs: &PcrSelection,
    policy: Policy,
    kmk: Option<Secret>,
) -> Result<Sealed, SealError> {
    check_bank(tpm, pcrs)?;
    let (parent_public, created_parent) = ensure_parent(tpm, parent, rule, owner_auth)?;
    let (values, lock, policy, authorized) = match policy {
        Policy::Pcr(values) => {
            let (values, lock) = values_to_seal(tpm, pcrs, values)?;
            let policy = pcr_policy(pcrs, &values);
            (values, lock, policy, false)
        }
        Policy::Authorized(p) => (Vec::new(), LockState::NotLooked, p, true),
    };
    let kmk = match kmk {
        Some(k) => k,
        None => new_kmk(tpm)?,
    };

    let mut session =
        commands::start_salted_session(tpm, parent, &parent_public, SessionKind::Hmac)?;
    let created = commands::create_sealed(
        tpm,
        parent,
        &parent_public.name(),
        &mut session,
        kmk.expose(),
        &public::sealed_template(&policy),
    );
    let _ = commands::flush(tpm, session.handle);
    let (private, public_2b) = created?;

    // PolicyPCR's parameters as the key file records them (a signed
    // policy has no fixed values to record).
    let mut command_policy = Vec::new();
    command_policy.extend_from_slice(&32u16.to_be_bytes());
    command_policy.extend_from_slice(&crypto_pcr_digest(&values));
    command_policy.extend_from_slice(&pcrs.marshal());
    let policy_list = if authorized {
        Vec::new()
    } else {
        vec![PolicyCommand {
            command_code: CommandCode::PolicyPcr.code(),
            command_policy,
        }]
    };
    let description = if authorized {
        format!("integrity-loader kmk sealed to signed policies over {pcrs}")
    } else {
        format!("integrity-loader kmk sealed to {pcrs}")
    };
    let blob = SealedBlob {
        parent,
        empty_auth: true,
        public: public_2b,
        private,
        policy: policy_list,
        description: Some(description),
        oid: KeyType::SealedData,
    };
    Ok(Sealed {
        blob,
        kmk,
        created_parent,
        parent_name: parent_public.name(),
        parent_attributes: parent_public.attributes,
        values: pcrs.indices().zip(values.iter().copied()).collect(),
        parent_public: parent_public.bytes,
        lock,
    })
}

/// SHA-256 of the concatenated PCR values (PolicyPCR's pcrDigest).
fn crypto_pcr_digest(values: &[[u8; 32]]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for v in values {
        h.update(v);
    }
    h.finalize().into()
}
