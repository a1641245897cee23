//! Signed PCR policies (TPM2_PolicyAuthorize, TPM 2.0 Part 1 "Policy
//! Authorize", Part 3 23.16): the kmk is sealed to "whatever PCR policy
//! this key signs", so an update that ships new PCR values with a new
//! signature boots without a reseal, and a PCR set nobody signed does not
//! unseal.
//!
//! - Seal: authPolicy = H(H(0^32 || TPM_CC_PolicyAuthorize || keyName) ||
//!   policyRef), keyName the Name of the public key as TPM2_LoadExternal
//!   loads it, policyRef empty (as systemd's).
//! - Sign: over aHash = H(approvedPolicy || policyRef), approvedPolicy the
//!   PolicyPCR digest of the PCR values (`.pcrsig`, see [`super::pcrsig`]).
//! - Unseal: LoadExternal (owner hierarchy: a key in the NULL hierarchy
//!   gets a NULL ticket, which PolicyAuthorize refuses), VerifySignature ->
//!   ticket, flush; then in the salted policy session PolicyPCR and
//!   PolicyAuthorize, and Unseal.

use super::client::{Request, Tpm, TpmError};
use super::commands;
use super::constants::{
    ALG_ECC, ALG_ECDSA, ALG_NULL, ALG_RSA, ALG_RSASSA, ALG_SHA256, CommandCode, ECC_NIST_P256,
    RH_OWNER, ST_VERIFIED,
};
use super::keyfile::SealedBlob;
use super::pcr::PcrSelection;
use super::pcrsig::Entry;
use super::public::{ATTR_DECRYPT, ATTR_SIGN, ATTR_USER_WITH_AUTH};
use super::unseal::{self, Parent, UnsealError};
use super::wire::{Reader, Writer};
use crate::secret::Secret;
use crate::x509::cert;
use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::Zeroizing;

/// Beside the sealed kmk: the public key it is sealed to (PEM), and the
/// signed policies (systemd's `.pcrsig` JSON).
pub const PCRPKEY_SUFFIX: &str = ".pcrpkey";
pub const PCRSIG_SUFFIX: &str = ".pcrsig";

/// What tpm2_loadexternal gives a public key loaded from PEM, so that its
/// Name (and the policy) is the same as tpm2-tools compute.
const LOAD_EXTERNAL_ATTRIBUTES: u32 = ATTR_USER_WITH_AUTH | ATTR_DECRYPT | ATTR_SIGN;
const P256_OID: &str = crate::x509::OID_P256;

