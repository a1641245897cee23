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

use nix::errno::Errno;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};
use x509_parser::asn1_rs::{Any, Oid, Tag};
use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::time::ASN1Time;

/// Largest input `intake` reads. Real IMA/EVM certificates are 1-2 KiB; the
/// kernel's own limit (1 MiB) is far beyond anything sane.
pub const MAX_INPUT_LEN: usize = 64 * 1024;

const PEM_LABEL: &[u8] = b"CERTIFICATE";
const OID_SKI: &str = "2.5.29.14";
const OID_KEY_USAGE: &str = "2.5.29.15";
const OID_BASIC_CONSTRAINTS: &str = "2.5.29.19";
const OID_RSA: &str = "1.2.840.113549.1.1.1";
const OID_EC: &str = "1.2.840.10045.2.1";

/// Names for OIDs the crate's registry lacks, so errors say more than digits.
const OID_NAMES: &[(&str, &str)] = &[
    ("1.2.840.10045.3.1.1", "NIST P-192"),
    ("1.2.840.10045.3.1.7", "NIST P-256"),
    ("1.3.132.0.34", "NIST P-384"),
    ("1.3.132.0.35", "NIST P-521"),
    ("1.3.132.0.10", "secp256k1"),
    ("1.2.840.113549.1.1.10", "RSASSA-PSS"),
    ("1.3.101.112", "Ed25519"),
    ("1.3.101.113", "Ed448"),
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

/// What is wrong with a PEM input. Lines count from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PemError {
    NoBeginLine,
    WrongLabel { label: String, line: usize },
    BadBoundary { line: usize },
    NoEndLine { begin_line: usize },
    EmptyBody { line: usize },
    BadBase64 { line: usize },
    SecondBlock { label: String, line: usize },
    JunkAfterEnd { line: usize },
}

/// What is wrong with DER that is not a certificate.
#[derive(Debug, Clone, PartialEq)]
pub enum DerError {
    NotSequence,
    BadLength,
    Truncated { expected: usize, got: usize },
    Parse(X509Error),
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

impl fmt::Display for PemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PemError::NoBeginLine => write!(f, "no -----BEGIN CERTIFICATE----- line"),
            PemError::WrongLabel { label, line } => write!(
                f,
                "line {line} starts a PEM block labelled {label}, not CERTIFICATE; put only the certificate in the file (never a private key)"
            ),
            PemError::BadBoundary { line } => write!(
                f,
                "line {line} looks like a PEM boundary but is not -----BEGIN CERTIFICATE----- or -----END CERTIFICATE-----"
            ),
            PemError::NoEndLine { begin_line } => write!(
                f,
                "the block begun on line {begin_line} has no -----END CERTIFICATE----- line; the file is truncated"
            ),
            PemError::EmptyBody { line } => {
                write!(f, "the block ending on line {line} holds no data")
            }
            PemError::BadBase64 { line } => write!(
                f,
                "line {line} is not valid base64 (bad character, misplaced '=' padding, or a block whose length is not a multiple of 4)"
            ),
            PemError::SecondBlock { label, line } => write!(
                f,
                "line {line} starts a second PEM block ({label}); the kernel takes one certificate per file, so split the file"
            ),
            PemError::JunkAfterEnd { line } => write!(
                f,
                "unexpected text on line {line} after -----END CERTIFICATE-----; remove it"
            ),
        }
    }
}

impl fmt::Display for DerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DerError::NotSequence => write!(f, "it does not start with an ASN.1 SEQUENCE"),
            DerError::BadLength => write!(f, "its outer length field is malformed"),
            DerError::Truncated { expected, got } => {
                write!(
                    f,
                    "it is truncated: {got} bytes where its header announces {expected}"
                )
            }
            DerError::Parse(e) => write!(f, "x509 parser: {e}"),
        }
    }
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
            CertError::BadPem { reason } => write!(f, "bad PEM certificate: {reason}"),
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

