//! Certificate intake: everything we check before a certificate is handed to
//! the kernel with `add_key("asymmetric", NULL, der, ...)` (kernel-interfaces
//! §3, pitfall 6). The kernel takes exactly one DER certificate per call, so
//! PEM is decoded here, and what the kernel would refuse, or would accept but
//! never use to verify a signature, is refused here with words saying why.
//!
//! Not checked here: the certificate's own signature and its chain (the
//! kernel does that against the builtin/secondary/machine keyrings), validity
//! dates (the kernel ignores them; we only warn), duplicate or unknown
//! critical extensions (left to the kernel).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};
pub mod cert;
mod der;
mod pem;
mod refusal;
/// The last 8 hex digits of a key id: how the kernel's key description
/// ends (`X509.rsa c164e733`) and the 4 bytes IMA/EVM signatures carry.
pub fn short_key_id(key_id_hex: &str) -> &str {
    key_id_hex
        .get(key_id_hex.len().saturating_sub(8)..)
        .unwrap_or(key_id_hex)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests;

pub use der::DerError;
pub use pem::PemError;
pub use refusal::describe_kernel_refusal;

/// Largest input `intake` reads. Real IMA/EVM certificates are 1-2 KiB; the
/// kernel's own limit (1 MiB) is far beyond anything sane.
pub const MAX_INPUT_LEN: usize = 64 * 1024;

const OID_SKI: &str = "2.5.29.14";
const OID_KEY_USAGE: &str = "2.5.29.15";
const OID_BASIC_CONSTRAINTS: &str = "2.5.29.19";
pub const OID_RSA: &str = "1.2.840.113549.1.1.1";
pub const OID_EC: &str = "1.2.840.10045.2.1";
pub const OID_P256: &str = "1.2.840.10045.3.1.7";
const OID_P384: &str = "1.3.132.0.34";

/// Names for the OIDs a refusal may name, so errors say more than digits.
const OID_NAMES: &[(&str, &str)] = &[
    ("1.2.840.10045.3.1.1", "NIST P-192"),
    ("1.2.840.10045.3.1.7", "NIST P-256"),
    ("1.3.132.0.34", "NIST P-384"),
    ("1.3.132.0.35", "NIST P-521"),
    ("1.3.132.0.10", "secp256k1"),
    ("1.2.840.113549.1.1.10", "RSASSA-PSS"),
    ("1.3.101.112", "Ed25519"),
    ("1.3.101.113", "Ed448"),
    ("1.2.840.10040.4.1", "DSA"),
    ("1.2.840.113549.1.1.2", "md2WithRSAEncryption"),
    ("1.2.840.113549.1.1.4", "md5WithRSAEncryption"),
    ("1.2.840.10040.4.3", "dsa-with-SHA1"),
    ("1.2.156.10197.1.301", "SM2"),
    ("1.2.156.10197.1.501", "SM2-with-SM3"),
    ("1.2.643.7.1.1.1.1", "GOST R 34.10-2012 256-bit"),
    (
        "1.2.643.7.1.1.3.2",
        "GOST R 34.10-2012 with GOST R 34.11-2012 (256 bit)",
    ),
];

/// A certificate that passed intake, ready for `add_key`.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
    subject: String,
    key_id: String,
    key_type: &'static str,
    was_pem: bool,
    /// Things worth logging that do not stop the certificate from loading.
    pub warnings: Vec<String>,
}

impl Certificate {
    /// The DER bytes to pass to `add_key`.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// Subject name, RFC 4514 style (`O=Example, CN=IMA signing key`).
    pub fn subject(&self) -> &str {
        &self.subject
    }
    /// subjectKeyIdentifier as lowercase hex; IMA/EVM signatures carry its
    /// last 4 bytes (`evmctl` prints them as the keyid).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
    /// "rsa2048", "rsa3072", "rsa4096", "ecdsa-p256", "ecdsa-p384" ...
    pub fn key_type(&self) -> &'static str {
        self.key_type
    }
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
    /// Whether the input was PEM (and `der()` was decoded from it).
    pub fn was_pem(&self) -> bool {
        self.was_pem
    }
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject)
            .field("key_id", &self.key_id)
            .field("key_type", &self.key_type)
            .field("der_len", &self.der.len())
            .field("was_pem", &self.was_pem)
            .field("warnings", &self.warnings)
            .finish()
    }
}

