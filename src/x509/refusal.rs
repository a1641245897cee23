//! Words for the errno `add_key("asymmetric", ...)` returns when the kernel
//! refuses a certificate.

use nix::errno::Errno;

/// Words for an errno from `add_key("asymmetric", ...)` into `keyring`
/// (".ima", "_evm", ...), to follow "kernel refused it (ENOKEY): ". Keyrings
/// whose name starts with '.' are the kernel's restricted ones.
/// Sources: `crypto/asymmetric_keys/{restrict.c,x509_public_key.c,x509_cert_parser.c}`,
/// `security/keys/{key.c,keyring.c}`.
pub fn describe_kernel_refusal(errno: i32, keyring: &str) -> String {
    let restricted = keyring.starts_with('.');
    match Errno::from_raw(errno) {
        Errno::ENOKEY if restricted => format!(
            "the {keyring} keyring only accepts certificates signed by a key on the builtin, secondary or machine keyring (found through the certificate's authorityKeyIdentifier), and since kernel 6.4 only non-CA certificates with keyUsage digitalSignature; have the certificate signed by a CA that is built into the kernel or enrolled as a MOK, and see dmesg"
        ),
        Errno::ENOKEY => format!(
            "the {keyring} keyring was not found (it does not exist or was garbage-collected); create it under @u before loading certificates"
        ),
        Errno::EKEYREJECTED if restricted => format!(
            "the {keyring} keyring rejected the certificate: its signature does not verify with the trusted key that should have signed it, or it is blacklisted (.blacklist keyring, dbx); check which CA signed it"
        ),
        Errno::EKEYREJECTED => "the kernel rejected the certificate: it is blacklisted (.blacklist keyring, dbx) or its self-signature does not verify".to_string(),
        Errno::EBADMSG => "the kernel could not parse the certificate (malformed DER, an extension or date it cannot read, a malformed signature) or lacks its X.509 parser (CONFIG_X509_CERTIFICATE_PARSER); check it with `openssl x509 -inform DER -noout -text`".to_string(),
        Errno::ENOPKG => "the kernel lacks the crypto algorithm for this certificate's key or signature: the algorithm is unsupported by this kernel, or its module (rsa, ecdsa_generic, sha256 ...) is neither built in nor loaded from the initramfs".to_string(),
        Errno::EPERM if restricted => format!(
            "the {keyring} keyring refused the link: the ca_keys= kernel parameter pins a CA that did not sign this certificate, or the keyring is locked against new keys"
        ),
        Errno::EPERM => format!(
            "the {keyring} keyring refused the link: it has been restricted against new keys"
        ),
        Errno::EACCES => format!(
            "not allowed to add keys to the {keyring} keyring: the loader lacks Write permission on it, or a security module (SELinux, ...) denied creating the key"
        ),
        Errno::EINVAL => "the kernel called the request invalid: the certificate's two signature algorithm fields differ, or it is empty or over 1 MiB".to_string(),
        Errno::EDQUOT => "the key quota for root is exhausted (see /proc/sys/kernel/keys/root_maxkeys and root_maxbytes) or the keyring is full".to_string(),
        Errno::ENODEV => "the kernel has no \"asymmetric\" key type (CONFIG_ASYMMETRIC_KEY_TYPE is off or its module is not loaded)".to_string(),
        Errno::ENOTDIR => format!("{keyring} is not a keyring"),
        Errno::EKEYREVOKED => format!("the {keyring} keyring has been revoked"),
        Errno::EKEYEXPIRED => format!("the {keyring} keyring has expired"),
        Errno::ENOMEM => "the kernel ran out of memory".to_string(),
        other => format!("unexpected error from the kernel: {}", other.desc()),
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    #[test]
    fn kernel_refusals() {
        let enokey = describe_kernel_refusal(Errno::ENOKEY as i32, ".ima");
        assert!(enokey.starts_with(
            "the .ima keyring only accepts certificates signed by a key on the builtin, secondary or machine keyring"
        ));
        assert!(describe_kernel_refusal(Errno::ENOKEY as i32, "_ima").contains("not found"));
        assert!(
            describe_kernel_refusal(Errno::EKEYREJECTED as i32, ".evm")
                .starts_with("the .evm keyring rejected")
        );
        assert!(describe_kernel_refusal(Errno::EBADMSG as i32, ".ima").contains("could not parse"));
        assert!(describe_kernel_refusal(Errno::ENOPKG as i32, "_evm").contains("crypto algorithm"));
        assert!(describe_kernel_refusal(Errno::EDQUOT as i32, "_evm").contains("root_maxkeys"));
        let other = describe_kernel_refusal(Errno::EXDEV as i32, ".ima");
        assert!(
            other.starts_with("unexpected error from the kernel: "),
            "{other}"
        );
        for errno in 0..140 {
            let text = describe_kernel_refusal(errno, ".ima");
            assert!(
                text.starts_with(|c: char| c.is_ascii_lowercase() || c == '.'),
                "{text}"
            );
        }
    }
}
