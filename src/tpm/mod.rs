//! A TPM 2.0 client small enough for the initramfs: transports selected by
//! tpm2-tss TCTI strings, command framing and sessions, the session crypto,
//! key-file formats, and the unseal flow.

pub mod client;
pub mod commands;
pub mod constants;
pub mod crypto;
pub mod kernel_session;
pub mod keyfile;
pub mod measure_log;
pub mod parent_pin;
pub mod pcr;
pub mod pcr_lock;
pub mod pcrsig;
pub mod policy_authorize;
pub mod public;
pub mod rc;
pub(crate) mod rsa;
pub(crate) mod rsa_sign;
pub mod seal;
pub mod tcti;
pub mod transport;
pub mod unseal;
pub mod wire;
