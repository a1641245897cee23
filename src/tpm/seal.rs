//! Sealing a fresh kmk to PCR values: the TPM side of `integrity-loader
//! seal`. Makes sure the storage key exists (creating the standard ECC SRK
//! when absent), draws the kmk from the TPM mixed with the kernel's
//! randomness, and seals it with the secret encrypted on the bus.

use super::client::{SessionKind, Tpm, TpmError};
use super::commands;
use super::crypto;
use super::keyfile::{KeyType, PolicyCommand, SealedBlob};
use super::pcr::PcrSelection;
use super::public::{self, Public};
use super::rc;
use crate::secret::Secret;

pub const KMK_LEN: usize = 32;

#[derive(Debug)]
pub struct Sealed {
    pub blob: SealedBlob,
    pub kmk: Secret,
    /// Whether the storage key was created by this run.
    pub created_parent: bool,
}

/// Reads the storage key at `parent`, creating and persisting the TCG ECC
/// P-256 SRK there when the handle is empty.
pub fn ensure_parent(
    tpm: &mut Tpm,
    parent: u32,
    owner_auth: &[u8],
) -> Result<(Public, bool), TpmError> {
    match commands::read_public(tpm, parent) {
        Ok(p) => Ok((p, false)),
        Err(e) if e.rc().is_some_and(|rc| rc.base() == rc::HANDLE) => {
            let (handle, created) =
                commands::create_primary(tpm, owner_auth, &public::srk_ecc_template())?;
            let persisted =
                commands::evict_control(tpm, owner_auth, handle, &created.name(), parent);
            let flushed = commands::flush(tpm, handle);
            persisted?;
            flushed?;
            Ok((commands::read_public(tpm, parent)?, true))
        }
        Err(e) => Err(e),
    }
}

/// The policy digest of PolicyPCR over `values` (ascending PCR order).
pub fn pcr_policy(pcrs: &PcrSelection, values: &[[u8; 32]]) -> [u8; 32] {
    crypto::policy_pcr_digest(&[0u8; 32], &pcrs.marshal(), values)
}

/// Seals a new kmk under `parent` to `pcrs` having `values` (the current
/// values when `None`).
pub fn seal_new_kmk(
    tpm: &mut Tpm,
    parent: u32,
    owner_auth: &[u8],
    pcrs: &PcrSelection,
    values: Option<Vec<[u8; 32]>>,
) -> Result<Sealed, TpmError> {
    let (parent_public, created_parent) = ensure_parent(tpm, parent, owner_auth)?;
    let values = match values {
        Some(v) => v,
        None => commands::pcr_read(tpm, pcrs)?
            .into_iter()
            .map(|(_, v)| v)
            .collect(),
    };
    let policy = pcr_policy(pcrs, &values);

    // The kmk: TPM randomness XOR the kernel's, so neither alone decides it.
    let from_tpm = commands::get_random(tpm, KMK_LEN as u16)?;
    let from_kernel = zeroize::Zeroizing::new(
        crypto::random_bytes(KMK_LEN).map_err(|e| TpmError::Crypto(e.to_string()))?,
    );
    if from_tpm.len() != KMK_LEN {
        return Err(TpmError::Malformed {
            command: "GetRandom",
            why: format!("{} bytes instead of {KMK_LEN}", from_tpm.len()),
        });
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

    // PolicyPCR's parameters as the key file records them.
    let mut command_policy = Vec::new();
    command_policy.extend_from_slice(&32u16.to_be_bytes());
    command_policy.extend_from_slice(&crypto_pcr_digest(&values));
    command_policy.extend_from_slice(&pcrs.marshal());
    let blob = SealedBlob {
        parent,
        empty_auth: true,
        public: public_2b,
        private,
        policy: vec![PolicyCommand {
            command_code: commands::CC_POLICY_PCR,
            command_policy,
        }],
        description: Some(format!("integrity-loader kmk sealed to {pcrs}")),
        oid: KeyType::SealedData,
    };
    Ok(Sealed {
        blob,
        kmk,
        created_parent,
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
