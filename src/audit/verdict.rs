//! What appraisal of one file would give, decided from its extended
//! attributes and content as `ima_appraise_measurement()` decides.

use super::sig::{self, ImaValue, Key, SigFailure};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// An IMA signature that verifies with a certificate `load` would load.
    PassSignature,
    /// A hash that matches the content, where the rule accepts hashes.
    PassHash,
    /// No appraise rule covers the file.
    NotCovered,
    /// A rule's condition cannot be evaluated offline.
    Undecided,
    /// IMA passes; EVM holds an HMAC, which cannot be checked offline.
    EvmHmac,
    /// IMA passes; an EVM signature that is not checked offline (an
    /// immutable one covers the inode number and generation).
    EvmUnchecked,
    /// IMA signature or hash that cannot be checked offline (v3,
    /// unsupported algorithm or key).
    Unsupported,
    NoIma,
    HashMismatch,
    UnknownKey,
    BadSignature,
    HashNotSignature,
    AlgoNotAllowed,
    /// EVM on and no security.evm.
    NoEvm,
    BadEvm,
    /// The file could not be opened or read.
    Unreadable,
    /// relabel: opened in fix mode, so the kernel labels it.
    Opened,
    /// relabel: its rule wants a signature, which the kernel cannot write.
    NeedsSignature,
    /// relabel: appraised only on exec, mmap or a kernel read, not on open.
    NotByOpening,
}

impl Verdict {
    pub const ALL: [Verdict; 19] = [
        Verdict::PassSignature,
        Verdict::PassHash,
        Verdict::NotCovered,
        Verdict::Undecided,
        Verdict::EvmHmac,
        Verdict::EvmUnchecked,
        Verdict::Unsupported,
        Verdict::NoIma,
        Verdict::HashMismatch,
        Verdict::UnknownKey,
        Verdict::BadSignature,
        Verdict::HashNotSignature,
        Verdict::AlgoNotAllowed,
        Verdict::NoEvm,
        Verdict::BadEvm,
        Verdict::Unreadable,
        Verdict::Opened,
        Verdict::NeedsSignature,
        Verdict::NotByOpening,
    ];

    /// For `--json` and the tests.
    pub fn key(&self) -> &'static str {
        match self {
            Verdict::PassSignature => "pass_signature",
            Verdict::PassHash => "pass_hash",
            Verdict::NotCovered => "not_covered",
            Verdict::Undecided => "undecided",
            Verdict::EvmHmac => "evm_hmac",
            Verdict::EvmUnchecked => "evm_unchecked",
            Verdict::Unsupported => "unsupported",
            Verdict::NoIma => "no_ima",
            Verdict::HashMismatch => "hash_mismatch",
            Verdict::UnknownKey => "unknown_key",
            Verdict::BadSignature => "bad_signature",
            Verdict::HashNotSignature => "hash_not_signature",
            Verdict::AlgoNotAllowed => "algo_not_allowed",
            Verdict::NoEvm => "no_evm",
            Verdict::BadEvm => "bad_evm",
            Verdict::Unreadable => "unreadable",
            Verdict::Opened => "opened",
            Verdict::NeedsSignature => "needs_signature",
            Verdict::NotByOpening => "not_by_opening",
        }
    }

    pub fn words(&self) -> &'static str {
        match self {
            Verdict::PassSignature => "passes: IMA signature verifies",
            Verdict::PassHash => "passes: IMA hash matches",
            Verdict::NotCovered => "not appraised by the policy",
            Verdict::Undecided => "undecided: a rule's condition cannot be evaluated offline",
            Verdict::EvmHmac => "IMA passes, EVM HMAC not checkable offline",
            Verdict::EvmUnchecked => "IMA passes, EVM signature not checked offline",
            Verdict::Unsupported => "IMA value not checkable offline",
            Verdict::NoIma => "denied: no security.ima",
            Verdict::HashMismatch => "denied: security.ima hash does not match the content",
            Verdict::UnknownKey => "denied: signed by a key no loaded certificate has",
            Verdict::BadSignature => "denied: IMA signature does not verify",
            Verdict::HashNotSignature => "denied: a hash where the rule requires a signature",
            Verdict::AlgoNotAllowed => "denied: hash algorithm not in the rule's appraise_algos",
            Verdict::NoEvm => "denied: EVM is on and the file has no security.evm",
            Verdict::BadEvm => "denied: security.evm does not verify",
            Verdict::Unreadable => "cannot be read by the audit",
            Verdict::Opened => "opened: the kernel in fix mode labels it",
            Verdict::NeedsSignature => {
                "needs an IMA signature (appraise_type=imasig): evmctl ima_sign"
            }
            Verdict::NotByOpening => {
                "appraised only when executed, mapped or read by the kernel: \
                 evmctl ima_hash (or ima_sign)"
            }
        }
    }

    /// relabel: what the admin must still label.
    pub fn to_label(&self) -> bool {
        matches!(self, Verdict::NeedsSignature | Verdict::NotByOpening)
    }

    /// What the kernel would refuse to open.
    pub fn denied(&self) -> bool {
        matches!(
            self,
            Verdict::NoIma
                | Verdict::HashMismatch
                | Verdict::UnknownKey
                | Verdict::BadSignature
                | Verdict::HashNotSignature
                | Verdict::AlgoNotAllowed
                | Verdict::NoEvm
                | Verdict::BadEvm
        )
    }
}