/// A public key that signs PCR policies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    EccP256 { x: [u8; 32], y: [u8; 32] },
    Rsa { modulus: Vec<u8>, exponent: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyKey {
    pub kind: KeyKind,
    /// Its DER SubjectPublicKeyInfo, as the PEM holds it.
    pub spki: Vec<u8>,
}

impl PolicyKey {
    /// A `PUBLIC KEY` PEM (openssl's `-pubout`): ECDSA P-256 or RSA
    /// 2048/3072/4096.
    pub fn from_pem(pem: &[u8]) -> Result<PolicyKey, String> {
        let der = crate::pem::decode(pem, "PUBLIC KEY", crate::pem::Layout::Lenient)
            .map_err(|e| format!("not a PEM public key (-----BEGIN PUBLIC KEY-----): {e:?}"))?;
        PolicyKey::from_spki(&der)
    }

    pub fn from_spki(der: &[u8]) -> Result<PolicyKey, String> {
        let spki = cert::subject_public_key_info(der)
            .map_err(|e| format!("not a DER SubjectPublicKeyInfo: {e}"))?;
        let kind = match spki.algorithm.as_str() {
            crate::x509::OID_EC => {
                let curve = spki.named_curve.as_deref();
                if curve != Some(P256_OID) {
                    return Err(format!(
                        "an EC key on curve {}; only NIST P-256 is supported",
                        curve.unwrap_or("(unnamed)")
                    ));
                }
                let point = spki.key;
                p256::ecdsa::VerifyingKey::from_sec1_bytes(point)
                    .map_err(|_| "the P-256 point is not on the curve".to_string())?;
                let (x, y) = match point {
                    [0x04, xy @ ..] if xy.len() == 64 => xy.split_at(32),
                    _ => return Err("the P-256 point is not uncompressed".into()),
                };
                KeyKind::EccP256 {
                    x: x.try_into().map_err(|_| "bad point")?,
                    y: y.try_into().map_err(|_| "bad point")?,
                }
            }
            crate::x509::OID_RSA => {
                let (modulus, e) = cert::rsa_public_key(spki.key)
                    .map_err(|e| format!("not an RSA public key: {e}"))?;
                let modulus = modulus.to_vec();
                if !matches!(modulus.len(), 256 | 384 | 512) {
                    return Err(format!(
                        "an RSA key of {} bits; 2048, 3072 or 4096 are supported",
                        modulus.len() * 8
                    ));
                }
                let exponent = (e.len() <= 4)
                    .then(|| e.iter().fold(0u32, |n, b| n << 8 | u32::from(*b)))
                    .filter(|e| *e >= 3 && e % 2 == 1)
                    .ok_or("an RSA key with an unusable public exponent")?;
                KeyKind::Rsa { modulus, exponent }
            }
            _ => return Err("not an ECDSA P-256 or RSA public key".into()),
        };
        Ok(PolicyKey {
            kind,
            spki: der.to_vec(),
        })
    }

    pub fn to_pem(&self) -> String {
        crate::pem::encode("PUBLIC KEY", &self.spki, 64)
    }

    /// systemd's `pkfp`: SHA-256 of the DER public key.
    pub fn fingerprint(&self) -> [u8; 32] {
        Sha256::digest(&self.spki).into()
    }

    /// The TPMT_PUBLIC TPM2_LoadExternal loads (as tpm2_loadexternal makes it).
    pub fn tpm_public(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match &self.kind {
            KeyKind::EccP256 { x, y } => {
                w.u16(ALG_ECC)
                    .u16(ALG_SHA256)
                    .u32(LOAD_EXTERNAL_ATTRIBUTES)
                    .tpm2b(&[]);
                w.u16(ALG_NULL).u16(ALG_NULL); // symmetric, scheme
                w.u16(ECC_NIST_P256).u16(ALG_NULL); // curve, kdf
                w.tpm2b(x).tpm2b(y);
            }
            KeyKind::Rsa { modulus, exponent } => {
                w.u16(ALG_RSA)
                    .u16(ALG_SHA256)
                    .u32(LOAD_EXTERNAL_ATTRIBUTES)
                    .tpm2b(&[]);
                w.u16(ALG_NULL).u16(ALG_NULL); // symmetric, scheme
                let bits = u16::try_from(modulus.len() * 8).unwrap_or(0);
                w.u16(bits).u32(*exponent).tpm2b(modulus);
            }
        }
        w.into_vec()
    }

    /// Its Name: nameAlg || SHA-256(TPMT_PUBLIC).
    pub fn name(&self) -> Vec<u8> {
        let mut n = ALG_SHA256.to_be_bytes().to_vec();
        n.extend_from_slice(&Sha256::digest(self.tpm_public()));
        n
    }

    /// The authPolicy of an object sealed to policies this key signs.
    pub fn policy(&self) -> [u8; 32] {
        authorize_policy(&self.name())
    }

    /// The signature as a TPMT_SIGNATURE: ECDSA from DER (r, s), RSASSA
    /// as is; both over SHA-256.
    pub fn tpm_signature(&self, sig: &[u8]) -> Result<Vec<u8>, String> {
        let mut w = Writer::new();
        match &self.kind {
            KeyKind::EccP256 { .. } => {
                let s = p256::ecdsa::Signature::from_der(sig)
                    .map_err(|_| "not a DER ECDSA P-256 signature".to_string())?;
                let (r, s) = s.split_bytes();
                w.u16(ALG_ECDSA).u16(ALG_SHA256).tpm2b(&r).tpm2b(&s);
            }
            KeyKind::Rsa { modulus, .. } => {
                if sig.len() != modulus.len() {
                    return Err(format!(
                        "an RSA signature of {} bytes for a {}-byte key",
                        sig.len(),
                        modulus.len()
                    ));
                }
                w.u16(ALG_RSASSA).u16(ALG_SHA256).tpm2b(sig);
            }
        }
        Ok(w.into_vec())
    }
}

/// PolicyAuthorize's digest with an empty policyRef: the policy is reset
/// and then H(H(0 || CC || keyName) || policyRef).
pub fn authorize_policy(key_name: &[u8]) -> [u8; 32] {
    let first: [u8; 32] = Sha256::new()
        .chain_update([0u8; 32])
        .chain_update(CommandCode::PolicyAuthorize.code().to_be_bytes())
        .chain_update(key_name)
        .finalize()
        .into();
    Sha256::new()
        .chain_update(first)
        .chain_update([]) // policyRef
        .finalize()
        .into()
}

/// What the key signs: aHash = H(approvedPolicy || policyRef).
pub fn a_hash(approved_policy: &[u8; 32]) -> [u8; 32] {
    Sha256::digest(approved_policy).into()
}

/// A private key that signs PCR policies: ECDSA P-256 (PKCS#8 `PRIVATE
/// KEY` or SEC1 `EC PRIVATE KEY` PEM) or RSA (PKCS#8, or PKCS#1 `RSA
/// PRIVATE KEY`, as systemd-measure's keys usually are).
pub struct SigningKey {
    key: Signer,
}

enum Signer {
    Ecdsa(p256::ecdsa::SigningKey),
    Rsa(Box<super::rsa_sign::RsaPrivateKey>),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<secret>)")
    }
}