impl std::error::Error for PemError {}
impl std::error::Error for DerError {}
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
            pem_decode(bytes).map_err(|reason| CertError::BadPem { reason })?,
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
    let total = der_outer_len(&der).map_err(not_der)?;
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
    let cert = match X509Certificate::from_der(&der) {
        Ok(([], cert)) => cert,
        Ok((rest, _)) => return Err(CertError::TrailingData { len: rest.len() }),
        Err(e) => return Err(not_der(DerError::Parse(X509Error::from(e)))),
    };

    let mut warnings = Vec::new();
    let key_type = key_type(&cert, &mut warnings)?;
    if !kernel_parses_signature(&cert.signature_algorithm.algorithm.to_id_string()) {
        let alg = oid_name(&cert.signature_algorithm.algorithm);
        return Err(CertError::UnsupportedSignature { alg });
    }

    // Every occurrence counts, so a duplicated extension cannot hide a CA bit.
    let (mut ski, mut usage, mut ca) = (None, None, false);
    for ext in cert.iter_extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => {
                ski.get_or_insert(id.0);
            }
            ParsedExtension::KeyUsage(ku) => {
                let (digsig, certsign) = usage.unwrap_or((false, false));
                usage = Some((
                    digsig || ku.digital_signature(),
                    certsign || ku.key_cert_sign(),
                ));
            }
            ParsedExtension::BasicConstraints(bc) => ca |= bc.ca,
            ParsedExtension::ParseError { .. } => {
                let name = match ext.oid.to_id_string().as_str() {
                    OID_SKI => "subjectKeyIdentifier",
                    OID_KEY_USAGE => "keyUsage",
                    OID_BASIC_CONSTRAINTS => "basicConstraints",
                    _ => continue,
                };
                return Err(CertError::BadExtension { name });
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

    let validity = cert.validity();
    if now < validity.not_before.timestamp() {
        warnings.push(format!(
            "certificate is not valid before {} but the clock says {}; loading it anyway (the kernel ignores validity dates), but check the clock or the certificate",
            validity.not_before,
            show_time(now)
        ));
    }
    if now > validity.not_after.timestamp() {
        warnings.push(format!(
            "certificate expired on {} (the clock says {}); loading it anyway (the kernel ignores validity dates), but renew it",
            validity.not_after,
            show_time(now)
        ));
    }

    let (subject, key_id) = (cert.subject().to_string(), hex(ski));
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
    cert: &X509Certificate<'_>,
    warnings: &mut Vec<String>,
) -> Result<&'static str, CertError> {
    let spki = cert.public_key();
    match spki.algorithm.algorithm.to_id_string().as_str() {
        OID_RSA => {
            let modulus = match spki.parsed() {
                Ok(PublicKey::RSA(rsa)) => rsa.modulus,
                _ => {
                    return Err(CertError::NotDer {
                        reason: DerError::Parse(X509Error::InvalidSPKI),
                    });
                }
            };
            let significant = modulus.iter().skip_while(|&&b| b == 0).count();
            let bits = significant.saturating_mul(8);
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
            let params = spki.algorithm.parameters.as_ref();
            let named = params
                .filter(|p| p.header.tag() == Tag::Oid)
                .map(Any::as_oid);
            let Some(Ok(curve)) = named else {
                let curve = "given by explicit parameters".to_string();
                return Err(CertError::UnsupportedCurve { curve });
            };
            let (name, point_len) = match curve.to_id_string().as_str() {
                "1.2.840.10045.3.1.7" => ("ecdsa-p256", 65),
                "1.3.132.0.34" => ("ecdsa-p384", 97),
                _ => {
                    return Err(CertError::UnsupportedCurve {
                        curve: oid_name(&curve),
                    });
                }
            };
            let point = &spki.subject_public_key.data;
            if point.first() != Some(&4) || point.len() != point_len {
                return Err(CertError::BadEcPoint { len: point.len() });
            }
            Ok(name)
        }
        _ => Err(CertError::UnsupportedKey {
            alg: oid_name(&spki.algorithm.algorithm),
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

/// Total length (header + contents) the outer DER SEQUENCE announces.
fn der_outer_len(der: &[u8]) -> Result<usize, DerError> {
    let (first, rest) = match der {
        [0x30, first, rest @ ..] => (*first, rest),
        [0x30] => {
            return Err(DerError::Truncated {
                expected: 2,
                got: 1,
            });
        }
        _ => return Err(DerError::NotSequence),
    };
    if first < 0x80 {
        return Ok(2 + usize::from(first));
    }
    let count = usize::from(first & 0x7f);
    if count == 0 || count > 4 {
        return Err(DerError::BadLength);
    }
    if rest.len() < count {
        return Err(DerError::Truncated {
            expected: 2 + count,
            got: der.len(),
        });
    }
    let len = rest
        .iter()
        .take(count)
        .fold(0, |len, &b| (len << 8) | usize::from(b));
    len.checked_add(2 + count).ok_or(DerError::BadLength)
}

/// Decodes the one `CERTIFICATE` block of a PEM file. Text before the block
/// is skipped (as openssl does: `openssl x509 -text` output, comments);
/// anything but whitespace after it is an error.
fn pem_decode(input: &[u8]) -> Result<Vec<u8>, PemError> {
    let input = input.strip_prefix(b"\xef\xbb\xbf").unwrap_or(input);
    let mut lines = input
        .split(|&b| b == b'\n')
        .zip(1..)
        .map(|(l, n)| (n, l.trim_ascii_end()));

    let begin_line = loop {
        let (n, line) = lines.next().ok_or(PemError::NoBeginLine)?;
        if !line.starts_with(b"-----BEGIN ") {
            continue;
        }
        match boundary(line, b"-----BEGIN ") {
            Some(PEM_LABEL) => break n,
            Some(label) => {
                return Err(PemError::WrongLabel {
                    label: lossy(label),
                    line: n,
                });
            }
            None => return Err(PemError::BadBoundary { line: n }),
        }
    };

    // Base64 characters, each with the line it came from for error messages.
    let mut text: Vec<(u8, usize)> = Vec::new();
    let end_line = loop {
        let (n, line) = lines.next().ok_or(PemError::NoEndLine { begin_line })?;
        if line.starts_with(b"-----") {
            match boundary(line, b"-----END ") {
                Some(PEM_LABEL) => break n,
                _ => return Err(PemError::BadBoundary { line: n }),
            }
        }
        text.extend(
            line.iter()
                .filter(|b| !b.is_ascii_whitespace())
                .map(|&b| (b, n)),
        );
    };
    if text.is_empty() {
        return Err(PemError::EmptyBody { line: end_line });
    }
    let chars: Vec<u8> = text.iter().map(|&(b, _)| b).collect();
    let der = base64_decode(&chars).map_err(|pos| {
        let line = text.get(pos).map_or(end_line, |&(_, n)| n);
        PemError::BadBase64 { line }
    })?;

    for (n, line) in lines {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        return Err(match boundary(line, b"-----BEGIN ") {
            Some(label) => PemError::SecondBlock {
                label: lossy(label),
                line: n,
            },
            None => PemError::JunkAfterEnd { line: n },
        });
    }
    Ok(der)
}

/// The label of `-----BEGIN LABEL-----` (with `prefix` "-----BEGIN ").
fn boundary<'a>(line: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    line.strip_prefix(prefix)?.strip_suffix(b"-----")
}

/// Strict RFC 4648 base64 (standard alphabet, padding required, unused bits
/// zero). The error is the index of the offending character.
fn base64_decode(chars: &[u8]) -> Result<Vec<u8>, usize> {
    if !chars.len().is_multiple_of(4) {
        return Err(chars.len() - chars.len() % 4);
    }
    let quads = chars.len() / 4;
    let mut out = Vec::with_capacity(quads * 3);
    for (q, quad) in chars.chunks_exact(4).enumerate() {
        let pad = quad.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && q + 1 != quads) {
            return Err(q * 4 + 4 - pad);
        }
        let mut acc: u32 = 0;
        for (i, &c) in quad.iter().take(4 - pad).enumerate() {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                _ => return Err(q * 4 + i),
            };
            acc = (acc << 6) | u32::from(v);
        }
        acc <<= 6 * pad;
        let [_, b1, b2, b3] = acc.to_be_bytes();
        let unused_bits = match pad {
            0 => 0,
            1 => b3,
            _ => b2,
        };
        if unused_bits != 0 {
            return Err(q * 4 + 3 - pad);
        }
        out.extend([b1, b2, b3].into_iter().take(3 - pad));
    }
    Ok(out)
}