/// What the caller learnt about the file, for the verdict.
pub struct Facts<'a> {
    /// security.ima, `None` when absent.
    pub ima: Option<&'a [u8]>,
    pub needs_signature: bool,
    pub allowed_algos: Option<&'a [u8]>,
}

/// The algorithm to hash the content with, when the value needs one.
pub fn hash_algo_needed(ima: &[u8]) -> Option<u8> {
    match sig::parse_ima(ima) {
        ImaValue::Hash { algo, .. } => Some(algo),
        ImaValue::Signature(s) => Some(s.algo),
        ImaValue::Other(_) => None,
    }
    .filter(|a| sig::digest_len(*a).is_some())
}

/// The IMA verdict and, when it is not a plain one, a detail for the report.
/// `digest`: the content hashed with `hash_algo_needed`'s algorithm.
pub fn ima_verdict(f: &Facts, keys: &[Key], digest: Option<&[u8]>) -> (Verdict, Option<String>) {
    let Some(ima) = f.ima else {
        return (Verdict::NoIma, None);
    };
    let value = sig::parse_ima(ima);
    let algo = match &value {
        ImaValue::Hash { algo, .. } => *algo,
        ImaValue::Signature(s) => s.algo,
        ImaValue::Other(why) => return (Verdict::Unsupported, Some(why.clone())),
    };
    if f.allowed_algos.is_some_and(|a| !a.contains(&algo)) {
        return (Verdict::AlgoNotAllowed, Some(format!("algorithm {algo}")));
    }
    let Some(digest) = digest else {
        return (
            Verdict::Unsupported,
            Some(format!("hash algorithm {algo} is not supported offline")),
        );
    };
    match value {
        ImaValue::Hash { .. } if f.needs_signature => (Verdict::HashNotSignature, None),
        ImaValue::Hash { digest: want, .. } if want == digest => (Verdict::PassHash, None),
        ImaValue::Hash { .. } => (Verdict::HashMismatch, None),
        ImaValue::Signature(s) => match sig::verify(keys, &s, digest) {
            Ok(()) => (Verdict::PassSignature, None),
            Err(SigFailure::UnknownKey(id)) => (
                Verdict::UnknownKey,
                Some(format!("key id {}", crate::hex::encode(&id))),
            ),
            Err(SigFailure::Invalid) => (Verdict::BadSignature, None),
            Err(SigFailure::Unsupported(why)) => (Verdict::Unsupported, Some(why)),
        },
        ImaValue::Other(why) => (Verdict::Unsupported, Some(why)),
    }
}

/// The xattrs EVM protects, in the kernel's order
/// (`evm_config_default_xattrnames`, security/integrity/evm/evm_main.c),
/// as evmctl hashes them: a kernel built without an LSM leaves its xattr
/// out, and the SMACK64EXEC/TRANSMUTE/MMAP ones are left out here as by
/// kernels without CONFIG_EVM_EXTRA_SMACK_XATTRS (Debian's, evmctl's).
pub const EVM_PROTECTED: [&std::ffi::CStr; 5] = [
    c"security.selinux",
    c"security.SMACK64",
    c"security.apparmor",
    c"security.ima",
    c"security.capability",
];

