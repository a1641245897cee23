//! Public areas (TPMT_PUBLIC): the parts we read (type, nameAlg,
//! attributes, authPolicy, an ECC key's point), the object Name, and the
//! two templates we create: the storage root key and a sealed-data object.

use super::constants::{
    ALG_AES, ALG_CFB, ALG_ECC, ALG_ECDAA, ALG_KEYEDHASH, ALG_NULL, ALG_RSA, ALG_RSAES, ALG_SHA256,
    ALG_XOR, ECC_NIST_P256,
};
use super::wire::{Reader, Truncated, Writer};
use sha2::{Digest, Sha256};

pub const ATTR_FIXED_TPM: u32 = 0x2;
pub const ATTR_FIXED_PARENT: u32 = 0x10;
pub const ATTR_SENSITIVE_DATA_ORIGIN: u32 = 0x20;
pub const ATTR_USER_WITH_AUTH: u32 = 0x40;
pub const ATTR_NO_DA: u32 = 0x400;
pub const ATTR_RESTRICTED: u32 = 0x10000;
pub const ATTR_DECRYPT: u32 = 0x20000;
pub const ATTR_SIGN: u32 = 0x40000;

/// The standard storage root key attributes (TCG provisioning guidance).
pub const SRK_ATTRIBUTES: u32 = 0x0003_0472;
/// A sealed kmk: fixedTPM | fixedParent | noDA, authorised by policy only.
pub const SEALED_ATTRIBUTES: u32 = ATTR_FIXED_TPM | ATTR_FIXED_PARENT | ATTR_NO_DA;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyDetail {
    Ecc {
        curve: u16,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    Rsa {
        bits: u16,
        exponent: u32,
        modulus: Vec<u8>,
    },
    KeyedHash,
}

/// What we need to know of a public area, and its exact bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Public {
    pub object_type: u16,
    pub name_alg: u16,
    pub attributes: u32,
    pub auth_policy: Vec<u8>,
    pub detail: KeyDetail,
    /// The marshalled TPMT_PUBLIC, as hashed into the Name.
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicError {
    Truncated(Truncated),
    Unsupported(&'static str, u32),
    Trailing(usize),
}

impl std::fmt::Display for PublicError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublicError::Truncated(t) => write!(f, "public area {t}"),
            PublicError::Unsupported(what, v) => {
                write!(f, "public area has unsupported {what} {v:#x}")
            }
            PublicError::Trailing(n) => write!(f, "public area has {n} trailing bytes"),
        }
    }
}

impl From<Truncated> for PublicError {
    fn from(t: Truncated) -> Self {
        PublicError::Truncated(t)
    }
}

fn symmetric(r: &mut Reader) -> Result<(), PublicError> {
    let alg = r.u16()?;
    if alg != ALG_NULL {
        r.u16()?; // key bits
        r.u16()?; // mode
    }
    Ok(())
}

/// A TPMT_*_SCHEME: the algorithm, then its details. Most carry a hash;
/// RSAES carries nothing, ECDAA a hash and a count, XOR a hash and a KDF.
fn scheme(r: &mut Reader) -> Result<(), PublicError> {
    match r.u16()? {
        ALG_NULL | ALG_RSAES => {}
        ALG_ECDAA | ALG_XOR => {
            r.u16()?;
            r.u16()?;
        }
        _ => {
            r.u16()?;
        }
    }
    Ok(())
}

impl Public {
    /// Parses a TPMT_PUBLIC that must fill `bytes` exactly.
    pub fn parse(bytes: &[u8]) -> Result<Public, PublicError> {
        let mut r = Reader::new(bytes);
        let object_type = r.u16()?;
        let name_alg = r.u16()?;
        if name_alg != ALG_SHA256 {
            return Err(PublicError::Unsupported("nameAlg", u32::from(name_alg)));
        }
        let attributes = r.u32()?;
        let auth_policy = r.tpm2b()?.to_vec();
        let detail = match object_type {
            ALG_ECC => {
                symmetric(&mut r)?;
                scheme(&mut r)?;
                let curve = r.u16()?;
                scheme(&mut r)?; // kdf
                let x = r.tpm2b()?.to_vec();
                let y = r.tpm2b()?.to_vec();
                KeyDetail::Ecc { curve, x, y }
            }
            ALG_RSA => {
                symmetric(&mut r)?;
                scheme(&mut r)?;
                let bits = r.u16()?;
                let exponent = r.u32()?;
                let modulus = r.tpm2b()?.to_vec();
                KeyDetail::Rsa {
                    bits,
                    exponent,
                    modulus,
                }
            }
            ALG_KEYEDHASH => {
                scheme(&mut r)?;
                r.tpm2b()?; // unique
                KeyDetail::KeyedHash
            }
            t => return Err(PublicError::Unsupported("object type", u32::from(t))),
        };
        if r.remaining() != 0 {
            return Err(PublicError::Trailing(r.remaining()));
        }
        Ok(Public {
            object_type,
            name_alg,
            attributes,
            auth_policy,
            detail,
            bytes: bytes.to_vec(),
        })
    }