/// Words for an errno from `add_key("asymmetric", ...)` into `keyring`
/// (".ima", "_evm", ...), to follow "kernel refused it (ENOKEY): ". Keyrings
/// whose name starts with '.' are the kernel's restricted ones.
/// Sources: `crypto/asymmetric_keys/{restrict.c,x509_public_key.c,x509_cert_parser.c}`,
/// `security/keys/{key.c,keyring.c}`.
pub fn describe_kernel_refusal(errno: i32, keyring: &str) -> String {
    let restricted = keyring.starts_with('.');
    match Errno::from_raw(errno) {
        Errno::ENOKEY if restricted => format!(
            "the {keyring} keyring only accepts certificates signed by a key on the builtin, secondary or machine keyring (found through the certificate's authorityKeyIdentifier), and since kernel 6.4 only non-CA certificates with keyUsage digitalSignature; have the certificate signed by a CA that is built into the kernel or enrolled as a MOK, and see dmesg"
        ),
        Errno::ENOKEY => format!(
            "the {keyring} keyring was not found (it does not exist or was garbage-collected); create it under @u before loading certificates"
        ),
        Errno::EKEYREJECTED if restricted => format!(
            "the {keyring} keyring rejected the certificate: its signature does not verify with the trusted key that should have signed it, or it is blacklisted (.blacklist keyring, dbx); check which CA signed it"
        ),
        Errno::EKEYREJECTED => "the kernel rejected the certificate: it is blacklisted (.blacklist keyring, dbx) or its self-signature does not verify".to_string(),
        Errno::EBADMSG => "the kernel could not parse the certificate (malformed DER, an extension or date it cannot read, a malformed signature) or lacks its X.509 parser (CONFIG_X509_CERTIFICATE_PARSER); check it with `openssl x509 -inform DER -noout -text`".to_string(),
        Errno::ENOPKG => "the kernel lacks the crypto algorithm for this certificate's key or signature: the algorithm is unsupported by this kernel, or its module (rsa, ecdsa_generic, sha256 ...) is neither built in nor loaded from the initramfs".to_string(),
        Errno::EPERM if restricted => format!(
            "the {keyring} keyring refused the link: the ca_keys= kernel parameter pins a CA that did not sign this certificate, or the keyring is locked against new keys"
        ),
        Errno::EPERM => format!(
            "the {keyring} keyring refused the link: it has been restricted against new keys"
        ),
        Errno::EACCES => format!(
            "not allowed to add keys to the {keyring} keyring: the loader lacks Write permission on it, or a security module (SELinux, ...) denied creating the key"
        ),
        Errno::EINVAL => "the kernel called the request invalid: the certificate's two signature algorithm fields differ, or it is empty or over 1 MiB".to_string(),
        Errno::EDQUOT => "the key quota for root is exhausted (see /proc/sys/kernel/keys/root_maxkeys and root_maxbytes) or the keyring is full".to_string(),
        Errno::ENODEV => "the kernel has no \"asymmetric\" key type (CONFIG_ASYMMETRIC_KEY_TYPE is off or its module is not loaded)".to_string(),
        Errno::ENOTDIR => format!("{keyring} is not a keyring"),
        Errno::EKEYREVOKED => format!("the {keyring} keyring has been revoked"),
        Errno::EKEYEXPIRED => format!("the {keyring} keyring has expired"),
        Errno::ENOMEM => "the kernel ran out of memory".to_string(),
        other => format!("unexpected error from the kernel: {}", other.desc()),
    }
}

fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

fn show_time(t: i64) -> String {
    ASN1Time::from_timestamp(t)
        .map_or_else(|_| format!("{t} seconds after 1970"), |t| t.to_string())
}

fn oid_name(oid: &Oid<'_>) -> String {
    let id = oid.to_id_string();
    let known = OID_NAMES
        .iter()
        .find(|(o, _)| *o == id)
        .map(|&(_, name)| name);
    match known
        .or_else(|| x509_parser::objects::oid2sn(oid, x509_parser::objects::oid_registry()).ok())
    {
        Some(name) => format!("{name} ({id})"),
        None => id,
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let nibble = |n: u8| char::from(DIGITS.get(usize::from(n)).copied().unwrap_or(b'?'));
    bytes
        .iter()
        .flat_map(|&b| [nibble(b >> 4), nibble(b & 0xf)])
        .collect()
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!("../../tests/fixtures/certs/", $name))
        };
    }

    const RSA_DER: &[u8] = fixture!("rsa2048.der");
    const RSA_PEM: &[u8] = fixture!("rsa2048.pem");
    /// 2026-01-01T00:00:00Z: inside the validity of every fixture but `expired`.
    const NOW: i64 = 1_767_225_600;

    fn ok(bytes: &[u8]) -> Certificate {
        intake_at(bytes, NOW).unwrap_or_else(|e| panic!("intake failed: {e}"))
    }

    fn err(bytes: &[u8]) -> CertError {
        intake_at(bytes, NOW).expect_err("intake accepted bad input")
    }

    fn pem_err(bytes: &[u8]) -> PemError {
        match err(bytes) {
            CertError::BadPem { reason } => reason,
            other => panic!("expected a PEM error, got {other:?}"),
        }
    }

    fn rsa_pem() -> String {
        String::from_utf8(RSA_PEM.to_vec()).unwrap()
    }

    #[test]
    fn good_certificates() {
        for (der, pem, key_type, cn) in [
            (RSA_DER, RSA_PEM, "rsa2048", "rsa2048"),
            (
                fixture!("ecdsa-p256.der"),
                fixture!("ecdsa-p256.pem"),
                "ecdsa-p256",
                "ecdsa-p256",
            ),
            (
                fixture!("ecdsa-p384.der"),
                fixture!("ecdsa-p384.pem"),
                "ecdsa-p384",
                "ecdsa-p384",
            ),
        ] {
            let from_der = ok(der);
            let from_pem = ok(pem);
            assert_eq!(from_der.key_type(), key_type);
            assert_eq!(
                from_der.subject(),
                format!("O=integrity-loader tests, CN={cn}")
            );
            assert_eq!(from_der.key_id().len(), 40, "SKI=hash is a 20-byte SHA-1");
            assert!(
                from_der
                    .key_id()
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
            assert!(from_der.warnings().is_empty(), "{:?}", from_der.warnings());
            assert!(!from_der.was_pem());
            assert!(from_pem.was_pem());
            assert_eq!(from_pem.der(), der);
            assert_eq!(from_pem.key_id(), from_der.key_id());
            assert_eq!(from_pem.subject(), from_der.subject());
        }
    }

    #[test]
    fn refused_certificates() {
        assert_eq!(err(fixture!("ca.der")), CertError::IsCa);
        assert_eq!(err(fixture!("ca.pem")), CertError::IsCa);
        assert_eq!(err(fixture!("no-ski.der")), CertError::NoSubjectKeyId);
        assert_eq!(
            err(fixture!("no-digsig.der")),
            CertError::NoDigitalSignatureUsage
        );
        match err(fixture!("ed25519.der")) {
            CertError::UnsupportedKey { alg } => assert_eq!(alg, "Ed25519 (1.3.101.112)"),
            other => panic!("ed25519: {other:?}"),
        }
        let curve = "NIST P-521 (1.3.132.0.35)".to_string();
        assert_eq!(
            err(fixture!("ecdsa-p521.der")),
            CertError::UnsupportedCurve { curve }
        );
        let alg = "RSASSA-PSS (1.2.840.113549.1.1.10)".to_string();
        assert_eq!(
            err(fixture!("pss-signed.der")),
            CertError::UnsupportedSignature { alg }
        );
    }

    #[test]
    fn missing_key_usage_is_a_warning() {
        let cert = ok(fixture!("no-keyusage.der"));
        assert_eq!(cert.warnings().len(), 1);
        assert!(
            cert.warnings()[0].contains("no keyUsage extension"),
            "{:?}",
            cert.warnings()
        );
    }

    #[test]
    fn validity_dates_only_warn() {
        let expired = fixture!("expired.der");
        let cert = ok(expired);
        assert_eq!(cert.warnings().len(), 1);
        assert!(cert.warnings()[0].starts_with("certificate expired on Jan  1 00:00:00 2021"));
        // 2020-06-01: inside 2020-01-01..2021-01-01.
        assert!(
            intake_at(expired, 1_590_969_600)
                .unwrap()
                .warnings()
                .is_empty()
        );
        // 2019-06-01: before notBefore (a clock that is behind).
        let early = intake_at(expired, 1_559_347_200).unwrap();
        assert!(
            early.warnings()[0].starts_with("certificate is not valid before Jan  1 00:00:00 2020")
        );
        assert!(early.warnings()[0].contains("Jun  1 00:00:00 2019"));
        // The real clock works too.
        assert!(intake(RSA_DER).is_ok());
    }

    #[test]
    fn empty_and_oversized() {
        assert_eq!(err(b""), CertError::Empty);
        let big = vec![b'A'; MAX_INPUT_LEN + 1];
        assert_eq!(
            err(&big),
            CertError::TooLarge {
                len: MAX_INPUT_LEN + 1,
                limit: 64 * 1024
            }
        );
        assert!(err(&big).to_string().contains("65536-byte limit"));
        assert_eq!(err(b"hello world\n"), CertError::UnrecognizedFormat);
    }

    #[test]
    fn der_framing() {
        let mut trailing = RSA_DER.to_vec();
        trailing.extend_from_slice(b"\n\n\0");
        assert_eq!(err(&trailing), CertError::TrailingData { len: 3 });
        let two = [RSA_DER, RSA_DER].concat();
        assert_eq!(err(&two), CertError::TrailingData { len: RSA_DER.len() });

        let cut = &RSA_DER[..RSA_DER.len() - 10];
        let reason = DerError::Truncated {
            expected: RSA_DER.len(),
            got: RSA_DER.len() - 10,
        };
        assert_eq!(err(cut), CertError::NotDer { reason });
        assert!(matches!(
            err(&RSA_DER[..1]),
            CertError::NotDer {
                reason: DerError::Truncated { .. }
            }
        ));
        assert!(matches!(
            err(&[0x30, 0x80, 0, 0]),
            CertError::NotDer {
                reason: DerError::BadLength
            }
        ));

        // Right framing, wrong contents: a SEQUENCE holding an INTEGER.
        assert!(matches!(
            err(&[0x30, 0x81, 0x03, 0x02, 0x01, 0x00]),
            CertError::NotDer {
                reason: DerError::Parse(_)
            }
        ));
        // A flipped byte inside the TBS header.
        let mut broken = RSA_DER.to_vec();
        broken[4] = 0x04;
        assert!(matches!(err(&broken), CertError::NotDer { .. }));
    }

    #[test]
    fn pem_whitespace_and_leading_text() {
        let crlf = rsa_pem().replace('\n', "  \r\n");
        assert_eq!(ok(crlf.as_bytes()).der(), RSA_DER);
        let with_text = format!(
            "Certificate:\n    Data:\n        Version: 3 (0x2)\n{}\n\n  \n",
            rsa_pem()
        );
        assert_eq!(ok(with_text.as_bytes()).der(), RSA_DER);
        let bom = [b"\xef\xbb\xbf".as_slice(), RSA_PEM].concat();
        assert_eq!(ok(&bom).der(), RSA_DER);
        let no_final_newline = rsa_pem().trim_end().to_string();
        assert_eq!(ok(no_final_newline.as_bytes()).der(), RSA_DER);
        // One long base64 line, as some tools write it.
        let pem = rsa_pem();
        let lines: Vec<&str> = pem.lines().collect();
        let (first, rest) = lines.split_first().unwrap();
        let (last, body) = rest.split_last().unwrap();
        let one_line = format!("{first}\n{}\n{last}\n", body.concat());
        assert_eq!(ok(one_line.as_bytes()).der(), RSA_DER);
    }

    #[test]
    fn pem_errors() {
        let pem = rsa_pem();
        let last = pem.lines().count();

        let junk = format!("{pem}this is junk\n");
        assert_eq!(
            pem_err(junk.as_bytes()),
            PemError::JunkAfterEnd { line: last + 1 }
        );
        let two = format!("{pem}\n{pem}");
        let second = PemError::SecondBlock {
            label: "CERTIFICATE".to_string(),
            line: last + 2,
        };
        assert_eq!(pem_err(two.as_bytes()), second);
        let key = format!("{pem}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
        assert!(
            matches!(pem_err(key.as_bytes()), PemError::SecondBlock { label, .. } if label == "PRIVATE KEY")
        );

        let bad_char = pem.replacen("MII", "M!I", 1);
        assert_eq!(
            pem_err(bad_char.as_bytes()),
            PemError::BadBase64 { line: 2 }
        );
        let lost_char = pem.replacen("MII", "MI", 1);
        assert!(matches!(
            pem_err(lost_char.as_bytes()),
            PemError::BadBase64 { .. }
        ));
        let end_cut: String = pem
            .lines()
            .take(last - 1)
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            pem_err(end_cut.as_bytes()),
            PemError::NoEndLine { begin_line: 1 }
        );
        let wrong_end = pem.replace("END CERTIFICATE", "END X509 CRL");
        assert_eq!(
            pem_err(wrong_end.as_bytes()),
            PemError::BadBoundary { line: last }
        );
        let end_junk = pem.replace("END CERTIFICATE-----", "END CERTIFICATE----- x");
        assert_eq!(
            pem_err(end_junk.as_bytes()),
            PemError::BadBoundary { line: last }
        );

        let private =
            b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";
        let wrong = PemError::WrongLabel {
            label: "PRIVATE KEY".to_string(),
            line: 1,
        };
        assert_eq!(pem_err(private), wrong);
        let empty = b"-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_err(empty), PemError::EmptyBody { line: 3 });
        assert_eq!(
            pem_err(b"text\n-----BEGIN CERTIFICATE\n"),
            PemError::BadBoundary { line: 2 }
        );

        // Well-formed PEM around something that is not a certificate.
        let not_cert = b"-----BEGIN CERTIFICATE-----\nZm9vYmFy\n-----END CERTIFICATE-----\n";
        assert_eq!(
            err(not_cert),
            CertError::NotDer {
                reason: DerError::NotSequence
            }
        );
    }

    #[test]
    fn base64_vectors() {
        // RFC 4648 section 10.
        for (text, bytes) in [
            ("Zg==", b"f".as_slice()),
            ("Zm8=", b"fo"),
            ("Zm9v", b"foo"),
            ("Zm9vYg==", b"foob"),
            ("Zm9vYmE=", b"fooba"),
            ("Zm9vYmFy", b"foobar"),
            ("+/+/", b"\xfb\xff\xbf"),
        ] {
            assert_eq!(base64_decode(text.as_bytes()), Ok(bytes.to_vec()), "{text}");
        }
        for (text, pos) in [
            ("Zg=", 0),      // length not a multiple of 4
            ("Zm9vY", 4),    // likewise
            ("Zh==", 1),     // non-zero unused bits
            ("Zm9=", 2),     // likewise
            ("Z===", 1),     // three '='
            ("====", 0),     // only padding
            ("Zg==Zm9v", 2), // padding before the end
            ("Z=g=", 1),     // '=' inside a quad
            ("Zm9-", 3),     // URL-safe alphabet
        ] {
            assert_eq!(base64_decode(text.as_bytes()), Err(pos), "{text}");
        }
    }

    #[test]
    fn signature_algorithms() {
        for (oid, known) in [
            ("1.2.840.113549.1.1.11", true),  // sha256WithRSAEncryption
            ("1.2.840.113549.1.1.5", true),   // sha1WithRSAEncryption
            ("1.2.840.113549.1.1.4", false),  // md5WithRSAEncryption
            ("1.2.840.113549.1.1.10", false), // RSASSA-PSS
            ("1.2.840.113549.1.1.110", false),
            ("1.2.840.10045.4.1", true), // ecdsa-with-SHA1
            ("1.2.840.10045.4.3.2", true),
            ("1.2.840.10045.4.3.5", false),
            ("2.16.840.1.101.3.4.3.10", true), // ecdsa-with-SHA3-256
            ("2.16.840.1.101.3.4.3.14", true), // RSA with SHA3-256
            ("2.16.840.1.101.3.4.3.17", false), // ML-DSA-44
            ("1.3.101.112", false),            // Ed25519
        ] {
            assert_eq!(kernel_parses_signature(oid), known, "{oid}");
        }
    }

    #[test]
    fn messages_are_lowercase_and_say_what_to_do() {
        let errors = [
            CertError::Empty,
            CertError::TooLarge {
                len: 70000,
                limit: MAX_INPUT_LEN,
            },
            CertError::UnrecognizedFormat,
            CertError::BadPem {
                reason: PemError::NoBeginLine,
            },
            CertError::NotDer {
                reason: DerError::NotSequence,
            },
            CertError::UnsupportedKey {
                alg: "Ed25519 (1.3.101.112)".to_string(),
            },
            CertError::UnsupportedCurve {
                curve: "NIST P-521 (1.3.132.0.35)".to_string(),
            },
            CertError::UnsupportedRsaSize { bits: 8192 },
            CertError::BadEcPoint { len: 33 },
            CertError::UnsupportedSignature {
                alg: "RSASSA-PSS (1.2.840.113549.1.1.10)".to_string(),
            },
            CertError::BadExtension { name: "keyUsage" },
            CertError::NoSubjectKeyId,
            CertError::ShortSubjectKeyId { len: 2 },
            CertError::NoDigitalSignatureUsage,
            CertError::KeyCertSignUsage,
            CertError::IsCa,
        ];
        for e in errors {
            let text = e.to_string();
            assert!(text.starts_with(|c: char| c.is_ascii_lowercase()), "{text}");
        }
        assert_eq!(
            CertError::NoSubjectKeyId.to_string(),
            "certificate has no subjectKeyIdentifier extension: the kernel names IMA/EVM keys by it; reissue the certificate with subjectKeyIdentifier=hash"
        );
        assert_eq!(
            CertError::TrailingData { len: 3 }
                .to_string()
                .split(':')
                .count(),
            1
        );
    }

    #[test]
    fn kernel_refusals() {
        let enokey = describe_kernel_refusal(Errno::ENOKEY as i32, ".ima");
        assert!(enokey.starts_with(
            "the .ima keyring only accepts certificates signed by a key on the builtin, secondary or machine keyring"
        ));
        assert!(describe_kernel_refusal(Errno::ENOKEY as i32, "_ima").contains("not found"));
        assert!(
            describe_kernel_refusal(Errno::EKEYREJECTED as i32, ".evm")
                .starts_with("the .evm keyring rejected")
        );
        assert!(describe_kernel_refusal(Errno::EBADMSG as i32, ".ima").contains("could not parse"));
        assert!(describe_kernel_refusal(Errno::ENOPKG as i32, "_evm").contains("crypto algorithm"));
        assert!(describe_kernel_refusal(Errno::EDQUOT as i32, "_evm").contains("root_maxkeys"));
        let other = describe_kernel_refusal(Errno::EXDEV as i32, ".ima");
        assert!(
            other.starts_with("unexpected error from the kernel: "),
            "{other}"
        );
        for errno in 0..140 {
            let text = describe_kernel_refusal(errno, ".ima");
            assert!(
                text.starts_with(|c: char| c.is_ascii_lowercase() || c == '.'),
                "{text}"
            );
        }
    }

    #[test]
    fn display_for_logs() {
        let cert = ok(RSA_DER);
        let shown = cert.to_string();
        assert!(shown.starts_with("\"O=integrity-loader tests, CN=rsa2048\" (rsa2048, key id "));
        assert!(
            !format!("{cert:?}").contains("der:"),
            "Debug must not dump the DER"
        );
    }
}
