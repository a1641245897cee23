//! `integrity-loader reseal`: seals the machine's kmk again, the same kmk,
//! to new PCR values, another PCR set or under another storage key (a new
//! SRK after a TPM clear), so the evm-key sealed by it, and the EVM HMACs
//! made with that, stay good. The kmk comes from the keyring (a kmk still
//! loaded, DROP_KMK=no) or from unsealing the current blob while the PCRs
//! still match; it is checked against the evm-key blob before anything is
//! sealed. The blob and the configuration are replaced as `seal` replaces
//! them.

use super::{
    CONFIG_PATH, config_text, labelled_evm_key, log_parent, open_tpm, opens_evm_key, output,
    owner_auth, pcrs_to_seal, pin_source, read_config, record_pin, values_to_seal,
};
use crate::cli::{Options, SealingOptions};
use crate::commands::{CommandError, setup};
use crate::config::MasterKeyType;
use crate::keyring;
use crate::recovery;
use crate::secret::Secret;
use crate::steps::kmk_tpm2;
use crate::tpm::client::Tpm;
use crate::tpm::keyfile::{self, Fields};
use crate::tpm::{parent_pin, pcr_lock, seal, unseal};
use std::time::Instant;

/// The kmk loaded in --keyring, when there is one; why not otherwise.
fn from_keyring(env: &crate::commands::Env) -> Result<Secret, String> {
    let name = &env.settings.kmk_name;
    let spec = env.keyring_spec;
    match keyring::search(env.keyring, "user", name) {
        Ok(Some(id)) => keyring::read_secret(id)
            .map_err(|e| format!("user key {name} (id {id}) in keyring {spec}: {}", e.desc())),
        Ok(None) => Err(format!(
            "no user key {name} in keyring {spec} (the boot unlinks it unless DROP_KMK=no, and DROP_KMK defaults to yes with a PCR lock)"
        )),
        Err(e) => Err(format!("keyring {spec}: {}", e.desc())),
    }
}

/// The kmk unsealed from the current blob, with the PCR set and storage
/// key of the configuration. The lock PCR is left alone: this is not a
/// boot, and a later reseal in this boot may need the same values.
fn from_blob(env: &crate::commands::Env, tpm: &mut Tpm) -> Result<Secret, String> {
    let ctx = env.context(false);
    let path = &env.settings.masterkey.value;
    let shown = env.root.display_path(path);
    let blob = kmk_tpm2::read_blob(&ctx, path)?;
    let pcrs = kmk_tpm2::pcr_selection(&ctx, &blob)?;
    let parent = unseal::Parent {
        handle: blob.parent,
        pinned_name: env.settings.tpm.parent_name.as_ref().map(|p| &p.value),
        public: env.settings.tpm.parent_public.as_deref(),
    };
    unseal::unseal(tpm, &blob, parent, &pcrs).map_err(|e| {
        let locked = match (&e, env.settings.tpm.pcr_lock) {
            (unseal::UnsealError::PcrMismatch { values, .. }, Some(lock)) => values
                .iter()
                .find(|(p, _)| *p == lock)
                .and_then(|(_, v)| pcr_lock::times_locked(v, &[0u8; 32]))
                .map(|_| {
                    format!(
                        " (PCR {lock} holds the PCR lock: this boot unsealed the kmk already, so only a kmk still loaded can be sealed again now)"
                    )
                }),
            _ => None,
        };
        format!(
            "unseal {} under {:#010x}: {e}{}",
            shown.display(),
            blob.parent,
            locked.unwrap_or_default()
        )
    })
}

/// The kmk from the recovery key, asked for on the terminal (never on
/// the command line).
fn from_recovery_key(env: &crate::commands::Env, blob_path: &str) -> Result<Secret, String> {
    let path = format!("{blob_path}{}", recovery::SUFFIX);
    let shown = env.root.display_path(&path);
    let bytes = match env.root.read(&path, recovery::FILE_LIMIT) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => {
            return Err(format!(
                "no recovery key ({} does not exist)",
                shown.display()
            ));
        }
        Err(e) => return Err(format!("read recovery file {e}")),
    };
    let wrapped =
        recovery::parse(&bytes).map_err(|m| format!("recovery file {}: {m}", shown.display()))?;
    let tty =
        std::env::var("INTEGRITY_LOADER_RECOVERY_TTY").unwrap_or_else(|_| "/dev/tty".to_string());
    let bound = std::time::Duration::from_secs(300);
    match recovery::ask(
        &tty,
        "the kmk to seal again is opened with the recovery key",
        bound,
        |key| wrapped.unwrap(key),
    ) {
        Ok(recovery::Asked::Key(k)) => Ok(k),
        Ok(recovery::Asked::Wrong(n)) => Err(format!(
            "{n} recovery keys given on {tty} did not open {}",
            shown.display()
        )),
        Ok(recovery::Asked::TimedOut | recovery::Asked::NoAnswer) => {
            Err(format!("no recovery key was given on {tty}"))
        }
        Err(m) => Err(format!("recovery file {}: {m}", shown.display())),
    }
}