/// One DER TLV: (tag, content, rest). Lengths up to 2 bytes.
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let (len, rest) = match len {
        0..=0x7f => (usize::from(len), rest),
        0x81 => {
            let (&l, rest) = rest.split_first()?;
            (usize::from(l), rest)
        }
        0x82 => {
            let (l, rest) = rest.split_first_chunk::<2>()?;
            (usize::from(u16::from_be_bytes(*l)), rest)
        }
        _ => return None,
    };
    (rest.len() >= len).then(|| (tag, rest.split_at(len).0, rest.split_at(len).1))
}

const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// The private scalar of a SEC1 ECPrivateKey.
fn sec1_scalar(der: &[u8]) -> Option<&[u8]> {
    let (0x30, seq, _) = tlv(der)? else {
        return None;
    };
    let (0x02, [1], rest) = tlv(seq)? else {
        return None;
    };
    let (0x04, d, _) = tlv(rest)? else {
        return None;
    };
    Some(d)
}

impl SigningKey {
    pub fn from_pem(pem: &[u8]) -> Result<SigningKey, String> {
        let text = String::from_utf8_lossy(pem);
        if text.contains("-----BEGIN RSA PRIVATE KEY-----") {
            let der = Zeroizing::new(
                crate::pem::decode(pem, "RSA PRIVATE KEY", crate::pem::Layout::Lenient)
                    .map_err(|e| format!("not a PEM RSA private key: {e:?}"))?,
            );
            return SigningKey::rsa(&der);
        }
        let scalar: Zeroizing<Vec<u8>> = if text.contains("-----BEGIN EC PRIVATE KEY-----") {
            let der = Zeroizing::new(
                crate::pem::decode(pem, "EC PRIVATE KEY", crate::pem::Layout::Lenient)
                    .map_err(|e| format!("not a PEM EC private key: {e:?}"))?,
            );
            Zeroizing::new(
                sec1_scalar(&der)
                    .ok_or("not a SEC1 EC private key")?
                    .to_vec(),
            )
        } else {
            let der = Zeroizing::new(
                crate::pem::decode(pem, "PRIVATE KEY", crate::pem::Layout::Lenient).map_err(
                    |e| {
                        format!(
                            "not a PEM private key (-----BEGIN PRIVATE KEY----- or -----BEGIN EC PRIVATE KEY-----): {e:?}"
                        )
                    },
                )?,
            );
            let bad = "not a PKCS#8 private key";
            let (0x30, seq, _) = tlv(&der).ok_or(bad)? else {
                return Err(bad.into());
            };
            let (0x02, [0], rest) = tlv(seq).ok_or(bad)? else {
                return Err(bad.into());
            };
            let (0x30, alg, rest) = tlv(rest).ok_or(bad)? else {
                return Err(bad.into());
            };
            let (0x06, oid, params) = tlv(alg).ok_or(bad)? else {
                return Err(bad.into());
            };
            if oid == OID_RSA {
                let (0x04, inner, _) = tlv(rest).ok_or(bad)? else {
                    return Err(bad.into());
                };
                return SigningKey::rsa(inner);
            }
            if oid != OID_EC_PUBLIC_KEY
                || tlv(params).map(|(t, c, _)| (t, c)) != Some((0x06, OID_PRIME256V1))
            {
                return Err("not an ECDSA P-256 private key".into());
            }
            let (0x04, inner, _) = tlv(rest).ok_or(bad)? else {
                return Err(bad.into());
            };
            Zeroizing::new(sec1_scalar(inner).ok_or(bad)?.to_vec())
        };
        let key = p256::ecdsa::SigningKey::from_slice(&scalar)
            .map_err(|_| "the private scalar is not a valid P-256 key".to_string())?;
        Ok(SigningKey {
            key: Signer::Ecdsa(key),
        })
    }

