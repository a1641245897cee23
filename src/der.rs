//! A strict DER reader for the ASN.1 the loader reads itself (X.509
//! certificates): single-byte tags, definite and minimal lengths, and every
//! element bounded by its parent, so a hostile length can never reach past
//! the bytes it came in. Errors carry the offset from the start of the input.

use std::fmt;

pub const BOOLEAN: u8 = 0x01;
pub const INTEGER: u8 = 0x02;
pub const BIT_STRING: u8 = 0x03;
pub const OCTET_STRING: u8 = 0x04;
pub const OID: u8 = 0x06;
pub const UTC_TIME: u8 = 0x17;
pub const GENERALIZED_TIME: u8 = 0x18;
pub const SEQUENCE: u8 = 0x30;
pub const SET: u8 = 0x31;

/// Context-specific tag `n`, constructed (`[n] EXPLICIT`, or an implicit
/// SEQUENCE).
pub const fn context(n: u8) -> u8 {
    0xa0 | n
}

/// Context-specific tag `n`, primitive (an `[n] IMPLICIT` string).
pub const fn context_primitive(n: u8) -> u8 {
    0x80 | n
}

/// What was wrong, and where (bytes from the start of the input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerError {
    pub offset: usize,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The input ends inside `what`.
    Truncated { what: &'static str },
    /// An indefinite, non-minimal or oversized length.
    BadLength { what: &'static str },
    /// A multi-byte tag: nothing the loader reads uses one.
    LongTag { what: &'static str },
    UnexpectedTag {
        what: &'static str,
        expected: u8,
        found: u8,
    },
    /// Bytes left over inside `what` after its last field.
    Trailing { what: &'static str },
    /// The right tag with content that is not a valid value of its type.
    BadValue { what: &'static str },
}

impl fmt::Display for DerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.offset;
        match &self.problem {
            Problem::Truncated { what } => write!(f, "{what} is cut short at byte {at}"),
            Problem::BadLength { what } => write!(
                f,
                "{what} at byte {at} has an indefinite, non-minimal or oversized length"
            ),
            Problem::LongTag { what } => {
                write!(f, "{what} at byte {at} has a multi-byte tag")
            }
            Problem::UnexpectedTag {
                what,
                expected,
                found,
            } => write!(
                f,
                "expected {what} (tag {expected:#04x}) at byte {at}, found tag {found:#04x}"
            ),
            Problem::Trailing { what } => {
                write!(f, "unexpected bytes at byte {at}, after the end of {what}")
            }
            Problem::BadValue { what } => write!(f, "{what} at byte {at} is malformed"),
        }
    }
}

impl std::error::Error for DerError {}

/// The elements of one constructed value (or of the whole input), read in
/// order.
#[derive(Clone, Copy, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    /// Offset of `buf` in the whole input, for error positions.
    base: usize,
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader {
            buf,
            base: 0,
            pos: 0,
        }
    }

    /// Offset of the next unread byte in the whole input.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// The unread bytes: the content of a primitive value.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    pub fn peek_tag(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    pub fn error(&self, problem: Problem) -> DerError {
        DerError {
            offset: self.offset(),
            problem,
        }
    }

    /// The next element, whatever its tag: (tag, a reader over its content,
    /// the whole element's bytes).
    pub fn any(&mut self, what: &'static str) -> Result<(u8, Reader<'a>, &'a [u8]), DerError> {
        let start = self.pos;
        let at = |pos: usize, problem| DerError {
            offset: self.base + pos,
            problem,
        };
        let rest = self.buf.get(start..).unwrap_or_default();
        let (tag, first, after) = match rest {
            [tag, first, after @ ..] => (*tag, *first, after),
            _ => return Err(at(start, Problem::Truncated { what })),
        };
        if tag & 0x1f == 0x1f {
            return Err(at(start, Problem::LongTag { what }));
        }
        let (len, len_bytes) = if first < 0x80 {
            (usize::from(first), 0)
        } else {
            let count = usize::from(first & 0x7f);
            // 0x80 is BER's indefinite form; more than 4 bytes is beyond any
            // input the loader reads.
            if count == 0 || count > 4 {
                return Err(at(start, Problem::BadLength { what }));
            }
            let digits = after
                .get(..count)
                .ok_or_else(|| at(start, Problem::Truncated { what }))?;
            let len = digits
                .iter()
                .fold(0usize, |len, &b| (len << 8) | usize::from(b));
            // DER: the shortest form, so no leading zero byte and no long
            // form for lengths under 128.
            if digits.first() == Some(&0) || len < 0x80 {
                return Err(at(start, Problem::BadLength { what }));
            }
            (len, count)
        };
        let content_start = start + 2 + len_bytes;
        let end = content_start
            .checked_add(len)
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| at(start, Problem::Truncated { what }))?;
        let content = self.buf.get(content_start..end).unwrap_or_default();
        let whole = self.buf.get(start..end).unwrap_or_default();
        self.pos = end;
        Ok((
            tag,
            Reader {
                buf: content,
                base: self.base + content_start,
                pos: 0,
            },
            whole,
        ))
    }

    /// The next element, which must have `tag`.
    pub fn expect(&mut self, tag: u8, what: &'static str) -> Result<Reader<'a>, DerError> {
        let found = self
            .peek_tag()
            .ok_or_else(|| self.error(Problem::Truncated { what }))?;
        if found != tag {
            return Err(self.error(Problem::UnexpectedTag {
                what,
                expected: tag,
                found,
            }));
        }
        Ok(self.any(what)?.1)
    }

    /// The next element if it has `tag` (an OPTIONAL or DEFAULT field).
    pub fn optional(
        &mut self,
        tag: u8,
        what: &'static str,
    ) -> Result<Option<Reader<'a>>, DerError> {
        if self.peek_tag() == Some(tag) {
            self.expect(tag, what).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Fails when bytes are left after the last field of `what`.
    pub fn finish(&self, what: &'static str) -> Result<(), DerError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(self.error(Problem::Trailing { what }))
        }
    }

    /// An OBJECT IDENTIFIER in dotted form.
    pub fn oid(&mut self, what: &'static str) -> Result<String, DerError> {
        let content = self.expect(OID, what)?;
        oid_string(content.rest()).ok_or_else(|| content.error(Problem::BadValue { what }))
    }

    /// A BOOLEAN. BER's any-nonzero TRUE is accepted: some encoders write it.
    pub fn boolean(&mut self, what: &'static str) -> Result<bool, DerError> {
        let content = self.expect(BOOLEAN, what)?;
        match content.rest() {
            [b] => Ok(*b != 0),
            _ => Err(content.error(Problem::BadValue { what })),
        }
    }

    /// A BIT STRING's bits as bytes, with its count of unused trailing bits.
    pub fn bit_string(&mut self, what: &'static str) -> Result<(u8, &'a [u8]), DerError> {
        let content = self.expect(BIT_STRING, what)?;
        match content.rest() {
            [unused, bits @ ..] if *unused < 8 && (*unused == 0 || !bits.is_empty()) => {
                Ok((*unused, bits))
            }
            _ => Err(content.error(Problem::BadValue { what })),
        }
    }

    /// An INTEGER's two's-complement bytes, as encoded (non-empty).
    pub fn integer(&mut self, what: &'static str) -> Result<&'a [u8], DerError> {
        let content = self.expect(INTEGER, what)?;
        match content.rest() {
            [] => Err(content.error(Problem::BadValue { what })),
            bytes => Ok(bytes),
        }
    }
}

/// Dotted form of an OID's content octets (X.690 8.19), or None when they
/// are not a valid encoding (empty, an unterminated arc, a padded arc, or an
/// arc beyond 64 bits).
pub fn oid_string(content: &[u8]) -> Option<String> {
    if content.is_empty() || content.last().is_some_and(|b| b & 0x80 != 0) {
        return None;
    }
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    let mut fresh = true;
    for &b in content {
        if fresh && b == 0x80 {
            return None;
        }
        value = value.checked_mul(128)?.checked_add(u64::from(b & 0x7f))?;
        fresh = b & 0x80 == 0;
        if fresh {
            arcs.push(value);
            value = 0;
        }
    }
    let first = *arcs.first()?;
    let (a, b) = match first {
        0..=39 => (0, first),
        40..=79 => (1, first - 40),
        _ => (2, first - 80),
    };
    let mut out = format!("{a}.{b}");
    for arc in arcs.iter().skip(1) {
        out.push('.');
        out.push_str(&arc.to_string());
    }
    Some(out)
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
    fn oids() {
        assert_eq!(
            oid_string(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b]).unwrap(),
            "1.2.840.113549.1.1.11"
        );
        assert_eq!(oid_string(&[0x55, 0x1d, 0x0e]).unwrap(), "2.5.29.14");
        assert_eq!(oid_string(&[0x2b, 0x65, 0x70]).unwrap(), "1.3.101.112");
        assert_eq!(oid_string(&[0x88, 0x37, 0x01]).unwrap(), "2.999.1");
        assert_eq!(oid_string(&[]), None);
        assert_eq!(oid_string(&[0x2a, 0x86]), None, "unterminated arc");
        assert_eq!(oid_string(&[0x2a, 0x80, 0x01]), None, "padded arc");
        assert_eq!(
            oid_string(&[0xff; 11].iter().chain(&[1]).copied().collect::<Vec<_>>()),
            None
        );
    }

    #[test]
    fn lengths_must_be_definite_minimal_and_inside_the_parent() {
        let read = |bytes: &[u8]| {
            Reader::new(bytes)
                .any("x")
                .map(|(t, c, _)| (t, c.rest().to_vec()))
        };
        assert_eq!(read(&[0x04, 0x02, 1, 2]).unwrap(), (0x04, vec![1, 2]));
        assert_eq!(
            read(&[0x04, 0x81, 0x80]).unwrap_err().problem,
            Problem::Truncated { what: "x" }
        );
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend([0; 0x80]);
        assert_eq!(read(&long).unwrap().1.len(), 0x80);
        for bad in [
            &[0x04, 0x80][..],
            &[0x04, 0x81, 0x05, 1, 2, 3, 4, 5],
            &[0x04, 0x82, 0x00, 0x80],
            &[0x04, 0x85, 1, 1, 1, 1, 1],
        ] {
            assert_eq!(
                read(bad).unwrap_err().problem,
                Problem::BadLength { what: "x" },
                "{bad:02x?}"
            );
        }
        assert_eq!(
            read(&[0x1f, 0x01, 0x00]).unwrap_err().problem,
            Problem::LongTag { what: "x" }
        );
        assert_eq!(
            read(&[0x04]).unwrap_err().problem,
            Problem::Truncated { what: "x" }
        );
        // A child cannot reach past its parent.
        let mut outer = Reader::new(&[0x30, 0x02, 0x04, 0x05, 1, 2, 3, 4, 5]);
        let mut inner = outer.expect(SEQUENCE, "outer").unwrap();
        let e = inner.expect(OCTET_STRING, "inner").unwrap_err();
        assert_eq!(
            (e.offset, e.problem),
            (2, Problem::Truncated { what: "inner" })
        );
    }

    #[test]
    fn errors_name_the_field_and_offset() {
        let mut r = Reader::new(&[0x30, 0x03, 0x02, 0x01, 0x05, 0xff]);
        let mut seq = r.expect(SEQUENCE, "certificate").unwrap();
        let e = seq.oid("algorithm").unwrap_err();
        assert_eq!(
            e.to_string(),
            "expected algorithm (tag 0x06) at byte 2, found tag 0x02"
        );
        assert_eq!(seq.integer("serial").unwrap(), &[5]);
        seq.finish("certificate").unwrap();
        assert_eq!(
            r.finish("the input").unwrap_err().to_string(),
            "unexpected bytes at byte 5, after the end of the input"
        );
    }

    #[test]
    fn primitive_values() {
        let mut r = Reader::new(&[
            0x01, 0x01, 0xff, 0x01, 0x01, 0x00, 0x03, 0x02, 0x05, 0xa0, 0x03, 0x01, 0x08, 0x01,
            0x02, 0, 0,
        ]);
        assert!(r.boolean("a").unwrap());
        assert!(!r.boolean("b").unwrap());
        assert_eq!(r.bit_string("c").unwrap(), (5, &[0xa0][..]));
        assert_eq!(
            r.bit_string("d").unwrap_err().problem,
            Problem::BadValue { what: "d" }
        );
        assert_eq!(
            r.boolean("e").unwrap_err().problem,
            Problem::BadValue { what: "e" }
        );
    }
}