pub fn run(options: &Options, o: &SealingOptions) -> Result<(), CommandError> {
    let env = setup(options, None, false, false)?;
    let s = &env.settings;
    if s.masterkey_type.value != MasterKeyType::Tpm2 {
        return Err(CommandError::usage(format!(
            "reseal seals a tpm2 kmk again, and MASTERKEYTYPE is {} ({}); `seal` makes a tpm2 kmk",
            s.masterkey_type.value.name(),
            s.masterkey_type.source
        )));
    }
    let blob_path = s.masterkey.value.clone();
    if blob_path.ends_with(".pub") {
        return Err(CommandError::usage(format!(
            "MASTERKEY={blob_path} ({}) is a tpm2-tools .pub/.priv pair, and reseal writes a TSS2 key file: set MASTERKEY to a .pem path, keep the kmk loaded (DROP_KMK=no) and reseal from the keyring",
            s.masterkey.source
        )));
    }
    let pcrs = pcrs_to_seal(s, o)?;
    let parent = o.parent.unwrap_or(s.tpm.parent);
    let values = values_to_seal(&env, o, &pcrs).map_err(CommandError::usage)?;
    let recovery_path = format!("{blob_path}{}", recovery::SUFFIX);
    output::check(&env.root, &[&blob_path, CONFIG_PATH, &recovery_path], true)
        .map_err(CommandError::usage)?;
    let existing_config = read_config(&env).map_err(CommandError::usage)?;
    let owner_auth = owner_auth(o).map_err(CommandError::usage)?;

    let start = Instant::now();
    // Read before the TPM is asked: after a TPM clear it is the only source.
    let keyring_kmk = from_keyring(&env);
    let (mut tpm, tcti) = open_tpm(s)?;
    let (kmk, source) = match keyring_kmk {
        Ok(k) => (
            k,
            format!("user key {} in keyring {}", s.kmk_name, env.keyring_spec),
        ),
        Err(not_loaded) => match from_blob(&env, &mut tpm) {
            Ok(k) => (
                k,
                format!("{}, unsealed", env.root.display_path(&blob_path).display()),
            ),
            Err(not_unsealed) => match from_recovery_key(&env, &blob_path) {
                Ok(k) => (k, "the recovery key".to_string()),
                Err(no_recovery) => {
                    return Err(CommandError::failed(format!(
                        "no kmk to seal again: {not_loaded}; {not_unsealed}; and {no_recovery}. Run reseal while the kmk is loaded (a boot with DROP_KMK=no) or before the change that moves the PCRs, or give the recovery key; nothing was written"
                    )));
                }
            },
        },
    };
    log::info!("the kmk to seal again: {source}");

    // The kmk must be the one the labels hang on: one that does not open
    // the evm-key blob would orphan them as a new kmk does.
    let evm = labelled_evm_key(&env, false);
    match &evm {
        Some((path, bytes, needs)) => {
            let shown = env.root.display_path(path);
            match opens_evm_key(&kmk, &s.kmk_name, bytes) {
                Ok(true) => log::info!("it opens the evm-key blob {} ({needs})", shown.display()),
                Ok(false) => {
                    return Err(CommandError::failed(format!(
                        "the kmk from {source} does not open the evm-key blob {} ({needs}): it is not the kmk the labels hang on, so sealing it would lose them; nothing was sealed or written",
                        shown.display()
                    )));
                }
                Err(m) => {
                    return Err(CommandError::failed(format!(
                        "{m}; nothing was sealed or written"
                    ))
                    .context(format_args!("evm-key blob {}", shown.display())));
                }
            }
        }
        None => log::warn!(
            "no evm-key blob sealed by user:{} at EVMKEY ({}): cannot check that this kmk is the one the labels hang on",
            s.kmk_name,
            env.root.display_path(&s.evm_key.value).display()
        ),
    }

    // As `seal --write-config`: a pinned key only, unless this run moves
    // to another handle or makes a new SRK where a TPM clear left none;
    // either is recorded below.
    let pin = s.tpm.parent_name.as_ref();
    let rule = seal::PinRule {
        pinned: pin.map(|p| &p.value),
        accept_other_key: parent != s.tpm.parent,
        accept_new_key: true,
    };
    let sealed = seal::reseal_kmk(
        &mut tpm,
        parent,
        rule,
        owner_auth.expose(),
        &pcrs,
        values,
        kmk,
    )
    .map_err(|e| {
        CommandError::failed(format!("{e}{}", pin_source(&e, pin)))
            .context(format_args!(
                "seal the kmk again under {parent:#010x} with {tcti}"
            ))
            .nothing_written()
    })?;
    drop(tpm);
    let parent_name = parent_pin::name_hex(&sealed.parent_name);
    log_parent(&sealed, parent, pin, &env.run_dir);

    let recovery = match o.recovery_key {
        true => Some(super::recovery_file(&sealed.kmk)?),
        false => None,
    };
    let pem = keyfile::encode_tss2_pem(&sealed.blob, Fields::Kernel);
    let (config, config_says_it) = config_text(
        &env,
        existing_config.as_deref(),
        &blob_path,
        &pcrs,
        parent,
        &parent_name,
        &sealed,
    )
    .map_err(|m| CommandError::failed(m).nothing_written())?;
    // The blob alone when the configuration already says all this: one
    // rename, so a crash leaves the old blob or the new, both good.
    let mut files = vec![(blob_path.as_str(), pem.into_bytes(), 0o600)];
    let key = recovery.map(|(key, text)| {
        files.push((recovery_path.as_str(), text, 0o600));
        key
    });
    if !config_says_it {
        files.push((CONFIG_PATH, config.into_bytes(), 0o644));
    }
    let places = output::replace_all(&env.root, &files, true).map_err(CommandError::failed)?;
    let mut places = places.into_iter();
    if let Some(p) = places.next() {
        log::info!(
            "sealed the same {}-byte kmk again to {pcrs} under {parent:#010x}: {} ({} ms)",
            sealed.kmk.len(),
            p.display(),
            start.elapsed().as_millis()
        );
    }
    if let Some(key) = key {
        let place = places.next().unwrap_or_default();
        super::print_recovery_key(&key, &place);
    }
    if let Some(p) = places.next() {
        log::info!("wrote {}", p.display());
    }
    record_pin(&env, &sealed.parent_name);
    super::say_rebuild_initramfs();
    Ok(())
}
