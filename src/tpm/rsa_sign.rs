//! RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017 §8.2.1, EMSA-PKCS1-v1_5 §9.2)
//! for `sign-policy`: systemd-measure's policy keys are usually RSA-2048.
//! Only `integrity-admin` signs, so none of this is in the initramfs's
//! binary.
//!
//! The private operation is the CRT (RFC 8017 §5.1.2, 2.b) with
//! crypto-bigint's constant-time Montgomery `pow` over the whole width of
//! dP and dQ, and constant-time reductions. A CRT computed wrong (a fault,
//! or a key file whose CRT values do not belong to its modulus) gives a
//! signature that reveals a factor of n, so every signature is verified
//! with the public key before it leaves here.
//!
//! The key file is hostile input: two-prime keys of 2048, 3072 or 4096
//! bits only, odd primes whose product is the modulus, an odd public
//! exponent of at least 3 and at most 32 bits.

use super::rsa::public_power;
use crate::der::{self, Der};
use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{Limb, NonZero, Odd, U2048, U3072, U4096, Uint};
use std::fmt;
use zeroize::{Zeroize, Zeroizing};

/// DigestInfo of SHA-256 before the digest (RFC 8017 §9.2, note 1).
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
/// rsaEncryption, 1.2.840.113549.1.1.1.
const OID_RSA: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// A two-prime RSA private key: the big-endian modulus and public exponent,
/// and the CRT values (each left-padded to the modulus length).
pub struct RsaPrivateKey {
    n: Vec<u8>,
    e: u32,
    p: Zeroizing<Vec<u8>>,
    q: Zeroizing<Vec<u8>>,
    dp: Zeroizing<Vec<u8>>,
    dq: Zeroizing<Vec<u8>>,
    qinv: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for RsaPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RsaPrivateKey({} bits, <secret>)", self.n.len() * 8)
    }
}

/// A positive INTEGER's magnitude without leading zeros; `None` for a
/// negative one.
fn magnitude(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        return None;
    }
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(start..)
}

/// `bytes` left-padded with zeros to `len`, when it fits.
fn padded(bytes: &[u8], len: usize) -> Option<Zeroizing<Vec<u8>>> {
    let pad = len.checked_sub(bytes.len())?;
    let mut v = Zeroizing::new(vec![0u8; len]);
    v.get_mut(pad..)?.copy_from_slice(bytes);
    Some(v)
}

impl RsaPrivateKey {
    /// A PKCS#1 RSAPrivateKey (`-----BEGIN RSA PRIVATE KEY-----`, or the
    /// OCTET STRING inside a PKCS#8 PrivateKeyInfo).
    pub fn from_pkcs1(der_bytes: &[u8]) -> Result<RsaPrivateKey, String> {
        let fields = parse_pkcs1(der_bytes).map_err(|e| format!("not a PKCS#1 RSA key: {e}"))?;
        let [version, n, e, _d, p, q, dp, dq, qinv] = fields;
        if version != [0] {
            return Err(
                "a multi-prime RSA key (version 1): only two-prime keys are supported".into(),
            );
        }
        let bad = |what: &str| format!("the RSA key's {what} is negative or malformed");
        let n = magnitude(n).ok_or_else(|| bad("modulus"))?;
        let k = n.len();
        if !matches!(k, 256 | 384 | 512) {
            return Err(format!(
                "an RSA key of {} bits; 2048, 3072 or 4096 are supported",
                n.first()
                    .map_or(0, |b| (k - 1) * 8 + (8 - b.leading_zeros() as usize))
            ));
        }
        if n.last().is_none_or(|b| b & 1 == 0) {
            return Err("the RSA key's modulus is even".into());
        }
        let e = magnitude(e).ok_or_else(|| bad("public exponent"))?;
        let e = (e.len() <= 4)
            .then(|| e.iter().fold(0u32, |acc, b| acc << 8 | u32::from(*b)))
            .filter(|e| *e >= 3 && e % 2 == 1)
            .ok_or("the RSA key's public exponent is not an odd number of at least 3 and 32 bits at most")?;
        let mut secret = Vec::new();
        for (what, bytes) in [
            ("prime p", p),
            ("prime q", q),
            ("exponent dP", dp),
            ("exponent dQ", dq),
            ("coefficient qInv", qinv),
        ] {
            let v = magnitude(bytes)
                .and_then(|m| padded(m, k))
                .ok_or_else(|| bad(what))?;
            secret.push(v);
        }
        let [p, q, dp, dq, qinv]: [Zeroizing<Vec<u8>>; 5] = secret
            .try_into()
            .map_err(|_| "the RSA key's CRT values".to_string())?;
        let key = RsaPrivateKey {
            n: n.to_vec(),
            e,
            p,
            q,
            dp,
            dq,
            qinv,
        };
        let whole = match k {
            256 => key.check::<{ U2048::LIMBS }>(),
            384 => key.check::<{ U3072::LIMBS }>(),
            _ => key.check::<{ U4096::LIMBS }>(),
        };
        if !whole {
            return Err("the RSA key's primes are not odd or their product is not its modulus: the key file is damaged".into());
        }
        Ok(key)
    }

