//! The salt of a session salted to an RSA storage key: a random salt of the
//! key's nameAlg digest size, encrypted to the key with RSAES-OAEP (TPM 2.0
//! Part 1, Annex B, RSA secret sharing / encryption of the salt; also
//! docs/kernel-interfaces.md "Session crypto"), hash = the key's nameAlg
//! (SHA-256 here), MGF1 with the same hash, and the label "SECRET" with its
//! terminating NUL. OAEP itself is RFC 8017 §7.1.1; the
//! modular exponentiation is crypto-bigint's constant-time Montgomery
//! arithmetic (already in the binary for P-256), so no RSA library is
//! pulled in for one public-key operation.
//!
//! The key comes from the TPM's ReadPublic answer and is hostile input:
//! only 2048- and 3072-bit moduli whose length and top bit agree with
//! keyBits, odd, with an odd public exponent of at least 3 (0 means 65537).

use super::crypto::{self, CryptoError};
use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{Limb, Odd, U64, U2048, U3072, Uint};
use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::{Zeroize, Zeroizing};

/// The OAEP label of a session salt: "SECRET" and its NUL.
pub const SALT_LABEL: &[u8] = b"SECRET\0";
/// What an exponent of 0 in a TPM public area stands for.
pub const DEFAULT_EXPONENT: u32 = 65537;
const HASH_LEN: usize = 32;

/// Why an RSA public key from the TPM is not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaKeyError {
    /// keyBits other than 2048 or 3072.
    KeyBits(u16),
    /// The modulus is not keyBits long (in bytes, top bit set).
    Modulus { bits: u16, len: usize },
    /// An even modulus is no RSA modulus.
    EvenModulus,
    /// An even exponent, or 1.
    Exponent(u32),
}

impl fmt::Display for RsaKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RsaKeyError::KeyBits(b) => write!(
                f,
                "the RSA salt key has {b} bits; only 2048- and 3072-bit keys are supported: seal the kmk under one of those or an ECC P-256 storage key"
            ),
            RsaKeyError::Modulus { bits, len } => write!(
                f,
                "the RSA salt key's modulus is {len} bytes or lacks its top bit, but keyBits is {bits}"
            ),
            RsaKeyError::EvenModulus => f.write_str("the RSA salt key's modulus is even"),
            RsaKeyError::Exponent(e) => write!(
                f,
                "the RSA salt key's public exponent {e} is not an odd number of at least 3"
            ),
        }
    }
}

impl std::error::Error for RsaKeyError {}

/// An RSA public key that passed the checks above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    modulus: Vec<u8>,
    exponent: u32,
}

impl RsaPublicKey {
    /// Checks the fields of a TPM RSA public area (keyBits, exponent as
    /// stored, with 0 for 65537, and the big-endian modulus).
    pub fn new(bits: u16, exponent: u32, modulus: &[u8]) -> Result<RsaPublicKey, RsaKeyError> {
        if bits != 2048 && bits != 3072 {
            return Err(RsaKeyError::KeyBits(bits));
        }
        let top_bit_set = modulus.first().is_some_and(|b| b & 0x80 != 0);
        if modulus.len() != usize::from(bits / 8) || !top_bit_set {
            return Err(RsaKeyError::Modulus {
                bits,
                len: modulus.len(),
            });
        }
        if modulus.last().is_none_or(|b| b & 1 == 0) {
            return Err(RsaKeyError::EvenModulus);
        }
        let exponent = if exponent == 0 {
            DEFAULT_EXPONENT
        } else {
            exponent
        };
        if exponent < 3 || exponent & 1 == 0 {
            return Err(RsaKeyError::Exponent(exponent));
        }
        Ok(RsaPublicKey {
            modulus: modulus.to_vec(),
            exponent,
        })
    }

    /// The modulus length in bytes, which is also the ciphertext's.
    pub fn len(&self) -> usize {
        self.modulus.len()
    }

    /// The effective public exponent (65537 where the TPM wrote 0).
    #[cfg(test)]
    pub fn exponent(&self) -> u32 {
        self.exponent
    }
}

/// A session salt and its encryption to the salt key (the
/// `encryptedSalt` of TPM2_StartAuthSession, without the TPM2B size).
pub struct RsaSalt {
    pub salt: Zeroizing<Vec<u8>>,
    pub encrypted: Vec<u8>,
}

