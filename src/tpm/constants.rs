//! The TPM 2.0 numbers the loader speaks (TPM 2.0 Part 2, Structures), in
//! one table: algorithms, command codes, handles, tags and the few other
//! selectors. Response codes and their words are in [`super::rc`].

// TPM_ALG_ID (Part 2, 6.3).
pub const ALG_RSA: u16 = 0x0001;
pub const ALG_SHA1: u16 = 0x0004;
pub const ALG_HMAC: u16 = 0x0005;
pub const ALG_AES: u16 = 0x0006;
pub const ALG_KEYEDHASH: u16 = 0x0008;
pub const ALG_XOR: u16 = 0x000A;
pub const ALG_SHA256: u16 = 0x000B;
pub const ALG_SHA384: u16 = 0x000C;
pub const ALG_SHA512: u16 = 0x000D;
pub const ALG_NULL: u16 = 0x0010;
pub const ALG_RSASSA: u16 = 0x0014;
pub const ALG_SM3_256: u16 = 0x0012;
pub const ALG_RSAES: u16 = 0x0015;
pub const ALG_ECDSA: u16 = 0x0018;
pub const ALG_ECDAA: u16 = 0x001A;
pub const ALG_ECC: u16 = 0x0023;
pub const ALG_SYMCIPHER: u16 = 0x0025;
pub const ALG_CFB: u16 = 0x0043;

/// tpm2-tools' name of a hash algorithm (`sha256`), if it is one.
pub fn hash_name(alg: u16) -> Option<&'static str> {
    Some(match alg {
        ALG_SHA1 => "sha1",
        ALG_SHA256 => "sha256",
        ALG_SHA384 => "sha384",
        ALG_SHA512 => "sha512",
        ALG_SM3_256 => "sm3_256",
        _ => return None,
    })
}

/// tpm2-tools' name of a hash or object-type algorithm, for messages about
/// key files.
pub fn alg_name(alg: u16) -> Option<&'static str> {
    hash_name(alg).or(Some(match alg {
        ALG_RSA => "rsa",
        ALG_HMAC => "hmac",
        ALG_KEYEDHASH => "keyedhash",
        ALG_XOR => "xor",
        ALG_ECC => "ecc",
        ALG_SYMCIPHER => "symcipher",
        _ => return None,
    }))
}

// TPM_ECC_CURVE (Part 2, 6.4).
pub const ECC_NIST_P256: u16 = 0x0003;

// TPM_ST (Part 2, 6.9): command and response tags.
pub const ST_NO_SESSIONS: u16 = 0x8001;
pub const ST_SESSIONS: u16 = 0x8002;
/// TPMT_TK_VERIFIED's tag.
pub const ST_VERIFIED: u16 = 0x8022;

// TPM_SE (Part 2, 6.11): session types.
pub const SE_HMAC: u8 = 0x00;
pub const SE_POLICY: u8 = 0x01;

// TPM_CAP (Part 2, 6.12).
pub const CAP_PCRS: u32 = 0x0000_0005;

// TPM_RH (Part 2, 7.4): permanent handles.
pub const RH_OWNER: u32 = 0x4000_0001;
pub const RH_NULL: u32 = 0x4000_0007;
/// TPM_RS_PW: the password authorization session.
pub const RS_PW: u32 = 0x4000_0009;

/// TPM_CC (Part 2, 6.5): the commands the loader and `seal` send, and the
/// one more its crypto tests hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum CommandCode {
    EvictControl = 0x120,
    CreatePrimary = 0x131,
    Startup = 0x144,
    Create = 0x153,
    Load = 0x157,
    Unseal = 0x15E,
    FlushContext = 0x165,
    LoadExternal = 0x167,
    PolicyAuthorize = 0x16A,
    ReadPublic = 0x173,
    StartAuthSession = 0x176,
    VerifySignature = 0x177,
    GetCapability = 0x17A,
    GetRandom = 0x17B,
    Hash = 0x17D,
    PcrRead = 0x17E,
    PolicyPcr = 0x17F,
    PcrExtend = 0x182,
    PolicyGetDigest = 0x189,
}

impl CommandCode {
    pub const ALL: [CommandCode; 19] = [
        CommandCode::EvictControl,
        CommandCode::CreatePrimary,
        CommandCode::Startup,
        CommandCode::Create,
        CommandCode::Load,
        CommandCode::Unseal,
        CommandCode::FlushContext,
        CommandCode::LoadExternal,
        CommandCode::PolicyAuthorize,
        CommandCode::ReadPublic,
        CommandCode::StartAuthSession,
        CommandCode::VerifySignature,
        CommandCode::GetCapability,
        CommandCode::GetRandom,
        CommandCode::Hash,
        CommandCode::PcrRead,
        CommandCode::PolicyPcr,
        CommandCode::PcrExtend,
        CommandCode::PolicyGetDigest,
    ];

    /// The number on the wire.
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// The name after `TPM2_` in the specification, as messages show it.
    pub const fn name(self) -> &'static str {
        match self {
            CommandCode::EvictControl => "EvictControl",
            CommandCode::CreatePrimary => "CreatePrimary",
            CommandCode::Startup => "Startup",
            CommandCode::Create => "Create",
            CommandCode::Load => "Load",
            CommandCode::Unseal => "Unseal",
            CommandCode::FlushContext => "FlushContext",
            CommandCode::LoadExternal => "LoadExternal",
            CommandCode::PolicyAuthorize => "PolicyAuthorize",
            CommandCode::VerifySignature => "VerifySignature",
            CommandCode::ReadPublic => "ReadPublic",
            CommandCode::StartAuthSession => "StartAuthSession",
            CommandCode::GetCapability => "GetCapability",
            CommandCode::GetRandom => "GetRandom",
            CommandCode::Hash => "Hash",
            CommandCode::PcrRead => "PCR_Read",
            CommandCode::PolicyPcr => "PolicyPCR",
            CommandCode::PcrExtend => "PCR_Extend",
            CommandCode::PolicyGetDigest => "PolicyGetDigest",
        }
    }

    pub fn from_code(code: u32) -> Option<CommandCode> {
        CommandCode::ALL.into_iter().find(|c| c.code() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_unique_and_found_again() {
        for (i, cc) in CommandCode::ALL.iter().enumerate() {
            assert_eq!(CommandCode::from_code(cc.code()), Some(*cc));
            for other in &CommandCode::ALL[i + 1..] {
                assert_ne!(cc.name(), other.name());
            }
        }
        assert_eq!(CommandCode::from_code(0x17F), Some(CommandCode::PolicyPcr));
        assert_eq!(CommandCode::PcrRead.name(), "PCR_Read");
        assert_eq!(CommandCode::from_code(0x100), None);
    }

    #[test]
    fn algorithm_names() {
        assert_eq!(hash_name(ALG_SHA256), Some("sha256"));
        assert_eq!(hash_name(ALG_RSA), None);
        assert_eq!(alg_name(ALG_KEYEDHASH), Some("keyedhash"));
        assert_eq!(alg_name(0x7777), None);
    }
}
