//! The one DER reader, for the ASN.1 the loader reads itself: TSS2 key files
//! and X.509 certificates. Strict: definite lengths of at most 4 bytes in
//! their shortest form, and every element bounded by its parent, so a
//! hostile length never reaches past the bytes it came in. Errors carry the
//! offset from the start of the whole input where reading stopped.

use std::fmt;

pub const BOOLEAN: u8 = 0x01;
pub const INTEGER: u8 = 0x02;
pub const BIT_STRING: u8 = 0x03;
pub const OCTET_STRING: u8 = 0x04;
pub const OBJECT_ID: u8 = 0x06;
pub const UTF8_STRING: u8 = 0x0c;
pub const UTC_TIME: u8 = 0x17;
pub const GENERALIZED_TIME: u8 = 0x18;
pub const SEQUENCE: u8 = 0x30;
pub const SET: u8 = 0x31;
/// `[n] EXPLICIT` (or an implicit constructed field): context-specific,
/// constructed; `EXPLICIT | n`.
pub const EXPLICIT: u8 = 0xa0;
/// `[n] IMPLICIT` of a primitive type: `IMPLICIT | n`.
pub const IMPLICIT: u8 = 0x80;

/// What was wrong, and where (bytes from the start of the whole input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerError {
    pub offset: usize,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Truncated {
        need: usize,
        have: usize,
    },
    Indefinite,
    HugeLength,
    NonMinimalLength(usize),
    Expected {
        what: &'static str,
        found: Option<u8>,
    },
    Integer(&'static str),
    Boolean(&'static str),
    Oid,
    Leftover {
        what: &'static str,
        count: usize,
    },
    /// The right tag with content that is no valid value of its type.
    Value(&'static str),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Problem::*;
        match self {
            Truncated { need, have } => write!(f, "truncated: {need} bytes needed, {have} left"),
            Indefinite => write!(f, "indefinite length (BER, not DER)"),
            HugeLength => write!(f, "length field wider than 4 bytes"),
            NonMinimalLength(len) => write!(f, "length {len} is not minimally encoded"),
            Expected {
                what,
                found: Some(tag),
            } => write!(f, "expected {what}, found 0x{tag:02x}"),
            Expected { what, found: None } => write!(f, "expected {what}, found the end"),
            Integer(what) => write!(f, "{what} is not a DER INTEGER in 0..=0xffffffff"),
            Boolean(what) => write!(f, "{what} is not a one-byte BOOLEAN"),
            Oid => write!(f, "malformed OBJECT IDENTIFIER"),
            Leftover { what, count } => {
                let s = if *count == 1 { "" } else { "s" };
                write!(f, "{count} stray byte{s} in {what}")
            }
            Value(what) => write!(f, "{what} is malformed"),
        }
    }
}

impl fmt::Display for DerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.problem)
    }
}

impl std::error::Error for DerError {}

