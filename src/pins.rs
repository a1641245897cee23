//! Pins the initramfs carries. The real root is not verified when the
//! loader reads it: someone who can write to the disk can delete
//! TPM2_PARENT_NAME from /etc/integrity-loader.conf, and with a device on
//! the TPM bus read the kmk. An initramfs covered by the PCR policy (a UKI
//! measured into PCR 11, say) cannot be changed that way, so a host-only
//! dracut build copies the pin into it (`check --write-pins`) and the hook
//! passes that copy back (`--pins`). What the file pins overrides the
//! root's configuration and the kernel command line.

use crate::config::{ConfigError, Setting, Settings, Source};
use crate::rootfs::Root;
use crate::sysconfig;
use crate::tpm::parent_pin;
use std::path::Path;

/// The keys a pins file may hold.
const PIN_KEYS: &[&str] = &["TPM2_PARENT_NAME"];
const PINS_LIMIT: usize = 4096;

fn error(path: &Path, line: Option<usize>, message: String) -> ConfigError {
    ConfigError {
        place: match line {
            Some(l) => format!("{}:{l}", path.display()),
            None => path.display().to_string(),
        },
        message,
    }
}

/// Applies the pins in `path` (a file of the running system, the
/// initramfs at boot) to `settings`. Returns a warning when a pin replaces
/// a different one from the root's configuration.
pub fn apply(path: &Path, settings: &mut Settings) -> Result<Option<String>, ConfigError> {
    let bytes = Root::new("/")
        .read(&path.to_string_lossy(), PINS_LIMIT)
        .map_err(|e| error(path, None, format!("read pins: {}", e.kind)))?;
    let parsed = sysconfig::parse(&bytes).map_err(|e| ConfigError {
        place: format!("{}:{}:{}", path.display(), e.line, e.column),
        message: e.kind.to_string(),
    })?;
    let mut warning = None;
    for a in parsed.iter() {
        if !PIN_KEYS.contains(&a.name.as_str()) {
            return Err(error(
                path,
                Some(a.line),
                format!(
                    "{} cannot be pinned in the initramfs (only {})",
                    a.name,
                    PIN_KEYS.join(", ")
                ),
            ));
        }
        let name = parent_pin::parse_name_hex(&a.value)
            .map_err(|e| error(path, Some(a.line), format!("TPM2_PARENT_NAME: {e}")))?;
        warning = match &settings.tpm.parent_name {
            // The build copied it from the root: it was removed since.
            None => Some(format!(
                "the root's configuration pins no storage key, but the initramfs does ({}:{}); it was removed from the root since the initramfs was built",
                path.display(),
                a.line
            )),
            Some(old) if old.value != name => Some(format!(
                "TPM2_PARENT_NAME {} ({}) differs from the initramfs's pin {} ({}:{}), which is the one checked; if the storage key was provisioned again, rebuild the initramfs (dracut -f)",
                parent_pin::name_hex(&old.value),
                old.source,
                parent_pin::name_hex(&name),
                path.display(),
                a.line
            )),
            Some(_) => warning,
        };
        settings.tpm.parent_name = Some(Setting {
            value: name,
            source: Source::File {
                path: path.to_path_buf(),
                line: a.line,
            },
        });
    }
    Ok(warning)
}

/// The pins file for an initramfs built for a root with `settings`, or
/// `None` when the root pins nothing.
pub fn render(settings: &Settings) -> Option<String> {
    let pin = settings.tpm.parent_name.as_ref()?;
    Some(format!(
        "# integrity-loader pins, copied from the root's configuration when this initramfs was built\nTPM2_PARENT_NAME={}\n",
        parent_pin::name_hex(&pin.value)
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

    /// The defaults, resolved over an empty root.
    fn settings() -> Settings {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("il-pins-root-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let s = Settings::resolve(&ConfigInputs {
            root: &Root::new(&dir),
            native_config: None,
            cmdline: &crate::cmdline::Cmdline::parse(""),
            kernel_release: "6.1.0-test",
        })
        .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        s
    }

    fn pins_file(name: &str, text: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("il-pins-{}-{name}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn render_then_apply_round_trips() {
        let mut s = settings();
        assert_eq!(render(&s), None);
        let name = format!("000b{}", "c3".repeat(32));
        let p = pins_file("rt", &format!("TPM2_PARENT_NAME={name}\n"));
        // The root pins nothing: said, as a pin removed since the build.
        let warning = apply(&p, &mut s).unwrap().unwrap();
        assert!(
            warning.contains("it was removed from the root since"),
            "{warning}"
        );
        let text = render(&s).unwrap();
        assert!(
            text.ends_with(&format!("\nTPM2_PARENT_NAME={name}\n")),
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

    #[test]
    fn bad_pins_files_name_file_and_line() {
        for (text, want) in [
            (
                "\nFAILURE_ACTION=halt\n",
                ":2: FAILURE_ACTION cannot be pinned in the initramfs",
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
