//! Pins the initramfs carries. The real root is not verified when the
//! loader reads it: someone who can write to the disk can edit
//! /etc/integrity-loader.conf to turn every protection off (delete
//! TPM2_PARENT_NAME, switch the kmk to a `user` key of their own, replace
//! the sealed blob with one they sealed, turn halt off). An initramfs
//! covered by the PCR policy (a UKI measured into PCR 11, say) cannot be
//! changed that way, so a host-only dracut build copies what protects the
//! kmk and the boot into it (`check --write-pins`) and the hook passes that
//! copy back (`--pins`). What the file pins wins over the root's
//! configuration and the kernel command line; the settings that only
//! tighten (halt, REQUIRE, dropping the kmk) are floors the root can raise
//! but not lower.

use crate::config::{self, ConfigError, FailureAction, MasterKeyType, Setting, Settings, Source};
use crate::rootfs::Root;
use crate::sysconfig;
use crate::tpm::parent_pin;
use sha2::{Digest, Sha256};
use std::path::Path;

/// The keys a pins file may hold.
const PIN_KEYS: &[&str] = &[
    "MASTERKEYTYPE",
    "MASTERKEY",
    "MASTERKEY_SHA256",
    "RECOVERY_SHA256",
    "KMK_NAME",
    "TPM2_PARENT_NAME",
    "TPM2_PCRLOCK",
    "DROP_KMK",
    "FAILURE_ACTION",
    "REQUIRE",
];
const PINS_LIMIT: usize = 4096;
/// A kmk blob is a few KiB at most; the pin hashes the same bytes the
/// kmk step reads.
const BLOB_LIMIT: usize = 64 * 1024;

fn error(path: &Path, line: Option<usize>, message: String) -> ConfigError {
    ConfigError {
        place: match line {
            Some(l) => format!("{}:{l}", path.display()),
            None => path.display().to_string(),
        },
        message,
    }
}

