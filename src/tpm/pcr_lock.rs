//! Locking the kmk's PCR policy once the kmk is unsealed: a PCR of the
//! policy is extended with a fixed event, so no later process of this boot
//! (a service on a root someone tampered with, say) can satisfy the policy
//! and unseal the kmk again. The kernel's `pcrlock=` does the same for a
//! trusted kmk. The values the policy saw are recorded (`record_text`) so
//! that `seal`, later in the same boot, can seal to them rather than to the
//! locked ones.

use super::client::{Tpm, TpmError};
use super::commands;
use super::pcr::PcrSelection;
use sha2::{Digest, Sha256};

/// The event extended into the lock PCR: its SHA-256 is the digest, so the
/// locked value is predictable (`locked_value`).
pub const LOCK_EVENT: &[u8] = LOCK_EVENT_TEXT.as_bytes();
/// The event as the measure log's `content.string` carries it.
pub const LOCK_EVENT_TEXT: &str = "integrity-loader: kmk unsealed";

/// The record's name in the run directory (/run/integrity-loader).
pub const RECORD_FILE: &str = "pcrs-at-unseal";

pub fn lock_digest() -> [u8; 32] {
    Sha256::digest(LOCK_EVENT).into()
}

/// What a sha256 PCR holding `before` holds after the lock.
pub fn locked_value(before: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(before);
    h.update(lock_digest());
    h.finalize().into()
}

/// How many lock extends a PCR is recognised after: a load retried after
/// a lost answer to its extend locks again.
pub const MAX_LOCKS: usize = 8;

/// How many times (1..=MAX_LOCKS) the lock applied to `before` gives
/// `value`; `None` when it does not.
pub fn times_locked(value: &[u8; 32], before: &[u8; 32]) -> Option<usize> {
    let mut v = *before;
    (1..=MAX_LOCKS).find(|_| {
        v = locked_value(&v);
        v == *value
    })
}

/// The values of `pcrs` the unseal just satisfied, to record before the
/// lock.
pub fn values(tpm: &mut Tpm, pcrs: &PcrSelection) -> Result<Vec<(u8, [u8; 32])>, TpmError> {
    commands::pcr_read(tpm, pcrs)
}

/// Extends `pcr` with the lock event.
pub fn lock(tpm: &mut Tpm, pcr: u8) -> Result<(), TpmError> {
    commands::pcr_extend(tpm, u32::from(pcr), &lock_digest())
}

/// The record of the values, one `sha256:N=HEX` line a PCR.
pub fn record_text(values: &[(u8, [u8; 32])]) -> String {
    values
        .iter()
        .map(|(pcr, v)| format!("sha256:{pcr}={}\n", crate::hex::encode(v)))
        .collect()
}

/// TPM2_PCR_VALUES as seal writes it: `N=HEX` for each sha256 PCR, comma
/// separated (`7=...,11=...`).
pub fn values_text(values: &[(u8, [u8; 32])]) -> String {
    let v: Vec<String> = values
        .iter()
        .map(|(pcr, v)| format!("{pcr}={}", crate::hex::encode(v)))
        .collect();
    v.join(",")
}

/// Reads `values_text`'s form.
pub fn parse_values(text: &str) -> Result<Vec<(u8, [u8; 32])>, String> {
    text.trim()
        .split(',')
        .map(|item| {
            let (pcr, hex) = item
                .trim()
                .split_once('=')
                .ok_or_else(|| format!("\"{item}\": expected N=HEX (a PCR and its 64-digit SHA-256 value), comma separated"))?;
            let pcr: u8 = pcr
                .parse()
                .ok()
                .filter(|p| *p < 24)
                .ok_or_else(|| format!("\"{pcr}\" is not a PCR 0..23"))?;
            let value = crate::hex::decode(hex)
                .map_err(|_| format!("PCR {pcr}: expected 64 hex digits"))?;
            Ok((pcr, value))
        })
        .collect()
}