impl fmt::Debug for RsaSalt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaSalt")
            .field("salt", &"<secret>")
            .field("encrypted", &self.encrypted.len())
            .finish()
    }
}

/// A fresh 32-byte salt (the SHA-256 digest size) from the kernel,
/// encrypted to `key` with a fresh OAEP seed.
pub fn rsa_salt(key: &RsaPublicKey) -> Result<RsaSalt, CryptoError> {
    let salt = Zeroizing::new(crypto::random_bytes(HASH_LEN)?);
    let mut seed = Zeroizing::new([0u8; HASH_LEN]);
    crate::random::fill(&mut *seed)?;
    let encrypted = oaep_encrypt(key, &salt, SALT_LABEL, &seed).ok_or(CryptoError::RsaEncrypt)?;
    Ok(RsaSalt { salt, encrypted })
}

/// RSAES-OAEP-ENCRYPT (RFC 8017 §7.1.1) with SHA-256 and MGF1-SHA-256 and
/// the given seed: a fresh random one from [`rsa_salt`], a fixed one in
/// the known-answer test. Never reuse a seed. `None` when the message is
/// too long for the key.
pub fn oaep_encrypt(
    key: &RsaPublicKey,
    message: &[u8],
    label: &[u8],
    seed: &[u8; HASH_LEN],
) -> Option<Vec<u8>> {
    let em = oaep_encode(key.len(), message, label, seed)?;
    match key.len() {
        256 => power::<{ U2048::LIMBS }>(&key.modulus, key.exponent, &em),
        384 => power::<{ U3072::LIMBS }>(&key.modulus, key.exponent, &em),
        _ => None,
    }
}

/// EME-OAEP encoding (RFC 8017 §7.1.1 step 2) into `k` octets:
/// `00 || maskedSeed || maskedDB`, DB = `lHash || PS || 01 || M`.
fn oaep_encode(
    k: usize,
    message: &[u8],
    label: &[u8],
    seed: &[u8; HASH_LEN],
) -> Option<Zeroizing<Vec<u8>>> {
    // mLen <= k - 2 hLen - 2
    let db_len = k.checked_sub(HASH_LEN + 1)?;
    let ps_len = db_len.checked_sub(HASH_LEN + 1 + message.len())?;
    let mut db = Zeroizing::new(Vec::with_capacity(db_len));
    db.extend_from_slice(&Sha256::digest(label));
    db.resize(HASH_LEN + ps_len, 0);
    db.push(0x01);
    db.extend_from_slice(message);
    mgf1_xor(seed, &mut db);
    let mut masked_seed = Zeroizing::new(*seed);
    mgf1_xor(&db, &mut *masked_seed);
    let mut em = Zeroizing::new(Vec::with_capacity(k));
    em.push(0x00);
    em.extend_from_slice(&*masked_seed);
    em.extend_from_slice(&db);
    Some(em)
}

/// `out ^= MGF1-SHA-256(seed, out.len())` (RFC 8017 §B.2.1).
fn mgf1_xor(seed: &[u8], out: &mut [u8]) {
    for (counter, chunk) in (0u32..).zip(out.chunks_mut(HASH_LEN)) {
        let mut mask = Sha256::new()
            .chain_update(seed)
            .chain_update(counter.to_be_bytes())
            .finalize();
        chunk.iter_mut().zip(mask.iter()).for_each(|(o, m)| *o ^= m);
        mask.as_mut_slice().zeroize();
    }
}

/// `x^e mod n` for a 2048-, 3072- or 4096-bit modulus `n`, as `n.len()`
/// big-endian octets (`sign-policy` verifies its RSA signatures with it).
pub(super) fn public_power(n: &[u8], e: u32, x: &[u8]) -> Option<Vec<u8>> {
    match n.len() {
        256 => power::<{ U2048::LIMBS }>(n, e, x),
        384 => power::<{ U3072::LIMBS }>(n, e, x),
        512 => power::<{ crypto_bigint::U4096::LIMBS }>(n, e, x),
        _ => None,
    }
}