    /// From a PKCS#1 RSAPrivateKey.
    fn rsa(der: &[u8]) -> Result<SigningKey, String> {
        let key = super::rsa_sign::RsaPrivateKey::from_pkcs1(der)?;
        Ok(SigningKey {
            key: Signer::Rsa(Box::new(key)),
        })
    }

    /// Its public key, as `openssl pkey -pubout` writes it.
    pub fn public(&self) -> Result<PolicyKey, String> {
        let key = match &self.key {
            Signer::Ecdsa(key) => key,
            Signer::Rsa(key) => return PolicyKey::from_spki(&key.spki()),
        };
        let point = key.verifying_key().to_sec1_point(false);
        let mut alg = Writer::new();
        alg.u8(0x06).u8(7).bytes(OID_EC_PUBLIC_KEY);
        alg.u8(0x06).u8(8).bytes(OID_PRIME256V1);
        let mut body = Writer::new();
        body.u8(0x30).u8(alg.len() as u8).bytes(alg.as_slice());
        body.u8(0x03).u8(66).u8(0).bytes(point.as_bytes());
        let mut spki = Writer::new();
        spki.u8(0x30).u8(body.len() as u8).bytes(body.as_slice());
        PolicyKey::from_spki(spki.as_slice())
    }

    /// A signature over `digest` (already SHA-256): DER ECDSA, or
    /// RSASSA-PKCS1-v1_5 (verified before it is returned).
    pub fn sign_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>, String> {
        use p256::ecdsa::signature::hazmat::PrehashSigner;
        let key = match &self.key {
            Signer::Ecdsa(key) => key,
            Signer::Rsa(key) => return key.sign_sha256(digest),
        };
        let sig: p256::ecdsa::Signature = key
            .sign_prehash(digest)
            .map_err(|_| "ECDSA signing failed".to_string())?;
        Ok(sig.to_der().as_bytes().to_vec())
    }
}

