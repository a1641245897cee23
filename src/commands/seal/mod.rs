//! `integrity-loader seal`, on the installed system: the seed procedure's
//! manual steps in one command. Makes sure the storage key exists (and is
//! the pinned one), seals a new kmk to PCR values, optionally exports an
//! evm-key sealed by that kmk and updates /etc/integrity-loader.conf, then
//! puts the files in place together (`output`). Secrets go nowhere else.

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
use std::time::Instant;

mod config_update;
mod output;

const DEFAULT_OUTPUT: &str = "/etc/keys/kmk-tpm2.pem";
const CONFIG_PATH: &str = "/etc/integrity-loader.conf";

fn usage(message: String) -> u8 {
    log::error!("{message}");
    EXIT_USAGE
}

/// The values `pcrs` had when this boot unsealed the kmk, from the record
/// the PCR lock leaves: after the lock, the current values are not the
/// ones the next boot's unseal will see.
fn recorded_values(run_dir: &std::path::Path, pcrs: &PcrSelection) -> Option<Vec<[u8; 32]>> {
    let path = run_dir.join(crate::tpm::pcr_lock::RECORD_FILE);
    let text = std::fs::read_to_string(&path).ok()?;
    let Some(record) = crate::tpm::pcr_lock::parse_record(&text) else {
        log::warn!("{}: not a record of PCR values; ignored", path.display());
        return None;
    };
    let values: Option<Vec<[u8; 32]>> = pcrs
        .indices()
        .map(|i| record.iter().find(|(p, _)| *p == i).map(|(_, v)| *v))
        .collect();
    match &values {
        Some(_) => log::info!(
            "sealing to the PCR values this boot had when it unsealed the kmk, before the PCR lock ({})",
            path.display()
        ),
        None => log::warn!(
            "{} does not cover {pcrs}; sealing to the current values, which a PCR lock of this boot may have moved (give --pcr-value)",
            path.display()
        ),
    }
    values
}

