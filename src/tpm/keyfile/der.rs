//! The TPMKey grammar's OIDs, and the one DER reader (`crate::der`) it is
//! read with.

pub(super) use crate::der::*;

pub(super) const OID_SEALED_DATA: &str = "2.23.133.10.1.5";
pub(super) const OID_LOADABLE_KEY: &str = "2.23.133.10.1.3";
/// DER content of 2.23.133.10.1.5.
pub(super) const OID_SEALED_DATA_DER: [u8; 6] = [0x67, 0x81, 0x05, 0x0a, 0x01, 0x05];