impl fmt::Display for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "\"{}\" ({}, key id {})",
            self.subject, self.key_type, self.key_id
        )
    }
}

/// Why a certificate is refused. `UnsupportedKey`, `UnsupportedCurve`,
/// `UnsupportedRsaSize` and `BadEcPoint` are keys the kernel may load but can
/// never verify a signature with; `BadExtension` names an extension the kernel
/// reads and would find malformed (EBADMSG).
#[derive(Debug, Clone, PartialEq)]
pub enum CertError {
    Empty,
    TooLarge { len: usize, limit: usize },
    UnrecognizedFormat,
    BadPem { reason: PemError },
    NotDer { reason: DerError },
    TrailingData { len: usize },
    UnsupportedKey { alg: String },
    UnsupportedCurve { curve: String },
    UnsupportedRsaSize { bits: usize },
    BadEcPoint { len: usize },
    UnsupportedSignature { alg: String },
    BadExtension { name: &'static str },
    NoSubjectKeyId,
    ShortSubjectKeyId { len: usize },
    NoDigitalSignatureUsage,
    KeyCertSignUsage,
    IsCa,
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CertError::Empty => write!(f, "certificate file is empty"),
            CertError::TooLarge { len, limit } => write!(
                f,
                "certificate file is {len} bytes, over the {limit}-byte limit; an IMA/EVM certificate is 1-2 KiB, so this is not one"
            ),
            CertError::UnrecognizedFormat => write!(
                f,
                "certificate file is neither DER (an ASN.1 SEQUENCE) nor PEM (no -----BEGIN CERTIFICATE----- line); convert it with `openssl x509 -outform DER`"
            ),
            CertError::BadPem { reason } => {
                write!(f, "bad PEM certificate: {}", pem::Words(reason))
            }
            CertError::NotDer { reason } => write!(
                f,
                "not a valid DER X.509 certificate: {reason}; check it with `openssl x509 -inform DER -noout -text`"
            ),
            CertError::TrailingData { len } => write!(
                f,
                "{len} bytes follow the DER certificate; the kernel takes exactly one certificate, so strip them (`openssl x509 -outform DER`)"
            ),
            CertError::UnsupportedKey { alg } => write!(
                f,
                "certificate key algorithm {alg} cannot verify IMA/EVM signatures; reissue it with an RSA (2048+ bits) or ECDSA P-256/P-384 key"
            ),
            CertError::UnsupportedCurve { curve } => write!(
                f,
                "certificate has an ECDSA key on curve {curve}; only NIST P-256 and P-384 are accepted, so reissue it on one of those"
            ),
            CertError::UnsupportedRsaSize { bits } => write!(
                f,
                "certificate has a {bits}-bit RSA key; the kernel verifies only 1024, 1536, 2048, 3072 and 4096-bit keys (2048+ under fips=1), so reissue it with a 2048, 3072 or 4096-bit key"
            ),
            CertError::BadEcPoint { len } => write!(
                f,
                "certificate's ECDSA public key ({len} bytes) is not an uncompressed point, the only form the kernel reads; reissue it without point compression"
            ),
            CertError::UnsupportedSignature { alg } => write!(
                f,
                "certificate is signed with {alg}, which the kernel's X.509 parser refuses (ENOPKG); have it signed with RSA PKCS#1 v1.5 or ECDSA and SHA-256 or better"
            ),
            CertError::BadExtension { name } => write!(
                f,
                "certificate's {name} extension is malformed and the kernel would refuse it (EBADMSG); reissue the certificate"
            ),
            CertError::NoSubjectKeyId => write!(
                f,
                "certificate has no subjectKeyIdentifier extension: the kernel names IMA/EVM keys by it; reissue the certificate with subjectKeyIdentifier=hash"
            ),
            CertError::ShortSubjectKeyId { len } => write!(
                f,
                "certificate's subjectKeyIdentifier is {len} bytes, but IMA/EVM signatures name the key by its last 4; reissue the certificate with subjectKeyIdentifier=hash"
            ),
            CertError::NoDigitalSignatureUsage => write!(
                f,
                "certificate's keyUsage does not allow digitalSignature, so it cannot sign files and the kernel (6.4+) refuses it on .ima/.evm; reissue it with keyUsage=critical,digitalSignature"
            ),
            CertError::KeyCertSignUsage => write!(
                f,
                "certificate's keyUsage allows keyCertSign, which makes it a CA key; the kernel (6.4+) refuses such certificates on .ima/.evm; reissue it with keyUsage=critical,digitalSignature only"
            ),
            CertError::IsCa => write!(
                f,
                "certificate is a CA certificate (basicConstraints CA:TRUE), not a signing key; the kernel (6.4+) refuses CA certificates on .ima/.evm. Load the CA into the builtin, secondary or machine keyring instead and give the loader the signing certificate it issued"
            ),
        }
    }
}