/// The SHA-256 the pin of a kmk blob is over.
pub fn blob_digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Applies the pins in `path` (a file of the running system, the
/// initramfs at boot) to `settings`. Returns warnings for every root
/// setting the pins overrode.
pub fn apply(path: &Path, settings: &mut Settings) -> Result<Vec<String>, ConfigError> {
    let bytes = Root::new("/")
        .read(&path.to_string_lossy(), PINS_LIMIT)
        .map_err(|e| error(path, None, format!("read pins: {}", e.kind)))?;
    let parsed = sysconfig::parse(&bytes).map_err(|e| ConfigError {
        place: format!("{}:{}:{}", path.display(), e.line, e.column),
        message: e.kind.to_string(),
    })?;
    let mut warnings = Vec::new();
    let mut typed = false;
    let mut pins_parent = false;
    for a in parsed.iter() {
        let at = |m: String| error(path, Some(a.line), m);
        let source = Source::File {
            path: path.to_path_buf(),
            line: a.line,
        };
        let differs = |what: &str,
                       root: &dyn std::fmt::Display,
                       root_source: &dyn std::fmt::Display| {
            format!(
                "{what} {root} ({root_source}) differs from the initramfs's pin {} ({}:{}), which is the one used; if you changed it on purpose, rebuild the initramfs (dracut -f)",
                a.value,
                path.display(),
                a.line
            )
        };
        match a.name.as_str() {
            "MASTERKEYTYPE" => {
                let pinned = config::parse_masterkey_type(&a.value).map_err(at)?;
                let root = &settings.masterkey_type;
                if root.value != pinned {
                    warnings.push(differs("MASTERKEYTYPE", &root.value.name(), &root.source));
                }
                settings.masterkey_type = Setting {
                    value: pinned,
                    source,
                };
                typed = true;
            }
            "MASTERKEY" => {
                if !a.value.starts_with('/') {
                    return Err(at(format!(
                        "MASTERKEY=\"{}\" must be an absolute path",
                        a.value
                    )));
                }
                let root = &settings.masterkey;
                if root.value != a.value {
                    warnings.push(differs("MASTERKEY", &root.value, &root.source));
                }
                settings.masterkey = Setting {
                    value: a.value.clone(),
                    source,
                };
            }
            "MASTERKEY_SHA256" => {
                let digest = crate::hex::decode::<32>(&a.value)
                    .map_err(|_| at("MASTERKEY_SHA256: expected 64 hex digits".to_string()))?;
                settings.masterkey_sha256 = Some(Setting {
                    value: digest,
                    source,
                });
            }
            "RECOVERY_SHA256" => {
                let digest = match a.value.as_str() {
                    "none" => None,
                    v => Some(crate::hex::decode::<32>(v).map_err(|_| {
                        at("RECOVERY_SHA256: expected 64 hex digits, or none".to_string())
                    })?),
                };
                settings.recovery_sha256 = Some(Setting {
                    value: digest,
                    source,
                });
            }
            "KMK_NAME" => {
                if a.value.is_empty() {
                    return Err(at("KMK_NAME is empty".to_string()));
                }
                settings.kmk_name = a.value.clone();
                settings.kmk_name_source = source;
            }
            "TPM2_PARENT_NAME" => {
                let name = parent_pin::parse_name_hex(&a.value)
                    .map_err(|e| at(format!("TPM2_PARENT_NAME: {e}")))?;
                pins_parent = true;
                match &settings.tpm.parent_name {
                    // The build copied it from the root: it was removed since.
                    None => warnings.push(format!(
                        "the root's configuration pins no storage key, but the initramfs does ({}:{}); it was removed from the root since the initramfs was built",
                        path.display(),
                        a.line
                    )),
                    Some(old) if old.value != name => warnings.push(format!(
                        "TPM2_PARENT_NAME {} ({}) differs from the initramfs's pin {} ({}:{}), which is the one checked; if the storage key was provisioned again, rebuild the initramfs (dracut -f)",
                        parent_pin::name_hex(&old.value),
                        old.source,
                        parent_pin::name_hex(&name),
                        path.display(),
                        a.line
                    )),
                    Some(_) => {}
                }
                settings.tpm.parent_name = Some(Setting {
                    value: name,
                    source,
                });
            }
            "TPM2_PCRLOCK" => {
                let pinned = config::parse_pcr_lock(&a.value, None).map_err(at)?;
                if settings.tpm.pcr_lock != pinned {
                    let shown = settings
                        .tpm
                        .pcr_lock
                        .map_or("no".to_string(), |p| p.to_string());
                    warnings.push(differs("TPM2_PCRLOCK", &shown, &"the root's configuration"));
                }
                if let Some(pcr) = pinned {
                    crate::pcr_choice::refuse_stub_pcr(
                        "TPM2_PCRLOCK",
                        u32::from(pcr),
                        settings.stub_pcr,
                    )
                    .map_err(at)?;
                }
                settings.tpm.pcr_lock = pinned;
                settings.tpm.pcr_lock_explicit = true;
            }
            // Floors: the root may ask for more, never for less.
            "DROP_KMK" => {
                if a.value != "yes" {
                    return Err(at(format!(
                        "DROP_KMK=\"{}\": a pin can only be yes",
                        a.value
                    )));
                }
                settings.drop_kmk = Some(Setting {
                    value: true,
                    source,
                });
            }
            "FAILURE_ACTION" => {
                if FailureAction::parse(&a.value).map_err(at)? == FailureAction::Halt {
                    settings.failure_action = FailureAction::Halt;
                }
            }
            "REQUIRE" => {
                let steps = config::parse_required(&a.value).map_err(at)?;
                settings.required.extend(steps);
            }
            other => {
                return Err(at(format!(
                    "{other} cannot be pinned in the initramfs (only {})",
                    PIN_KEYS.join(", ")
                )));
            }
        }
    }
    // A pins file from before the kmk type was pinned: a storage key pin
    // means a tpm2 kmk, and no other kmk source may take its place. The
    // pin in this file, not a TPM2_PARENT_NAME the root's configuration
    // has beside another kmk type.
    if !typed && pins_parent && settings.masterkey_type.value != MasterKeyType::Tpm2 {
        warnings.push(format!(
            "MASTERKEYTYPE={} ({}), but the initramfs pins a storage key ({}), so the kmk can only be a tpm2 kmk: using tpm2",
            settings.masterkey_type.value.name(),
            settings.masterkey_type.source,
            path.display()
        ));
        settings.masterkey_type = Setting {
            value: MasterKeyType::Tpm2,
            source: Source::File {
                path: path.to_path_buf(),
                line: 0,
            },
        };
    }
    Ok(warnings)
}

/// The pins file for an initramfs built for a root with `settings`, or
/// `None` when there is nothing to pin. A TPM-sealed kmk (tpm2, trusted)
/// is pinned by type, path, name and the SHA-256 of its blob, which is
/// read from `root`.
pub fn render(settings: &Settings, root: &Root) -> Result<Option<String>, String> {
    let mut lines = Vec::new();
    let kmk_type = settings.masterkey_type.value;
    // A tpm2-tools pair is pinned by its .pub, which binds the sealed
    // data: the TPM refuses a .priv that does not belong to it. No blob,
    // no kmk step (not configured), nothing to pin.
    let path = &settings.masterkey.value;
    let blob = match root.read(path, BLOB_LIMIT) {
        _ if kmk_type == MasterKeyType::User => None,
        Ok(blob) => Some(blob),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(format!("cannot pin the kmk blob: read {e}")),
    };
    if let Some(blob) = blob {
        lines.push(format!("MASTERKEYTYPE={}", kmk_type.name()));
        lines.push(format!("MASTERKEY={}", sysconfig::quote(path)));
        lines.push(format!(
            "MASTERKEY_SHA256={}",
            crate::hex::encode(&blob_digest(&blob))
        ));
        lines.push(format!("KMK_NAME={}", sysconfig::quote(&settings.kmk_name)));
        // The recovery file opens the same kmk without the TPM: pinned too,
        // or one planted on the disk would let its maker type their own key.
        let recovery = format!("{path}{}", crate::recovery::SUFFIX);
        let pin = match root.read(&recovery, BLOB_LIMIT) {
            Ok(bytes) => crate::hex::encode(&blob_digest(&bytes)),
            Err(e) if e.is_not_found() => "none".to_string(),
            Err(e) => return Err(format!("cannot pin the recovery file: read {e}")),
        };
        lines.push(format!("RECOVERY_SHA256={pin}"));
    }
    // Only a tpm2 kmk is unsealed under the storage key; pinned for
    // another type, it would make the boot take the kmk for a tpm2 one.
    if kmk_type == MasterKeyType::Tpm2
        && let Some(pin) = &settings.tpm.parent_name
    {
        lines.push(format!(
            "TPM2_PARENT_NAME={}",
            parent_pin::name_hex(&pin.value)
        ));
    }
    if kmk_type == MasterKeyType::Tpm2
        && let Some(pcr) = settings.tpm.pcr_lock
    {
        lines.push(format!("TPM2_PCRLOCK={pcr}"));
    }
    if settings.drops_kmk() {
        lines.push("DROP_KMK=yes".to_string());
    }
    if settings.failure_action == FailureAction::Halt {
        lines.push("FAILURE_ACTION=halt".to_string());
    }
    if !settings.required.is_empty() {
        let names: Vec<&str> = settings.required.iter().map(|s| s.name()).collect();
        lines.push(format!("REQUIRE=\"{}\"", names.join(" ")));
    }
    if lines.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!(
        "# integrity-loader pins, copied from the root's configuration when this initramfs was built\n{}\n",
        lines.join("\n")
    )))
}