/// Signs the PolicyPCR of `pcrs` having `values` (ascending PCR order).
pub fn sign(key: &SigningKey, pcrs: &PcrSelection, values: &[[u8; 32]]) -> Result<Entry, String> {
    let pol = super::seal::pcr_policy(pcrs, values);
    let public = key.public()?;
    Ok(Entry {
        pcrs: pcrs.clone(),
        pkfp: Some(public.fingerprint()),
        pol,
        sig: key.sign_digest(&a_hash(&pol))?,
    })
}

/// Why a signed policy did not unseal.
#[derive(Debug)]
pub enum AuthorizedError {
    Unseal(UnsealError),
    /// The blob is not sealed to the key beside it.
    NotThisKey,
    /// No entry signs the policy of the current PCR values.
    NotSigned {
        pcrs: PcrSelection,
        values: Vec<(u8, [u8; 32])>,
        entries: usize,
    },
    /// The entry for the current values is not signed by the key.
    BadSignature(String),
}

impl From<TpmError> for AuthorizedError {
    fn from(e: TpmError) -> Self {
        AuthorizedError::Unseal(UnsealError::Tpm(e))
    }
}

impl From<UnsealError> for AuthorizedError {
    fn from(e: UnsealError) -> Self {
        AuthorizedError::Unseal(e)
    }
}

impl fmt::Display for AuthorizedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthorizedError::Unseal(e) => write!(f, "{e}"),
            AuthorizedError::NotThisKey => f.write_str(
                "the sealed kmk's policy is not PolicyAuthorize of this public key: seal again with `integrity-loader seal --authorized-by` this key",
            ),
            AuthorizedError::NotSigned {
                pcrs,
                values,
                entries,
            } => {
                let shown: Vec<String> = values
                    .iter()
                    .map(|(p, v)| format!("{p}={}", crate::hex::encode(v)))
                    .collect();
                write!(
                    f,
                    "no signed policy for the current values of {pcrs} ({}) among the {entries} for {pcrs}: this boot's PCR values were not approved; sign them (`integrity-loader sign-policy --pcrs {pcrs} --pcr-value N=HEX ...`) or boot an approved configuration",
                    shown.join(", ")
                )
            }
            AuthorizedError::BadSignature(why) => write!(
                f,
                "the signed policy for the current PCR values is not signed by the key the kmk is sealed to ({why}): refusing it"
            ),
        }
    }
}

impl std::error::Error for AuthorizedError {}

fn malformed(command: CommandCode, why: impl Into<String>) -> TpmError {
    TpmError::Malformed {
        command: command.name(),
        why: why.into(),
    }
}

/// TPM2_LoadExternal of a public key into the owner hierarchy; its handle,
/// the Name checked against ours.
fn load_external(tpm: &mut Tpm, key: &PolicyKey) -> Result<u32, TpmError> {
    const C: CommandCode = CommandCode::LoadExternal;
    let mut p = Writer::new();
    p.u16(0).tpm2b(&key.tpm_public()).u32(RH_OWNER);
    let resp = tpm.execute(
        Request {
            params: p.into_vec(),
            response_handles: 1,
            ..Request::new(C)
        },
        &mut [],
    )?;
    let handle = resp.handle(C, "no object handle")?;
    let mut r = Reader::new(&resp.params);
    let name = r.tpm2b().map_err(|e| malformed(C, e.to_string()));
    if name.as_deref().ok() != Some(key.name().as_slice()) {
        let _ = commands::flush(tpm, handle);
        return Err(name.err().unwrap_or_else(|| {
            malformed(C, "the loaded key's Name differs from its public area")
        }));
    }
    Ok(handle)
}

