//! The TSS2 key-file encoder, DER and PEM.

use super::der::*;
use super::tss2::PEM_LABEL;
use super::{Fields, SealedBlob};
use crate::pem;

/// DER of `blob` with OID 2.23.133.10.1.5, emptyAuth TRUE when set, and the optional
/// `fields` (present ones only). `public` and `private` are written as they are.
pub fn encode_tss2_der(blob: &SealedBlob, fields: Fields) -> Vec<u8> {
    let mut key = tlv(OBJECT_ID, &OID_SEALED_DATA_DER);
    if blob.empty_auth {
        put(&mut key, EXPLICIT, &[BOOLEAN, 1, 0xff]);
    }
    if fields == Fields::All && !blob.policy.is_empty() {
        let mut list = Vec::new();
        for command in &blob.policy {
            let mut one = tlv(EXPLICIT, &tlv(INTEGER, &integer(command.command_code)));
            put(
                &mut one,
                EXPLICIT | 1,
                &tlv(OCTET_STRING, &command.command_policy),
            );
            put(&mut list, SEQUENCE, &one);
        }
        put(&mut key, EXPLICIT | 1, &tlv(SEQUENCE, &list));
    }
    if let Some(text) = blob
        .description
        .as_deref()
        .filter(|_| fields == Fields::All)
    {
        put(&mut key, EXPLICIT | 4, &tlv(UTF8_STRING, text.as_bytes()));
    }
    put(&mut key, INTEGER, &integer(blob.parent));
    put(&mut key, OCTET_STRING, &blob.public);
    put(&mut key, OCTET_STRING, &blob.private);
    tlv(SEQUENCE, &key)
}

/// PEM of [`encode_tss2_der`], in 64-column lines.
pub fn encode_tss2_pem(blob: &SealedBlob, fields: Fields) -> String {
    pem::encode(PEM_LABEL, &encode_tss2_der(blob, fields), 64)
}

pub(super) fn put(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    match u8::try_from(content.len()) {
        Ok(short @ 0..0x80) => out.push(short),
        _ => {
            let len = content.len().to_be_bytes();
            let len = without_leading_zeros(&len);
            out.push(0x80 | len.len() as u8);
            out.extend_from_slice(len);
        }
    }
    out.extend_from_slice(content);
}

pub(super) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    put(&mut out, tag, content);
    out
}

pub(super) fn without_leading_zeros(bytes: &[u8]) -> &[u8] {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    bytes.get(zeros..).unwrap_or_default()
}

/// Minimal two's-complement content of a non-negative INTEGER.
pub(super) fn integer(value: u32) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let digits = without_leading_zeros(&bytes);
    let sign = digits.first().is_none_or(|b| b & 0x80 != 0);
    [if sign { &[0][..] } else { &[] }, digits].concat()
}
