//! What is wrong with a key file, naming the blob and the byte.

use super::tss2::PEM_LABEL;
use crate::tpm::constants;
use std::fmt;

/// The blob an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blob {
    Pubkey,
    Privkey,
    PubFile,
    PrivFile,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFileError {
    /// Neither PEM nor DER: the first byte, `None` for an empty file.
    NotKeyFile(Option<u8>),
    PemLabel(String),
    /// A line (1-based) that is neither base64 nor the END line, or comes after it.
    PemLine(usize),
    PemNoEnd,
    Der {
        offset: usize,
        problem: DerProblem,
    },
    Trailing(usize),
    Oid(String),
    /// A context-tagged field this reader does not take: `[2]`, `[3]`, `[6]`...
    UnsupportedField(u8),
    FieldOrder(u8),
    RsaParent(u32),
    Parent(u32),
    Description,
    /// `size` is `None` when there are not even two bytes.
    NotTpm2b {
        blob: Blob,
        size: Option<u16>,
        follows: usize,
    },
    Public {
        blob: Blob,
        problem: PublicProblem,
    },
}

/// What is wrong in a key file's DER: the one reader's problems.
pub use crate::der::Problem as DerProblem;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicProblem {
    /// Offset in the TPMT_PUBLIC of the field that runs past its end.
    Truncated(usize),
    Trailing(usize),
    Type(u16),
    NameAlg(u16),
    AuthPolicySize(usize),
    Scheme(u16),
}

pub(super) fn alg_name(alg: u16) -> &'static str {
    constants::alg_name(alg).unwrap_or("unknown")
}

pub(super) fn s(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

impl fmt::Display for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Blob::Pubkey => "pubkey",
            Blob::Privkey => "privkey",
            Blob::PubFile => "the .pub file",
            Blob::PrivFile => "the .priv file",
        })
    }
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use KeyFileError::*;
        let not = "not a TSS2 key file";
        match self {
            NotKeyFile(None) => write!(f, "{not}: the file is empty"),
            NotKeyFile(Some(b)) => write!(f, "{not}: neither PEM nor DER (first byte 0x{b:02x})"),
            PemLabel(label) => write!(f, "{not}: PEM label \"{label}\", not TSS2 PRIVATE KEY"),
            PemLine(line) => write!(f, "PEM key file: line {line} is not base64 of the key"),
            PemNoEnd => write!(
                f,
                "PEM key file has no -----END {PEM_LABEL}----- line: truncated?"
            ),
            Der { offset, problem } => write!(f, "malformed TSS2 key at byte {offset}: {problem}"),
            Trailing(n) => write!(f, "trailing {n} byte{} after the key", s(*n)),
            Oid(oid) => {
                let what = match oid.as_str() {
                    "2.23.133.10.1.4" => "is an importable key",
                    "2.23.133.10.2" => "is a legacy tpm2-tss-engine key",
                    _ => "is not a TPM 2.0 key type",
                };
                write!(f, "{not}: OID {oid} {what}, not sealed data")
            }
            UnsupportedField(2) => write!(f, "field secret [2] is for importable keys only"),
            UnsupportedField(3) => write!(f, "field authPolicy [3] (signed policy) is unsupported"),
            UnsupportedField(tag) => write!(f, "unknown field [{tag}] in the key"),
            FieldOrder(tag) => write!(f, "field [{tag}] is repeated or out of order"),
            RsaParent(p) => write!(
                f,
                "rsaParent: RSA primaries under 0x{p:08x} are unsupported"
            ),
            Parent(p) => write!(
                f,
                "parent 0x{p:08x} is neither persistent (0x81) nor a hierarchy"
            ),
            Description => write!(f, "description [4] is not UTF-8"),
            NotTpm2b {
                blob,
                size,
                follows: n,
            } => {
                let kind = match blob {
                    Blob::Pubkey | Blob::PubFile => "TPM2B_PUBLIC",
                    Blob::Privkey | Blob::PrivFile => "TPM2B_PRIVATE",
                };
                let (n, s) = (*n, s(*n));
                match size {
                    Some(size) => write!(
                        f,
                        "{blob} is not a {kind} (size field {size}, {n} byte{s} follow)"
                    ),
                    None => write!(f, "{blob} is not a {kind} ({n} byte{s}, no size field)"),
                }
            }
            Public { blob, problem } => write!(f, "{blob}: {problem}"),
        }
    }
}

impl From<crate::der::DerError> for KeyFileError {
    fn from(e: crate::der::DerError) -> Self {
        KeyFileError::Der {
            offset: e.offset,
            problem: e.problem,
        }
    }
}

impl fmt::Display for PublicProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use PublicProblem::*;
        match *self {
            Truncated(at) => write!(f, "the TPMT_PUBLIC ends inside the field at byte {at}"),
            Trailing(n) => write!(f, "{n} byte{} after the TPMT_PUBLIC", s(n)),
            Type(t) => write!(
                f,
                "type {} (0x{t:04x}), not a keyedhash sealed object",
                alg_name(t)
            ),
            NameAlg(a) => write!(f, "name algorithm {} (0x{a:04x}), not sha256", alg_name(a)),
            AuthPolicySize(n) => write!(f, "authPolicy of {n} bytes, a sha256 digest has 32"),
            Scheme(x) => write!(
                f,
                "scheme {} (0x{x:04x}): an HMAC or XOR key, not sealed data",
                alg_name(x)
            ),
        }
    }
}

impl std::error::Error for KeyFileError {}