impl std::error::Error for CertError {}

/// Reads a certificate (DER, or one PEM `CERTIFICATE` block) and checks it
/// against the current clock.
pub fn intake(bytes: &[u8]) -> Result<Certificate, CertError> {
    intake_at(bytes, unix_now())
}

/// `intake` with an explicit clock, in seconds since 1970 (for tests, and for
/// checking a certificate against another date).
pub fn intake_at(bytes: &[u8], now: i64) -> Result<Certificate, CertError> {
    if bytes.is_empty() {
        return Err(CertError::Empty);
    }
    if bytes.len() > MAX_INPUT_LEN {
        return Err(CertError::TooLarge {
            len: bytes.len(),
            limit: MAX_INPUT_LEN,
        });
    }
    let (der, was_pem) = if matches!(bytes, [0x30, 0x81..=0x84, ..]) {
        (bytes.to_vec(), false)
    } else if find(bytes, b"-----BEGIN ").is_some() {
        (
            pem::decode(bytes).map_err(|reason| CertError::BadPem { reason })?,
            true,
        )
    } else if bytes.first() == Some(&0x30) {
        (bytes.to_vec(), false)
    } else {
        return Err(CertError::UnrecognizedFormat);
    };
    check(der, was_pem, now)
}

fn check(der: Vec<u8>, was_pem: bool, now: i64) -> Result<Certificate, CertError> {
    let not_der = |reason| CertError::NotDer { reason };
    let total = der::outer_len(&der).map_err(not_der)?;
    if total > der.len() {
        return Err(not_der(DerError::Truncated {
            expected: total,
            got: der.len(),
        }));
    }
    if total < der.len() {
        return Err(CertError::TrailingData {
            len: der.len() - total,
        });
    }
    let cert = cert::parse(&der).map_err(|e| not_der(DerError::Parse(e)))?;

    let mut warnings = Vec::new();
    let key_type = key_type(&cert.public_key, &mut warnings)?;
    if !kernel_parses_signature(&cert.signature_algorithm) {
        let alg = oid_name(&cert.signature_algorithm);
        return Err(CertError::UnsupportedSignature { alg });
    }

    // Every occurrence counts, so a duplicated extension cannot hide a CA bit.
    let (mut ski, mut usage, mut ca) = (None, None, false);
    for ext in &cert.extensions {
        let bad = |name| move |_| CertError::BadExtension { name };
        match ext.oid.as_str() {
            OID_SKI => {
                let id = cert::subject_key_id(ext.value).map_err(bad("subjectKeyIdentifier"))?;
                ski.get_or_insert(id);
            }
            OID_KEY_USAGE => {
                let (digsig, certsign) = cert::key_usage(ext.value).map_err(bad("keyUsage"))?;
                let (had_digsig, had_certsign) = usage.unwrap_or((false, false));
                usage = Some((had_digsig || digsig, had_certsign || certsign));
            }
            OID_BASIC_CONSTRAINTS => {
                ca |= cert::is_ca(ext.value).map_err(bad("basicConstraints"))?;
            }
            _ => {}
        }
    }
    if ca {
        return Err(CertError::IsCa);
    }
    match usage {
        Some((_, true)) => return Err(CertError::KeyCertSignUsage),
        Some((false, _)) => return Err(CertError::NoDigitalSignatureUsage),
        Some((true, false)) => {}
        None => warnings.push(
            "certificate has no keyUsage extension: kernels since 6.4 refuse it on .ima/.evm (ENOKEY; only the unrestricted _ima/_evm keyrings take it); reissue it with keyUsage=critical,digitalSignature".to_string(),
        ),
    }
    let ski = ski.ok_or(CertError::NoSubjectKeyId)?;
    if ski.len() < 4 {
        return Err(CertError::ShortSubjectKeyId { len: ski.len() });
    }

    if now < cert.not_before {
        warnings.push(format!(
            "certificate is not valid before {} but the clock says {}; loading it anyway (the kernel ignores validity dates), but check the clock or the certificate",
            show_time(cert.not_before),
            show_time(now)
        ));
    }
    if now > cert.not_after {
        warnings.push(format!(
            "certificate expired on {} (the clock says {}); loading it anyway (the kernel ignores validity dates), but renew it",
            show_time(cert.not_after),
            show_time(now)
        ));
    }

    let key_id = crate::hex::encode(ski);
    let subject = cert.subject;
    Ok(Certificate {
        der,
        subject,
        key_id,
        key_type,
        was_pem,
        warnings,
    })
}

