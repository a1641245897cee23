//! Helpers shared by the fuzz targets: a cursor that turns fuzz bytes into
//! choices, the `@@name` sections some targets split their input into, PEM
//! armour, and a scripted TPM transport.

use integrity_loader::tpm::tcti;
use integrity_loader::tpm::transport::{Transport, TransportError};

/// Reads choices from fuzz input. Past the end every read gives zeros or
/// nothing, so a short input is a valid input with default choices. It owns
/// its copy of the input so a scripted transport can keep reading from it.
pub struct Input {
    data: Vec<u8>,
    pos: usize,
}

impl Input {
    pub fn new(data: &[u8]) -> Input {
        Input {
            data: data.to_vec(),
            pos: 0,
        }
    }

    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos = (self.pos + 1).min(self.data.len());
        b
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let end = self.pos.saturating_add(n).min(self.data.len());
        let out = self.data[self.pos..end].to_vec();
        self.pos = end;
        out
    }

    /// Bytes whose count is the next byte.
    pub fn short_bytes(&mut self) -> Vec<u8> {
        let n = usize::from(self.u8());
        self.bytes(n)
    }

    pub fn rest(&mut self) -> Vec<u8> {
        self.bytes(usize::MAX)
    }
}

/// Splits text of the form `@@name\n<body>\n@@name\n<body>...` into its
/// sections. A body runs to the newline before the next `@@` at the start
/// of a line (or to the end); bytes before the first `@@` are ignored.
pub fn sections(data: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut starts = Vec::new();
    if data.starts_with(b"@@") {
        starts.push(0);
    }
    for i in 0..data.len() {
        if data[i] == b'\n' && data[i + 1..].starts_with(b"@@") {
            starts.push(i + 1);
        }
    }
    let mut out = Vec::new();
    for (k, &start) in starts.iter().enumerate() {
        // End of this section: the newline before the next one.
        let end = starts.get(k + 1).map_or(data.len(), |&next| next - 1);
        let section = &data[start + 2..end.max(start + 2)];
        match section.iter().position(|&b| b == b'\n') {
            Some(nl) => out.push((&section[..nl], &section[nl + 1..])),
            None => out.push((section, &[][..])),
        }
    }
    out
}

/// `-----BEGIN label-----`, base64 in lines of `width` characters, `-----END label-----`.
pub fn armor(label: &str, der: &[u8], width: usize) -> Vec<u8> {
    integrity_loader::pem::encode(label, der, width).into_bytes()
}

/// The error a scripted transport gives when it has nothing more to say.
pub fn closed() -> TransportError {
    TransportError::Closed {
        tpm: tcti::parse("swtpm:path=/fuzz/tpm.sock").expect("a valid tcti"),
    }
}

/// A TPM that gives the same answer to every command, as the real
/// transports would hand it over: at most 4096 bytes.
pub struct Replay(pub Vec<u8>);

impl Transport for Replay {
    fn transact(&mut self, _command: &[u8]) -> Result<Vec<u8>, TransportError> {
        if self.0.len() > 4096 {
            return Err(closed());
        }
        Ok(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_sections() {
        let s = sections(b"junk\n@@a\none\ntwo\n@@b\n@@c\nx");
        assert_eq!(
            s,
            vec![
                (&b"a"[..], &b"one\ntwo"[..]),
                (&b"b"[..], &b""[..]),
                (&b"c"[..], &b"x"[..])
            ]
        );
    }
}