/// Checks a recovery file read from `shown` against the initramfs's pins:
/// with the kmk pinned, only the recovery file pinned beside it counts.
pub fn check_recovery(settings: &Settings, shown: &str, bytes: &[u8]) -> Result<(), String> {
    if settings.masterkey_sha256.is_none() {
        return Ok(());
    }
    let digest = blob_digest(bytes);
    match &settings.recovery_sha256 {
        Some(pin) if pin.value == Some(digest) => Ok(()),
        Some(pin) if pin.value.is_none() => Err(format!(
            "recovery file {} is not used: the initramfs pins the kmk and no recovery file ({}); if you made the recovery key since, rebuild the initramfs (dracut -f)",
            shown, pin.source
        )),
        Some(pin) => Err(format!(
            "recovery file {} is not the one the initramfs pins (SHA-256 {}, {}): it was replaced since the initramfs was built; if you made a new recovery key, rebuild the initramfs (dracut -f)",
            shown,
            crate::hex::encode(&digest),
            pin.source
        )),
        None => Err(format!(
            "recovery file {} is not used: the initramfs pins the kmk but not a recovery file; rebuild the initramfs (dracut -f)",
            shown
        )),
    }
}

/// Checks the kmk blob read from `path` against the initramfs's pin of
/// it: a blob sealed by someone else (under the same storage key, say)
/// would unseal to a kmk they know.
pub fn check_blob(settings: &Settings, shown: &str, bytes: &[u8]) -> Result<(), String> {
    let Some(pin) = &settings.masterkey_sha256 else {
        return Ok(());
    };
    let digest = blob_digest(bytes);
    if digest == pin.value {
        return Ok(());
    }
    Err(format!(
        "kmk blob {} is not the one the initramfs pins (SHA-256 {}, pinned {} at {}): it was replaced since the initramfs was built; if you sealed the kmk again, rebuild the initramfs (dracut -f)",
        shown,
        crate::hex::encode(&digest),
        crate::hex::encode(&pin.value),
        pin.source
    ))
}

