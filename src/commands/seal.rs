//! `integrity-loader seal`, on the installed system: the seed procedure's
//! manual steps in one command. Makes sure the storage key exists, seals a
//! new kmk to PCR values, writes the blob (0600, through a temp file and a
//! rename), and optionally exports an evm-key sealed by that kmk and writes
//! a matching /etc/integrity-loader.conf. Secrets go nowhere else.

use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE, setup};
use crate::cli::Options;
use crate::config::MasterKeyType;
use crate::keyring;
use crate::rootfs::Root;
use crate::secret::Secret;
use crate::tpm::client::Tpm;
use crate::tpm::keyfile::{self, Fields};
use crate::tpm::pcr::PcrSelection;
use crate::tpm::{parent_pin, seal, tcti, transport};
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::time::Instant;

const DEFAULT_OUTPUT: &str = "/etc/keys/kmk-tpm2.pem";
const CONFIG_PATH: &str = "/etc/integrity-loader.conf";

fn usage(message: String) -> u8 {
    log::error!("{message}");
    EXIT_USAGE
}

/// A file we create inside the root: an absolute path without `..`, not
/// there yet unless `force`. Returns where it is now, for messages.
fn check_target(root: &Root, path: &str, force: bool) -> Result<PathBuf, String> {
    let p = Path::new(path);
    if !p.is_absolute() || p.components().any(|c| c == Component::ParentDir) {
        return Err(format!(
            "{path}: must be an absolute path without '..' (it is taken inside the root)"
        ));
    }
    if p.file_name().is_none() {
        return Err(format!("{path}: names a directory, not a file"));
    }
    match root.resolve(path) {
        Ok(resolved) if !force => Err(format!(
            "{} exists; not replacing it without --force",
            resolved.display()
        )),
        Ok(resolved) => Ok(resolved),
        Err(e) if e.is_not_found() => Ok(root.display_path(path)),
        Err(e) => Err(e.to_string()),
    }
}

/// Writes `bytes` to `path` inside the root with mode 0600, via a temp file
/// and a rename so a crash never leaves a half-written blob. Directories on
/// the way are made (and symlinks followed) inside the root, never out of
/// it. Returns where the file went.
fn write_private(root: &Root, path: &str, bytes: &[u8], force: bool) -> Result<PathBuf, String> {
    let p = Path::new(path);
    let (Some(parent), Some(name)) = (p.parent(), p.file_name()) else {
        return Err(format!("{path}: names a directory, not a file"));
    };
    let dir = root
        .make_dirs(&parent.to_string_lossy())
        .map_err(|e| format!("create the directory of {path}: {e}"))?;
    let file = dir.join(name);
    if !force && fs::symlink_metadata(&file).is_ok() {
        return Err(format!(
            "{} exists; not replacing it without --force",
            file.display()
        ));
    }
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| format!("create {}: {e}", tmp.display()))?;
        f.write_all(bytes)
            .map_err(|e| format!("write {}: {e}", tmp.display()))?;
        f.sync_all()
            .map_err(|e| format!("sync {}: {e}", tmp.display()))?;
        // rename replaces a symlink at `file` itself, never its target.
        fs::rename(&tmp, &file).map_err(|e| format!("rename to {}: {e}", file.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| file)
}

/// An evm-key sealed by `kmk` (a `user` key named `kmk_name`), made by the
/// kernel in a session keyring private to this process and exported.
fn export_evm_key(kmk: &Secret, kmk_name: &str) -> Result<String, String> {
    let session = keyring::join_new_session()
        .map_err(|e| format!("join a private session keyring: {}", e.desc()))?;
    let kmk_id = keyring::add_key("user", Some(kmk_name), kmk.expose(), session)
        .map_err(|e| format!("add the kmk to a private keyring: {}", e.desc()))?;
    let payload = format!("new user:{kmk_name} 32");
    let result = keyring::add_key("encrypted", Some("evm-key"), payload.as_bytes(), session)
        .map_err(|e| {
            format!(
                "create the evm-key: {} (is CONFIG_ENCRYPTED_KEYS on?)",
                e.desc()
            )
        })
        .and_then(|id| {
            let blob = keyring::read(id).map_err(|e| format!("export the evm-key: {}", e.desc()));
            let _ = keyring::unlink(id, session);
            blob
        });
    let _ = keyring::unlink(kmk_id, session);
    String::from_utf8(result?).map_err(|_| "the exported evm-key is not text".to_string())
}