    /// p and q odd and p * q = n (public: n is).
    fn check<const L: usize>(&self) -> bool {
        let (Some(mut p), Some(mut q)) = (uint::<L>(&self.p), uint::<L>(&self.q)) else {
            return false;
        };
        let odd = p.is_odd().into() && bool::from(q.is_odd());
        let (lo, hi) = p.widening_mul(&q);
        let ok = odd && hi == Uint::<L>::ZERO && uint::<L>(&self.n) == Some(lo);
        p.zeroize();
        q.zeroize();
        ok
    }

    /// The modulus, big-endian.
    #[cfg(test)]
    fn modulus(&self) -> &[u8] {
        &self.n
    }

    /// The DER SubjectPublicKeyInfo, as `openssl rsa -pubout` writes it.
    pub fn spki(&self) -> Vec<u8> {
        let mut key = der_integer(&self.n);
        key.extend(der_integer(&self.e.to_be_bytes()));
        let key = tlv(der::SEQUENCE, &key);
        let mut alg = tlv(der::OBJECT_ID, &OID_RSA);
        alg.extend([0x05, 0x00]);
        let mut body = tlv(der::SEQUENCE, &alg);
        let mut bits = vec![0u8];
        bits.extend(key);
        body.extend(tlv(der::BIT_STRING, &bits));
        tlv(der::SEQUENCE, &body)
    }

    /// The RSASSA-PKCS1-v1_5 signature of a SHA-256 `digest`, verified
    /// with the public key before it is returned.
    pub fn sign_sha256(&self, digest: &[u8; 32]) -> Result<Vec<u8>, String> {
        let em = emsa_pkcs1_v15(self.n.len(), digest);
        let sig = match self.n.len() {
            256 => self.crt::<{ U2048::LIMBS }>(&em),
            384 => self.crt::<{ U3072::LIMBS }>(&em),
            512 => self.crt::<{ U4096::LIMBS }>(&em),
            _ => None,
        }
        .ok_or("the RSA key's CRT values are unusable")?;
        verify(&self.n, self.e, &sig, &em)?;
        Ok(sig)
    }

    /// `em^d mod n` by the CRT: m1 = c^dP mod p, m2 = c^dQ mod q,
    /// h = qInv (m1 - m2) mod p, m = m2 + h q.
    fn crt<const L: usize>(&self, em: &[u8]) -> Option<Vec<u8>> {
        let mut c = uint::<L>(em)?;
        let p = Odd::new(uint::<L>(&self.p)?).into_option()?;
        let q = Odd::new(uint::<L>(&self.q)?).into_option()?;
        let mut dp = uint::<L>(&self.dp)?;
        let mut dq = uint::<L>(&self.dq)?;
        let mut qinv = uint::<L>(&self.qinv)?;
        let (p_params, q_params) = (FixedMontyParams::new(p), FixedMontyParams::new(q));
        let (p_nz, q_nz): (&NonZero<Uint<L>>, &NonZero<Uint<L>>) = (p.as_nz_ref(), q.as_nz_ref());
        let mut m1 = FixedMontyForm::new(&c.rem(p_nz), &p_params).pow(&dp);
        let mut m2 = FixedMontyForm::new(&c.rem(q_nz), &q_params)
            .pow(&dq)
            .retrieve();
        let mut m2_p = FixedMontyForm::new(&m2.rem(p_nz), &p_params);
        let mut qinv_p = FixedMontyForm::new(&qinv.rem(p_nz), &p_params);
        let mut h = m1.sub(&m2_p).mul(&qinv_p).retrieve();
        // h < p, so h q + m2 < n: no overflow.
        let mut m = h.wrapping_mul(q.as_ref()).wrapping_add(&m2);
        let out = m.to_be_bytes().as_ref().to_vec();
        for v in [&mut c, &mut dp, &mut dq, &mut qinv, &mut m2, &mut h, &mut m] {
            v.zeroize();
        }
        m1.zeroize();
        m2_p.zeroize();
        qinv_p.zeroize();
        Some(out)
    }
}

