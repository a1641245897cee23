//! PCR selections: the `TPM2_PCRS=sha256:7,11` setting and its wire form
//! (TPML_PCR_SELECTION with one bank).

use super::constants::{ALG_SHA256, hash_name};
use std::collections::BTreeSet;
use std::fmt;

/// PCRs 0..23, as on every PC TPM 2.0.
pub const PCR_COUNT: u8 = 24;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrSelection {
    pcrs: BTreeSet<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrSpecError(pub String);

impl fmt::Display for PcrSpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PCR selection \"{}\": expected sha256:N[,N...] with N in 0..23",
            self.0
        )
    }
}

impl std::error::Error for PcrSpecError {}

impl PcrSelection {
    /// Parses `sha256:7,11` (tpm2-tools' syntax). Only the sha256 bank: it
    /// is what the sealing policy is computed with.
    pub fn parse(spec: &str) -> Result<PcrSelection, PcrSpecError> {
        let err = || PcrSpecError(spec.to_string());
        let (bank, list) = spec.split_once(':').ok_or_else(err)?;
        if bank != "sha256" {
            return Err(err());
        }
        let mut pcrs = BTreeSet::new();
        for n in list.split(',') {
            let pcr: u8 = n.trim().parse().map_err(|_| err())?;
            if pcr >= PCR_COUNT || !pcrs.insert(pcr) {
                return Err(err());
            }
        }
        if pcrs.is_empty() {
            return Err(err());
        }
        Ok(PcrSelection { pcrs })
    }

    pub fn from_indices(indices: &[u8]) -> Option<PcrSelection> {
        let pcrs: BTreeSet<u8> = indices.iter().copied().collect();
        (!pcrs.is_empty() && pcrs.iter().all(|p| *p < PCR_COUNT)).then_some(PcrSelection { pcrs })
    }

    pub fn indices(&self) -> impl Iterator<Item = u8> + '_ {
        self.pcrs.iter().copied()
    }

    pub fn len(&self) -> usize {
        self.pcrs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pcrs.is_empty()
    }

    /// TPML_PCR_SELECTION: count 1, sha256, sizeofSelect 3, bitmap.
    pub fn marshal(&self) -> Vec<u8> {
        let mut bitmap = [0u8; 3];
        for p in &self.pcrs {
            if let Some(byte) = bitmap.get_mut(usize::from(p / 8)) {
                *byte |= 1 << (p % 8);
            }
        }
        let mut out = Vec::with_capacity(10);
        out.extend_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(&ALG_SHA256.to_be_bytes());
        out.push(3);
        out.extend_from_slice(&bitmap);
        out
    }

    /// Reads a TPML_PCR_SELECTION back (from a blob's policy or a TPM
    /// response); only a single sha256 bank is accepted.
    pub fn unmarshal(bytes: &[u8]) -> Option<(PcrSelection, &[u8])> {
        let (count, rest) = bytes.split_first_chunk::<4>()?;
        if u32::from_be_bytes(*count) != 1 {
            return None;
        }
        let (alg, rest) = rest.split_first_chunk::<2>()?;
        if u16::from_be_bytes(*alg) != ALG_SHA256 {
            return None;
        }
        let (size, rest) = rest.split_first()?;
        let size = usize::from(*size);
        if size > 4 || rest.len() < size {
            return None;
        }
        let (bitmap, rest) = rest.split_at(size);
        let mut pcrs = BTreeSet::new();
        for (i, byte) in bitmap.iter().enumerate() {
            for bit in 0..8u8 {
                if byte & (1 << bit) != 0 {
                    pcrs.insert(u8::try_from(i * 8).ok()? + bit);
                }
            }
        }
        PcrSelection::from_indices(&pcrs.into_iter().collect::<Vec<_>>()).map(|s| (s, rest))
    }
}

/// A PCR bank's name, as tpm2-tools spells it.
pub fn bank_name(alg: u16) -> String {
    hash_name(alg).map_or_else(|| format!("hash {alg:#06x}"), str::to_string)
}

/// The PCR banks a TPM has allocated (GetCapability TPM_CAP_PCRS): each
/// hash and the PCRs it holds. A bank the TPM supports but has not
/// allocated comes with no PCRs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Banks(Vec<(u16, BTreeSet<u8>)>);

impl Banks {
    /// Reads a TPML_PCR_SELECTION of any number of banks; `None` when
    /// truncated or followed by anything.
    pub fn unmarshal(bytes: &[u8]) -> Option<Banks> {
        let (count, mut rest) = bytes.split_first_chunk::<4>()?;
        let mut banks = Vec::new();
        // A count beyond the bytes ends at the first bank missing them.
        for _ in 0..u32::from_be_bytes(*count) {
            let (alg, r) = rest.split_first_chunk::<2>()?;
            let (size, r) = r.split_first()?;
            let size = usize::from(*size);
            if r.len() < size {
                return None;
            }
            let (bitmap, r) = r.split_at(size);
            let mut pcrs = BTreeSet::new();
            for (i, byte) in bitmap.iter().enumerate() {
                for bit in 0..8u8 {
                    let pcr = u8::try_from(i * 8).ok()?.checked_add(bit)?;
                    if byte & (1 << bit) != 0 && pcr < PCR_COUNT {
                        pcrs.insert(pcr);
                    }
                }
            }
            banks.push((u16::from_be_bytes(*alg), pcrs));
            rest = r;
        }
        rest.is_empty().then_some(Banks(banks))
    }

