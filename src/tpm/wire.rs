//! Big-endian byte building and bounded reading for TPM command and
//! response framing. Every read is checked against what remains: a length
//! that came from the TPM never indexes or allocates past the response.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Truncated {
    pub wanted: usize,
    pub left: usize,
}

impl fmt::Display for Truncated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "truncated: {} bytes needed, {} left",
            self.wanted, self.left
        )
    }
}

#[derive(Debug, Default, Clone)]
pub struct Writer(Vec<u8>);

impl Writer {
    pub fn new() -> Writer {
        Writer(Vec::with_capacity(256))
    }
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
    /// A TPM2B: u16 size then the bytes. Callers keep sizes far below 64 KiB.
    pub fn tpm2b(&mut self, b: &[u8]) -> &mut Self {
        self.u16(u16::try_from(b.len()).unwrap_or(u16::MAX));
        self.bytes(b)
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Truncated> {
        if n > self.buf.len() {
            return Err(Truncated {
                wanted: n,
                left: self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    pub fn u8(&mut self) -> Result<u8, Truncated> {
        let b = self.take(1)?;
        Ok(b.first().copied().unwrap_or(0))
    }
    pub fn u16(&mut self) -> Result<u16, Truncated> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes(b.try_into().unwrap_or([0; 2])))
    }
    pub fn u32(&mut self) -> Result<u32, Truncated> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes(b.try_into().unwrap_or([0; 4])))
    }
    /// A TPM2B's data (the size is read and checked against what is left).
    pub fn tpm2b(&mut self) -> Result<&'a [u8], Truncated> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }
    /// A TPM2B with its size prefix, as stored in key files.
    pub fn tpm2b_with_size(&mut self) -> Result<&'a [u8], Truncated> {
        let whole = self.buf;
        let n = usize::from(self.u16()?);
        self.take(n)?;
        Ok(whole.get(..n + 2).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_bounds() {
        let mut w = Writer::new();
        w.u16(0x8001).u32(12).tpm2b(b"abc").u8(7);
        let bytes = w.into_vec();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u16().unwrap(), 0x8001);
        assert_eq!(r.u32().unwrap(), 12);
        assert_eq!(r.tpm2b().unwrap(), b"abc");
        assert_eq!(r.u8().unwrap(), 7);
        assert_eq!(r.u8(), Err(Truncated { wanted: 1, left: 0 }));
        // A size larger than what is left is refused, not trusted.
        let mut r = Reader::new(&[0xff, 0xff, 1, 2]);
        assert_eq!(
            r.tpm2b(),
            Err(Truncated {
                wanted: 0xffff,
                left: 2
            })
        );
        let mut r = Reader::new(&[0, 2, 9, 9, 5]);
        assert_eq!(r.tpm2b_with_size().unwrap(), &[0, 2, 9, 9]);
        assert_eq!(r.rest(), &[5]);
    }
}