/// What sealing to the current values found in the PCR lock's PCR, when
/// there was no record of this boot's unseal.
fn log_lock_state(state: &seal::LockState, run_dir: &std::path::Path) {
    let record = run_dir.join(crate::tpm::pcr_lock::RECORD_FILE);
    match state {
        seal::LockState::NotLooked | seal::LockState::Open => {}
        seal::LockState::LockedFromZero { pcr, times } => log::info!(
            "PCR {pcr} holds the PCR lock applied {times} time(s) to zero: this boot unsealed the kmk and locked it, and no record of that is left ({}); sealed to PCR {pcr} = 0, its value before the lock, as the next boot starts it",
            record.display()
        ),
        seal::LockState::Unexplained { pcr, value } => log::warn!(
            "PCR {pcr} holds {}, neither zero nor the PCR lock applied to zero, and there is no record of this boot's unseal ({}): sealed to its current value; if a PCR lock of this boot extended it, the next boot cannot unseal: seal again with --pcr-value {pcr}=HEX, its value before the lock",
            crate::hex::encode(value),
            record.display()
        ),
    }
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
        Err(e) => return e.code,
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
        // Without a record, the lock PCR is recognised by its value.
        recorded_values(&env.run_dir, &pcrs).map_or_else(
            || seal::Values::Current {
                lock: s.tpm.pcr_lock.filter(|l| pcrs.indices().any(|p| p == *l)),
            },
            seal::Values::Given,
        )
    } else {
        let mut values = Vec::new();
        for pcr in pcrs.indices() {
            let Some((_, hex)) = o.pcr_values.iter().find(|(n, _)| *n == pcr) else {
                return usage(format!(
                    "--pcr-value given for some PCRs but not for PCR {pcr} of {pcrs}"
                ));
            };
            // The option parser let through only 64 hex digits.
            match crate::hex::decode(hex) {
                Ok(v) => values.push(v),
                Err(_) => return usage(format!("--pcr-value {pcr}={hex}: not 64 hex digits")),
            }
        }
        if o.pcr_values
            .iter()
            .any(|(n, _)| !pcrs.indices().any(|p| p == *n))
        {
            return usage(format!("--pcr-value names a PCR outside {pcrs}"));
        }
        seal::Values::Given(values)
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
    let target_refs: Vec<&str> = targets.iter().map(String::as_str).collect();
    if let Err(m) = output::check(&env.root, &target_refs, o.force) {
        return usage(m);
    }
    let existing_config = if o.write_config {
        match env.root.read(CONFIG_PATH, 64 * 1024) {
            Ok(b) => Some(b),
            Err(e) if e.is_not_found() => None,
            Err(e) => return usage(format!("read {e}")),
        }
    } else {
        None
    };
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
    // A pinned storage key is the only one sealed under, except when this
    // run records another: a deliberate move to another handle, or a new
    // SRK after a TPM clear emptied the handle (--write-config).
    let pin = s.tpm.parent_name.as_ref();
    let rule = seal::PinRule {
        pinned: pin.map(|p| &p.value),
        accept_other_key: o.write_config && parent != s.tpm.parent,
        accept_new_key: o.write_config,
    };
    let sealed =
        match seal::seal_new_kmk(&mut tpm, parent, rule, owner_auth.expose(), &pcrs, values) {
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
    if sealed.parent_attributes & crate::tpm::public::ATTR_NO_DA == 0 {
        log::warn!(
            "the storage key at {parent:#010x} lacks noDA (attributes {:#010x}): while the TPM is in dictionary-attack lockout it refuses to load anything under it, so the boot cannot unseal the kmk; make a storage key with noda (the README's recipe) and seal under it",
            sealed.parent_attributes
        );
    }
    log_lock_state(&sealed.lock, &env.run_dir);
    if let Some(p) = pin
        && p.value.as_slice() != sealed.parent_name.as_slice()
    {
        log::warn!(
            "TPM2_PARENT_NAME {} ({}) is replaced by {parent_name}",
            parent_pin::name_hex(&p.value),
            p.source
        );
    }

    // Everything is made before anything is written.
    let pem = keyfile::encode_tss2_pem(&sealed.blob, Fields::Kernel);
    let evm_blob = match &o.evm_key {
        Some(_) => match export_evm_key(&sealed.kmk, &kmk_name) {
            Ok(b) => Some(b),
            Err(m) => {
                log::error!("{m}; nothing was written");
                return EXIT_FAILED;
            }
        },
        None => None,
    };
    let config_text = if o.write_config {
        let tcti_line = (s.tpm.tcti.source != crate::config::Source::Default)
            .then_some(s.tpm.tcti.value.as_str());
        let kmk = config_update::SealedKmk {
            masterkey: &output,
            pcrs: &pcrs.to_string(),
            parent,
            parent_name: &parent_name,
            parent_public: &crate::hex::encode(&sealed.parent_public),
            pcr_values: &crate::tpm::pcr_lock::values_text(&sealed.values),
            tcti: tcti_line,
        };
        match config_update::merge(existing_config.as_deref(), &kmk) {
            Ok(t) => Some(t),
            Err(e) => {
                log::error!(
                    "update {}: {e}; nothing was written",
                    env.root.display_path(CONFIG_PATH).display()
                );
                return EXIT_FAILED;
            }
        }
    } else {
        None
    };
    // Blobs are private; the configuration stays readable (check as a user).
    let mut files = vec![(output.as_str(), pem.into_bytes(), 0o600)];
    if let (Some(path), Some(blob)) = (&o.evm_key, evm_blob) {
        files.push((path.as_str(), blob.into_bytes(), 0o600));
    }
    if let Some(text) = config_text {
        files.push((CONFIG_PATH, text.into_bytes(), 0o644));
    }
    let mut staged = Vec::new();
    for (path, bytes, mode) in &files {
        match output::stage(&env.root, path, bytes, *mode, o.force) {
            Ok(f) => staged.push(f),
            Err(m) => {
                log::error!("{m}; nothing was written");
                return EXIT_FAILED;
            }
        }
    }
    let mut places = Vec::new();
    for f in staged {
        match f.commit() {
            Ok(p) => places.push(p),
            Err(m) => {
                let done: Vec<String> = places.iter().map(|p| p.display().to_string()).collect();
                log::error!(
                    "{m}; already in place: {}",
                    if done.is_empty() {
                        "nothing".to_string()
                    } else {
                        done.join(", ")
                    }
                );
                return EXIT_FAILED;
            }
        }
    }
    let mut places = places.into_iter();
    if let Some(p) = places.next() {
        log::info!(
            "sealed a new {}-byte kmk to {pcrs} under {parent:#010x}: {} ({} ms)",
            sealed.kmk.len(),
            p.display(),
            start.elapsed().as_millis()
        );
    }
    if o.evm_key.is_some()
        && let Some(p) = places.next()
    {
        log::info!(
            "exported an evm-key sealed by user:{kmk_name}: {}; point EVMKEY in /etc/sysconfig/evm at it",
            p.display()
        );
    }
    if o.write_config {
        if let Some(p) = places.next() {
            log::info!("wrote {}", p.display());
        }
        // The pin this system now stands by, for the next host-only build.
        if let Err(e) = crate::pins::record_checked(&env.run_dir, &sealed.parent_name) {
            log::warn!(
                "cannot record the new pin in {}: {e}; the next host-only build needs INTEGRITY_LOADER_REPIN=1",
                env.run_dir.display()
            );
        }
        if pin.is_none_or(|p| p.value.as_slice() != sealed.parent_name.as_slice()) {
            log::info!(
                "a host-only initramfs carries the pin of its build: rebuild it (dracut -f) so that the boot checks this one"
            );
        }
    } else if pin.is_none() {
        log::info!(
            "pin the storage key so the boot can tell it from a substitute: TPM2_PARENT_NAME={parent_name} in {CONFIG_PATH}"
        );
    }
    EXIT_OK
}
