//! Hex text: how Names, PCR values and digests are written in the
//! configuration, in /run records and in messages.

/// Lower-case hex digits of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digit = |n: u8| char::from(DIGITS.get(usize::from(n)).copied().unwrap_or(b'?'));
    bytes
        .iter()
        .flat_map(|&b| [digit(b >> 4), digit(b & 0xf)])
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Not 2 × N bytes of text.
    Length,
    /// The pair of characters at this byte offset is not two hex digits.
    NotHex { offset: usize },
}

/// Exactly `N` bytes from `2 × N` hex digits, either case.
pub fn decode<const N: usize>(text: &str) -> Result<[u8; N], DecodeError> {
    let text = text.as_bytes();
    if text.len() != 2 * N {
        return Err(DecodeError::Length);
    }
    let nibble = |b: &u8| {
        char::from(*b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let mut out = [0u8; N];
    for (i, (byte, pair)) in out.iter_mut().zip(text.chunks_exact(2)).enumerate() {
        let (Some(h), Some(l)) = (pair.first().and_then(nibble), pair.get(1).and_then(nibble))
        else {
            return Err(DecodeError::NotHex { offset: 2 * i });
        };
        *byte = h << 4 | l;
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reports_where() {
        let bytes = [0x00, 0x0b, 0xa5, 0xff];
        assert_eq!(encode(&bytes), "000ba5ff");
        assert_eq!(decode::<4>("000ba5ff").unwrap(), bytes);
        assert_eq!(decode::<4>("000BA5FF").unwrap(), bytes);
        assert_eq!(decode::<4>("000ba5f"), Err(DecodeError::Length));
        assert_eq!(
            decode::<4>("000bx5ff"),
            Err(DecodeError::NotHex { offset: 4 })
        );
        assert_eq!(decode::<2>("0é"), Err(DecodeError::Length));
        assert_eq!(decode::<2>("00é"), Err(DecodeError::NotHex { offset: 2 }));
    }
}
