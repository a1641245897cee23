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
    Rsa(RsaKey),
    P256(Box<p256::ecdsa::VerifyingKey>),
    /// The kernel may use it, this audit cannot (another curve): every
    /// signature by it is reported as unverifiable.
    Unsupported(String),
}

/// The key of a DER certificate (already through `x509::intake`).
pub fn key_from_cert(der: &[u8], key_id_hex: &str, source: String) -> Result<Key, String> {
    let key_id: [u8; 4] = crate::hex::decode(crate::x509::short_key_id(key_id_hex))
        .map_err(|_| format!("key id {key_id_hex} is not 4 bytes or more"))?;
    let parsed = cert::parse(der).map_err(|e| format!("parse certificate: {e}"))?;
    let spki = &parsed.public_key;
    let kind = match (spki.algorithm.as_str(), spki.named_curve.as_deref()) {
        (crate::x509::OID_RSA, _) => {
            let (modulus, exponent) =
                cert::rsa_public_key(spki.key).map_err(|e| format!("parse certificate: {e}"))?;
            KeyKind::Rsa(RsaKey::new(modulus, exponent))
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
        KeyKind::Rsa(rsa) => {
            let prefix = digest_info(sig.algo)
                .ok_or_else(|| SigFailure::Unsupported(format!("hash algorithm {}", sig.algo)))?;
            let mut em = [0u8; MAX_RSA_BYTES];
            let em = rsa
                .public(sig.sig, &mut em)
                .ok_or_else(|| SigFailure::Unsupported(format!("RSA key of {} bytes", rsa.len)))?;
            if emsa_pkcs1_v15_matches(em, prefix, digest) {
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

/// EM = 00 01 FF..FF 00 || DigestInfo || H, with at least 8 bytes of FF
/// (RFC 8017 §9.2), compared in place.
fn emsa_pkcs1_v15_matches(em: &[u8], prefix: &[u8], digest: &[u8]) -> bool {
    let t_len = prefix.len() + digest.len();
    let Some(ps_len) = em.len().checked_sub(t_len + 3) else {
        return false;
    };
    let Some((head, rest)) = em.split_first_chunk::<2>() else {
        return false;
    };
    let (ps, rest) = rest.split_at(ps_len.min(rest.len()));
    let Some((&zero, t)) = rest.split_first() else {
        return false;
    };
    ps_len >= 8
        && *head == [0x00, 0x01]
        && ps.iter().all(|&b| b == 0xff)
        && zero == 0x00
        && t.get(..prefix.len()) == Some(prefix)
        && t.get(prefix.len()..) == Some(digest)
}

/// The largest modulus verified here (RSA-4096), in bytes.
const MAX_RSA_BYTES: usize = 512;

/// An RSA public key ready to verify with: the Montgomery parameters (a
/// division of 2^(2k) by the modulus) are computed once per key, not per
/// signature.
#[derive(Debug, Clone)]
struct RsaKey {
    /// The modulus length in bytes, for reports.
    len: usize,
    exponent: u64,
    /// `None` for other sizes, an even modulus or an exponent over 64
    /// bits: every signature by the key is unverifiable here.
    params: Option<RsaParams>,
}

#[derive(Debug, Clone)]
enum RsaParams {
    R2048(Box<FixedMontyParams<{ U2048::LIMBS }>>),
    R3072(Box<FixedMontyParams<{ U3072::LIMBS }>>),
    R4096(Box<FixedMontyParams<{ U4096::LIMBS }>>),
}

impl RsaKey {
    fn new(modulus: &[u8], exponent: &[u8]) -> RsaKey {
        let mut e = [0u8; 8];
        let exponent = match e.get_mut(8usize.saturating_sub(exponent.len())..) {
            Some(tail) if exponent.len() <= 8 => {
                tail.copy_from_slice(exponent);
                Some(u64::from_be_bytes(e))
            }
            _ => None,
        };
        let params = exponent.and_then(|_| match modulus.len() {
            256 => monty_params::<{ U2048::LIMBS }>(modulus).map(RsaParams::R2048),
            384 => monty_params::<{ U3072::LIMBS }>(modulus).map(RsaParams::R3072),
            512 => monty_params::<{ U4096::LIMBS }>(modulus).map(RsaParams::R4096),
            _ => None,
        });
        RsaKey {
            len: modulus.len(),
            exponent: exponent.unwrap_or(0),
            params,
        }
    }

    /// `s^e mod n` as the modulus' length of big-endian bytes in `out`;
    /// `None` when the key is unsupported or the signature is not below
    /// the modulus.
    fn public<'a>(&self, sig: &[u8], out: &'a mut [u8; MAX_RSA_BYTES]) -> Option<&'a [u8]> {
        match self.params.as_ref()? {
            RsaParams::R2048(p) => power(p, self.exponent, sig, out),
            RsaParams::R3072(p) => power(p, self.exponent, sig, out),
            RsaParams::R4096(p) => power(p, self.exponent, sig, out),
        }
    }
}

fn monty_params<const LIMBS: usize>(modulus: &[u8]) -> Option<Box<FixedMontyParams<LIMBS>>> {
    if modulus.len() != LIMBS * Limb::BYTES {
        return None;
    }
    let n = Odd::new(Uint::<LIMBS>::from_be_slice(modulus)).into_option()?;
    Some(Box::new(FixedMontyParams::new_vartime(n)))
}

/// Left-to-right square and multiply, variable time in the exponent and
/// the signature, both public: for e = 65537, 16 squarings and one
/// multiplication (crypto-bigint's `pow_vartime` first builds a table of
/// 15 powers for its 4-bit windows, more than the whole exponent costs).
fn power<'a, const LIMBS: usize>(
    params: &FixedMontyParams<LIMBS>,
    exponent: u64,
    sig: &[u8],
    out: &'a mut [u8; MAX_RSA_BYTES],
) -> Option<&'a [u8]> {
    if sig.len() != LIMBS * Limb::BYTES {
        return None;
    }
    let s = Uint::<LIMBS>::from_be_slice(sig);
    if s >= *params.modulus().as_ref() {
        return None;
    }
    let base = FixedMontyForm::new(&s, params);
    let mut z = FixedMontyForm::one(params);
    if exponent != 0 {
        z = base;
        for bit in (0..63 - exponent.leading_zeros()).rev() {
            z = z.square();
            if exponent >> bit & 1 == 1 {
                z = z.mul(&base);
            }
        }
    }
    let out = out.get_mut(..sig.len())?;
    out.copy_from_slice(z.retrieve().to_be_bytes().as_ref());
    Some(out)
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

    use crate::test_support::openssl;

    // Keys of each supported size (and e = 3) made by openssl, PKCS#1 v1.5
    // signatures made by openssl: they verify, and a changed digest, a
    // changed signature, a signature not below the modulus and another
    // key id do not.
    #[test]
    fn rsa_signatures_by_openssl() {
        let dir = std::env::temp_dir().join(format!("il-audit-rsa-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = |name: &str| dir.join(name).to_str().unwrap().to_owned();
        std::fs::write(p("data"), b"the file's content").unwrap();
        let digest = sha2::Sha256::digest(b"the file's content").to_vec();
        for (bits, e) in [
            (2048, "65537"),
            (2048, "3"),
            (3072, "65537"),
            (4096, "65537"),
        ] {
            let key = p(&format!("{bits}-{e}.pem"));
            let der = p(&format!("{bits}-{e}.der"));
            openssl(&[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                &format!("rsa_keygen_bits:{bits}"),
                "-pkeyopt",
                &format!("rsa_keygen_pubexp:{e}"),
                "-out",
                &key,
            ]);
            openssl(&[
                "req", "-x509", "-new", "-key", &key, "-subj", "/CN=t", "-days", "1", "-outform",
                "DER", "-out", &der,
            ]);
            let signature = openssl(&["dgst", "-sha256", "-sign", &key, &p("data")]);
            assert_eq!(signature.len(), bits / 8);
            let cert = std::fs::read(&der).unwrap();
            let keys = [key_from_cert(&cert, "0a0b0c0d", der.clone()).unwrap()];
            let sig = SigV2 {
                algo: ALGO_SHA256,
                key_id: [0x0a, 0x0b, 0x0c, 0x0d],
                sig: &signature,
            };
            assert_eq!(verify(&keys, &sig, &digest), Ok(()), "{bits} bits, e = {e}");
            let mut other = digest.clone();
            other[31] ^= 1;
            assert_eq!(verify(&keys, &sig, &other), Err(SigFailure::Invalid));
            let sha1 = SigV2 {
                algo: ALGO_SHA1,
                ..sig.clone()
            };
            assert_eq!(
                verify(&keys, &sha1, &digest[..20]),
                Err(SigFailure::Invalid)
            );
            let mut changed = signature.clone();
            changed[bits / 8 - 1] ^= 1;
            let bad = SigV2 {
                sig: &changed,
                ..sig.clone()
            };
            assert_eq!(verify(&keys, &bad, &digest), Err(SigFailure::Invalid));
            let high = vec![0xff; bits / 8];
            let high = SigV2 {
                sig: &high,
                ..sig.clone()
            };
            assert!(matches!(
                verify(&keys, &high, &digest),
                Err(SigFailure::Unsupported(_))
            ));
            let short = SigV2 {
                sig: &signature[1..],
                ..sig.clone()
            };
            assert!(matches!(
                verify(&keys, &short, &digest),
                Err(SigFailure::Unsupported(_))
            ));
            let stranger = SigV2 {
                key_id: [1, 2, 3, 4],
                ..sig.clone()
            };
            assert_eq!(
                verify(&keys, &stranger, &digest),
                Err(SigFailure::UnknownKey([1, 2, 3, 4]))
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    // The square and multiply agrees with crypto-bigint's windowed
    // exponentiation for exponents of every shape, 0 and 1 included.
    #[test]
    fn power_agrees_with_pow_vartime() {
        let modulus: Vec<u8> = (0..256u32).map(|i| (i * 151 + 7) as u8 | 0x81).collect();
        let params = monty_params::<{ U2048::LIMBS }>(&modulus).unwrap();
        let mut base = modulus.clone();
        base[0] = 0x12;
        for e in [0u64, 1, 2, 3, 17, 65537, 0x8000_0001, u64::MAX] {
            let mut out = [0u8; MAX_RSA_BYTES];
            let ours = power(&params, e, &base, &mut out).unwrap().to_vec();
            let s = U2048::from_be_slice(&base);
            let theirs = FixedMontyForm::new(&s, &params)
                .pow_vartime(&crypto_bigint::U64::from_u64(e))
                .retrieve();
            assert_eq!(ours, theirs.to_be_bytes().as_ref(), "e = {e}");
        }
        // Not below the modulus, another length, an even modulus.
        let mut out = [0u8; MAX_RSA_BYTES];
        assert!(power(&params, 3, &modulus, &mut out).is_none());
        assert!(power(&params, 3, &base[1..], &mut out).is_none());
        let mut even = modulus.clone();
        even[255] &= 0xfe;
        assert!(monty_params::<{ U2048::LIMBS }>(&even).is_none());
        assert!(monty_params::<{ U3072::LIMBS }>(&modulus).is_none());
        // An exponent over 64 bits or a size not supported: no parameters.
        assert!(RsaKey::new(&modulus, &[1; 9]).params.is_none());
        assert!(RsaKey::new(&modulus[1..], &[1, 0, 1]).params.is_none());
        assert_eq!(RsaKey::new(&modulus, &[1, 0, 1]).exponent, 65537);
    }

    #[test]
    fn pkcs1_v15_encoding() {
        let prefix = digest_info(ALGO_SHA256).unwrap();
        let digest = [7u8; 32];
        let mut em = vec![0x00, 0x01];
        em.resize(256 - 32 - prefix.len() - 1, 0xff);
        em.push(0);
        em.extend_from_slice(prefix);
        em.extend_from_slice(&digest);
        assert!(emsa_pkcs1_v15_matches(&em, prefix, &digest));
        for i in [0, 1, 2, 200, 204, 205, 255] {
            let mut bad = em.clone();
            bad[i] ^= 0x40;
            assert!(!emsa_pkcs1_v15_matches(&bad, prefix, &digest), "byte {i}");
        }
        // At least 8 bytes of padding.
        let short = [&[0u8, 1][..], &[0xff; 7], &[0], prefix, &digest].concat();
        assert!(!emsa_pkcs1_v15_matches(&short, prefix, &digest));
        let eight = [&[0u8, 1][..], &[0xff; 8], &[0], prefix, &digest].concat();
        assert!(emsa_pkcs1_v15_matches(&eight, prefix, &digest));
        assert!(!emsa_pkcs1_v15_matches(&em[..40], prefix, &digest));
        assert!(!emsa_pkcs1_v15_matches(&[], prefix, &digest));
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
