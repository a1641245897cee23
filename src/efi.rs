//! The EFI variables the loader cares about, read from efivarfs: whether
//! Secure Boot is on (the kernel then ignores `ima_appraise=fix`), and
//! whether systemd-stub booted a UKI (`StubPcrKernelImage`: the PCR it
//! measured the UKI into, 11 by systemd's PCR registry). The directory is
//! replaceable (`--efivars`) so tests point it at a temp tree.

use std::io::Read;
use std::path::{Path, PathBuf};

pub const DEFAULT_DIR: &str = "/sys/firmware/efi/efivars";

/// The global EFI variable GUID (SecureBoot).
const GLOBAL_GUID: &str = "8be4df61-93ca-11d2-aa0d-00e098032b8c";
/// systemd's loader GUID: systemd-boot and systemd-stub's variables.
const LOADER_GUID: &str = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";

/// Variables here are a few bytes; more is not one of them.
const VAR_LIMIT: u64 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecureBoot {
    On,
    Off,
    /// No EFI variables (a BIOS boot, or efivarfs not mounted), or a value
    /// that is not one.
    Unknown,
}

impl SecureBoot {
    /// What it means for IMA's fix mode, in a line.
    pub fn describe(self) -> &'static str {
        match self {
            SecureBoot::On => {
                "on: the kernel ignores ima_appraise=fix (its architecture policy appraises), so fix mode cannot label files"
            }
            SecureBoot::Off => "off",
            SecureBoot::Unknown => "unknown (no EFI SecureBoot variable)",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EfiVars {
    dir: PathBuf,
}

impl EfiVars {
    pub fn new(dir: impl Into<PathBuf>) -> EfiVars {
        EfiVars { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A variable's value (without its 4 bytes of attributes); `None` when
    /// absent, unreadable or too big.
    fn read(&self, name: &str, guid: &str) -> Option<Vec<u8>> {
        let file = std::fs::File::open(self.dir.join(format!("{name}-{guid}"))).ok()?;
        let mut bytes = Vec::new();
        file.take(VAR_LIMIT + 1).read_to_end(&mut bytes).ok()?;
        if bytes.len() as u64 > VAR_LIMIT {
            return None;
        }
        bytes.get(4..).map(<[u8]>::to_vec)
    }

    pub fn secure_boot(&self) -> SecureBoot {
        secure_boot_value(self.read("SecureBoot", GLOBAL_GUID).as_deref())
    }

    /// The PCR systemd-stub measured the booted UKI into; `None` when no
    /// stub booted this kernel.
    pub fn stub_pcr_kernel_image(&self) -> Option<u8> {
        stub_pcr_value(&self.read("StubPcrKernelImage", LOADER_GUID)?)
    }
}

/// SecureBoot's value: one byte, 1 on, 0 off.
fn secure_boot_value(value: Option<&[u8]>) -> SecureBoot {
    match value {
        Some([1]) => SecureBoot::On,
        Some([0]) => SecureBoot::Off,
        _ => SecureBoot::Unknown,
    }
}

/// StubPcrKernelImage's value: the PCR number as a UTF-16LE decimal string,
/// NUL-terminated as systemd writes it (tolerated without the NUL).
fn stub_pcr_value(value: &[u8]) -> Option<u8> {
    if !value.len().is_multiple_of(2) {
        return None;
    }
    let units: Vec<u16> = value
        .chunks_exact(2)
        .filter_map(|c| match c {
            [lo, hi] => Some(u16::from_le_bytes([*lo, *hi])),
            _ => None,
        })
        .take_while(|u| *u != 0)
        .collect();
    String::from_utf16(&units)
        .ok()?
        .parse::<u8>()
        .ok()
        .filter(|p| *p < 24)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn utf16(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    #[test]
    fn secure_boot_values() {
        assert_eq!(secure_boot_value(Some(&[1])), SecureBoot::On);
        assert_eq!(secure_boot_value(Some(&[0])), SecureBoot::Off);
        for bad in [&[][..], &[2], &[1, 0]] {
            assert_eq!(secure_boot_value(Some(bad)), SecureBoot::Unknown, "{bad:?}");
        }
        assert_eq!(secure_boot_value(None), SecureBoot::Unknown);
    }

    #[test]
    fn stub_pcr_values() {
        assert_eq!(stub_pcr_value(&utf16("11\0")), Some(11));
        assert_eq!(stub_pcr_value(&utf16("11")), Some(11));
        assert_eq!(stub_pcr_value(&utf16("4\0junk")), Some(4));
        for bad in ["", "\0", "24\0", "x\0", "-1\0", "1 1\0"] {
            assert_eq!(stub_pcr_value(&utf16(bad)), None, "{bad:?}");
        }
        // An odd byte count is not UTF-16.
        assert_eq!(stub_pcr_value(&[b'1', 0, b'1']), None);
    }

    #[test]
    fn reads_the_files_efivarfs_has() {
        let dir = std::env::temp_dir().join(format!("il-efi-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let vars = EfiVars::new(&dir);
        assert_eq!(vars.secure_boot(), SecureBoot::Unknown);
        assert_eq!(vars.stub_pcr_kernel_image(), None);
        // 4 bytes of attributes, then the value.
        std::fs::write(
            dir.join(format!("SecureBoot-{GLOBAL_GUID}")),
            [6, 0, 0, 0, 1],
        )
        .unwrap();
        let mut stub = vec![6, 0, 0, 0];
        stub.extend(utf16("11\0"));
        std::fs::write(dir.join(format!("StubPcrKernelImage-{LOADER_GUID}")), stub).unwrap();
        assert_eq!(vars.secure_boot(), SecureBoot::On);
        assert_eq!(vars.stub_pcr_kernel_image(), Some(11));
        // Too big to be the variable: not read.
        std::fs::write(
            dir.join(format!("SecureBoot-{GLOBAL_GUID}")),
            vec![1u8; 5000],
        )
        .unwrap();
        assert_eq!(vars.secure_boot(), SecureBoot::Unknown);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
