//! The outer DER framing of a certificate: the SEQUENCE header and the
//! length it announces, checked before the certificate's fields are read.

use std::fmt;

/// What is wrong with DER that is not a certificate.
#[derive(Debug, Clone, PartialEq)]
pub enum DerError {
    NotSequence,
    BadLength,
    Truncated { expected: usize, got: usize },
    Parse(crate::der::DerError),
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
            DerError::Parse(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for DerError {}

/// Total length (header + contents) the outer DER SEQUENCE announces.
pub(super) fn outer_len(der: &[u8]) -> Result<usize, DerError> {
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