/// TPM2_VerifySignature: the TPMT_TK_VERIFIED ticket.
fn verify_signature(
    tpm: &mut Tpm,
    handle: u32,
    digest: &[u8; 32],
    signature: &[u8],
) -> Result<Vec<u8>, TpmError> {
    const C: CommandCode = CommandCode::VerifySignature;
    let mut p = Writer::new();
    p.tpm2b(digest).bytes(signature);
    let resp = tpm.execute(
        Request {
            handles: &[handle],
            params: p.into_vec(),
            ..Request::new(C)
        },
        &mut [],
    )?;
    let mut r = Reader::new(&resp.params);
    let bad = |e: super::wire::Truncated| malformed(C, e.to_string());
    let tag = r.u16().map_err(bad)?;
    let hierarchy = r.u32().map_err(bad)?;
    r.tpm2b().map_err(bad)?;
    if tag != ST_VERIFIED || hierarchy != RH_OWNER || r.remaining() != 0 {
        return Err(malformed(C, "not a ticket of the owner hierarchy"));
    }
    Ok(resp.params.to_vec())
}

/// TPM2_PolicyAuthorize with an empty policyRef.
fn policy_authorize(
    tpm: &mut Tpm,
    session: u32,
    approved: &[u8; 32],
    key_name: &[u8],
    ticket: &[u8],
) -> Result<(), TpmError> {
    let mut p = Writer::new();
    p.tpm2b(approved).tpm2b(&[]).tpm2b(key_name).bytes(ticket);
    tpm.execute(
        Request {
            handles: &[session],
            params: p.into_vec(),
            ..Request::new(CommandCode::PolicyAuthorize)
        },
        &mut [],
    )
    .map(|_| ())
}

/// The approval PolicyAuthorize needs, checked by the TPM.
pub struct Approval {
    pub approved_policy: [u8; 32],
    pub key_name: Vec<u8>,
    pub ticket: Vec<u8>,
}

impl Approval {
    /// Runs PolicyAuthorize in `session` (after PolicyPCR).
    pub fn apply(&self, tpm: &mut Tpm, session: u32) -> Result<(), TpmError> {
        policy_authorize(
            tpm,
            session,
            &self.approved_policy,
            &self.key_name,
            &self.ticket,
        )
    }
}

/// Whether `blob` is sealed to policies `key` signs.
pub fn seals_to(blob: &SealedBlob, key: &PolicyKey) -> bool {
    blob.auth_policy() == Some(key.policy().as_slice())
}