/// A cursor over the elements of one constructed value (or of the whole
/// input); `base` is where `buf` starts in the whole input.
#[derive(Debug, Clone, Copy)]
pub struct Der<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Der<'a> {
    pub fn new(buf: &'a [u8], base: usize) -> Self {
        Der { buf, pos: 0, base }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread bytes: the content of a primitive value.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    pub fn err(&self, problem: Problem) -> DerError {
        DerError {
            offset: self.base + self.pos,
            problem,
        }
    }

    fn byte(&mut self) -> Result<u8, DerError> {
        let b = self
            .peek()
            .ok_or(self.err(Problem::Truncated { need: 1, have: 0 }))?;
        self.pos += 1;
        Ok(b)
    }

    /// The length after a tag, then a cursor over that many bytes of content.
    fn content(&mut self) -> Result<Der<'a>, DerError> {
        let first = self.byte()?;
        let len = match first {
            0..0x80 => usize::from(first),
            0x80 => return Err(self.err(Problem::Indefinite)),
            0x81..=0x84 => {
                let count = usize::from(first & 0x7f);
                let mut len = 0usize;
                for _ in 0..count {
                    len = len << 8 | usize::from(self.byte()?);
                }
                // Long form only from 128 on, without leading zero bytes.
                if len < 0x80 || len >> (8 * (count - 1)) == 0 {
                    return Err(self.err(Problem::NonMinimalLength(len)));
                }
                len
            }
            _ => return Err(self.err(Problem::HugeLength)),
        };
        let have = self.remaining();
        let end = self.pos.saturating_add(len);
        let content = self
            .buf
            .get(self.pos..end)
            .ok_or(self.err(Problem::Truncated { need: len, have }))?;
        let inner = Der::new(content, self.base + self.pos);
        self.pos = end;
        Ok(inner)
    }

    /// Reads one element, which must be tagged `tag`; returns a cursor over
    /// its content.
    pub fn expect(&mut self, tag: u8, what: &'static str) -> Result<Der<'a>, DerError> {
        let found = self.peek();
        if found != Some(tag) {
            return Err(self.err(Problem::Expected { what, found }));
        }
        self.pos += 1;
        self.content()
    }

    /// The next element whatever its tag: the tag, a cursor over its
    /// content, and the whole element's bytes.
    pub fn any(&mut self, what: &'static str) -> Result<(u8, Der<'a>, &'a [u8]), DerError> {
        let start = self.pos;
        let tag = self
            .peek()
            .ok_or(self.err(Problem::Expected { what, found: None }))?;
        self.pos += 1;
        let content = self.content()?;
        Ok((
            tag,
            content,
            self.buf.get(start..self.pos).unwrap_or_default(),
        ))
    }

    /// The next element if it is tagged `tag` (an OPTIONAL or DEFAULT field).
    pub fn optional(&mut self, tag: u8, what: &'static str) -> Result<Option<Der<'a>>, DerError> {
        if self.peek() == Some(tag) {
            self.expect(tag, what).map(Some)
        } else {
            Ok(None)
        }
    }

    /// `[n] EXPLICIT` around exactly one element tagged `tag`.
    pub fn explicit(&mut self, n: u8, tag: u8, what: &'static str) -> Result<Der<'a>, DerError> {
        let mut wrapper = self.expect(EXPLICIT | n, what)?;
        let inner = wrapper.expect(tag, what)?;
        wrapper.finish(what)?;
        Ok(inner)
    }

    /// The content of an element tagged `tag`.
    pub fn bytes(&mut self, tag: u8, what: &'static str) -> Result<Vec<u8>, DerError> {
        Ok(self.expect(tag, what)?.rest().to_vec())
    }

    /// Fails when bytes are left after the last field of `what`.
    pub fn finish(&self, what: &'static str) -> Result<(), DerError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(self.err(Problem::Leftover { what, count })),
        }
    }

    /// An OBJECT IDENTIFIER, in dotted form.
    pub fn oid(&mut self, what: &'static str) -> Result<String, DerError> {
        decode_oid(&self.expect(OBJECT_ID, what)?)
    }

    /// A BOOLEAN.
    pub fn boolean(&mut self, what: &'static str) -> Result<bool, DerError> {
        boolean(&self.expect(BOOLEAN, what)?, what)
    }

    /// A BIT STRING's bytes, with its count of unused trailing bits.
    pub fn bit_string(&mut self, what: &'static str) -> Result<(u8, &'a [u8]), DerError> {
        let content = self.expect(BIT_STRING, what)?;
        match content.rest() {
            [unused, bits @ ..] if *unused < 8 && (*unused == 0 || !bits.is_empty()) => {
                Ok((*unused, bits))
            }
            _ => Err(content.err(Problem::Value(what))),
        }
    }

    /// An INTEGER's two's-complement bytes as encoded (not empty).
    pub fn integer(&mut self, what: &'static str) -> Result<&'a [u8], DerError> {
        let content = self.expect(INTEGER, what)?;
        match content.rest() {
            [] => Err(content.err(Problem::Integer(what))),
            bytes => Ok(bytes),
        }
    }
}

/// A BOOLEAN's content. BER's any-nonzero TRUE is taken: tpm2-tools writes
/// it.
pub fn boolean(content: &Der<'_>, what: &'static str) -> Result<bool, DerError> {
    match content.rest() {
        [b] => Ok(*b != 0),
        _ => Err(content.err(Problem::Boolean(what))),
    }
}

/// A non-negative, minimally encoded INTEGER that fits 32 bits.
pub fn uint32(content: &Der<'_>, what: &'static str) -> Result<u32, DerError> {
    let digits = match content.rest() {
        [0] => Some(&[][..]),
        [0, rest @ ..] if rest.first().is_some_and(|b| b & 0x80 != 0) => Some(rest),
        digits @ [first, ..] if *first != 0 && first & 0x80 == 0 => Some(digits),
        _ => None, // empty, padded or negative
    };
    match digits {
        Some(digits) if digits.len() <= 4 => {
            Ok(digits.iter().fold(0, |v, &d| v << 8 | u32::from(d)))
        }
        _ => Err(content.err(Problem::Integer(what))),
    }
}

/// Dotted form of an OBJECT IDENTIFIER's content (at most 32 bytes).
pub fn decode_oid(content: &Der<'_>) -> Result<String, DerError> {
    let bytes = content.rest();
    let bad = || content.err(Problem::Oid);
    if bytes.is_empty() || bytes.len() > 32 || bytes.last().is_some_and(|b| b & 0x80 != 0) {
        return Err(bad());
    }
    let (mut dotted, mut arc, mut start) = (String::new(), 0u64, true);
    for &b in bytes {
        if start && b == 0x80 || arc > u64::MAX >> 7 {
            return Err(bad()); // a leading zero septet is not minimal
        }
        arc = arc << 7 | u64::from(b & 0x7f);
        start = b & 0x80 == 0;
        if start {
            if dotted.is_empty() {
                let first = arc.min(80) / 40;
                dotted = format!("{first}.{}", arc - first * 40);
            } else {
                dotted = format!("{dotted}.{arc}");
            }
            arc = 0;
        }
    }
    Ok(dotted)
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

    fn oid(bytes: &[u8]) -> Option<String> {
        decode_oid(&Der::new(bytes, 0)).ok()
    }

    #[test]
    fn oids() {
        assert_eq!(
            oid(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b]).unwrap(),
            "1.2.840.113549.1.1.11"
        );
        assert_eq!(oid(&[0x55, 0x1d, 0x0e]).unwrap(), "2.5.29.14");
        assert_eq!(oid(&[0x2b, 0x65, 0x70]).unwrap(), "1.3.101.112");
        assert_eq!(oid(&[0x88, 0x37, 0x01]).unwrap(), "2.999.1");
        assert_eq!(oid(&[]), None);
        assert_eq!(oid(&[0x2a, 0x86]), None, "unterminated arc");
        assert_eq!(oid(&[0x2a, 0x80, 0x01]), None, "padded arc");
    }

    #[test]
    fn lengths_must_be_definite_minimal_and_inside_the_parent() {
        let read = |bytes: &[u8]| {
            Der::new(bytes, 0)
                .any("x")
                .map(|(t, c, _)| (t, c.rest().to_vec()))
                .map_err(|e| e.problem)
        };
        assert_eq!(read(&[0x04, 0x02, 1, 2]).unwrap(), (0x04, vec![1, 2]));
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend([0; 0x80]);
        assert_eq!(read(&long).unwrap().1.len(), 0x80);
        assert_eq!(read(&[0x04, 0x80]).unwrap_err(), Problem::Indefinite);
        assert_eq!(
            read(&[0x04, 0x81, 0x05, 1, 2, 3, 4, 5]).unwrap_err(),
            Problem::NonMinimalLength(5)
        );
        assert_eq!(
            read(&[0x04, 0x82, 0x00, 0x80]).unwrap_err(),
            Problem::NonMinimalLength(0x80)
        );
        assert_eq!(
            read(&[0x04, 0x85, 1, 1, 1, 1, 1]).unwrap_err(),
            Problem::HugeLength
        );
        assert_eq!(
            read(&[0x04, 0x81, 0x80]).unwrap_err(),
            Problem::Truncated {
                need: 0x80,
                have: 0
            }
        );
        // A child cannot reach past its parent.
        let mut outer = Der::new(&[0x30, 0x02, 0x04, 0x05, 1, 2, 3, 4, 5], 0);
        let mut inner = outer.expect(SEQUENCE, "outer").unwrap();
        let e = inner.expect(OCTET_STRING, "inner").unwrap_err();
        assert_eq!(
            (e.offset, e.problem),
            (4, Problem::Truncated { need: 5, have: 0 })
        );
    }

    #[test]
    fn errors_name_the_field_and_offset() {
        let mut r = Der::new(&[0x30, 0x03, 0x02, 0x01, 0x05, 0xff], 0);
        let mut seq = r.expect(SEQUENCE, "certificate").unwrap();
        let e = seq.oid("algorithm").unwrap_err();
        assert_eq!(e.to_string(), "at byte 2: expected algorithm, found 0x02");
        assert_eq!(seq.integer("serial").unwrap(), &[5]);
        seq.finish("certificate").unwrap();
        assert_eq!(
            r.finish("the input").unwrap_err().to_string(),
            "at byte 5: 1 stray byte in the input"
        );
    }

    #[test]
    fn primitive_values() {
        let bytes = [
            0x01, 0x01, 0xff, 0x01, 0x01, 0x00, 0x03, 0x02, 0x05, 0xa0, 0x03, 0x01, 0x08, 0x01,
            0x02, 0, 0,
        ];
        let mut r = Der::new(&bytes, 0);
        assert!(r.boolean("a").unwrap());
        assert!(!r.boolean("b").unwrap());
        assert_eq!(r.bit_string("c").unwrap(), (5, &[0xa0][..]));
        assert_eq!(r.bit_string("d").unwrap_err().problem, Problem::Value("d"));
        assert_eq!(r.boolean("e").unwrap_err().problem, Problem::Boolean("e"));
    }
}
