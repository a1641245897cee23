//! Sealed-object files: TSS2 key files (draft-bottomley-tpm2-keys, the format of the
//! kernel's trusted keys) and tpm2-tools' `.pub`/`.priv` pairs.
//!
//! ```text
//! TPMKey ::= SEQUENCE {
//!   type        OBJECT IDENTIFIER,                    -- .5 sealed data, .3 loadable key
//!   emptyAuth   [0] EXPLICIT BOOLEAN OPTIONAL,
//!   policy      [1] EXPLICIT SEQUENCE OF TPMPolicy OPTIONAL,
//!   secret      [2] EXPLICIT OCTET STRING OPTIONAL,   -- importable keys: rejected
//!   authPolicy  [3] EXPLICIT SEQUENCE OF TPMAuthPolicy OPTIONAL,  -- rejected
//!   description [4] EXPLICIT UTF8String OPTIONAL,
//!   rsaParent   [5] EXPLICIT BOOLEAN OPTIONAL,
//!   parent      INTEGER,
//!   pubkey      OCTET STRING,                         -- marshalled TPM2B_PUBLIC
//!   privkey     OCTET STRING }                        -- marshalled TPM2B_PRIVATE
//! TPMPolicy ::= SEQUENCE { commandCode   [0] EXPLICIT INTEGER,
//!                          commandPolicy [1] EXPLICIT OCTET STRING }
//! ```
//!
//! The reader is strict DER (definite, minimal lengths, each checked against the bytes
//! that remain; nothing after the outer SEQUENCE) but for one tolerance: any non-zero
//! BOOLEAN is TRUE, as `tpm2_encodeobject -p` (tpm2-tools 5.4) writes 0x01. It follows
//! the grammar and never recurses on the input, so nesting is bounded by the grammar.
//! tpm2-tools writes `.pub`/`.priv` as the bare marshalled TPM2B, with no header.

mod der;
mod encode;
mod error;
mod public;
mod tpm2_tools;
mod tss2;

pub use encode::{encode_tss2_der, encode_tss2_pem};
pub use error::{Blob, DerProblem, KeyFileError, PublicProblem};
pub use tpm2_tools::parse_tpm2_tools;
pub use tss2::parse_tss2;

use public::public_head;

/// Parent of a tpm2-tools `.pub`/`.priv` pair unless configuration names another.
pub const DEFAULT_PARENT: u32 = 0x8100_0001;

/// What the file's OID calls the object. `tpm2_encodeobject` calls every object a
/// loadable key; both hold sealed data here (the public area is checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// 2.23.133.10.1.5, what the kernel writes and reads.
    SealedData,
    /// 2.23.133.10.1.3, what `tpm2_encodeobject` writes.
    LoadableKey,
}

/// One `TPMPolicy`: a policy command code and its marshalled parameters
/// (TPM2_PolicyPCR: pcrDigest TPM2B, then TPML_PCR_SELECTION).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyCommand {
    pub command_code: u32,
    pub command_policy: Vec<u8>,
}

/// A sealed data object and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedBlob {
    /// Persistent handle (0x81......) or hierarchy (0x40......: primary from the H template).
    pub parent: u32,
    /// As the file says (FALSE when absent). `tpm2_encodeobject` of tpm2-tools 5.4 writes
    /// it inverted: FALSE for an object without an auth value, TRUE with `-p`.
    pub empty_auth: bool,
    /// Marshalled TPM2B_PUBLIC, with its u16 size.
    pub public: Vec<u8>,
    /// Marshalled TPM2B_PRIVATE, with its u16 size.
    pub private: Vec<u8>,
    /// `[1] policy`; empty when absent.
    pub policy: Vec<PolicyCommand>,
    pub description: Option<String>,
    pub oid: KeyType,
}

impl SealedBlob {
    /// The TPMT_PUBLIC inside `public`, without the size.
    pub fn public_area(&self) -> &[u8] {
        self.public.get(2..).unwrap_or_default()
    }

    /// TPMA_OBJECT (0 if `public` is not a TPMT_PUBLIC, which no parser here returns).
    pub fn object_attributes(&self) -> u32 {
        public_head(self.public_area()).map_or(0, |(attributes, _)| attributes)
    }

    /// The authPolicy digest the object is sealed to; `None` when it has none.
    pub fn auth_policy(&self) -> Option<&[u8]> {
        public_head(self.public_area())
            .map(|(_, policy)| policy)
            .filter(|p| !p.is_empty())
    }
}

/// Which optional fields the encoder writes besides emptyAuth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fields {
    /// None: the kernel parses only type, emptyAuth, parent, pubkey and privkey.
    Kernel,
    /// Also `[1] policy` and `[4] description` when the blob has them.
    All,
}

#[cfg(test)]
mod tests;