    /// Parses a TPM2B_PUBLIC (size prefix included).
    pub fn parse_2b(bytes: &[u8]) -> Result<Public, PublicError> {
        let mut r = Reader::new(bytes);
        let inner = r.tpm2b()?;
        if r.remaining() != 0 {
            return Err(PublicError::Trailing(r.remaining()));
        }
        Public::parse(inner)
    }

    /// The object's Name: nameAlg || SHA-256(TPMT_PUBLIC).
    pub fn name(&self) -> Vec<u8> {
        let mut n = ALG_SHA256.to_be_bytes().to_vec();
        n.extend_from_slice(&Sha256::digest(&self.bytes));
        n
    }
}

/// The TCG storage root key template, ECC P-256 (the "H" flavour: empty
/// unique, as the kernel and the TSS2 key-file draft use).
pub fn srk_ecc_template() -> Vec<u8> {
    let mut w = Writer::new();
    w.u16(ALG_ECC)
        .u16(ALG_SHA256)
        .u32(SRK_ATTRIBUTES)
        .tpm2b(&[]);
    w.u16(ALG_AES).u16(128).u16(ALG_CFB); // symmetric
    w.u16(ALG_NULL); // scheme
    w.u16(ECC_NIST_P256);
    w.u16(ALG_NULL); // kdf
    w.tpm2b(&[]).tpm2b(&[]); // unique x, y
    w.into_vec()
}

/// A sealed-data object bound to `policy` (a SHA-256 policy digest).
pub fn sealed_template(policy: &[u8; 32]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u16(ALG_KEYEDHASH)
        .u16(ALG_SHA256)
        .u32(SEALED_ATTRIBUTES)
        .tpm2b(policy);
    w.u16(ALG_NULL); // scheme
    w.tpm2b(&[]); // unique
    w.into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srk_template_matches_the_reference_bytes() {
        // kernel-interfaces §6: "Marshalled ECC H template".
        let want = "0023000b00030472000000060080004300100003001000000000";
        let got: String = srk_ecc_template()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(got, want);
        let p = Public::parse(&srk_ecc_template()).unwrap();
        assert_eq!(p.attributes, SRK_ATTRIBUTES);
        assert!(matches!(
            p.detail,
            KeyDetail::Ecc {
                curve: ECC_NIST_P256,
                ..
            }
        ));
    }

    #[test]
    fn sealed_template_parses_back() {
        let p = Public::parse(&sealed_template(&[7; 32])).unwrap();
        assert_eq!((p.object_type, p.attributes), (ALG_KEYEDHASH, 0x412));
        assert_eq!(p.auth_policy, vec![7; 32]);
        assert_eq!(p.name().len(), 34);
    }

    fn rsa_public(scheme: &[u8]) -> Vec<u8> {
        let mut w = Writer::new();
        w.u16(ALG_RSA)
            .u16(ALG_SHA256)
            .u32(SRK_ATTRIBUTES)
            .tpm2b(&[]);
        w.u16(ALG_AES).u16(128).u16(ALG_CFB);
        w.bytes(scheme);
        w.u16(2048).u32(0).tpm2b(&[0xc5; 256]);
        w.into_vec()
    }

    #[test]
    fn rsa_public_areas_parse() {
        // NULL (a storage key), RSAES (no details), OAEP (a hash).
        for scheme in [&[0x00, 0x10][..], &[0x00, 0x15], &[0x00, 0x17, 0x00, 0x0b]] {
            let p = Public::parse(&rsa_public(scheme)).unwrap();
            assert_eq!(
                p.detail,
                KeyDetail::Rsa {
                    bits: 2048,
                    exponent: 0,
                    modulus: vec![0xc5; 256]
                },
                "scheme {scheme:02x?}"
            );
        }
    }

    #[test]
    fn ecc_scheme_details_are_skipped() {
        // ECDAA carries a hash and a count; the point still parses.
        let mut w = Writer::new();
        w.u16(ALG_ECC).u16(ALG_SHA256).u32(ATTR_SIGN).tpm2b(&[]);
        w.u16(ALG_NULL); // symmetric
        w.u16(ALG_ECDAA).u16(ALG_SHA256).u16(1);
        w.u16(ECC_NIST_P256).u16(ALG_NULL);
        w.tpm2b(&[1; 32]).tpm2b(&[2; 32]);
        let p = Public::parse(w.as_slice()).unwrap();
        assert!(matches!(p.detail, KeyDetail::Ecc { ref x, .. } if x == &[1; 32]));
    }

    #[test]
    fn hostile_public_areas_are_errors() {
        let t = sealed_template(&[7; 32]);
        for n in 0..t.len() {
            assert!(Public::parse(&t[..n]).is_err(), "prefix {n}");
        }
        let mut long = t.clone();
        long.push(0);
        assert_eq!(Public::parse(&long), Err(PublicError::Trailing(1)));
    }
}
