//! Base64 (RFC 4648, standard alphabet, `=` padding): the PEM body of
//! certificates and TSS2 key files. One strict decoder: a second spelling of
//! the same bytes (missing padding, non-zero unused bits) is refused.

pub const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64 of `data`, padded, in one line.
pub fn encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .zip([16, 8, 0])
            .fold(0u32, |n, (&b, at)| n | u32::from(b) << at);
        for i in 0..4 {
            let digit = (i <= chunk.len())
                .then(|| ALPHABET.get((n >> (18 - 6 * i) & 63) as usize))
                .flatten();
            out.push(digit.map_or('=', |&d| char::from(d)));
        }
    }
    out
}

/// Decodes `chars` (no whitespace): whole quads, padding only at the very end
/// and unused bits zero. The error is the index of the offending character.
pub fn decode(chars: &[u8]) -> Result<Vec<u8>, usize> {
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
            let v = ALPHABET.iter().position(|&a| a == c).ok_or(q * 4 + i)?;
            acc = (acc << 6) | v as u32;
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors_both_ways() {
        // RFC 4648 section 10, and the last two alphabet characters.
        for (plain, text) in [
            (b"".as_slice(), ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
            (b"\xfb\xff\xbf", "+/+/"),
        ] {
            assert_eq!(encode(plain), text);
            assert_eq!(decode(text.as_bytes()), Ok(plain.to_vec()), "{text}");
        }
    }

    #[test]
    fn second_spellings_are_refused_where_they_are() {
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
            ("Zm 9", 2),     // whitespace is the caller's to remove
        ] {
            assert_eq!(decode(text.as_bytes()), Err(pos), "{text}");
        }
    }
}