/// Checks an RSASSA-PKCS1-v1_5 signature: `sig^e mod n` is `em`.
fn verify(n: &[u8], e: u32, sig: &[u8], em: &[u8]) -> Result<(), String> {
    match public_power(n, e, sig) {
        Some(back) if back == em => Ok(()),
        _ => Err("the RSA signature made does not verify with the key's public half (a fault while signing, or a damaged key file); nothing was written".into()),
    }
}

/// A `Uint<L>` from at most `L` limbs of big-endian bytes.
fn uint<const L: usize>(bytes: &[u8]) -> Option<Uint<L>> {
    let buf = padded(bytes, L * Limb::BYTES)?;
    Some(Uint::<L>::from_be_slice(&buf))
}

/// EMSA-PKCS1-v1_5 of a SHA-256 digest into `k` octets:
/// `00 01 FF..FF 00 DigestInfo digest`.
fn emsa_pkcs1_v15(k: usize, digest: &[u8; 32]) -> Vec<u8> {
    let t = SHA256_DIGEST_INFO.len() + digest.len();
    let mut em = vec![0x00, 0x01];
    em.resize(k.saturating_sub(t + 1), 0xff);
    em.push(0x00);
    em.extend_from_slice(&SHA256_DIGEST_INFO);
    em.extend_from_slice(digest);
    em
}

/// One DER element (lengths up to 64 KiB, all a key here needs).
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    let len = content.len();
    if len < 0x80 {
        v.push(len as u8);
    } else if len < 0x100 {
        v.extend([0x81, len as u8]);
    } else {
        v.push(0x82);
        v.extend((len as u16).to_be_bytes());
    }
    v.extend_from_slice(content);
    v
}

/// A positive INTEGER of big-endian `bytes`.
fn der_integer(bytes: &[u8]) -> Vec<u8> {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let mut content = Vec::new();
    match bytes.get(start..) {
        Some(m) if !m.is_empty() => {
            if m.first().is_some_and(|b| b & 0x80 != 0) {
                content.push(0);
            }
            content.extend_from_slice(m);
        }
        _ => content.push(0),
    }
    tlv(der::INTEGER, &content)
}

