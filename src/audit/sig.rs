//! `security.ima` and `security.evm` values, and the public keys that would
//! verify them: the certificates `load` would put on the .ima and .evm
//! keyrings. Formats as `evmctl` writes them and the kernel reads them
//! (`struct signature_v2_hdr`, `struct evm_ima_xattr_data`): a signature is
//! type 0x03 (0x05 for a portable EVM one), version 2, the kernel's hash
//! algorithm number, the last 4 bytes of the signer's subjectKeyIdentifier,
//! a big-endian 16-bit length and the signature over the digest; a hash is
//! type 0x04, the algorithm number and the digest (0x01: a bare SHA-1).

use crate::x509::cert;
use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{Limb, Odd, U2048, U3072, U4096, Uint};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use sha2::Digest;

pub const IMA_XATTR_DIGEST: u8 = 0x01;
pub const EVM_XATTR_HMAC: u8 = 0x02;
pub const EVM_IMA_XATTR_DIGSIG: u8 = 0x03;
pub const IMA_XATTR_DIGEST_NG: u8 = 0x04;
pub const EVM_XATTR_PORTABLE_DIGSIG: u8 = 0x05;

pub const ALGO_SHA1: u8 = 2;
const ALGO_SHA256: u8 = 4;
const ALGO_SHA384: u8 = 5;
const ALGO_SHA512: u8 = 6;
const ALGO_SHA224: u8 = 7;