/// The values `given` records for `pcrs`, when they are exactly the ones
/// the sealed object's policy (`auth_policy`) was made from: a successful
/// unseal then proves the PCRs held them, with no TPM2_PCR_Read.
pub fn sealed_values(
    given: &[(u8, [u8; 32])],
    pcrs: &PcrSelection,
    auth_policy: &[u8],
) -> Option<Vec<(u8, [u8; 32])>> {
    let values: Option<Vec<(u8, [u8; 32])>> = pcrs
        .indices()
        .map(|i| given.iter().find(|(p, _)| *p == i).copied())
        .collect();
    let values = values?;
    let plain: Vec<[u8; 32]> = values.iter().map(|(_, v)| *v).collect();
    (super::seal::pcr_policy(pcrs, &plain).as_slice() == auth_policy).then_some(values)
}

/// Reads a record back; `None` for anything but `record_text`'s lines.
pub fn parse_record(text: &str) -> Option<Vec<(u8, [u8; 32])>> {
    text.lines()
        .map(|line| {
            let (pcr, hex) = line.strip_prefix("sha256:")?.split_once('=')?;
            let pcr: u8 = pcr.parse().ok().filter(|p| *p < 24)?;
            Some((pcr, crate::hex::decode(hex).ok()?))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_refuses_other_text() {
        let values = vec![(7u8, [0x11u8; 32]), (11, [0u8; 32])];
        let text = record_text(&values);
        assert!(text.starts_with("sha256:7=1111"), "{text}");
        assert_eq!(parse_record(&text).unwrap(), values);
        for bad in ["sha1:7=00", "sha256:24=", "sha256:7=zz", "sha256:7"] {
            assert_eq!(parse_record(bad), None, "{bad}");
        }
    }

    #[test]
    fn pcr_values_round_trip_and_count_only_when_they_make_the_policy() {
        let values = vec![(7u8, [0x11u8; 32]), (11, [0u8; 32])];
        let text = values_text(&values);
        assert_eq!(parse_values(&text).unwrap(), values);
        for bad in ["7", "24=00", "x=00", "7=zz", "7=00"] {
            assert!(parse_values(bad).is_err(), "{bad}");
        }
        let pcrs = PcrSelection::parse("sha256:7,11").unwrap();
        let policy = super::super::seal::pcr_policy(&pcrs, &[[0x11; 32], [0; 32]]);
        // Given in any order, with others besides: the selection's, in order.
        let given = vec![(11u8, [0u8; 32]), (0, [9; 32]), (7, [0x11; 32])];
        assert_eq!(sealed_values(&given, &pcrs, &policy), Some(values));
        // Another value, or one missing: not the sealed ones.
        assert_eq!(
            sealed_values(&[(7, [0x11; 32]), (11, [1; 32])], &pcrs, &policy),
            None
        );
        assert_eq!(sealed_values(&[(7, [0x11; 32])], &pcrs, &policy), None);
    }

    #[test]
    fn the_locked_value_is_the_extend_of_the_event_digest() {
        // PCR 11 from zero, as `tpm2_pcrextend 11:sha256=<digest>` gives.
        let hex = crate::hex::encode;
        assert_eq!(
            hex(&lock_digest()),
            hex(&Sha256::digest(b"integrity-loader: kmk unsealed"))
        );
        let mut h = Sha256::new();
        h.update([0u8; 32]);
        h.update(lock_digest());
        assert_eq!(locked_value(&[0u8; 32]), <[u8; 32]>::from(h.finalize()));
    }

    #[test]
    fn a_pcr_locked_a_few_times_is_recognised() {
        let zero = [0u8; 32];
        let once = locked_value(&zero);
        let twice = locked_value(&once);
        assert_eq!(times_locked(&once, &zero), Some(1));
        assert_eq!(times_locked(&twice, &zero), Some(2));
        assert_eq!(times_locked(&twice, &once), Some(1));
        let mut v = zero;
        for _ in 0..=MAX_LOCKS {
            v = locked_value(&v);
        }
        assert_eq!(times_locked(&v, &zero), None);
        assert_eq!(times_locked(&zero, &zero), None);
        assert_eq!(times_locked(&[0x11; 32], &zero), None);
    }
}
