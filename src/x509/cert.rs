//! The fields of an X.509 v3 certificate (RFC 5280 4.1) that intake checks
//! and the audit's signature checks use, read with the strict DER reader.
//! Everything else (issuer, serial, the signature itself) is only framed:
//! the kernel parses the whole certificate again and verifies its chain.

use crate::der::{self, Der, DerError, Problem};

/// One extension, its value still encoded.
pub struct Extension<'a> {
    pub oid: String,
    pub value: &'a [u8],
}

/// The subject's public key.
pub struct PublicKeyInfo<'a> {
    pub algorithm: String,
    /// The algorithm's parameters when they are a named curve's OID.
    pub named_curve: Option<String>,
    /// The subjectPublicKey BIT STRING's bytes.
    pub key: &'a [u8],
}

/// What a certificate says that the loader needs.
pub struct Parsed<'a> {
    /// The outer signatureAlgorithm.
    pub signature_algorithm: String,
    /// RFC 4514 style, in encoding order: `O=Example, CN=IMA signing key`.
    pub subject: String,
    /// Seconds since 1970.
    pub not_before: i64,
    pub not_after: i64,
    pub public_key: PublicKeyInfo<'a>,
    pub extensions: Vec<Extension<'a>>,
}

/// Parses one certificate that is exactly `der`.
pub fn parse(der: &[u8]) -> Result<Parsed<'_>, DerError> {
    let mut input = Der::new(der, 0);
    let mut cert = input.expect(der::SEQUENCE, "the certificate")?;
    input.finish("the certificate")?;
    let mut tbs = cert.expect(der::SEQUENCE, "tbsCertificate")?;
    let mut outer_alg = cert.expect(der::SEQUENCE, "signatureAlgorithm")?;
    let signature_algorithm = outer_alg.oid("signatureAlgorithm")?;
    cert.bit_string("signatureValue")?;
    cert.finish("the certificate")?;

    if let Some(mut version) = tbs.optional(der::EXPLICIT, "version")? {
        let v = version.integer("version")?;
        version.finish("version")?;
        if !matches!(v, [0..=2]) {
            return Err(version.err(Problem::Value("version")));
        }
    }
    tbs.integer("serialNumber")?;
    tbs.expect(der::SEQUENCE, "signature")?;
    tbs.expect(der::SEQUENCE, "issuer")?;
    let mut validity = tbs.expect(der::SEQUENCE, "validity")?;
    let not_before = time(&mut validity, "notBefore")?;
    let not_after = time(&mut validity, "notAfter")?;
    validity.finish("validity")?;
    let subject = name(tbs.expect(der::SEQUENCE, "subject")?)?;
    let public_key = public_key_info(tbs.expect(der::SEQUENCE, "subjectPublicKeyInfo")?)?;
    tbs.optional(der::IMPLICIT | 1, "issuerUniqueID")?;
    tbs.optional(der::IMPLICIT | 2, "subjectUniqueID")?;
    let mut extensions = Vec::new();
    if let Some(mut wrapper) = tbs.optional(der::EXPLICIT | 3, "extensions")? {
        let mut list = wrapper.expect(der::SEQUENCE, "extensions")?;
        wrapper.finish("extensions")?;
        while !list.is_empty() {
            let mut ext = list.expect(der::SEQUENCE, "extension")?;
            let oid = ext.oid("extnID")?;
            if ext.peek() == Some(der::BOOLEAN) {
                ext.boolean("critical")?;
            }
            let value = ext.expect(der::OCTET_STRING, "extnValue")?.rest();
            ext.finish("extension")?;
            extensions.push(Extension { oid, value });
        }
    }
    tbs.finish("tbsCertificate")?;
    Ok(Parsed {
        signature_algorithm,
        subject,
        not_before,
        not_after,
        public_key,
        extensions,
    })
}

/// A DER SubjectPublicKeyInfo that is exactly `der` (openssl's `-pubout`).
pub fn subject_public_key_info(der: &[u8]) -> Result<PublicKeyInfo<'_>, DerError> {
    let mut input = Der::new(der, 0);
    let spki = input.expect(der::SEQUENCE, "subjectPublicKeyInfo")?;
    input.finish("subjectPublicKeyInfo")?;
    public_key_info(spki)
}

