//! PEM framing (RFC 7468): one block of base64 between `-----BEGIN LABEL-----`
//! and `-----END LABEL-----`. The label is the caller's: `CERTIFICATE` for
//! x509, `TSS2 PRIVATE KEY` for sealed kmk blobs. The wording of errors is
//! the caller's too, since what to tell the admin depends on the file.

use crate::base64;

/// How much besides the block a file may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// As openssl reads certificates: a UTF-8 BOM and text before the
    /// block, whitespace anywhere in it, blank lines and whitespace after it.
    Lenient,
    /// Only the block, with whitespace around it: BEGIN on the first line, END
    /// on the last, no blank lines or headers, each line whole base64 quads.
    Strict,
}

/// What is wrong with a PEM input. Lines count from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PemError {
    /// No BEGIN line (strict: the first line is not one).
    NoBeginLine,
    WrongLabel {
        label: String,
        line: usize,
    },
    BadBoundary {
        line: usize,
    },
    NoEndLine {
        begin_line: usize,
    },
    EmptyBody {
        line: usize,
    },
    BadBase64 {
        line: usize,
    },
    SecondBlock {
        label: String,
        line: usize,
    },
    JunkAfterEnd {
        line: usize,
    },
}

/// The DER in the one `label` block of `input`.
pub fn decode(input: &[u8], label: &str, layout: Layout) -> Result<Vec<u8>, PemError> {
    let label = label.as_bytes();
    let strict = layout == Layout::Strict;
    let input = if strict {
        input.trim_ascii()
    } else {
        input.strip_prefix(b"\xef\xbb\xbf").unwrap_or(input)
    };
    let mut lines = input.split(|&b| b == b'\n').zip(1..).map(|(l, n)| {
        let l = if strict {
            l.strip_suffix(b"\r").unwrap_or(l)
        } else {
            l.trim_ascii_end()
        };
        (n, l)
    });

    let begin_line = loop {
        let (n, line) = lines.next().ok_or(PemError::NoBeginLine)?;
        if !strict && !line.starts_with(b"-----BEGIN ") {
            continue;
        }
        match boundary(line, b"-----BEGIN ") {
            Some(l) if l == label => break n,
            Some(l) => {
                return Err(PemError::WrongLabel {
                    label: lossy(l),
                    line: n,
                });
            }
            None if strict => return Err(PemError::NoBeginLine),
            None => return Err(PemError::BadBoundary { line: n }),
        }
    };

    // Base64 characters, each with the line it came from for error messages.
    let mut text: Vec<(u8, usize)> = Vec::new();
    let end_line = loop {
        let (n, line) = lines.next().ok_or(PemError::NoEndLine { begin_line })?;
        if line.starts_with(b"-----") {
            match boundary(line, b"-----END ") {
                Some(l) if l == label => break n,
                _ => return Err(PemError::BadBoundary { line: n }),
            }
        }
        if strict && (line.is_empty() || !line.len().is_multiple_of(4)) {
            return Err(PemError::BadBase64 { line: n });
        }
        text.extend(
            line.iter()
                .filter(|b| strict || !b.is_ascii_whitespace())
                .map(|&b| (b, n)),
        );
    };
    if text.is_empty() {
        return Err(PemError::EmptyBody { line: end_line });
    }
    let chars: Vec<u8> = text.iter().map(|&(b, _)| b).collect();
    let der = base64::decode(&chars).map_err(|pos| {
        let line = text.get(pos).map_or(end_line, |&(_, n)| n);
        PemError::BadBase64 { line }
    })?;

    for (n, line) in lines {
        let line = line.trim_ascii();
        if line.is_empty() && !strict {
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

/// `der` as a `label` block, base64 in lines of `width` characters (at least 4).
pub fn encode(label: &str, der: &[u8], width: usize) -> String {
    let text = base64::encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in text.as_bytes().chunks(width.max(4)) {
        out.extend(line.iter().map(|&b| char::from(b)));
        out.push('\n');
    }
    out + "-----END " + label + "-----\n"
}

/// The label of `-----BEGIN LABEL-----` (with `prefix` "-----BEGIN ").
fn boundary<'a>(line: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    line.strip_prefix(prefix)?.strip_suffix(b"-----")
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"a body longer than one line of base64, to fold it twice or more";

    #[test]
    fn encode_then_decode_in_both_layouts() {
        let pem = encode("TEST BLOCK", BODY, 64);
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines[0], "-----BEGIN TEST BLOCK-----");
        assert_eq!(lines.last(), Some(&"-----END TEST BLOCK-----"));
        assert!(lines[1..lines.len() - 1].iter().all(|l| l.len() <= 64));
        for layout in [Layout::Lenient, Layout::Strict] {
            assert_eq!(
                decode(pem.as_bytes(), "TEST BLOCK", layout),
                Ok(BODY.to_vec())
            );
            assert_eq!(
                decode(pem.as_bytes(), "OTHER", layout),
                Err(PemError::WrongLabel {
                    label: "TEST BLOCK".into(),
                    line: 1
                })
            );
        }
    }

    #[test]
    fn strict_takes_only_the_block() {
        let pem = encode("K", BODY, 64);
        let strict = |text: &str| decode(text.as_bytes(), "K", Layout::Strict);
        let lenient = |text: &str| decode(text.as_bytes(), "K", Layout::Lenient);
        // (input, strict's answer, lenient's answer)
        let cases = [
            (
                format!("comment\n{pem}"),
                Err(PemError::NoBeginLine),
                Ok(BODY.to_vec()),
            ),
            (
                pem.replacen('\n', "\n\n", 1),
                Err(PemError::BadBase64 { line: 2 }),
                Ok(BODY.to_vec()),
            ),
            (
                pem.replacen('\n', "\n ", 1),
                Err(PemError::BadBase64 { line: 2 }),
                Ok(BODY.to_vec()),
            ),
            (
                format!("{pem}\njunk"),
                Err(PemError::JunkAfterEnd { line: 5 }),
                Err(PemError::JunkAfterEnd { line: 6 }),
            ),
        ];
        for (text, strict_answer, lenient_answer) in cases {
            assert_eq!(strict(&text), strict_answer, "{text}");
            assert_eq!(lenient(&text), lenient_answer, "{text}");
        }
        assert_eq!(strict(&format!("\n  {pem}\r\n\n")), Ok(BODY.to_vec()));
        assert_eq!(
            strict(&pem.replace('\n', "\r\n")),
            Ok(BODY.to_vec()),
            "CRLF"
        );
    }
}
