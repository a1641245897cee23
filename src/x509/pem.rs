//! PEM: the one `CERTIFICATE` block of a PEM file, decoded to DER with a
//! strict base64 decoder, and the words for what is wrong with it.

use std::fmt;

const PEM_LABEL: &[u8] = b"CERTIFICATE";

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

impl std::error::Error for PemError {}

/// Decodes the one `CERTIFICATE` block of a PEM file. Text before the block
/// is skipped (as openssl does: `openssl x509 -text` output, comments);
/// anything but whitespace after it is an error.
pub(super) fn decode(input: &[u8]) -> Result<Vec<u8>, PemError> {
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

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
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
}