/// The nine INTEGERs of a two-prime RSAPrivateKey, as encoded.
fn parse_pkcs1(bytes: &[u8]) -> Result<[&[u8]; 9], der::DerError> {
    let mut outer = Der::new(bytes, 0);
    let mut seq = outer.expect(der::SEQUENCE, "RSAPrivateKey")?;
    outer.finish("RSAPrivateKey")?;
    let names = [
        "the version",
        "the modulus",
        "the public exponent",
        "the private exponent",
        "prime p",
        "prime q",
        "exponent dP",
        "exponent dQ",
        "coefficient qInv",
    ];
    let mut fields: [&[u8]; 9] = [&[]; 9];
    for (field, what) in fields.iter_mut().zip(names) {
        *field = seq.integer(what)?;
    }
    // A two-prime key has no otherPrimeInfos.
    seq.finish("RSAPrivateKey")?;
    Ok(fields)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    use crate::test_support::openssl;

    fn pkcs1_der(pem_path: &str) -> Vec<u8> {
        openssl(&["rsa", "-in", pem_path, "-traditional", "-outform", "DER"])
    }

    // Fresh keys of each size: openssl verifies our signatures, and our
    // SubjectPublicKeyInfo is openssl's byte for byte.
    #[test]
    fn openssl_verifies_the_signatures() {
        let dir = std::env::temp_dir().join(format!("il-rsa-sign-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = |n: &str| dir.join(n).display().to_string();
        for bits in [2048, 3072, 4096] {
            let key = path(&format!("{bits}.pem"));
            openssl(&[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                &format!("rsa_keygen_bits:{bits}"),
                "-out",
                &key,
            ]);
            let k = RsaPrivateKey::from_pkcs1(&pkcs1_der(&key)).unwrap();
            assert_eq!(k.modulus().len() * 8, bits);
            let spki = openssl(&["pkey", "-in", &key, "-pubout", "-outform", "DER"]);
            assert_eq!(k.spki(), spki, "{bits}: SubjectPublicKeyInfo");
            std::fs::write(path("pub.der"), &spki).unwrap();
            for round in 0u8..3 {
                let message = [round; 40];
                std::fs::write(path("msg"), message).unwrap();
                let digest: [u8; 32] = sha2::Sha256::digest(message).into();
                let sig = k.sign_sha256(&digest).unwrap();
                assert_eq!(sig.len() * 8, bits);
                std::fs::write(path("sig"), &sig).unwrap();
                openssl(&[
                    "dgst",
                    "-sha256",
                    "-verify",
                    &path("pub.der"),
                    "-keyform",
                    "DER",
                    "-signature",
                    &path("sig"),
                    &path("msg"),
                ]);
                // PKCS#1 v1.5 is deterministic: openssl's own is the same.
                let theirs = openssl(&["dgst", "-sha256", "-sign", &key, &path("msg")]);
                assert_eq!(sig, theirs, "{bits}: round {round}");
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A key whose CRT value was changed: refused at signing, no signature
    /// out (it would give away a factor of n).
    #[test]
    fn a_wrong_crt_value_never_yields_a_signature() {
        let dir = std::env::temp_dir().join(format!("il-rsa-fault-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("k.pem").display().to_string();
        openssl(&["genrsa", "-out", &key, "2048"]);
        let good = RsaPrivateKey::from_pkcs1(&pkcs1_der(&key)).unwrap();
        let digest = [7u8; 32];
        assert!(good.sign_sha256(&digest).is_ok());
        for field in 0..3 {
            let mut bad = RsaPrivateKey::from_pkcs1(&pkcs1_der(&key)).unwrap();
            let v = match field {
                0 => &mut bad.dp,
                1 => &mut bad.dq,
                _ => &mut bad.qinv,
            };
            let last = v.len() - 1;
            v[last] ^= 2;
            let e = bad.sign_sha256(&digest).unwrap_err();
            assert!(e.contains("does not verify"), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hostile_keys_are_refused() {
        let dir = std::env::temp_dir().join(format!("il-rsa-hostile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("k.pem").display().to_string();
        openssl(&["genrsa", "-out", &key, "2048"]);
        let der_bytes = pkcs1_der(&key);
        let fields = parse_pkcs1(&der_bytes).unwrap();
        let build = |f: &[Vec<u8>]| {
            let body: Vec<u8> = f.iter().flat_map(|i| tlv(der::INTEGER, i)).collect();
            tlv(der::SEQUENCE, &body)
        };
        let base: Vec<Vec<u8>> = fields.iter().map(|f| f.to_vec()).collect();
        assert!(RsaPrivateKey::from_pkcs1(&build(&base)).is_ok());
        let with = |i: usize, v: Vec<u8>| {
            let mut f = base.clone();
            f[i] = v;
            RsaPrivateKey::from_pkcs1(&build(&f)).unwrap_err()
        };
        assert!(with(0, vec![1]).contains("multi-prime"));
        assert!(with(1, vec![0x7f; 128]).contains("1023 bits"));
        assert!(with(1, vec![0x80; 256]).contains("negative"));
        assert!(with(2, vec![2]).contains("public exponent"));
        assert!(with(2, vec![1]).contains("public exponent"));
        assert!(with(2, vec![1, 0, 0, 0, 1]).contains("public exponent"));
        let mut other_p = base[4].clone();
        *other_p.last_mut().unwrap() ^= 2;
        assert!(with(4, other_p).contains("product is not its modulus"));
        assert!(with(4, vec![0x7f; 300]).contains("prime p"));
        let mut even_n = base[1].clone();
        *even_n.last_mut().unwrap() &= 0xfe;
        assert!(with(1, even_n).contains("even"));
        // Not DER, truncated, stray bytes: errors, never panics.
        assert!(RsaPrivateKey::from_pkcs1(b"").is_err());
        assert!(RsaPrivateKey::from_pkcs1(&der_bytes[..der_bytes.len() - 1]).is_err());
        let mut long = der_bytes.clone();
        long.push(0);
        assert!(RsaPrivateKey::from_pkcs1(&long).is_err());
        let mut f = base.clone();
        f.push(vec![1]);
        assert!(RsaPrivateKey::from_pkcs1(&build(&f)).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn emsa_is_rfc_8017s_layout() {
        let em = emsa_pkcs1_v15(256, &[0xab; 32]);
        assert_eq!(em.len(), 256);
        assert_eq!(&em[..2], &[0, 1]);
        assert!(em[2..256 - 52].iter().all(|b| *b == 0xff));
        assert_eq!(em[256 - 52], 0);
        assert_eq!(&em[256 - 51..256 - 32], &SHA256_DIGEST_INFO);
        assert_eq!(&em[256 - 32..], &[0xab; 32]);
    }

    use sha2::Digest;
}
