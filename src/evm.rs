//! The EVM activation value: which bits to write to securityfs `evm`, and
//! refusing combinations that make no sense (see kernel-interfaces §1).

use std::fmt;

pub const INIT_HMAC: u32 = 0x1;
pub const INIT_X509: u32 = 0x2;
pub const ALLOW_METADATA_WRITES: u32 = 0x4;
pub const SETUP_COMPLETE: u32 = 0x8000_0000;
/// Every bit the kernel accepts (EVM_INIT_MASK).
pub const KNOWN_BITS: u32 = INIT_HMAC | INIT_X509 | ALLOW_METADATA_WRITES | SETUP_COMPLETE;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueError {
    UnknownBits(u32),
    HmacBitWithoutKey,
    NothingToEnable(u32),
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::UnknownBits(b) => write!(
                f,
                "EVM_ACTIVATION_BITS has bits {b:#x} the kernel does not know (allowed: 0x2 x509, 0x4 metadata writes, 0x80000000 lock)"
            ),
            ValueError::HmacBitWithoutKey => write!(
                f,
                "EVM_ACTIVATION_BITS sets the HMAC bit (0x1) but no evm-key is loaded; the HMAC bit is set by the loader when the evm-key loads"
            ),
            ValueError::NothingToEnable(v) => write!(
                f,
                "neither an evm-key nor an EVM certificate is loaded, so writing {v:#x} would enable no verification; not writing it"
            ),
        }
    }
}

impl std::error::Error for ValueError {}

/// The value to write, and warnings worth logging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    pub value: u32,
    pub warnings: Vec<String>,
}

/// Combines what loaded with the configured extra bits.
pub fn activation_value(hmac_key: bool, x509: bool, extra: u32) -> Result<Activation, ValueError> {
    if extra & !KNOWN_BITS != 0 {
        return Err(ValueError::UnknownBits(extra & !KNOWN_BITS));
    }
    if extra & INIT_HMAC != 0 && !hmac_key {
        return Err(ValueError::HmacBitWithoutKey);
    }
    let mut warnings = Vec::new();
    let mut value = extra;
    if hmac_key {
        value |= INIT_HMAC;
    }
    if x509 {
        value |= INIT_X509;
    } else if value & INIT_X509 != 0 {
        // A mode without its key: every file with an EVM signature would
        // fail verification (and with nothing else on, every file).
        value &= !INIT_X509;
        if value & INIT_HMAC != 0 {
            warnings.push(
                "EVM_ACTIVATION_BITS asks for x509 verification (0x2) but no EVM certificate loaded: enabling HMAC verification only".to_string(),
            );
        }
    }
    if value & (INIT_HMAC | INIT_X509) == 0 {
        return Err(ValueError::NothingToEnable(value | (extra & INIT_X509)));
    }
    if value & INIT_HMAC != 0 && value & ALLOW_METADATA_WRITES != 0 {
        warnings.push(
            "EVM_ACTIVATION_BITS asks for metadata writes (0x4), which the kernel drops when HMAC is on".to_string(),
        );
    }
    Ok(Activation { value, warnings })
}

/// "hmac+x509", for logs and `status`.
pub fn describe(value: u32) -> String {
    let mut parts = Vec::new();
    if value & INIT_HMAC != 0 {
        parts.push("hmac");
    }
    if value & INIT_X509 != 0 {
        parts.push("x509");
    }
    if value & ALLOW_METADATA_WRITES != 0 {
        parts.push("metadata-writes");
    }
    if value & SETUP_COMPLETE != 0 {
        parts.push("locked");
    }
    if parts.is_empty() {
        "off".to_string()
    } else {
        parts.join("+")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(activation_value(true, true, 0).unwrap().value, 3);
        assert_eq!(activation_value(true, false, 0).unwrap().value, 1);
        assert_eq!(activation_value(false, true, 0).unwrap().value, 2);
        assert_eq!(
            activation_value(false, true, SETUP_COMPLETE).unwrap().value,
            0x8000_0002
        );
        // No mode without its key: the x509 bit alone enables nothing, and
        // beside an HMAC key it is left out, with a warning.
        assert_eq!(
            activation_value(false, false, INIT_X509),
            Err(ValueError::NothingToEnable(INIT_X509))
        );
        let hmac_only = activation_value(true, false, INIT_X509).unwrap();
        assert_eq!(hmac_only.value, INIT_HMAC);
        assert_eq!(hmac_only.warnings.len(), 1);
        assert_eq!(activation_value(true, false, 4).unwrap().warnings.len(), 1);
        assert_eq!(
            activation_value(false, false, 0),
            Err(ValueError::NothingToEnable(0))
        );
        assert_eq!(
            activation_value(false, false, SETUP_COMPLETE),
            Err(ValueError::NothingToEnable(SETUP_COMPLETE))
        );
        assert_eq!(
            activation_value(true, true, 8),
            Err(ValueError::UnknownBits(8))
        );
        assert_eq!(
            activation_value(false, true, 1),
            Err(ValueError::HmacBitWithoutKey)
        );
    }

    #[test]
    fn words() {
        assert_eq!(describe(0), "off");
        assert_eq!(describe(3), "hmac+x509");
        assert_eq!(describe(0x8000_0002), "x509+locked");
    }
}
