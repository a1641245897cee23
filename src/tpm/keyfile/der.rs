//! A strict DER reader for the TPMKey grammar, and the tags and OIDs it uses.

use super::error::{DerProblem, KeyFileError};

pub(super) const OID_SEALED_DATA: &str = "2.23.133.10.1.5";
pub(super) const OID_LOADABLE_KEY: &str = "2.23.133.10.1.3";
/// DER content of 2.23.133.10.1.5.
pub(super) const OID_SEALED_DATA_DER: [u8; 6] = [0x67, 0x81, 0x05, 0x0a, 0x01, 0x05];

pub(super) const BOOLEAN: u8 = 0x01;
pub(super) const INTEGER: u8 = 0x02;
pub(super) const OCTET_STRING: u8 = 0x04;
pub(super) const OBJECT_ID: u8 = 0x06;
pub(super) const UTF8_STRING: u8 = 0x0c;
pub(super) const SEQUENCE: u8 = 0x30;
/// `[n] EXPLICIT`: context-specific, constructed.
pub(super) const EXPLICIT: u8 = 0xa0;

/// A DER cursor; `base` is where `buf` starts in the whole input, for error offsets.
pub(super) struct Der<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Der<'a> {
    pub(super) fn new(buf: &'a [u8], base: usize) -> Self {
        Der { buf, pos: 0, base }
    }

    pub(super) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(super) fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    pub(super) fn err(&self, problem: DerProblem) -> KeyFileError {
        KeyFileError::Der {
            offset: self.base + self.pos,
            problem,
        }
    }

    pub(super) fn byte(&mut self) -> Result<u8, KeyFileError> {
        let b = self
            .peek()
            .ok_or(self.err(DerProblem::Truncated { need: 1, have: 0 }))?;
        self.pos += 1;
        Ok(b)
    }

    /// Reads one element, which must be tagged `tag`; returns a cursor over its content.
    pub(super) fn expect(&mut self, tag: u8, what: &'static str) -> Result<Der<'a>, KeyFileError> {
        let found = self.peek();
        if found != Some(tag) {
            return Err(self.err(DerProblem::Expected { what, found }));
        }
        self.pos += 1;
        let first = self.byte()?;
        let len = match first {
            0..0x80 => usize::from(first),
            0x80 => return Err(self.err(DerProblem::Indefinite)),
            0x81..=0x84 => {
                let count = usize::from(first & 0x7f);
                let mut len = 0usize;
                for _ in 0..count {
                    len = len << 8 | usize::from(self.byte()?);
                }
                // Long form only from 128 on, without leading zero bytes.
                if len < 0x80 || len >> (8 * (count - 1)) == 0 {
                    return Err(self.err(DerProblem::NonMinimalLength(len)));
                }
                len
            }
            _ => return Err(self.err(DerProblem::HugeLength)),
        };
        let have = self.remaining();
        let end = self.pos.saturating_add(len);
        let content = self
            .buf
            .get(self.pos..end)
            .ok_or(self.err(DerProblem::Truncated { need: len, have }))?;
        let inner = Der::new(content, self.base + self.pos);
        self.pos = end;
        Ok(inner)
    }

    /// `[n] EXPLICIT` around exactly one element tagged `tag`.
    pub(super) fn explicit(
        &mut self,
        n: u8,
        tag: u8,
        what: &'static str,
    ) -> Result<Der<'a>, KeyFileError> {
        let mut wrapper = self.expect(EXPLICIT | n, what)?;
        let inner = wrapper.expect(tag, what)?;
        wrapper.finish(what)?;
        Ok(inner)
    }

    /// The content of an element tagged `tag`.
    pub(super) fn bytes(&mut self, tag: u8, what: &'static str) -> Result<Vec<u8>, KeyFileError> {
        Ok(self.expect(tag, what)?.rest().to_vec())
    }

    pub(super) fn finish(&self, what: &'static str) -> Result<(), KeyFileError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(self.err(DerProblem::Leftover { what, count })),
        }
    }
}

pub(super) fn boolean(content: &Der<'_>, what: &'static str) -> Result<bool, KeyFileError> {
    match content.rest() {
        [b] => Ok(*b != 0),
        _ => Err(content.err(DerProblem::Boolean(what))),
    }
}

/// A non-negative, minimally encoded INTEGER that fits 32 bits.
pub(super) fn uint32(content: &Der<'_>, what: &'static str) -> Result<u32, KeyFileError> {
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
        _ => Err(content.err(DerProblem::Integer(what))),
    }
}

/// Dotted form of an OBJECT IDENTIFIER's content (at most 32 bytes).
pub(super) fn decode_oid(content: &Der<'_>) -> Result<String, KeyFileError> {
    let bytes = content.rest();
    let bad = || content.err(DerProblem::Oid);
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
