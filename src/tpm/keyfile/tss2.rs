//! TSS2 key files (draft-bottomley-tpm2-keys), PEM or DER, holding sealed data.

use super::der::*;
use super::error::{Blob, KeyFileError};
use super::public::{check_public, check_tpm2b};
use super::{KeyType, PolicyCommand, SealedBlob};
use crate::pem::{self, Layout, PemError};

pub(super) const PEM_LABEL: &str = "TSS2 PRIVATE KEY";

/// Parses a TSS2 key file, PEM or DER, holding a sealed data object.
pub fn parse_tss2(bytes: &[u8]) -> Result<SealedBlob, KeyFileError> {
    if bytes.first() == Some(&SEQUENCE) {
        parse_der(bytes)
    } else {
        parse_der(&pem_decode(bytes)?)
    }
}

pub(super) fn parse_der(input: &[u8]) -> Result<SealedBlob, KeyFileError> {
    let mut top = Der::new(input, 0);
    let mut key = top.expect(SEQUENCE, "TPMKey SEQUENCE")?;
    if top.remaining() > 0 {
        return Err(KeyFileError::Trailing(top.remaining()));
    }
    let oid = decode_oid(&key.expect(OBJECT_ID, "type OBJECT IDENTIFIER")?)?;
    let oid = match oid.as_str() {
        OID_SEALED_DATA => KeyType::SealedData,
        OID_LOADABLE_KEY => KeyType::LoadableKey,
        _ => return Err(KeyFileError::Oid(oid)),
    };

    let (mut empty_auth, mut rsa_parent, mut policy, mut description) =
        (false, false, vec![], None);
    let mut last = None;
    while let Some(tag) = key.peek().filter(|tag| tag & 0xe0 == EXPLICIT) {
        let n = tag & 0x1f;
        if last.is_some_and(|last| n <= last) {
            return Err(KeyFileError::FieldOrder(n));
        }
        last = Some(n);
        match n {
            0 => {
                empty_auth = boolean(&key.explicit(0, BOOLEAN, "emptyAuth BOOLEAN")?, "emptyAuth")?
            }
            1 => policy = parse_policy(key.explicit(1, SEQUENCE, "policy SEQUENCE")?)?,
            4 => {
                let text = key
                    .explicit(4, UTF8_STRING, "description UTF8String")?
                    .rest()
                    .to_vec();
                description = Some(String::from_utf8(text).map_err(|_| KeyFileError::Description)?);
            }
            5 => {
                rsa_parent = boolean(&key.explicit(5, BOOLEAN, "rsaParent BOOLEAN")?, "rsaParent")?
            }
            _ => return Err(KeyFileError::UnsupportedField(n)),
        }
    }
    let parent = uint32(&key.expect(INTEGER, "parent INTEGER")?, "parent")?;
    let public = key.bytes(OCTET_STRING, "pubkey OCTET STRING")?;
    let private = key.bytes(OCTET_STRING, "privkey OCTET STRING")?;
    key.finish("the TPMKey SEQUENCE")?;

    match parent >> 24 {
        0x40 if rsa_parent => return Err(KeyFileError::RsaParent(parent)),
        0x40 | 0x81 => {}
        _ => return Err(KeyFileError::Parent(parent)),
    }
    check_public(&public, Blob::Pubkey)?;
    check_tpm2b(&private, Blob::Privkey)?;
    Ok(SealedBlob {
        parent,
        empty_auth,
        public,
        private,
        policy,
        description,
        oid,
    })
}

pub(super) fn parse_policy(mut list: Der<'_>) -> Result<Vec<PolicyCommand>, KeyFileError> {
    let mut policy = Vec::new();
    while list.remaining() > 0 {
        let mut one = list.expect(SEQUENCE, "TPMPolicy SEQUENCE")?;
        let command_code = uint32(
            &one.explicit(0, INTEGER, "commandCode INTEGER")?,
            "commandCode",
        )?;
        let command_policy = one
            .explicit(1, OCTET_STRING, "commandPolicy OCTET STRING")?
            .rest()
            .to_vec();
        one.finish("a TPMPolicy")?;
        policy.push(PolicyCommand {
            command_code,
            command_policy,
        });
    }
    Ok(policy)
}

/// Strict PEM (see [`Layout::Strict`]): padding only at the very end and zero
/// padding bits, LF or CRLF.
pub(super) fn pem_decode(bytes: &[u8]) -> Result<Vec<u8>, KeyFileError> {
    match pem::decode(bytes, PEM_LABEL, Layout::Strict) {
        Ok(der) => Ok(der),
        // BEGIN then END: no DER, which the DER reader reports.
        Err(PemError::EmptyBody { .. }) => Ok(Vec::new()),
        Err(PemError::NoBeginLine) => Err(KeyFileError::NotKeyFile(bytes.first().copied())),
        Err(PemError::WrongLabel { label, .. }) => {
            Err(KeyFileError::PemLabel(label.chars().take(64).collect()))
        }
        Err(PemError::NoEndLine { .. }) => Err(KeyFileError::PemNoEnd),
        Err(
            PemError::BadBoundary { line }
            | PemError::BadBase64 { line }
            | PemError::SecondBlock { line, .. }
            | PemError::JunkAfterEnd { line },
        ) => Err(KeyFileError::PemLine(line)),
    }
}
