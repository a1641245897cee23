//! Which PCRs the kmk is sealed to by default and which one is locked after
//! the unseal, chosen against systemd's PCR registry (systemd.io "TPM2 PCR
//! Measurements", UAPI "Linux TPM PCR Registry"). On a UKI boot
//! systemd-stub measures the UKI into PCR 11 (it says so in the EFI
//! variable StubPcrKernelImage) and systemd-pcrphase extends PCR 11 at each
//! boot phase; signed policies (ukify, systemd-measure) predict those
//! values, so the loader never extends that PCR there. PCR 15
//! (system-identity) is the latch instead, as systemd binds policies to
//! `15:sha256=0` and measures volume keys into it. Without a UKI nothing
//! measures PCR 11, and dracut's default lock (TRUSTED_PCRLOCK=11) stays.

use crate::tpm::pcr::PcrSelection;

/// The PCR systemd leaves for latches and system identity.
pub const LATCH: u8 = 15;
/// The PCR dracut locks and, without a UKI, nothing measures.
pub const DRACUT_LOCK: u8 = 11;

/// TPM2_PCRS by default: Secure Boot state (7) and the lock PCR.
pub fn default_pcrs(stub_pcr: Option<u8>) -> &'static str {
    match stub_pcr {
        Some(_) => "sha256:7,15",
        None => "sha256:7,11",
    }
}

/// TPM2_PCRLOCK by default, for a policy over `pcrs`: PCR 15 when the
/// policy has it, else PCR 11 when it has it and no UKI booted; else none
/// (a lock outside the policy guards nothing). Never the stub's PCR.
pub fn default_lock(pcrs: &str, stub_pcr: Option<u8>) -> Option<u8> {
    let pcrs = PcrSelection::parse(pcrs).ok()?;
    let has = |p: u8| pcrs.indices().any(|i| i == p) && stub_pcr != Some(p);
    if has(LATCH) {
        Some(LATCH)
    } else if has(DRACUT_LOCK) && stub_pcr.is_none() {
        Some(DRACUT_LOCK)
    } else {
        None
    }
}

/// TRUSTED_PCRLOCK by default: dracut's 11 without a UKI, 15 with one.
pub fn default_trusted_lock(stub_pcr: Option<u8>) -> u32 {
    match stub_pcr {
        Some(_) => u32::from(LATCH),
        None => u32::from(DRACUT_LOCK),
    }
}

/// Refuses a lock of the PCR systemd-stub measured this boot's UKI into.
/// `key` is the setting that asks for it (TPM2_PCRLOCK, TRUSTED_PCRLOCK).
pub fn refuse_stub_pcr(key: &str, pcr: u32, stub_pcr: Option<u8>) -> Result<(), String> {
    match stub_pcr {
        Some(stub) if u32::from(stub) == pcr => Err(format!(
            "{key}={pcr}: this kernel was booted from a UKI, which systemd-stub measured into PCR {stub} (EFI variable StubPcrKernelImage); extending PCR {stub} would break every later unseal of a policy bound to it (signed ukify/systemd-measure policies, systemd-cryptenroll); lock PCR {LATCH} instead ({key}={LATCH}, with {LATCH} in the sealing policy: `integrity-loader reseal --pcrs sha256:7,{LATCH}`), or set {key}=no"
        )),
        _ => Ok(()),
    }
}

/// What `check` says about the lock of a tpm2 kmk: which PCR and why.
pub fn explain_lock(pcrs: &str, lock: Option<u8>, explicit: bool, stub_pcr: Option<u8>) -> String {
    let boot = match stub_pcr {
        Some(p) => format!(
            "a UKI booted (systemd-stub measured it into PCR {p}, which the loader never extends)"
        ),
        None => "no UKI booted (no StubPcrKernelImage EFI variable: nothing measures PCR 11)"
            .to_string(),
    };
    match (lock, explicit) {
        (Some(p), true) => format!("PCR {p}, as TPM2_PCRLOCK sets; {boot}"),
        (None, true) => format!("none (TPM2_PCRLOCK=no); {boot}"),
        (Some(p), false) if p == LATCH => format!(
            "PCR {p} (default: the policy {pcrs} has PCR {LATCH}, systemd's latch PCR); {boot}"
        ),
        (Some(p), false) => {
            format!("PCR {p} (default: the policy {pcrs} has PCR {p}, dracut's lock PCR); {boot}")
        }
        (None, false) => {
            format!("none (default: the policy {pcrs} has no PCR the loader may lock); {boot}")
        }
    }
}