    /// Whether every PCR of `pcrs` is in the TPM's sha256 bank; when not,
    /// what is missing and which banks the TPM has.
    pub fn check(&self, pcrs: &PcrSelection) -> Result<(), BankMissing> {
        let sha256 = self
            .0
            .iter()
            .find(|(alg, _)| *alg == ALG_SHA256)
            .map(|(_, p)| p);
        let missing: Vec<u8> = pcrs
            .indices()
            .filter(|p| !sha256.is_some_and(|s| s.contains(p)))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let allocated: Vec<String> = self
            .0
            .iter()
            .filter(|(_, p)| !p.is_empty())
            .map(|(alg, _)| bank_name(*alg))
            .collect();
        Err(BankMissing {
            pcrs: pcrs.clone(),
            missing,
            no_bank: sha256.is_none_or(BTreeSet::is_empty),
            allocated,
        })
    }
}

/// The TPM lacks the sha256 PCRs a selection names: a policy over them can
/// never be satisfied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankMissing {
    pub pcrs: PcrSelection,
    pub missing: Vec<u8>,
    /// No sha256 bank at all, rather than some PCRs missing from it.
    pub no_bank: bool,
    /// The banks the TPM has allocated.
    pub allocated: Vec<String>,
}

impl fmt::Display for BankMissing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let banks = if self.allocated.is_empty() {
            "none".to_string()
        } else {
            self.allocated.join(", ")
        };
        if self.no_bank {
            write!(f, "the TPM has no sha256 PCR bank")?;
        } else {
            let list: Vec<String> = self.missing.iter().map(u8::to_string).collect();
            write!(f, "the TPM's sha256 PCR bank lacks PCR {}", list.join(","))?;
        }
        write!(
            f,
            " (its allocated banks: {banks}), so a policy over {} can never be satisfied: allocate the sha256 bank (tpm2_pcrallocate sha1:all+sha256:all, or the firmware's TPM settings), reboot, and seal the kmk again",
            self.pcrs
        )
    }
}

impl std::error::Error for BankMissing {}

impl fmt::Display for PcrSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list: Vec<String> = self.pcrs.iter().map(|p| p.to_string()).collect();
        write!(f, "sha256:{}", list.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_marshal() {
        let s = PcrSelection::parse("sha256:7,11").unwrap();
        assert_eq!(s.to_string(), "sha256:7,11");
        assert_eq!(s.marshal(), vec![0, 0, 0, 1, 0, 0x0B, 3, 0x80, 0x08, 0]);
        // The example of kernel-interfaces §6: PCRs 0,2,4,7.
        let s = PcrSelection::parse("sha256:0,2,4,7").unwrap();
        assert_eq!(s.marshal(), vec![0, 0, 0, 1, 0, 0x0B, 3, 0x95, 0, 0]);
        let wire = s.marshal();
        let (back, rest) = PcrSelection::unmarshal(&wire).unwrap();
        assert_eq!((back, rest.len()), (s, 0));
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "sha256",
            "sha1:7",
            "sha256:",
            "sha256:24",
            "sha256:7,7",
            "sha256:x",
            "sha256:-1",
        ] {
            assert!(PcrSelection::parse(bad).is_err(), "{bad}");
        }
        assert!(PcrSelection::unmarshal(&[0, 0, 0, 2]).is_none());
        assert!(PcrSelection::unmarshal(&[0, 0, 0, 1, 0, 4, 3, 1, 0, 0]).is_none());
        assert!(PcrSelection::unmarshal(&[0, 0, 0, 1, 0, 0x0B, 200]).is_none());
    }

    #[test]
    fn banks_name_what_is_missing() {
        // As swtpm_setup --pcr-banks sha1 leaves it: sha256 supported, empty.
        let wire = [0, 0, 0, 2, 0, 4, 3, 0xFF, 0xFF, 0xFF, 0, 0x0B, 3, 0, 0, 0];
        let banks = Banks::unmarshal(&wire).unwrap();
        let e = banks.check(&PcrSelection::parse("sha256:7,11").unwrap());
        let e = e.unwrap_err().to_string();
        assert!(
            e.starts_with(
                "the TPM has no sha256 PCR bank (its allocated banks: sha1), so a policy over sha256:7,11 can never be satisfied"
            ),
            "{e}"
        );
        // sha256 with PCRs 0..15 only.
        let wire = [0, 0, 0, 1, 0, 0x0B, 3, 0xFF, 0xFF, 0];
        let banks = Banks::unmarshal(&wire).unwrap();
        assert_eq!(
            banks.check(&PcrSelection::parse("sha256:7,11").unwrap()),
            Ok(())
        );
        let e = banks.check(&PcrSelection::parse("sha256:7,16,23").unwrap());
        assert_eq!(e.unwrap_err().missing, vec![16, 23]);
        // No bank listed at all; truncated; trailing bytes.
        let e = Banks::unmarshal(&[0, 0, 0, 0])
            .unwrap()
            .check(&PcrSelection::parse("sha256:7").unwrap());
        assert!(
            e.unwrap_err()
                .to_string()
                .contains("(its allocated banks: none)")
        );
        assert!(Banks::unmarshal(&[0, 0, 0, 1, 0, 0x0B, 3, 0xFF]).is_none());
        assert!(Banks::unmarshal(&[0, 0, 0, 0, 1]).is_none());
        assert!(Banks::unmarshal(&[0xFF, 0xFF, 0xFF, 0xFF, 0, 4, 0]).is_none());
    }
}