/// A running hash in one of the algorithms supported here.
pub enum Hasher {
    Sha1(sha1::Sha1),
    Sha224(sha2::Sha224),
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// `None` for algorithms not supported offline.
    pub fn new(algo: u8) -> Option<Hasher> {
        Some(match algo {
            ALGO_SHA1 => Hasher::Sha1(sha1::Sha1::new()),
            ALGO_SHA224 => Hasher::Sha224(sha2::Sha224::new()),
            ALGO_SHA256 => Hasher::Sha256(sha2::Sha256::new()),
            ALGO_SHA384 => Hasher::Sha384(sha2::Sha384::new()),
            ALGO_SHA512 => Hasher::Sha512(sha2::Sha512::new()),
            _ => return None,
        })
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha224(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    pub fn finish(self) -> Vec<u8> {
        match self {
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha224(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

/// The digest length of a supported algorithm.
pub fn digest_len(algo: u8) -> Option<usize> {
    Some(match algo {
        ALGO_SHA1 => 20,
        ALGO_SHA224 => 28,
        ALGO_SHA256 => 32,
        ALGO_SHA384 => 48,
        ALGO_SHA512 => 64,
        _ => return None,
    })
}

/// The DER DigestInfo prefix of EMSA-PKCS1-v1_5 (RFC 8017 §9.2, note 1).
fn digest_info(algo: u8) -> Option<&'static [u8]> {
    Some(match algo {
        ALGO_SHA1 => &[
            0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
            0x14,
        ],
        ALGO_SHA224 => &[
            0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x04, 0x05, 0x00, 0x04, 0x1c,
        ],
        ALGO_SHA256 => &[
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ],
        ALGO_SHA384 => &[
            0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x02, 0x05, 0x00, 0x04, 0x30,
        ],
        ALGO_SHA512 => &[
            0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x03, 0x05, 0x00, 0x04, 0x40,
        ],
        _ => return None,
    })
}

/// What a `security.ima` value holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImaValue<'a> {
    /// A file hash (type 0x04, or 0x01 for SHA-1).
    Hash { algo: u8, digest: &'a [u8] },
    /// A v2 signature (type 0x03).
    Signature(SigV2<'a>),
    /// Something else: a v3 signature, another type, a malformed value.
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigV2<'a> {
    pub algo: u8,
    pub key_id: [u8; 4],
    pub sig: &'a [u8],
}

/// A v2 signature header and its signature, after the type byte.
pub fn parse_sig_v2(body: &[u8]) -> Result<SigV2<'_>, String> {
    let (&[version, algo, k0, k1, k2, k3, s0, s1], sig) = body
        .split_first_chunk::<8>()
        .ok_or("signature header too short")?;
    if version != 2 {
        return Err(format!(
            "signature version {version} (only 2 is checked offline)"
        ));
    }
    let size = usize::from(u16::from_be_bytes([s0, s1]));
    if size != sig.len() {
        return Err(format!(
            "signature length {size} in the header but {} bytes follow",
            sig.len()
        ));
    }
    Ok(SigV2 {
        algo,
        key_id: [k0, k1, k2, k3],
        sig,
    })
}

pub fn parse_ima(value: &[u8]) -> ImaValue<'_> {
    match value.split_first() {
        Some((&IMA_XATTR_DIGEST_NG, rest)) => match rest.split_first() {
            Some((&algo, digest)) if digest_len(algo).is_some_and(|n| n == digest.len()) => {
                ImaValue::Hash { algo, digest }
            }
            Some((&algo, _)) if digest_len(algo).is_none() => {
                ImaValue::Other(format!("hash algorithm {algo} is not supported offline"))
            }
            _ => ImaValue::Other("malformed hash (wrong length)".into()),
        },
        Some((&IMA_XATTR_DIGEST, digest)) if digest.len() == 20 => ImaValue::Hash {
            algo: ALGO_SHA1,
            digest,
        },
        Some((&EVM_IMA_XATTR_DIGSIG, body)) => match parse_sig_v2(body) {
            Ok(s) => ImaValue::Signature(s),
            Err(e) => ImaValue::Other(e),
        },
        Some((t, _)) => ImaValue::Other(format!("unknown security.ima type {t:#04x}")),
        None => ImaValue::Other("empty security.ima".into()),
    }
}

/// A public key from a certificate, with the id signatures name it by.
#[derive(Debug, Clone)]
pub struct Key {
    pub key_id: [u8; 4],
    /// The certificate file, for reports.
    pub source: String,
    kind: KeyKind,
}

#[derive(Debug, Clone)]
enum KeyKind {
    Rsa {
        modulus: Vec<u8>,
        exponent: Vec<u8>,
    },
    P256(Box<p256::ecdsa::VerifyingKey>),
    /// The kernel may use it, this audit cannot (another curve): every
    /// signature by it is reported as unverifiable.
    Unsupported(String),
}

/// The key of a DER certificate (already through `x509::intake`).
pub fn key_from_cert(der: &[u8], key_id_hex: &str, source: String) -> Result<Key, String> {
    let tail = key_id_hex
        .get(key_id_hex.len().saturating_sub(8)..)
        .unwrap_or_default();
    let key_id: [u8; 4] = crate::hex::decode(tail)
        .map_err(|_| format!("key id {key_id_hex} is not 4 bytes or more"))?;
    let parsed = cert::parse(der).map_err(|e| format!("parse certificate: {e}"))?;
    let spki = &parsed.public_key;
    let kind = match (spki.algorithm.as_str(), spki.named_curve.as_deref()) {
        (crate::x509::OID_RSA, _) => {
            let (modulus, exponent) =
                cert::rsa_public_key(spki.key).map_err(|e| format!("parse certificate: {e}"))?;
            KeyKind::Rsa {
                modulus: modulus.to_vec(),
                exponent: exponent.to_vec(),
            }
        }
        (crate::x509::OID_EC, Some(crate::x509::OID_P256)) => {
            let vk = p256::ecdsa::VerifyingKey::from_sec1_bytes(spki.key)
                .map_err(|_| "the P-256 point is not on the curve".to_string())?;
            KeyKind::P256(Box::new(vk))
        }
        (crate::x509::OID_EC, curve) => {
            KeyKind::Unsupported(format!("curve {}", curve.unwrap_or_default()))
        }
        _ => KeyKind::Unsupported("key type".into()),
    };
    Ok(Key {
        key_id,
        source,
        kind,
    })
}

/// Why a signature did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigFailure {
    /// No key with this id.
    UnknownKey([u8; 4]),
    /// The key exists but the signature does not verify with it.
    Invalid,
    /// Cannot be checked here (curve, size or hash not supported).
    Unsupported(String),
}

/// Verifies `sig` over `digest` (hashed with `algo`) with the key whose id
/// it names, as `asymmetric_verify()` does.
pub fn verify(keys: &[Key], sig: &SigV2, digest: &[u8]) -> Result<(), SigFailure> {
    let candidates = keys.iter().filter(|k| k.key_id == sig.key_id);
    let mut result = Err(SigFailure::UnknownKey(sig.key_id));
    // Two certificates may share an id; one that verifies is enough.
    for key in candidates {
        result = verify_with(key, sig, digest);
        if result.is_ok() {
            break;
        }
    }
    result
}

fn verify_with(key: &Key, sig: &SigV2, digest: &[u8]) -> Result<(), SigFailure> {
    match &key.kind {
        KeyKind::Rsa { modulus, exponent } => {
            let prefix = digest_info(sig.algo)
                .ok_or_else(|| SigFailure::Unsupported(format!("hash algorithm {}", sig.algo)))?;
            let em = rsa_public(modulus, exponent, sig.sig).ok_or_else(|| {
                SigFailure::Unsupported(format!("RSA key of {} bytes", modulus.len()))
            })?;
            // EM = 00 01 FF..FF 00 || DigestInfo || H, at least 8 bytes of FF.
            let t_len = prefix.len() + digest.len();
            let ps_len = em.len().checked_sub(t_len + 3).ok_or(SigFailure::Invalid)?;
            let mut expected = Vec::with_capacity(em.len());
            expected.extend_from_slice(&[0x00, 0x01]);
            expected.resize(2 + ps_len, 0xff);
            expected.push(0x00);
            expected.extend_from_slice(prefix);
            expected.extend_from_slice(digest);
            if ps_len >= 8 && em == expected {
                Ok(())
            } else {
                Err(SigFailure::Invalid)
            }
        }
        KeyKind::P256(vk) => {
            let s = p256::ecdsa::Signature::from_der(sig.sig).map_err(|_| SigFailure::Invalid)?;
            vk.verify_prehash(digest, &s)
                .map_err(|_| SigFailure::Invalid)
        }
        KeyKind::Unsupported(what) => {
            Err(SigFailure::Unsupported(format!("{what} of {}", key.source)))
        }
    }
}

/// `s^e mod n` as n.len() big-endian bytes; `None` for unsupported sizes,
/// an even modulus, or a signature not below the modulus.
fn rsa_public(modulus: &[u8], exponent: &[u8], sig: &[u8]) -> Option<Vec<u8>> {
    match modulus.len() {
        256 => power::<{ U2048::LIMBS }>(modulus, exponent, sig),
        384 => power::<{ U3072::LIMBS }>(modulus, exponent, sig),
        512 => power::<{ U4096::LIMBS }>(modulus, exponent, sig),
        _ => None,
    }
}

fn power<const LIMBS: usize>(modulus: &[u8], exponent: &[u8], sig: &[u8]) -> Option<Vec<u8>> {
    if modulus.len() != LIMBS * Limb::BYTES || sig.len() != modulus.len() || exponent.len() > 8 {
        return None;
    }
    let n_int = Uint::<LIMBS>::from_be_slice(modulus);
    let s = Uint::<LIMBS>::from_be_slice(sig);
    if s >= n_int {
        return None;
    }
    let n = Odd::new(n_int).into_option()?;
    let params = FixedMontyParams::new_vartime(n);
    let mut e = [0u8; 8];
    e.get_mut(8 - exponent.len()..)?.copy_from_slice(exponent);
    let e = crypto_bigint::U64::from_be_slice(&e);
    let m = FixedMontyForm::new(&s, &params).pow_vartime(&e).retrieve();
    Some(m.to_be_bytes().as_ref().to_vec())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn parses_values() {
        let mut h = vec![0x04, 4];
        h.extend([7u8; 32]);
        assert!(matches!(parse_ima(&h), ImaValue::Hash { algo: 4, .. }));
        h.pop();
        assert!(matches!(parse_ima(&h), ImaValue::Other(_)));
        let sig = [0x03, 2, 4, 1, 2, 3, 4, 0, 2, 0xaa, 0xbb];
        let ImaValue::Signature(s) = parse_ima(&sig) else {
            panic!()
        };
        assert_eq!(
            (s.algo, s.key_id, s.sig),
            (4, [1, 2, 3, 4], &[0xaa, 0xbb][..])
        );
        // Length in the header that does not match what follows.
        assert!(matches!(
            parse_ima(&[0x03, 2, 4, 1, 2, 3, 4, 0, 3, 0xaa, 0xbb]),
            ImaValue::Other(_)
        ));
        assert!(matches!(parse_ima(&[0x03, 3, 4]), ImaValue::Other(_)));
        assert!(matches!(parse_ima(&[]), ImaValue::Other(_)));
    }

    #[test]
    fn hashes_match_known_answers() {
        let mut h = Hasher::new(ALGO_SHA256).unwrap();
        h.update(b"abc");
        assert_eq!(
            crate::hex::encode(&h.finish()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut h = Hasher::new(ALGO_SHA1).unwrap();
        h.update(b"abc");
        assert_eq!(
            crate::hex::encode(&h.finish()),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert!(Hasher::new(17).is_none());
    }
}