/// What `check` says about a trusted kmk's `pcrlock=`.
pub fn explain_trusted_lock(lock: Option<u32>, stub_pcr: Option<u8>) -> String {
    let default = default_trusted_lock(stub_pcr);
    match (lock, stub_pcr) {
        (None, _) => "none (TRUSTED_PCRLOCK=no)".to_string(),
        (Some(p), None) if p == default => {
            format!("PCR {p}: dracut's default, kept as no UKI booted (nothing measures PCR 11)")
        }
        (Some(p), Some(stub)) if p == default => format!(
            "PCR {p}: the default on a UKI boot (systemd-stub measured the UKI into PCR {stub}, which the loader never has extended; {LATCH} is systemd's latch PCR)"
        ),
        (Some(p), _) => format!("PCR {p}, as TRUSTED_PCRLOCK sets"),
    }
}

/// A warning when a UKI booted, the policy is over the stub's PCR and
/// nothing locks the kmk: a later process of this boot can unseal it again
/// unless systemd-pcrphase moves that PCR after the initrd.
pub fn unlocked_warning(pcrs: &str, lock: Option<u8>, stub_pcr: Option<u8>) -> Option<String> {
    let stub = stub_pcr?;
    let sel = PcrSelection::parse(pcrs).ok()?;
    if lock.is_some() || !sel.indices().any(|i| i == stub) {
        return None;
    }
    Some(format!(
        "TPM2_PCRS={pcrs} binds the kmk to PCR {stub}, which this boot's UKI owns (systemd-stub), so the loader does not lock it there: unless systemd-pcrphase's leave-initrd measurement moves PCR {stub}, any later process of this boot can unseal the kmk again; seal to PCR {LATCH} instead (`integrity-loader reseal --pcrs sha256:7,{LATCH}`), which the loader then locks"
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pcr_11_is_never_the_lock_on_a_uki_boot() {
        // No UKI: as dracut, PCR 11; 15 preferred when the policy has it.
        assert_eq!(default_lock("sha256:7,11", None), Some(11));
        assert_eq!(default_lock("sha256:7,11,15", None), Some(15));
        assert_eq!(default_lock("sha256:7", None), None);
        // A UKI measured into 11: never 11.
        assert_eq!(default_lock("sha256:7,11", Some(11)), None);
        assert_eq!(default_lock("sha256:7,15", Some(11)), Some(15));
        assert_eq!(default_lock("sha256:11,15", Some(11)), Some(15));
        assert_eq!(default_lock(default_pcrs(Some(11)), Some(11)), Some(15));
        assert_eq!(default_lock(default_pcrs(None), None), Some(11));
        assert_eq!(default_lock("not a selection", None), None);
        assert_eq!(default_trusted_lock(None), 11);
        assert_eq!(default_trusted_lock(Some(11)), 15);
    }

    #[test]
    fn an_explicit_lock_of_the_stub_pcr_is_refused() {
        assert!(refuse_stub_pcr("TPM2_PCRLOCK", 11, None).is_ok());
        assert!(refuse_stub_pcr("TPM2_PCRLOCK", 15, Some(11)).is_ok());
        let e = refuse_stub_pcr("TRUSTED_PCRLOCK", 11, Some(11)).unwrap_err();
        assert!(
            e.starts_with("TRUSTED_PCRLOCK=11: this kernel was booted from a UKI"),
            "{e}"
        );
        assert!(
            e.contains("TRUSTED_PCRLOCK=15") && e.contains("TRUSTED_PCRLOCK=no"),
            "{e}"
        );
    }

    #[test]
    fn check_says_which_pcr_and_why() {
        let e = explain_lock("sha256:7,15", Some(15), false, Some(11));
        assert!(
            e.starts_with("PCR 15 (default: the policy sha256:7,15 has PCR 15"),
            "{e}"
        );
        assert!(e.contains("a UKI booted"), "{e}");
        let e = explain_lock("sha256:7,11", Some(11), false, None);
        assert!(
            e.contains("dracut's lock PCR") && e.contains("no UKI booted"),
            "{e}"
        );
        assert!(explain_lock("sha256:7", None, true, None).starts_with("none (TPM2_PCRLOCK=no)"));
        assert!(unlocked_warning("sha256:7,11", None, Some(11)).is_some());
        assert!(unlocked_warning("sha256:7,11", None, None).is_none());
        assert!(unlocked_warning("sha256:7,15", Some(15), Some(11)).is_none());
    }
}