pub fn run(options: &Options) -> u8 {
    let env = match setup(options, false, false) {
        Ok(e) => e,
        Err(code) => return code,
    };
    let s = &env.settings;
    let o = &options.seal;
    let pcr_text = o.pcrs.clone().unwrap_or_else(|| s.tpm.pcrs.value.clone());
    let pcrs = match PcrSelection::parse(&pcr_text) {
        Ok(p) => p,
        Err(e) => return usage(e.to_string()),
    };
    let parent = o.parent.unwrap_or(s.tpm.parent);
    let values = if o.pcr_values.is_empty() {
        None
    } else {
        let mut values = Vec::new();
        for pcr in pcrs.indices() {
            let Some((_, hex)) = o.pcr_values.iter().find(|(n, _)| *n == pcr) else {
                return usage(format!(
                    "--pcr-value given for some PCRs but not for PCR {pcr} of {pcrs}"
                ));
            };
            let mut v = [0u8; 32];
            for (i, byte) in v.iter_mut().enumerate() {
                *byte = hex
                    .get(2 * i..2 * i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .unwrap_or(0);
            }
            values.push(v);
        }
        if o.pcr_values
            .iter()
            .any(|(n, _)| !pcrs.indices().any(|p| p == *n))
        {
            return usage(format!("--pcr-value names a PCR outside {pcrs}"));
        }
        Some(values)
    };
    let output = o.output.clone().unwrap_or_else(|| {
        if s.masterkey_type.value == MasterKeyType::Tpm2 {
            s.masterkey.value.clone()
        } else {
            DEFAULT_OUTPUT.to_string()
        }
    });
    let kmk_name = if s.masterkey_type.value == MasterKeyType::Tpm2 {
        s.kmk_name.clone()
    } else {
        "kmk".to_string()
    };

    // Every target is checked before the TPM is touched.
    let mut targets = vec![output.clone()];
    targets.extend(o.evm_key.clone());
    if o.write_config {
        targets.push(CONFIG_PATH.to_string());
    }
    for t in &targets {
        if let Err(m) = check_target(&env.root, t, o.force) {
            return usage(m);
        }
    }
    let owner_auth = match &o.owner_auth_file {
        None => Secret::new(Vec::new()),
        Some(f) => match Root::new("/").read_secret(&f.to_string_lossy(), 1024) {
            Ok(mut a) => {
                let len = a.expose().strip_suffix(b"\n").map_or(a.len(), |t| t.len());
                a.truncate(len);
                a
            }
            Err(e) => return usage(format!("read owner auth {e}")),
        },
    };

    let tcti = match tcti::parse(&s.tpm.tcti.value) {
        Ok(t) => t,
        Err(e) => return usage(format!("{e} ({})", s.tpm.tcti.source)),
    };
    let start = Instant::now();
    let transport = match transport::open(&tcti, s.tpm.timeout) {
        Ok(t) => t,
        Err(e) => {
            log::error!("{e}");
            return EXIT_FAILED;
        }
    };
    let mut tpm = Tpm::new(transport);
    // A pinned storage key must be the one we seal under, unless this run
    // replaces the configuration that pins it (reprovisioning after a TPM
    // clear) or seals under another handle.
    let pin = s
        .tpm
        .parent_name
        .as_ref()
        .filter(|_| parent == s.tpm.parent && !(o.write_config && o.force));
    let sealed = match seal::seal_new_kmk(
        &mut tpm,
        parent,
        pin.map(|p| &p.value),
        owner_auth.expose(),
        &pcrs,
        values,
    ) {
        Ok(s) => s,
        Err(e) => {
            let pin_source = match (&e, pin) {
                (seal::SealError::Parent(_), Some(p)) => format!(" ({})", p.source),
                _ => String::new(),
            };
            log::error!("seal a new kmk under {parent:#010x} with {tcti}: {e}{pin_source}");
            return EXIT_FAILED;
        }
    };
    let parent_name = parent_pin::name_hex(&sealed.parent_name);
    drop(tpm);
    if sealed.created_parent {
        log::info!("created the storage key (ECC P-256 SRK) at {parent:#010x}");
    }
    log::info!("storage key {parent:#010x}: Name {parent_name}");
    let pem = keyfile::encode_tss2_pem(&sealed.blob, Fields::Kernel);
    let write = |path: &str, bytes: &[u8]| {
        write_private(&env.root, path, bytes, o.force).map_err(|m| log::error!("{m}"))
    };
    let Ok(blob_path) = write(&output, pem.as_bytes()) else {
        return EXIT_FAILED;
    };
    log::info!(
        "sealed a new {}-byte kmk to {pcrs} under {parent:#010x}: {} ({:.0} ms)",
        sealed.kmk.len(),
        blob_path.display(),
        start.elapsed().as_secs_f64() * 1000.0
    );
    if let Some(evm_key) = &o.evm_key {
        let blob = match export_evm_key(&sealed.kmk, &kmk_name) {
            Ok(b) => b,
            Err(m) => {
                log::error!("{m}");
                return EXIT_FAILED;
            }
        };
        let Ok(evm_path) = write(evm_key, blob.as_bytes()) else {
            return EXIT_FAILED;
        };
        log::info!(
            "exported an evm-key sealed by user:{kmk_name}: {}; point EVMKEY in /etc/sysconfig/evm at it",
            evm_path.display()
        );
    }
    if o.write_config {
        let mut text = format!(
            "# written by integrity-loader seal\nMASTERKEYTYPE=tpm2\nMASTERKEY={output}\nTPM2_PCRS={pcrs}\nTPM2_PARENT={parent:#010x}\n# the storage key's Name, checked at boot before the TPM is trusted with a secret\nTPM2_PARENT_NAME={parent_name}\n"
        );
        if s.tpm.tcti.source != crate::config::Source::Default {
            text.push_str(&format!("TPM={}\n", s.tpm.tcti.value));
        }
        let Ok(config_path) = write(CONFIG_PATH, text.as_bytes()) else {
            return EXIT_FAILED;
        };
        log::info!("wrote {}", config_path.display());
    } else if pin.is_none() {
        log::info!(
            "pin the storage key so the boot can tell it from a substitute: TPM2_PARENT_NAME={parent_name} in {CONFIG_PATH}"
        );
    }
    EXIT_OK
}