/// `em^e mod n` as `n.len()` big-endian octets. The exponent is public and
/// handled in variable time; the base (the encoded salt) is not. `em` is
/// below `n` because it starts with a zero octet and `n` has its top bit set.
fn power<const LIMBS: usize>(modulus: &[u8], exponent: u32, em: &[u8]) -> Option<Vec<u8>> {
    if modulus.len() != LIMBS * Limb::BYTES || em.len() != modulus.len() {
        return None;
    }
    let n = Odd::new(Uint::<LIMBS>::from_be_slice(modulus)).into_option()?;
    let params = FixedMontyParams::new_vartime(n);
    let mut m = Uint::<LIMBS>::from_be_slice(em);
    let mut base = FixedMontyForm::new(&m, &params);
    m.zeroize();
    let c = base.pow_vartime(&U64::from_u32(exponent)).retrieve();
    base.zeroize();
    Some(c.to_be_bytes().as_ref().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::openssl;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // A key made once with `openssl genpkey -algorithm RSA -pkeyopt
    // rsa_keygen_bits:2048`; its private half is KAT_KEY below so the
    // answer can be checked again by anyone.
    const KAT_MODULUS: &str = "
        cb36fde737252c128b7c154033e1433f1df7f0db9f8d3e0bb789cc8004e84af8
        239f1a64f5520181b86ad259e3fa7358e14d31748abbbca9e99ea58a584d3a1f
        66939650f84234beedcea999246a57ee36139770d483a0fb7adb03e16f043a9f
        31da37de1366a62e26d201f612594888f6c894cc91e9f67f5644fdcb60d3de93
        94d637cb350470fd1213d433f7ba33030956fc1c6d37e20fc1f07c976d7a2980
        83a0fc64c0ec088e1186b2603315e5ddda7f1245b19d5c51698b652a6b6d9e39
        26102b50331155f364f05ddeba64c45c8bdb21c6b622995def42bb53e21fa747
        538b98ffe09a8a26cdff3d34f28a9953fcd50ad7f20151c8a41eba27ec79372d";

    fn kat_key() -> RsaPublicKey {
        RsaPublicKey::new(2048, 0, &hex(KAT_MODULUS)).unwrap()
    }

    const KAT_KEY: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvwIBADANBgkqhkiG9w0BAQEFAASCBKkwggSlAgEAAoIBAQDLNv3nNyUsEot8\n\
FUAz4UM/Hffw25+NPgu3icyABOhK+COfGmT1UgGBuGrSWeP6c1jhTTF0iru8qeme\n\
pYpYTTofZpOWUPhCNL7tzqmZJGpX7jYTl3DUg6D7etsD4W8EOp8x2jfeE2amLibS\n\
AfYSWUiI9siUzJHp9n9WRP3LYNPek5TWN8s1BHD9EhPUM/e6MwMJVvwcbTfiD8Hw\n\
fJdteimAg6D8ZMDsCI4RhrJgMxXl3dp/EkWxnVxRaYtlKmttnjkmECtQMxFV82Tw\n\
Xd66ZMRci9shxrYimV3vQrtT4h+nR1OLmP/gmoomzf89NPKKmVP81QrX8gFRyKQe\n\
uifseTctAgMBAAECggEAB2+4fGLT+Sgnkw+bBRr/8ToZRebfkJVd6+Y+xcuILaAl\n\
e4/FdIW++N6FCDQSZ+qbLMl8nxFpm9aS7kOMC72tvBLuoTBO2WthNkYbBjfjLVsR\n\
/wcKcbhsZm+BPsPb4ml7xGECLN4EYl3rfUFlnhfG0/5F6k4PI+Lpl4BYUj41mp42\n\
v9rxksVIUhwfSkjQv98o9THJ6SLVVHBViSGgO6i0MfqhzVUj+V+K0qy8ZwjBaDlG\n\
Y8zAtPYq4SlUHAldqS4xzfNjBB3YCAYjoMQDwFZCi3hbceCHTE8vL0oVxAuhwc4e\n\
la5rj8d573OI9y7NEYEWdBdtISUnDtPu5LFe/6SVkQKBgQDqQhZVuUlcMnITIXAw\n\
iPrqItvJV8ZfYzKCXTN8Xb1pDGssll10HdEh6CyGaPYAB0Ygg9K5PASJJEGq6pB/\n\
I4c2yeK6/C771JuX3yCr/T6Or16kd4GuRBoNiNskWWUQOfPWzkXbH2PDo1b1mZkB\n\
d8wwchWPRY7LxtFEUsBu5yYN8QKBgQDeE1KmKaIKNWb8MsRO5d3/FWwprR1+7z+r\n\
ZBZWJA1cA5ryTrYCDmUWlShrqdT9NrevMTgTajck2qxl3t0Y+9W8j3KjstjBsr9a\n\
imfQapTIbPQdQvhzFajPxpRPT/LLOVrPnwkXH6Ab/zYzAYrjniO9ZSIk97zu06Ix\n\
9pd4fgRw/QKBgQCBzzVJM29vY5TK/RCKFJ3V+JMKM1V9rh5jFvpcxCUdfQA2qOwI\n\
WC13OIzTvn3y7hTyF5pBgvyQckLhTzHbAfj/Z0f4jZ4Ldnjx43bbV22+63bqdD6s\n\
LpixP1EQB2l1YGe6dHtJPU+vLWgWmJKsuZGwlsdTqRvD19xGnAR+cCAqQQKBgQCS\n\
T5TCWOejZi+ltSTU/mlWaBzNEHtAaAxAtT5qHnKWzuFFB0qu7CD50efBlzD2axh1\n\
2i2hzPbr1w6CR2TP0wusoa3b4Dci1stvsYRYMgA4VGA47yiVWg3QZnrMDlZeQjls\n\
VNE+ZN2t1GU3EasZ79SIMZtfU8EscE6KMHb3Mb9nWQKBgQDCWIevJF2Z9XqMnqid\n\
bhIXCAr9jk4oRemSHVloCTk627rEANn1289GW9acv+aVOTC7wB51f/NG5v+8P8TB\n\
/cJXbz0le6qrPXSfKijqYQw3ZIziep4SWRImleS7LK2cFtsyqEotD01c+Bq8/LGS\n\
1y0wZSetK2IDEJyZu6ElEPCe2w==\n\
-----END PRIVATE KEY-----";

    // Seed 00..1f, salt 80..9f, label "SECRET\0". The ciphertext was
    // decrypted back to the salt with KAT_KEY by `openssl pkeyutl -decrypt
    // -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt
    // rsa_mgf1_md:sha256 -pkeyopt rsa_oaep_label:53454352455400` and by
    // Python's `cryptography` (OAEP, MGF1(SHA256), SHA256, label
    // b"SECRET\0"), which refuses it under the label without its NUL.
    const KAT_CIPHERTEXT: &str = "
        782b251a97b624daf278af6776089b4c868803227421d31e3ce322334d55659b
        8056d2f122dddfc13da101ef431d69d5c67399ae8bc978d4466fa9b79bd99aac
        ad5fef4dff19fb36741176149fd8d792f5c4d246326f7bc6f0a0dd0dfa558e10
        3aefe3e71afc9d6c32570c0d32417d809003387b6fab497f7b0b619fcf29a635
        9aec0047d30263c3cef00739cd11d218b66b402cb70c1e4ed256ee108829d924
        911ce60275ba40e28a7a274a55e68c490484cff73ad5d30ad27fdb512d08e66a
        ddbf6ac367f570d65fc251f74afc072414b7e0ecc003b8018d7aac455787068e
        733e2752f34a2c6f979925c07a91a59e0503e1738d20889456a4e08151f4277a";

    #[test]
    fn oaep_known_answer() {
        let seed: [u8; 32] = core::array::from_fn(|i| i as u8);
        let salt: Vec<u8> = (0x80..0xa0).collect();
        let ct = oaep_encrypt(&kat_key(), &salt, SALT_LABEL, &seed).unwrap();
        assert_eq!(ct, hex(KAT_CIPHERTEXT));
        // The label and the seed both matter.
        assert_ne!(
            oaep_encrypt(&kat_key(), &salt, b"SECRET", &seed),
            Some(ct.clone())
        );
        let mut other = seed;
        other[31] ^= 1;
        assert_ne!(
            oaep_encrypt(&kat_key(), &salt, SALT_LABEL, &other),
            Some(ct)
        );
    }

    /// Decrypts `ct` with openssl and the private key in `pem_path`.
    fn openssl_decrypt(dir: &std::path::Path, pem_path: &std::path::Path, ct: &[u8]) -> Vec<u8> {
        let ct_path = dir.join("ct");
        std::fs::write(&ct_path, ct).unwrap();
        openssl(&[
            "pkeyutl",
            "-decrypt",
            "-inkey",
            pem_path.to_str().unwrap(),
            "-in",
            ct_path.to_str().unwrap(),
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            "rsa_oaep_md:sha256",
            "-pkeyopt",
            "rsa_mgf1_md:sha256",
            "-pkeyopt",
            "rsa_oaep_label:53454352455400",
        ])
    }

    /// The modulus of the RSA key in `pem_path`, as openssl prints it.
    fn openssl_modulus(pem_path: &std::path::Path) -> Vec<u8> {
        let out = openssl(&[
            "rsa",
            "-noout",
            "-modulus",
            "-in",
            pem_path.to_str().unwrap(),
        ]);
        let text = String::from_utf8(out).unwrap();
        hex(text.trim().strip_prefix("Modulus=").unwrap())
    }

    // Fresh salts and seeds, decrypted by an independent implementation:
    // openssl, with the KAT key and with a 3072-bit key made here.
    #[test]
    fn openssl_decrypts_fresh_salts() {
        let dir = std::env::temp_dir().join(format!("il-oaep-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pem_2048 = dir.join("2048.pem");
        std::fs::write(&pem_2048, KAT_KEY).unwrap();
        let pem_3072 = dir.join("3072.pem");
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:3072",
            "-out",
            pem_3072.to_str().unwrap(),
        ]);
        for (bits, pem) in [(2048, &pem_2048), (3072, &pem_3072)] {
            let modulus = openssl_modulus(pem);
            assert_eq!(
                modulus,
                if bits == 2048 {
                    hex(KAT_MODULUS)
                } else {
                    modulus.clone()
                }
            );
            let key = RsaPublicKey::new(bits, 0, &modulus).unwrap();
            for _ in 0..3 {
                let salt = rsa_salt(&key).unwrap();
                assert_eq!(salt.encrypted.len(), usize::from(bits / 8));
                assert_eq!(openssl_decrypt(&dir, pem, &salt.encrypted), *salt.salt);
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hostile_keys_are_refused() {
        let n = hex(KAT_MODULUS);
        assert_eq!(kat_key().exponent(), 65537);
        assert_eq!(RsaPublicKey::new(2048, 3, &n).unwrap().exponent(), 3);
        for bits in [0, 1024, 2047, 4096] {
            assert_eq!(
                RsaPublicKey::new(bits, 0, &n),
                Err(RsaKeyError::KeyBits(bits))
            );
        }
        let modulus = |len| RsaKeyError::Modulus { bits: 2048, len };
        assert_eq!(RsaPublicKey::new(2048, 0, &n[1..]), Err(modulus(255)));
        assert_eq!(RsaPublicKey::new(2048, 0, &[]), Err(modulus(0)));
        assert_eq!(
            RsaPublicKey::new(2048, 0, &[&n[..], &[1]].concat()),
            Err(modulus(257))
        );
        assert_eq!(
            RsaPublicKey::new(3072, 0, &n),
            Err(RsaKeyError::Modulus {
                bits: 3072,
                len: 256
            })
        );
        let mut low = n.clone();
        low[0] &= 0x7f;
        assert_eq!(RsaPublicKey::new(2048, 0, &low), Err(modulus(256)));
        let mut even = n.clone();
        even[255] &= 0xfe;
        assert_eq!(
            RsaPublicKey::new(2048, 0, &even),
            Err(RsaKeyError::EvenModulus)
        );
        for e in [1, 2, 65536, 0x8000_0000] {
            assert_eq!(
                RsaPublicKey::new(2048, e, &n),
                Err(RsaKeyError::Exponent(e))
            );
        }
    }

    #[test]
    fn oaep_message_length_limit() {
        // mLen <= k - 2 hLen - 2 = 190 for a 2048-bit key.
        let key = kat_key();
        assert!(oaep_encrypt(&key, &[7; 190], SALT_LABEL, &[1; 32]).is_some());
        assert!(oaep_encrypt(&key, &[7; 191], SALT_LABEL, &[1; 32]).is_none());
        assert!(oaep_encode(65, &[], SALT_LABEL, &[1; 32]).is_none());
        assert_eq!(
            oaep_encode(66, &[], SALT_LABEL, &[1; 32]).map(|e| e.len()),
            Some(66)
        );
    }

    #[test]
    fn debug_hides_the_salt() {
        let salt = RsaSalt {
            salt: Zeroizing::new(vec![0xab; 32]),
            encrypted: vec![1; 256],
        };
        let shown = format!("{salt:?}");
        assert!(
            !shown.contains("171") && shown.contains("<secret>"),
            "{shown}"
        );
    }
}
