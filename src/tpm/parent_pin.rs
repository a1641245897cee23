//! Pinning the storage key by its Name. TPM2_ReadPublic is not
//! authenticated: a device on the TPM bus can answer it with a key of its
//! own, learn the salt of the session we then start, and read the kmk
//! that session was meant to hide. The Name recorded when the kmk was
//! sealed (`TPM2_PARENT_NAME`) is checked before any salt is sent.

use super::constants::ALG_SHA256;
use super::public::Public;
use std::fmt;

/// A Name with SHA-256 as nameAlg: 2 + 32 bytes, the only kind the client
/// parses.
pub const NAME_LEN: usize = 34;

/// The Name as `TPM2_PARENT_NAME` and `tpm2_readpublic` print it.
pub fn name_hex(name: &[u8]) -> String {
    crate::hex::encode(name)
}

/// Reads a pinned Name: 68 hex digits starting with `000b` (SHA-256).
pub fn parse_name_hex(text: &str) -> Result<[u8; NAME_LEN], String> {
    let text = text.trim();
    let expected = "68 hex digits, 000b and the SHA-256 of the key's public area, as `tpm2_readpublic -c HANDLE` prints name:";
    let name = crate::hex::decode::<NAME_LEN>(text).map_err(|e| match e {
        crate::hex::DecodeError::Length => {
            format!("{} characters; expected {expected}", text.chars().count())
        }
        crate::hex::DecodeError::NotHex { offset } => {
            format!("not hex at offset {offset}; expected {expected}")
        }
    })?;
    if name[..2] != ALG_SHA256.to_be_bytes() {
        return Err(format!(
            "nameAlg {:02x}{:02x} is not SHA-256 (000b); expected {expected}",
            name[0], name[1]
        ));
    }
    Ok(name)
}

/// Reads TPM2_PARENT_PUBLIC: the hex of a TPMT_PUBLIC the client parses.
pub fn parse_public_hex(text: &str) -> Result<Vec<u8>, String> {
    let text = text.trim();
    let expected = "expected the hex of the storage key's TPMT_PUBLIC, as `integrity-loader seal --write-config` writes it";
    if !text.len().is_multiple_of(2) || text.len() > 2048 {
        return Err(format!("{} hex digits; {expected}", text.len()));
    }
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    let bytes = bytes.ok_or_else(|| format!("not hex; {expected}"))?;
    Public::parse(&bytes).map_err(|e| format!("{e}; {expected}"))?;
    Ok(bytes)
}

/// The storage key the TPM presented is not the pinned one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentMismatch {
    pub handle: u32,
    /// The Name of what the TPM presented; `None` when nothing is there.
    pub found: Option<Vec<u8>>,
    pub pinned: [u8; NAME_LEN],
}

impl fmt::Display for ParentMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (handle, pinned) = (self.handle, name_hex(&self.pinned));
        match &self.found {
            // A TPM clear empties the handle: another key there was put
            // there, or is not there at all.
            Some(found) => write!(
                f,
                "the storage key at {handle:#010x} is not the pinned one: its Name is {}, TPM2_PARENT_NAME is {pinned}; nothing was sent to it. A TPM clear would have left the handle empty: the key was replaced (with owner authorization) or something on the TPM bus answers for it. Check with `tpm2_readpublic -c {handle:#010x}` on a boot you trust; if it was replaced on purpose, the kmk sealed under the old key is lost: remove TPM2_PARENT_NAME from /etc/integrity-loader.conf, provision again (README.md, \"Provision on the installed system\") and rebuild the initramfs",
                name_hex(found)
            ),
            None => write!(
                f,
                "no storage key at {handle:#010x}, but TPM2_PARENT_NAME pins {pinned}: the TPM was cleared and the blob sealed under the old key is lost. If the kmk is still loaded somewhere (DROP_KMK=no), `integrity-loader reseal` seals it again under a new storage key and the labels stay good; else provision again with `integrity-loader seal --write-config --replace-kmk-and-orphan-labels --evm-key PATH` (a new storage key, kmk and evm-key; EVM HMACs made with the old evm-key must be made again)"
            ),
        }
    }
}

impl std::error::Error for ParentMismatch {}

impl ParentMismatch {
    /// Nothing at `handle`, where `pinned` was expected.
    pub fn missing(handle: u32, pinned: &[u8; NAME_LEN]) -> ParentMismatch {
        ParentMismatch {
            handle,
            found: None,
            pinned: *pinned,
        }
    }
}

/// Checks the public area the TPM presented at `handle` against the pin.
pub fn check(
    handle: u32,
    public: &Public,
    pinned: Option<&[u8; NAME_LEN]>,
) -> Result<(), ParentMismatch> {
    let Some(pinned) = pinned else { return Ok(()) };
    let found = public.name();
    // A Name is public: no need for a constant-time comparison.
    if found.as_slice() == pinned.as_slice() {
        Ok(())
    } else {
        Err(ParentMismatch {
            handle,
            found: Some(found),
            pinned: *pinned,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRK_NAME: &str = "000b6b0a0e57ef04b5a0f8b6a2f58d3a6f46bb9d28ef54f7d0e3c1d6bb81b0f3a0c2";

    #[test]
    fn parses_a_sha256_name() {
        let name = parse_name_hex(SRK_NAME).unwrap();
        assert_eq!(name_hex(&name), SRK_NAME);
        assert_eq!(parse_name_hex(&format!(" {SRK_NAME}\n")).unwrap(), name);
        assert_eq!(
            parse_name_hex(&SRK_NAME.to_uppercase()).unwrap(),
            name,
            "hex digits in either case"
        );
    }

    #[test]
    fn refuses_what_is_not_a_sha256_name() {
        let cases: &[(&str, &str)] = &[
            ("", "0 characters"),
            (&SRK_NAME[..66], "66 characters"),
            (&format!("{SRK_NAME}00"), "70 characters"),
            (&format!("000b{}", "g".repeat(64)), "not hex at offset 4"),
            (
                &format!("0004{}", "00".repeat(32)),
                "nameAlg 0004 is not SHA-256",
            ),
            (&format!("000b{}é", "0".repeat(62)), "not hex at offset 66"),
        ];
        for (text, want) in cases {
            let e = parse_name_hex(text).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }
}
