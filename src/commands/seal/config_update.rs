//! `seal --write-config`: /etc/integrity-loader.conf with the keys that
//! describe the new kmk replaced and every other line (FAILURE_ACTION,
//! KMK_NAME, comments...) kept as the administrator wrote it.

use crate::sysconfig;

const HEADER: &str = "# written by integrity-loader seal";
const PIN_COMMENT: &str =
    "# the storage key's Name, checked at boot before the TPM is trusted with a secret";

/// What `seal` records about the kmk it sealed.
pub struct SealedKmk<'a> {
    pub masterkey: &'a str,
    pub pcrs: &'a str,
    pub parent: u32,
    pub parent_name: &'a str,
    /// TPM2_PARENT_PUBLIC and TPM2_PCR_VALUES: what spares the unseal a
    /// ReadPublic and a PCR_Read.
    pub parent_public: &'a str,
    pub pcr_values: &'a str,
    /// EVMKEY: the evm-key this seal exported (or a reseal moves into
    /// place); `None` leaves the line as it is.
    pub evm_key: Option<&'a str>,
}

impl SealedKmk<'_> {
    /// Not TPM=: how this run reached the TPM (--tpm, a swtpm socket on a
    /// provisioning host) says nothing of how the boot reaches it; a TPM=
    /// line the administrator wrote is kept as it is.
    fn assignments(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![
            ("MASTERKEYTYPE", "tpm2".to_string()),
            ("MASTERKEY", self.masterkey.to_string()),
            ("TPM2_PCRS", self.pcrs.to_string()),
            ("TPM2_PARENT", format!("{:#010x}", self.parent)),
            ("TPM2_PARENT_NAME", self.parent_name.to_string()),
            ("TPM2_PARENT_PUBLIC", self.parent_public.to_string()),
            ("TPM2_PCR_VALUES", self.pcr_values.to_string()),
        ];
        v.extend(self.evm_key.map(|e| ("EVMKEY", e.to_string())));
        v
    }
}

/// What `seal --type trusted` records about the trusted kmk the kernel
/// made. The tpm2-only keys go: the loader warns about TPM2_PARENT_NAME
/// with a trusted kmk, and a stale TPM2_PCRS would make it ask for a PCR
/// policy the blob does not have.
pub struct TrustedKmk<'a> {
    /// None with MULTIKERNELMODE=YES and the per-release default path:
    /// the line goes, so each release reads its own blob.
    pub masterkey: Option<&'a str>,
    /// None for a kmk bound to no PCRs.
    pub pcrs: Option<&'a str>,
}

impl TrustedKmk<'_> {
    fn assignments(&self) -> Vec<(&'static str, String)> {
        let mut v = vec![("MASTERKEYTYPE", "trusted".to_string())];
        if let Some(m) = self.masterkey {
            v.push(("MASTERKEY", m.to_string()));
        }
        if let Some(p) = self.pcrs {
            v.push(("TPM2_PCRS", p.to_string()));
        }
        v
    }

    fn dropped(&self) -> Vec<&'static str> {
        let mut v = vec![
            "TPM2_PARENT",
            "TPM2_PARENT_NAME",
            "TPM2_PARENT_PUBLIC",
            "TPM2_PCR_VALUES",
        ];
        if self.masterkey.is_none() {
            v.push("MASTERKEY");
        }
        if self.pcrs.is_none() {
            v.push("TPM2_PCRS");
        }
        v
    }
}

/// The new file: `existing` without its assignments of the keys `kmk`
/// sets (and without the comments an earlier seal wrote), then those keys.
/// An existing file that does not parse is not rewritten.
pub fn merge(existing: Option<&[u8]>, kmk: &SealedKmk) -> Result<String, String> {
    merge_lines(existing, &kmk.assignments(), &[])
}

/// `existing` with MASTERKEY and EVMKEY naming other files (each when
/// given) and nothing else changed: a commit's switch to files beside
/// their places, without --write-config.
pub fn name_files(
    existing: Option<&[u8]>,
    masterkey: Option<&str>,
    evm_key: Option<&str>,
) -> Result<String, String> {
    let mut ours = Vec::new();
    ours.extend(masterkey.map(|m| ("MASTERKEY", m.to_string())));
    ours.extend(evm_key.map(|e| ("EVMKEY", e.to_string())));
    merge_lines(existing, &ours, &[])
}