fn public_key_info(mut spki: Der<'_>) -> Result<PublicKeyInfo<'_>, DerError> {
    let mut alg = spki.expect(der::SEQUENCE, "the public key's algorithm")?;
    let algorithm = alg.oid("the public key's algorithm")?;
    let named_curve = if alg.peek() == Some(der::OBJECT_ID) {
        Some(alg.oid("the named curve")?)
    } else {
        // NULL for RSA, or explicit curve parameters: framed, not read.
        if !alg.is_empty() {
            alg.any("the algorithm parameters")?;
        }
        None
    };
    alg.finish("the public key's algorithm")?;
    let (unused, key) = spki.bit_string("subjectPublicKey")?;
    if unused != 0 {
        return Err(spki.err(Problem::Value("subjectPublicKey")));
    }
    spki.finish("subjectPublicKeyInfo")?;
    Ok(PublicKeyInfo {
        algorithm,
        named_curve,
        key,
    })
}

/// An RSA public key's modulus and exponent, leading zero bytes removed
/// (RFC 8017 A.1.1).
pub fn rsa_public_key(key: &[u8]) -> Result<(&[u8], &[u8]), DerError> {
    let mut outer = Der::new(key, 0);
    let mut seq = outer.expect(der::SEQUENCE, "RSAPublicKey")?;
    outer.finish("RSAPublicKey")?;
    let modulus = strip_zeros(seq.integer("the modulus")?);
    let exponent = strip_zeros(seq.integer("the public exponent")?);
    seq.finish("RSAPublicKey")?;
    Ok((modulus, exponent))
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b.get(start..).unwrap_or_default()
}

/// subjectKeyIdentifier: an OCTET STRING.
pub fn subject_key_id(value: &[u8]) -> Result<&[u8], DerError> {
    let mut r = Der::new(value, 0);
    let id = r.expect(der::OCTET_STRING, "subjectKeyIdentifier")?.rest();
    r.finish("subjectKeyIdentifier")?;
    Ok(id)
}

/// keyUsage: (digitalSignature, keyCertSign), bits 0 and 5 of a BIT STRING.
pub fn key_usage(value: &[u8]) -> Result<(bool, bool), DerError> {
    let mut r = Der::new(value, 0);
    let (_, bits) = r.bit_string("keyUsage")?;
    r.finish("keyUsage")?;
    let first = bits.first().copied().unwrap_or(0);
    Ok((first & 0x80 != 0, first & 0x04 != 0))
}

/// basicConstraints: whether cA is TRUE.
pub fn is_ca(value: &[u8]) -> Result<bool, DerError> {
    let mut r = Der::new(value, 0);
    let mut seq = r.expect(der::SEQUENCE, "basicConstraints")?;
    r.finish("basicConstraints")?;
    let ca = if seq.peek() == Some(der::BOOLEAN) {
        seq.boolean("cA")?
    } else {
        false
    };
    seq.optional(der::INTEGER, "pathLenConstraint")?;
    seq.finish("basicConstraints")?;
    Ok(ca)
}

/// UTCTime (YYMMDDHHMMSSZ, years 1950-2049) or GeneralizedTime
/// (YYYYMMDDHHMMSSZ), the only forms RFC 5280 4.1.2.5 allows.
fn time(r: &mut Der<'_>, what: &'static str) -> Result<i64, DerError> {
    let bad = |r: &Der<'_>| r.err(Problem::Value(what));
    let (tag, content, _) = r.any(what)?;
    let text = content.rest();
    let (year, rest) = match (tag, text.len()) {
        (der::UTC_TIME, 13) => {
            let yy = digits(text.get(..2)).ok_or_else(|| bad(&content))?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, text.get(2..))
        }
        (der::GENERALIZED_TIME, 15) => (
            digits(text.get(..4)).ok_or_else(|| bad(&content))?,
            text.get(4..),
        ),
        (der::UTC_TIME | der::GENERALIZED_TIME, _) => return Err(bad(&content)),
        (found, _) => {
            return Err(content.err(Problem::Expected {
                what,
                found: Some(found),
            }));
        }
    };
    let rest = rest.unwrap_or_default();
    let field = |i: usize| digits(rest.get(i..i + 2));
    let (Some(month), Some(day), Some(hour), Some(min), Some(sec)) =
        (field(0), field(2), field(4), field(6), field(8))
    else {
        return Err(bad(&content));
    };
    if rest.get(10) != Some(&b'Z')
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || min > 59
        || sec > 60
    {
        return Err(bad(&content));
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec)
}

fn digits(text: Option<&[u8]>) -> Option<i64> {
    let text = text?;
    text.iter().try_fold(0i64, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
    })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (March-based years
/// in 400-year eras, so leap days fall at the end of a year).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Short names of the attributes seen in IMA/EVM certificate subjects.
const ATTRIBUTE_NAMES: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.4", "SN"),
    ("2.5.4.5", "serialNumber"),
    ("2.5.4.6", "C"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.9", "street"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.12", "title"),
    ("2.5.4.42", "GN"),
    ("1.2.840.113549.1.9.1", "emailAddress"),
    ("0.9.2342.19200300.100.1.1", "UID"),
    ("0.9.2342.19200300.100.1.25", "DC"),
];

/// A Name as text: RDNs in encoding order joined by ", ", the attributes of
/// one RDN by " + ". Values come from a hostile file and end up in logs, so
/// anything but printable ASCII is shown escaped.
fn name(mut rdns: Der<'_>) -> Result<String, DerError> {
    let mut out = String::new();
    while !rdns.is_empty() {
        let mut set = rdns.expect(der::SET, "a relative distinguished name")?;
        if !out.is_empty() {
            out.push_str(", ");
        }
        let mut first = true;
        while !set.is_empty() {
            let mut attr = set.expect(der::SEQUENCE, "a name attribute")?;
            let oid = attr.oid("a name attribute's type")?;
            let (tag, value, _) = attr.any("a name attribute's value")?;
            attr.finish("a name attribute")?;
            if !first {
                out.push_str(" + ");
            }
            first = false;
            let label = ATTRIBUTE_NAMES
                .iter()
                .find(|(o, _)| *o == oid)
                .map_or(oid.as_str(), |&(_, n)| n);
            out.push_str(label);
            out.push('=');
            push_value(&mut out, tag, value.rest());
        }
    }
    Ok(out)
}

