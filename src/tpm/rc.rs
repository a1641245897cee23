//! TPM 2.0 response codes turned into words, in one place (Part 2 §6.6).

use std::fmt;

/// A TPM response code other than success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseCode(pub u32);

// Format-0 (version 2) codes: compared whole.
pub const INITIALIZE: u32 = 0x100;
pub const FAILURE: u32 = 0x101;
pub const PCR_CHANGED: u32 = 0x128;
pub const CONTEXT_GAP: u32 = 0x901;
pub const OBJECT_MEMORY: u32 = 0x902;
pub const SESSION_MEMORY: u32 = 0x903;
pub const YIELDED: u32 = 0x908;
pub const TESTING: u32 = 0x90A;
pub const LOCKOUT: u32 = 0x921;
pub const RETRY: u32 = 0x922;
pub const NV_UNAVAILABLE: u32 = 0x923;
// Format-1 codes (bit 7 set): compared after masking the parameter,
// handle or session number (bits 6 and 8..11).
pub const VALUE: u32 = 0x084;
pub const HANDLE: u32 = 0x08B;
pub const AUTH_FAIL: u32 = 0x08E;
pub const POLICY_FAIL: u32 = 0x09D;
pub const INTEGRITY: u32 = 0x09F;
pub const BAD_AUTH: u32 = 0x0A2;
pub const SIZE: u32 = 0x095;
pub const KEY: u32 = 0x09C;
pub const SIGNATURE: u32 = 0x09B;
pub const TICKET: u32 = 0x0A0;

impl ResponseCode {
    /// Whether bit 7 says this is a format-1 code (an error about a
    /// parameter, handle or session).
    pub fn is_format1(self) -> bool {
        self.0 & 0x80 != 0
    }

    /// The code with the parameter/handle/session number masked off.
    pub fn base(self) -> u32 {
        if self.is_format1() {
            self.0 & 0xBF
        } else {
            self.0
        }
    }

    /// Codes that mean "send the same command again".
    pub fn is_retryable(self) -> bool {
        matches!(self.0, YIELDED | TESTING | RETRY)
    }

    /// Which handle/session/parameter a format-1 code is about.
    fn subject(self) -> String {
        if !self.is_format1() {
            return String::new();
        }
        let n = (self.0 >> 8) & 0x7;
        if self.0 & 0x40 != 0 {
            format!(" (parameter {})", (self.0 >> 8) & 0xF)
        } else if self.0 & 0x800 != 0 {
            format!(" (session {n})")
        } else if n != 0 {
            format!(" (handle {n})")
        } else {
            String::new()
        }
    }

    pub fn words(self) -> &'static str {
        match self.base() {
            INITIALIZE => "the TPM was not started (TPM2_Startup missing)",
            FAILURE => "the TPM is in failure mode",
            PCR_CHANGED => "PCR values changed while the policy session was in use",
            CONTEXT_GAP | OBJECT_MEMORY | SESSION_MEMORY => {
                "the TPM is out of object or session slots (someone is not flushing transient handles)"
            }
            YIELDED | TESTING | RETRY => "the TPM asked to retry the command",
            LOCKOUT => {
                "the TPM is in dictionary-attack lockout; wait for the lockout to expire or reset it with the lockout authorization"
            }
            NV_UNAVAILABLE => "TPM non-volatile memory is unavailable",
            VALUE => "a value is out of range",
            HANDLE => "the handle does not exist in the TPM",
            AUTH_FAIL => "authorization failed (wrong password)",
            POLICY_FAIL => {
                "the policy check failed: the PCR values are not those the key was sealed to"
            }
            INTEGRITY => {
                "integrity check failed: the blob was not made by this TPM under this parent, or it is damaged"
            }
            BAD_AUTH => "authorization failed",
            SIZE => "a size is wrong",
            KEY => "the key is not usable for this operation",
            SIGNATURE => "the signature does not verify with the key",
            TICKET => "the ticket is not valid",
            _ => "TPM error",
        }
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{} (TPM rc {:#05x})",
            self.words(),
            self.subject(),
            self.0
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format1_codes_mask_their_subject() {
        // TPM_RC_POLICY_FAIL for session 1 as a TPM returns it.
        let rc = ResponseCode(0x99D);
        assert!(rc.is_format1());
        assert_eq!(rc.base(), POLICY_FAIL);
        assert!(rc.to_string().starts_with("the policy check failed"));
        assert!(rc.to_string().contains("(session 1)"));
        // TPM_RC_HANDLE for handle 1.
        assert_eq!(ResponseCode(0x18B).base(), HANDLE);
        assert!(ResponseCode(0x18B).to_string().contains("(handle 1)"));
        // TPM_RC_VALUE for parameter 1.
        assert_eq!(ResponseCode(0x1C4).base(), VALUE);
        assert!(ResponseCode(0x1C4).to_string().contains("(parameter 1)"));
    }

    #[test]
    fn format0_codes_compare_whole() {
        assert_eq!(ResponseCode(LOCKOUT).base(), LOCKOUT);
        assert!(ResponseCode(RETRY).is_retryable());
        assert!(ResponseCode(YIELDED).is_retryable());
        assert!(!ResponseCode(LOCKOUT).is_retryable());
        assert_eq!(
            ResponseCode(0x921).to_string(),
            "the TPM is in dictionary-attack lockout; wait for the lockout to expire or reset it with the lockout authorization (TPM rc 0x921)"
        );
    }
}