/// The inode facts a portable EVM signature covers.
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
    /// st_mode, file type bits included (the kernel's i_mode).
    pub mode: u32,
}

/// Whether `security.evm` holds a portable signature, the one kind this
/// audit can verify (it needs the protected xattrs read).
pub fn is_portable(evm: Option<&[u8]>) -> bool {
    evm.and_then(|v| v.first()) == Some(&sig::EVM_XATTR_PORTABLE_DIGSIG)
}

/// The digest a portable EVM signature signs, as `evm_calc_hash()` makes
/// it: each protected xattr's value in order, then `struct h_misc` with
/// the inode number and generation left zero (native layout: unsigned
/// long, u32, uid, gid, umode_t, padded to unsigned long). `None` for an
/// algorithm not supported offline.
pub fn evm_portable_digest(algo: u8, protected: &[Vec<u8>], owner: Owner) -> Option<Vec<u8>> {
    let mut h = sig::Hasher::new(algo)?;
    for value in protected {
        h.update(value);
    }
    let word = std::mem::size_of::<usize>();
    let mut misc = vec![0u8; word + 4];
    misc.extend_from_slice(&owner.uid.to_ne_bytes());
    misc.extend_from_slice(&owner.gid.to_ne_bytes());
    let mode = u16::try_from(owner.mode & 0xffff).unwrap_or_default();
    misc.extend_from_slice(&mode.to_ne_bytes());
    misc.resize(misc.len().div_ceil(word) * word, 0);
    h.update(&misc);
    Some(h.finish())
}

/// The EVM verdict once IMA passes; `None` when EVM lets it through.
/// `protected`: for a portable signature, the values of the protected
/// xattrs the file has (in `EVM_PROTECTED` order) and whether one of them
/// is security.ima; `keys`: the EVM certificates' keys.
pub fn evm_verdict(
    evm: Option<&[u8]>,
    protected: Option<(&[Vec<u8>], bool)>,
    owner: Owner,
    keys: &[Key],
) -> Option<(Verdict, Option<String>)> {
    let value = match evm {
        None => return Some((Verdict::NoEvm, None)),
        Some(v) => v,
    };
    match value.split_first() {
        Some((&sig::EVM_XATTR_HMAC, _)) => Some((Verdict::EvmHmac, None)),
        Some((&sig::EVM_IMA_XATTR_DIGSIG, _)) => Some((
            Verdict::EvmUnchecked,
            Some("an immutable EVM signature covers the inode number: not checked".into()),
        )),
        Some((&sig::EVM_XATTR_PORTABLE_DIGSIG, body)) => {
            let s = match sig::parse_sig_v2(body) {
                Ok(s) => s,
                Err(e) => return Some((Verdict::BadEvm, Some(e))),
            };
            let (values, has_ima) = protected.unwrap_or((&[], false));
            // evm_calc_hmac_or_hash(): portable signatures must cover an
            // IMA value.
            if !has_ima {
                return Some((Verdict::BadEvm, Some("no security.ima to cover".into())));
            }
            let Some(digest) = evm_portable_digest(s.algo, values, owner) else {
                return Some((
                    Verdict::EvmUnchecked,
                    Some(format!(
                        "hash algorithm {} is not supported offline",
                        s.algo
                    )),
                ));
            };
            match sig::verify(keys, &s, &digest) {
                Ok(()) => None,
                Err(SigFailure::UnknownKey(id)) => Some((
                    Verdict::BadEvm,
                    Some(format!(
                        "EVM signature by key id {}, which no EVM certificate has",
                        crate::hex::encode(&id)
                    )),
                )),
                Err(SigFailure::Invalid) => Some((Verdict::BadEvm, None)),
                Err(SigFailure::Unsupported(why)) => Some((Verdict::EvmUnchecked, Some(why))),
            }
        }
        Some((t, _)) => Some((
            Verdict::BadEvm,
            Some(format!("unknown security.evm type {t:#04x}")),
        )),
        None => Some((Verdict::BadEvm, Some("empty security.evm".into()))),
    }
}