fn push_value(out: &mut String, tag: u8, bytes: &[u8]) {
    const BMP_STRING: u8 = 0x1e;
    let text: String = match tag {
        BMP_STRING => char::decode_utf16(
            bytes
                .chunks(2)
                .map(|c| u16::from_be_bytes([*c.first().unwrap_or(&0), *c.get(1).unwrap_or(&0)])),
        )
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect(),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    };
    for c in text.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if c.is_control() {
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
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

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match content.len() {
            n @ 0..=127 => out.push(n as u8),
            n @ 128..=255 => out.extend([0x81, n as u8]),
            n => out.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend(content);
        out
    }

    fn parse_time(tag: u8, text: &str) -> Result<i64, DerError> {
        let bytes = tlv(tag, text.as_bytes());
        time(&mut Der::new(&bytes, 0), "t")
    }

    #[test]
    fn times() {
        assert_eq!(parse_time(der::UTC_TIME, "700101000000Z").unwrap(), 0);
        assert_eq!(
            parse_time(der::UTC_TIME, "491231235959Z").unwrap(),
            2_524_607_999
        );
        assert_eq!(
            parse_time(der::UTC_TIME, "500101000000Z").unwrap(),
            -631_152_000
        );
        assert_eq!(
            parse_time(der::GENERALIZED_TIME, "99991231235959Z").unwrap(),
            253_402_300_799
        );
        assert_eq!(
            parse_time(der::GENERALIZED_TIME, "20240229120000Z").unwrap(),
            1_709_208_000
        );
        for (tag, bad) in [
            (der::GENERALIZED_TIME, "20230229120000Z"),
            (der::UTC_TIME, "701301000000Z"),
            (der::UTC_TIME, "700100000000Z"),
            (der::UTC_TIME, "700101240000Z"),
            (der::UTC_TIME, "700101000000+0100"),
            (der::UTC_TIME, "7001010000Z"),
            (der::UTC_TIME, "70010100000 Z"),
            (der::GENERALIZED_TIME, "700101000000Z"),
        ] {
            assert!(parse_time(tag, bad).is_err(), "{bad}");
        }
        assert!(matches!(
            parse_time(der::OCTET_STRING, "700101000000Z")
                .unwrap_err()
                .problem,
            Problem::Expected { .. }
        ));
    }

    #[test]
    fn names_escape_what_a_log_must_not_take_raw() {
        let attr =
            |oid: &[u8], tag: u8, v: &[u8]| tlv(0x30, &[tlv(0x06, oid), tlv(tag, v)].concat());
        let rdn1 = tlv(0x31, &attr(&[0x55, 0x04, 0x0a], 0x0c, b"Acme"));
        let rdn2 = tlv(
            0x31,
            &[
                attr(&[0x55, 0x04, 0x03], 0x13, b"a\nb\\"),
                attr(&[0x55, 0x04, 0x63], 0x1e, &[0, b'x']),
            ]
            .concat(),
        );
        let seq = tlv(0x30, &[rdn1, rdn2].concat());
        let mut r = Der::new(&seq, 0);
        let shown = name(r.expect(der::SEQUENCE, "subject").unwrap()).unwrap();
        assert_eq!(shown, "O=Acme, CN=a\\x0ab\\\\ + 2.5.4.99=x");
    }

    #[test]
    fn extensions_values() {
        assert_eq!(key_usage(&[0x03, 0x02, 0x07, 0x80]).unwrap(), (true, false));
        assert_eq!(key_usage(&[0x03, 0x02, 0x01, 0x86]).unwrap(), (true, true));
        assert_eq!(key_usage(&[0x03, 0x01, 0x00]).unwrap(), (false, false));
        assert!(key_usage(&[0x04, 0x01, 0x00]).is_err());
        assert!(is_ca(&[0x30, 0x03, 0x01, 0x01, 0xff]).unwrap());
        assert!(!is_ca(&[0x30, 0x00]).unwrap());
        assert!(!is_ca(&[0x30, 0x03, 0x02, 0x01, 0x00]).unwrap());
        assert!(is_ca(&[0x30, 0x03, 0x01, 0x01]).is_err());
        assert!(is_ca(&[0x30, 0x03, 0x01, 0x01, 0xff, 0x00]).is_err());
        assert_eq!(subject_key_id(&[0x04, 0x02, 1, 2]).unwrap(), &[1, 2]);
        assert!(subject_key_id(&[0x04, 0x02, 1, 2, 3]).is_err());
    }
}