/// The Name this boot's unseal checked (or a `seal` of this boot pinned),
/// in the run directory: the next host-only build compares the root's pin
/// with it, so a pin removed from the root after the boot read it is not
/// silently left out of the next initramfs.
pub const CHECKED_FILE: &str = "storage-key-name";

pub fn record_checked(run_dir: &Path, name: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(run_dir)?;
    std::fs::write(
        run_dir.join(CHECKED_FILE),
        format!("{}\n", parent_pin::name_hex(name)),
    )
}

/// Refuses to copy into a new initramfs a pin other than the one this boot
/// checked (a root edited since it was read); `Ok` when this boot checked
/// none.
pub fn guard_rebuild(settings: &Settings, run_dir: &Path) -> Result<(), String> {
    let record = run_dir.join(CHECKED_FILE);
    let Ok(text) = std::fs::read_to_string(&record) else {
        return Ok(());
    };
    let checked = text.trim();
    let now = settings
        .tpm
        .parent_name
        .as_ref()
        .map(|p| (parent_pin::name_hex(&p.value), p.source.to_string()));
    let what = match &now {
        Some((name, _)) if name.as_str() == checked => return Ok(()),
        Some((name, source)) => format!("pins {name} ({source})"),
        None => "pins none".to_string(),
    };
    Err(format!(
        "this boot checked the storage key Name {checked} ({}), but the root's configuration {what} now: it changed since the boot read it. If you changed the pin on purpose (and did not run `integrity-loader seal --write-config`, which records it), build with INTEGRITY_LOADER_REPIN=1 (check --repin); otherwise find out who changed it",
        record.display()
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::{ConfigInputs, Settings};

    /// The settings the configuration under `root` gives, with an empty
    /// command line.
    fn resolve(root: &Root) -> Settings {
        Settings::resolve(&ConfigInputs {
            root,
            native_config: None,
            cmdline: &crate::cmdline::Cmdline::parse(""),
            kernel_release: "6.1.0-test",
            stub_pcr: None,
        })
        .unwrap()
    }

    /// The defaults, resolved over an empty root.
    fn settings() -> Settings {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("il-pins-root-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let s = resolve(&Root::new(&dir));
        let _ = std::fs::remove_dir_all(&dir);
        s
    }

    fn pins_file(name: &str, text: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("il-pins-{}-{name}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        p
    }

    fn empty_root() -> Root {
        let dir = std::env::temp_dir().join(format!("il-pins-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Root::new(dir)
    }

    #[test]
    fn render_then_apply_round_trips() {
        let mut s = settings();
        assert_eq!(render(&s, &empty_root()).unwrap(), None);
        let name = format!("000b{}", "c3".repeat(32));
        let p = pins_file("rt", &format!("TPM2_PARENT_NAME={name}\n"));
        // The root pins nothing: said, as a pin removed since the build;
        // and a storage key pin makes the kmk a tpm2 kmk (a pins file
        // from before the type was pinned).
        let warnings = apply(&p, &mut s).unwrap();
        assert!(
            warnings[0].contains("it was removed from the root since"),
            "{warnings:?}"
        );
        assert!(
            warnings[1]
                .contains("MASTERKEYTYPE=trusted (default), but the initramfs pins a storage key"),
            "{warnings:?}"
        );
        assert_eq!(s.masterkey_type.value, MasterKeyType::Tpm2);
        let text = render(&s, &empty_root()).unwrap().unwrap();
        assert!(
            text.contains(&format!("\nTPM2_PARENT_NAME={name}\n")),
            "{text}"
        );
        let q = pins_file("rt2", &text);
        let mut t = settings();
        apply(&q, &mut t).unwrap();
        assert_eq!(
            t.tpm.parent_name.unwrap().value,
            s.tpm.parent_name.unwrap().value
        );
        let _ = std::fs::remove_file(p);
        let _ = std::fs::remove_file(q);
    }

    /// A user kmk beside a stray TPM2_PARENT_NAME (found by the config
    /// fuzz target): the storage key is not pinned for it, and the pins
    /// the build writes leave the boot's kmk a user kmk.
    #[test]
    fn a_storage_key_name_beside_a_user_kmk_is_not_pinned() {
        let dir = std::env::temp_dir().join(format!("il-pins-userparent-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        let name = format!("000b{}", "c3".repeat(32));
        std::fs::write(
            dir.join("etc/integrity-loader.conf"),
            format!("MASTERKEYTYPE=user\nTPM2_PARENT_NAME={name}\nTPM2_PCRLOCK=11\n"),
        )
        .unwrap();
        let root = Root::new(&dir);
        let s = resolve(&root);
        assert_eq!(s.masterkey_type.value, MasterKeyType::User);
        // Nothing to pin for a user kmk: no type, no storage key.
        assert_eq!(render(&s, &root).unwrap(), None);
        // A pins file that pins no storage key itself leaves the type as
        // the root configures it, whatever TPM2_PARENT_NAME the root has.
        let p = pins_file("userparent", "FAILURE_ACTION=halt\n");
        let mut t = resolve(&root);
        apply(&p, &mut t).unwrap();
        assert_eq!(t.masterkey_type.value, MasterKeyType::User);
        assert!(!t.drops_kmk());
        let _ = std::fs::remove_file(p);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The kmk name the evm-key blob gives is what the build pins; a root
    /// whose blob names another master key later does not rename the kmk.
    #[test]
    fn a_pinned_kmk_name_wins_over_the_evm_key_blob() {
        let dir = std::env::temp_dir().join(format!("il-pins-blobname-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc/keys")).unwrap();
        std::fs::create_dir_all(dir.join("etc/sysconfig")).unwrap();
        std::fs::write(dir.join("etc/keys/kmk"), b"0123abcd\n").unwrap();
        std::fs::write(
            dir.join("etc/sysconfig/masterkey"),
            "MASTERKEY=/etc/keys/kmk\n",
        )
        .unwrap();
        std::fs::write(dir.join("etc/sysconfig/evm"), "EVMKEY=/etc/keys/evm-key\n").unwrap();
        let evm = |master: &str| {
            let text = format!("default {master} 32 {}\n", "ab".repeat(81));
            std::fs::write(dir.join("etc/keys/evm-key"), text).unwrap();
        };
        let root = Root::new(&dir);
        evm("trusted:kmk");
        let text = render(&resolve(&root), &root).unwrap().unwrap();
        assert!(text.lines().any(|l| l == "KMK_NAME=kmk"), "{text}");
        evm("trusted:other");
        let mut edited = resolve(&root);
        assert_eq!(edited.kmk_name, "other");
        let p = pins_file("blobname", &text);
        apply(&p, &mut edited).unwrap();
        assert_eq!(edited.kmk_name, "kmk");
        assert!(
            edited.kmk_name_source.to_string().ends_with("-blobname:5"),
            "{}",
            edited.kmk_name_source
        );
        let _ = std::fs::remove_file(p);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Every setting that protects the kmk or the boot goes into the
    /// initramfs, and comes back out whatever the root says later.
    #[test]
    fn a_tpm2_root_is_pinned_whole() {
        let dir = std::env::temp_dir().join(format!("il-pins-tpm2-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc/keys")).unwrap();
        std::fs::write(dir.join("etc/keys/kmk.pem"), b"sealed blob").unwrap();
        let root = Root::new(&dir);
        let name = format!("000b{}", "c3".repeat(32));
        let conf = format!(
            "MASTERKEYTYPE=tpm2\nMASTERKEY=/etc/keys/kmk.pem\nTPM2_PARENT_NAME={name}\nFAILURE_ACTION=halt\nREQUIRE=\"evm kmk\"\n"
        );
        std::fs::write(dir.join("il.conf"), &conf).unwrap();
        let resolve = |native: &str| {
            std::fs::write(dir.join("il.conf"), native).unwrap();
            Settings::resolve(&ConfigInputs {
                root: &root,
                native_config: Some(&dir.join("il.conf")),
                cmdline: &crate::cmdline::Cmdline::parse(""),
                kernel_release: "6.1.0-test",
                stub_pcr: None,
            })
            .unwrap()
        };
        let built = resolve(&conf);
        let text = render(&built, &root).unwrap().unwrap();
        let digest = crate::hex::encode(&blob_digest(b"sealed blob"));
        for line in [
            "MASTERKEYTYPE=tpm2".to_string(),
            "MASTERKEY=/etc/keys/kmk.pem".to_string(),
            format!("MASTERKEY_SHA256={digest}"),
            "KMK_NAME=kmk".to_string(),
            "RECOVERY_SHA256=none".to_string(),
            format!("TPM2_PARENT_NAME={name}"),
            "TPM2_PCRLOCK=11".to_string(),
            "DROP_KMK=yes".to_string(),
            "FAILURE_ACTION=halt".to_string(),
            "REQUIRE=\"kmk evm\"".to_string(),
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        // The root, edited: a user kmk of its own, halt and the lock off.
        let mut edited = resolve(
            "MASTERKEYTYPE=user\nMASTERKEY=/etc/keys/mine\nKMK_NAME=other\nFAILURE_ACTION=continue\nTPM2_PCRLOCK=no\nDROP_KMK=no\n",
        );
        let p = pins_file("whole", &text);
        let warnings = apply(&p, &mut edited).unwrap();
        assert_eq!(edited.masterkey_type.value, MasterKeyType::Tpm2);
        assert_eq!(edited.masterkey.value, "/etc/keys/kmk.pem");
        assert_eq!(edited.kmk_name, "kmk");
        assert_eq!(edited.tpm.pcr_lock, Some(11));
        assert!(edited.drops_kmk());
        assert_eq!(edited.failure_action, FailureAction::Halt);
        assert_eq!(edited.required, built.required);
        assert!(edited.tpm.parent_name.is_some());
        let shown = "/etc/keys/kmk.pem";
        assert!(check_blob(&edited, shown, b"sealed blob").is_ok());
        let e = check_blob(&edited, shown, b"my own blob").unwrap_err();
        assert!(e.contains("is not the one the initramfs pins"), "{e}");
        // No recovery file at the build: none is taken at boot.
        let e = check_recovery(&edited, shown, b"a planted recovery file").unwrap_err();
        assert!(e.contains("pins the kmk and no recovery file"), "{e}");
        for what in [
            "MASTERKEYTYPE user",
            "MASTERKEY /etc/keys/mine",
            "TPM2_PCRLOCK no",
        ] {
            assert!(
                warnings.iter().any(|w| w.starts_with(what)),
                "no warning for {what}: {warnings:?}"
            );
        }
        // The floors only raise: a root asking for more keeps it.
        let mut stricter = resolve("MASTERKEYTYPE=tpm2\nREQUIRE=ima-policy\n");
        apply(&p, &mut stricter).unwrap();
        assert_eq!(stricter.required.len(), 3);
        let _ = std::fs::remove_file(p);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_pins_files_name_file_and_line() {
        for (text, want) in [
            (
                "\nEVMKEY=/x\n",
                ":2: EVMKEY cannot be pinned in the initramfs",
            ),
            (
                "DROP_KMK=no\n",
                ":1: DROP_KMK=\"no\": a pin can only be yes",
            ),
            (
                "MASTERKEY=keys/kmk\n",
                ":1: MASTERKEY=\"keys/kmk\" must be an absolute path",
            ),
            (
                "MASTERKEY_SHA256=00\n",
                ":1: MASTERKEY_SHA256: expected 64 hex digits",
            ),
            (
                "TPM2_PARENT_NAME=000b12\n",
                ":1: TPM2_PARENT_NAME: 6 characters",
            ),
            ("TPM2_PARENT_NAME=$X\n", ":1:18: shell expansion"),
        ] {
            let p = pins_file("bad", text);
            let e = apply(&p, &mut settings()).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
            let _ = std::fs::remove_file(p);
        }
        let missing = std::path::Path::new("/nonexistent/il.pins");
        let e = apply(missing, &mut settings()).unwrap_err().to_string();
        assert!(e.starts_with("/nonexistent/il.pins: read pins:"), "{e}");
    }
}