/// The key type name, or why the kernel could not verify signatures with it
/// (crypto/rsa.c key sizes, crypto/ecdsa.c curves and point format).
fn key_type(
    spki: &cert::PublicKeyInfo<'_>,
    warnings: &mut Vec<String>,
) -> Result<&'static str, CertError> {
    match spki.algorithm.as_str() {
        OID_RSA => {
            let (modulus, _) = cert::rsa_public_key(spki.key).map_err(|e| CertError::NotDer {
                reason: DerError::Parse(e),
            })?;
            let bits = modulus.len().saturating_mul(8);
            match bits {
                2048 => Ok("rsa2048"),
                3072 => Ok("rsa3072"),
                4096 => Ok("rsa4096"),
                1024 | 1536 => {
                    warnings.push(format!(
                        "certificate has a weak {bits}-bit RSA key, which the kernel refuses to use under fips=1; reissue it with 2048 bits or more"
                    ));
                    Ok(if bits == 1024 { "rsa1024" } else { "rsa1536" })
                }
                _ => Err(CertError::UnsupportedRsaSize { bits }),
            }
        }
        OID_EC => {
            let Some(curve) = &spki.named_curve else {
                let curve = "given by explicit parameters".to_string();
                return Err(CertError::UnsupportedCurve { curve });
            };
            let (name, point_len) = match curve.as_str() {
                OID_P256 => ("ecdsa-p256", 65),
                OID_P384 => ("ecdsa-p384", 97),
                _ => {
                    return Err(CertError::UnsupportedCurve {
                        curve: oid_name(curve),
                    });
                }
            };
            let point = spki.key;
            if point.first() != Some(&4) || point.len() != point_len {
                return Err(CertError::BadEcPoint { len: point.len() });
            }
            Ok(name)
        }
        _ => Err(CertError::UnsupportedKey {
            alg: oid_name(&spki.algorithm),
        }),
    }
}

/// Whether the kernel's X.509 parser knows the signature algorithm
/// (`x509_cert_parser.c` `x509_note_sig_algo`): RSA PKCS#1 v1.5 with SHA-1/2
/// (1.2.840.113549.1.1.{5,11-14}), ECDSA with SHA-1/2 (1.2.840.10045.4.1,
/// .4.3.{1-4}), and either with SHA-3 (2.16.840.1.101.3.4.3.{9-16}). Anything
/// else makes `add_key` fail with ENOPKG whatever the keyring.
fn kernel_parses_signature(oid: &str) -> bool {
    let arc = |prefix: &str| oid.strip_prefix(prefix).and_then(|t| t.parse::<u32>().ok());
    matches!(arc("1.2.840.113549.1.1."), Some(5 | 11..=14))
        || oid == "1.2.840.10045.4.1"
        || matches!(arc("1.2.840.10045.4.3."), Some(1..=4))
        || matches!(arc("2.16.840.1.101.3.4.3."), Some(9..=16))
}

fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// A time as x509-parser shows an `ASN1Time` ("Jan  1 00:00:00 2021
/// +00:00"), without the `time` crate's formatting machinery (20 KB of the
/// binary for these two warnings).
fn show_time(t: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    // Days since 1970-01-01 to a civil date (proleptic Gregorian, March-based
    // years of 400-year eras).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let name = usize::try_from(month - 1)
        .ok()
        .and_then(|m| MONTHS.get(m))
        .copied()
        .unwrap_or("???");
    format!(
        "{name} {day:>2} {:02}:{:02}:{:02} {year} +00:00",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// An OID with its name when it is one a refusal may name.
fn oid_name(id: &str) -> String {
    match OID_NAMES.iter().find(|(o, _)| *o == id) {
        Some((_, name)) => format!("{name} ({id})"),
        None => id.to_string(),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