/// Unseals `blob`, sealed to policies `key` signs, with the entry of
/// `entries` that approves the current values of `pcrs`.
pub fn unseal(
    tpm: &mut Tpm,
    blob: &SealedBlob,
    parent: Parent,
    pcrs: &PcrSelection,
    key: &PolicyKey,
    entries: &[Entry],
) -> Result<Secret, AuthorizedError> {
    if !seals_to(blob, key) {
        return Err(AuthorizedError::NotThisKey);
    }
    let fingerprint = key.fingerprint();
    let ours: Vec<&Entry> = entries
        .iter()
        .filter(|e| &e.pcrs == pcrs && e.pkfp.is_none_or(|f| f == fingerprint))
        .collect();
    // The TPM checks it again: a PCR that moves after this read fails
    // PolicyAuthorize.
    let current = commands::pcr_read(tpm, pcrs)?;
    let values: Vec<[u8; 32]> = current.iter().map(|(_, v)| *v).collect();
    let policy = super::seal::pcr_policy(pcrs, &values);
    let Some(entry) = ours.iter().find(|e| e.pol == policy) else {
        return Err(AuthorizedError::NotSigned {
            pcrs: pcrs.clone(),
            values: current,
            entries: ours.len(),
        });
    };
    let signature = key
        .tpm_signature(&entry.sig)
        .map_err(AuthorizedError::BadSignature)?;
    let handle = load_external(tpm, key)?;
    let ticket = verify_signature(tpm, handle, &a_hash(&entry.pol), &signature);
    let flushed = commands::flush(tpm, handle);
    let ticket = match ticket {
        Err(e) if e.rc().is_some_and(|rc| rc.base() == super::rc::SIGNATURE) => {
            return Err(AuthorizedError::BadSignature(e.to_string()));
        }
        other => other?,
    };
    flushed?;
    let approval = Approval {
        approved_policy: entry.pol,
        key_name: key.name(),
        ticket,
    };
    Ok(unseal::unseal_authorized(
        tpm, blob, parent, pcrs, &approval,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    // openssl ecparam -name prime256v1 -genkey -noout
    // (a test key, used for nothing else)
    const SEC1: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIHt2JxFJwyymwW7FqLFzQ5Em/i1iIq2OTiT7+zLP7U7RoAoGCCqGSM49
AwEHoUQDQgAEF6PxqqnBY5CEyKpa5/+xM9KK95PR2cKEurZOZRChNcFAXlS7/hi1
yNwiog0SV3Ot378Q9QLM2IXYWzKcLGEsVQ==
-----END EC PRIVATE KEY-----
";

    #[test]
    fn a_sec1_key_signs_and_its_public_key_round_trips() {
        let key = SigningKey::from_pem(SEC1.as_bytes()).unwrap();
        assert_eq!(format!("{key:?}"), "SigningKey(<secret>)");
        let public = key.public().unwrap();
        let again = PolicyKey::from_pem(public.to_pem().as_bytes()).unwrap();
        assert_eq!(again, public);
        let pcrs = PcrSelection::parse("sha256:7").unwrap();
        let entry = sign(&key, &pcrs, &[[0; 32]]).unwrap();
        assert_eq!(entry.pkfp, Some(public.fingerprint()));
        // The signature verifies over aHash, and converts for the TPM.
        use p256::ecdsa::signature::hazmat::PrehashVerifier;
        let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(&{
            let KeyKind::EccP256 { x, y } = &public.kind else {
                panic!()
            };
            [&[4u8][..], x, y].concat()
        })
        .unwrap();
        let sig = p256::ecdsa::Signature::from_der(&entry.sig).unwrap();
        vk.verify_prehash(&a_hash(&entry.pol), &sig).unwrap();
        let tpm_sig = public.tpm_signature(&entry.sig).unwrap();
        assert_eq!(&tpm_sig[..4], &[0x00, 0x18, 0x00, 0x0b]);
        assert_eq!(tpm_sig.len(), 4 + 2 * 34);
    }

    #[test]
    fn the_public_area_is_what_tpm2_loadexternal_makes() {
        let key = SigningKey::from_pem(SEC1.as_bytes()).unwrap();
        let p = key.public().unwrap().tpm_public();
        // type ecc, sha256, userwithauth|decrypt|sign, no policy, no
        // symmetric or scheme, P-256, no kdf (tpm2_readpublic -f tpmt).
        assert_eq!(
            &p[..18],
            &[
                0x00, 0x23, 0x00, 0x0b, 0x00, 0x06, 0x00, 0x40, 0x00, 0x00, 0x00, 0x10, 0x00, 0x10,
                0x00, 0x03, 0x00, 0x10
            ]
        );
        let parsed = super::super::public::Public::parse(&p).unwrap();
        assert_eq!(parsed.attributes, 0x0006_0040);
    }

    #[test]
    fn hostile_keys_are_errors() {
        assert!(PolicyKey::from_pem(b"").is_err());
        assert!(PolicyKey::from_pem(SEC1.as_bytes()).is_err());
        assert!(
            SigningKey::from_pem(b"-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n")
                .is_err()
        );
        let key = SigningKey::from_pem(SEC1.as_bytes())
            .unwrap()
            .public()
            .unwrap();
        let mut spki = key.spki.clone();
        let last = spki.len() - 1;
        spki[last] ^= 1; // off the curve
        assert!(PolicyKey::from_spki(&spki).is_err());
        assert!(key.tpm_signature(&[0x30, 0x00]).is_err());
        for n in 0..key.spki.len() {
            assert!(PolicyKey::from_spki(&key.spki[..n]).is_err(), "prefix {n}");
        }
    }
}
