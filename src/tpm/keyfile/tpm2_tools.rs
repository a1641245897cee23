//! tpm2-tools' `.pub`/`.priv` pairs: bare marshalled TPM2B, no header.

use super::error::{Blob, KeyFileError};
use super::public::{check_public, check_tpm2b};
use super::{DEFAULT_PARENT, KeyType, SealedBlob};

/// Takes tpm2-tools' `tpm2_create -u`/`-r` files (bare marshalled TPM2B_PUBLIC and
/// TPM2B_PRIVATE). They name no parent and no auth: the blob gets [`DEFAULT_PARENT`]
/// and `empty_auth` TRUE, for the caller to override.
pub fn parse_tpm2_tools(public: &[u8], private: &[u8]) -> Result<SealedBlob, KeyFileError> {
    check_public(public, Blob::PubFile)?;
    check_tpm2b(private, Blob::PrivFile)?;
    Ok(SealedBlob {
        parent: DEFAULT_PARENT,
        empty_auth: true,
        public: public.to_vec(),
        private: private.to_vec(),
        policy: Vec::new(),
        description: None,
        oid: KeyType::SealedData,
    })
}
