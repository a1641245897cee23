//! PEM certificates: the one `CERTIFICATE` block of a PEM file, framed by
//! [`crate::pem`], and the words for what is wrong with it.

use crate::pem::Layout;
pub use crate::pem::PemError;
use std::fmt;

/// What is wrong with a certificate's PEM, in words for the admin.
pub struct Words<'a>(pub &'a PemError);

impl fmt::Display for Words<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
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

/// Decodes the one `CERTIFICATE` block of a PEM file. Text before the block
/// is skipped (as openssl does: `openssl x509 -text` output, comments);
/// anything but whitespace after it is an error.
pub(super) fn decode(input: &[u8]) -> Result<Vec<u8>, PemError> {
    crate::pem::decode(input, "CERTIFICATE", Layout::Lenient)
}