/// As `merge`, for a trusted kmk.
pub fn merge_trusted(existing: Option<&[u8]>, kmk: &TrustedKmk) -> Result<String, String> {
    merge_lines(existing, &kmk.assignments(), &kmk.dropped())
}

/// `existing` without its assignments of the keys of `ours` and `dropped`,
/// then `ours`.
fn merge_lines(
    existing: Option<&[u8]>,
    ours: &[(&'static str, String)],
    dropped: &[&str],
) -> Result<String, String> {
    let mut text = String::new();
    if let Some(bytes) = existing {
        let parsed = sysconfig::parse(bytes).map_err(|e| e.to_string())?;
        let replaced: Vec<usize> = parsed
            .iter()
            .filter(|a| {
                ours.iter().any(|(name, _)| *name == a.name) || dropped.contains(&a.name.as_str())
            })
            .map(|a| a.line)
            .collect();
        let existing = String::from_utf8_lossy(bytes);
        for (index, line) in existing.lines().enumerate() {
            if replaced.contains(&(index + 1)) || line == HEADER || line == PIN_COMMENT {
                continue;
            }
            text.push_str(line);
            text.push('\n');
        }
    }
    text.push_str(HEADER);
    text.push('\n');
    for (name, value) in ours {
        if *name == "TPM2_PARENT_NAME" {
            text.push_str(PIN_COMMENT);
            text.push('\n');
        }
        text.push_str(&format!("{name}={}\n", sysconfig::quote(value)));
    }
    Ok(text)
}

/// Whether `existing` already gives every key `kmk` sets the value it sets
/// (so that rewriting it changes nothing the loader reads).
pub fn already_says(existing: &[u8], kmk: &SealedKmk) -> bool {
    let Ok(parsed) = sysconfig::parse(existing) else {
        return false;
    };
    kmk.assignments()
        .iter()
        .all(|(name, value)| parsed.get(name).is_some_and(|a| &a.value == value))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn kmk() -> SealedKmk<'static> {
        SealedKmk {
            masterkey: "/etc/keys/kmk-tpm2.pem",
            pcrs: "sha256:7,11",
            parent: 0x8100_0001,
            parent_name: "000b00",
            parent_public: "0023",
            pcr_values: "7=00,11=11",
            evm_key: None,
        }
    }

    #[test]
    fn a_new_file_has_the_kmk_keys() {
        assert_eq!(
            merge(None, &kmk()).unwrap(),
            format!(
                "{HEADER}\nMASTERKEYTYPE=tpm2\nMASTERKEY=/etc/keys/kmk-tpm2.pem\nTPM2_PCRS=sha256:7,11\nTPM2_PARENT=0x81000001\n{PIN_COMMENT}\nTPM2_PARENT_NAME=000b00\nTPM2_PARENT_PUBLIC=0023\nTPM2_PCR_VALUES=7=00,11=11\n"
            )
        );
    }

    #[test]
    fn other_settings_and_comments_are_kept_ours_replaced() {
        let old = "# site policy\nFAILURE_ACTION=halt\nMASTERKEYTYPE=user\nKMK_NAME=kmk-site\nTPM2_PARENT_NAME=\"000bff\"\nTPM=swtpm:port=1\n";
        let new = merge(Some(old.as_bytes()), &kmk()).unwrap();
        assert!(new.starts_with("# site policy\nFAILURE_ACTION=halt\nKMK_NAME=kmk-site\nTPM=swtpm:port=1\n# written by"), "{new}");
        assert!(
            !new.contains("MASTERKEYTYPE=user") && !new.contains("000bff"),
            "{new}"
        );
        // Sealing again does not pile up our comments.
        let again = merge(Some(new.as_bytes()), &kmk()).unwrap();
        assert_eq!(again, new);
        // TPM= is the administrator's, never ours: kept where it was.
        assert_eq!(new.matches("TPM=").count(), 1, "{new}");
    }

    #[test]
    fn values_read_back_as_written() {
        for path in [
            "/etc/keys/kmk-tpm2.pem",
            "/etc/my keys/kmk.pem",
            "/etc/$keys/k`x`.pem",
            "/etc/it's/\"kmk\" \\ $HOME.pem",
        ] {
            let kmk = SealedKmk {
                masterkey: path,
                ..kmk()
            };
            let text = merge(None, &kmk).unwrap();
            let parsed = sysconfig::parse(text.as_bytes()).unwrap();
            assert_eq!(parsed.get("MASTERKEY").unwrap().value, path, "{text}");
        }
    }

    #[test]
    fn export_lines_duplicates_and_no_final_newline() {
        let old = "export FAILURE_ACTION=halt\nMASTERKEY=/a\nMASTERKEY=/b\nDROP_KMK=yes";
        let new = merge(Some(old.as_bytes()), &kmk()).unwrap();
        assert!(
            new.starts_with("export FAILURE_ACTION=halt\nDROP_KMK=yes\n# written by"),
            "{new}"
        );
        let parsed = sysconfig::parse(new.as_bytes()).unwrap();
        assert_eq!(
            parsed.get("MASTERKEY").unwrap().value,
            "/etc/keys/kmk-tpm2.pem"
        );
        assert_eq!(parsed.iter().filter(|a| a.name == "MASTERKEY").count(), 1);
    }

    #[test]
    fn a_file_that_says_it_all_already_is_recognised() {
        let text = merge(Some(b"DROP_KMK=no\n"), &kmk()).unwrap();
        let moved = format!("{text}DROP_KMK=no\n").replacen("DROP_KMK=no\n", "", 1);
        assert!(already_says(moved.as_bytes(), &kmk()));
        let other = SealedKmk {
            pcrs: "sha256:7",
            ..kmk()
        };
        assert!(!already_says(text.as_bytes(), &other));
        assert!(!already_says(b"MASTERKEYTYPE=tpm2\n", &kmk()));
        assert!(!already_says(b"X=$Y\n", &kmk()));
    }

    #[test]
    fn a_trusted_kmk_replaces_the_tpm2_lines() {
        let tpm2 = merge(Some(b"FAILURE_ACTION=halt\n"), &kmk()).unwrap();
        let bound = TrustedKmk {
            masterkey: Some("/etc/keys/kmk-trusted.blob"),
            pcrs: Some("sha256:11"),
        };
        let new = merge_trusted(Some(tpm2.as_bytes()), &bound).unwrap();
        assert_eq!(
            new,
            format!(
                "FAILURE_ACTION=halt\n{HEADER}\nMASTERKEYTYPE=trusted\nMASTERKEY=/etc/keys/kmk-trusted.blob\nTPM2_PCRS=sha256:11\n"
            )
        );
        // Unbound, per release: no TPM2_PCRS, no MASTERKEY.
        let per_release = TrustedKmk {
            masterkey: None,
            pcrs: None,
        };
        let new = merge_trusted(Some(tpm2.as_bytes()), &per_release).unwrap();
        assert_eq!(
            new,
            format!("FAILURE_ACTION=halt\n{HEADER}\nMASTERKEYTYPE=trusted\n")
        );
        assert_eq!(
            merge_trusted(Some(new.as_bytes()), &per_release).unwrap(),
            new
        );
    }

    #[test]
    fn evm_key_is_recorded_when_given_and_side_names_switch_only_the_files() {
        let with = SealedKmk {
            evm_key: Some("/etc/keys/evm.blob"),
            ..kmk()
        };
        let text = merge(Some(b"EVMKEY=/old\n"), &with).unwrap();
        let parsed = sysconfig::parse(text.as_bytes()).unwrap();
        assert_eq!(parsed.get("EVMKEY").unwrap().value, "/etc/keys/evm.blob");
        assert_eq!(text.matches("EVMKEY=").count(), 1, "{text}");
        assert!(already_says(text.as_bytes(), &with));
        // Without it, an EVMKEY line is left as it is.
        let kept = merge(Some(text.as_bytes()), &kmk()).unwrap();
        assert!(kept.contains("EVMKEY=/etc/keys/evm.blob\n"), "{kept}");

        let old = "FAILURE_ACTION=halt\nMASTERKEYTYPE=tpm2\nMASTERKEY=/k.pem\n";
        let side = name_files(Some(old.as_bytes()), Some("/k.pem.next"), Some("/e.next")).unwrap();
        assert_eq!(
            side,
            format!(
                "FAILURE_ACTION=halt\nMASTERKEYTYPE=tpm2\n{HEADER}\nMASTERKEY=/k.pem.next\nEVMKEY=/e.next\n"
            )
        );
        let evm_only = name_files(Some(old.as_bytes()), None, Some("/e.next")).unwrap();
        assert!(evm_only.contains("MASTERKEY=/k.pem\n"), "{evm_only}");
    }

    #[test]
    fn an_unparsable_file_is_not_rewritten() {
        let e = merge(Some(b"FAILURE_ACTION=$X\n"), &kmk()).unwrap_err();
        assert!(e.contains("line 1"), "{e}");
    }
}
