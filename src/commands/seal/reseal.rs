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
use crate::tpm::pcr::PcrSelection;
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
    // A reseal interrupted after its switch left MASTERKEY naming the side
    // blob: read from there, write to the place.
    let current = s.masterkey.value.clone();
    let blob_path = current.strip_suffix(SIDE).unwrap_or(&current).to_string();
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
    let side = format!("{blob_path}{SIDE}");
    let side_recovery = format!("{side}{}", recovery::SUFFIX);
    let paths = [
        blob_path.as_str(),
        CONFIG_PATH,
        &recovery_path,
        &side,
        &side_recovery,
    ];
    output::check(&env.root, &paths, true).map_err(CommandError::usage)?;
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
                format!("{}, unsealed", env.root.display_path(&current).display()),
            ),
            Err(not_unsealed) => match from_recovery_key(&env, &current) {
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
    let job = Job {
        blob_path: &blob_path,
        pcrs: &pcrs,
        parent,
        rule: seal::PinRule {
            pinned: pin.map(|p| &p.value),
            accept_other_key: parent != s.tpm.parent,
            accept_new_key: true,
        },
        owner_auth: owner_auth.expose(),
        values,
        recovery_key: o.recovery_key,
        existing_config: existing_config.as_deref(),
        start,
    };
    seal_and_replace(&env, &mut tpm, &tcti, kmk, job, |_, _| Ok(()))
        .map_err(CommandError::failed)?;
    super::say_rebuild_initramfs();
    Ok(())
}

/// What a reseal seals and where.
struct Job<'a> {
    blob_path: &'a str,
    pcrs: &'a PcrSelection,
    parent: u32,
    rule: seal::PinRule<'a>,
    owner_auth: &'a [u8],
    values: seal::Values,
    recovery_key: bool,
    existing_config: Option<&'a [u8]>,
    start: Instant,
}

/// The core of `reseal` and of the boot's AUTO_RESEAL: seals `kmk` again
/// and replaces the blob (with a new recovery file when asked, and the
/// configuration when it no longer says what the blob is) all or none.
/// `before_write` runs between the seal and the writes (the boot locks its
/// PCR there): an error from it writes nothing.
fn seal_and_replace(
    env: &crate::commands::Env,
    tpm: &mut Tpm,
    tcti: &str,
    kmk: Secret,
    job: Job,
    before_write: impl FnOnce(&mut Tpm, &seal::Sealed) -> Result<(), String>,
) -> Result<(), String> {
    let s = &env.settings;
    let (parent, pcrs) = (job.parent, job.pcrs);
    let pin = s.tpm.parent_name.as_ref();
    let sealed = seal::reseal_kmk(tpm, parent, job.rule, job.owner_auth, pcrs, job.values, kmk)
        .map_err(|e| {
            format!(
                "seal the kmk again under {parent:#010x} with {tcti}: {e}{}; nothing was written",
                pin_source(&e, pin)
            )
        })?;
    let parent_name = parent_pin::name_hex(&sealed.parent_name);
    log_parent(&sealed, parent, pin, &env.run_dir);
    before_write(tpm, &sealed).map_err(|m| format!("{m}; nothing was written"))?;

    let recovery_path = format!("{}{}", job.blob_path, recovery::SUFFIX);
    let recovery = match job.recovery_key.then(|| super::recovery_file(&sealed.kmk)) {
        Some(Ok(r)) => Some(r),
        Some(Err(e)) => return Err(e.to_string()),
        None => None,
    };
    let pem = keyfile::encode_tss2_pem(&sealed.blob, Fields::Kernel).into_bytes();
    let config_naming = |masterkey: &str| {
        config_text(
            env,
            job.existing_config,
            masterkey,
            pcrs,
            parent,
            &parent_name,
            &sealed,
        )
        .map_err(|m| format!("{m}; nothing was written"))
    };
    let (config, config_says_it) = config_naming(job.blob_path)?;
    let side = switches_config(s, parent, &sealed.parent_name, pcrs)
        .then(|| format!("{}{SIDE}", job.blob_path));
    if let Some(side) = &side {
        // The old configuration cannot load the new blob (another storage
        // key or PCR set) nor the new one the old, so no order of renames
        // over the old files keeps a pair that loads. The new blob (with a
        // recovery file) goes beside the old and the configuration
        // switches to it in one rename; then they move to their places.
        let side_recovery = format!("{side}{}", recovery::SUFFIX);
        let carried = match &recovery {
            Some((_, text)) => Some(text.clone()),
            None => match env.root.read(&recovery_path, recovery::FILE_LIMIT) {
                Ok(b) => Some(b),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(format!("read recovery file {e}; nothing was written")),
            },
        };
        let (side_config, _) = config_naming(side)?;
        let mut files = vec![(side.as_str(), pem.clone(), 0o600)];
        if let Some(text) = carried {
            files.push((side_recovery.as_str(), text, 0o600));
        }
        files.push((CONFIG_PATH, side_config.into_bytes(), 0o644));
        output::replace_all(&env.root, &files, true).map_err(|m| {
            format!("{m}; the kmk is sealed again, but the configuration still names the old blob")
        })?;
    }
    // The blob alone when the configuration already says all this: one
    // rename, so a crash leaves the old blob or the new, both good.
    let mut files = vec![(job.blob_path, pem, 0o600)];
    let key = recovery.map(|(key, text)| {
        files.push((recovery_path.as_str(), text, 0o600));
        key
    });
    if !config_says_it || side.is_some() {
        files.push((CONFIG_PATH, config.into_bytes(), 0o644));
    }
    let places = output::replace_all(&env.root, &files, true).map_err(|m| match &side {
        Some(side) => {
            if let Some(key) = &key {
                let place = env.root.display_path(format!("{side}{}", recovery::SUFFIX));
                super::print_recovery_key(key, &place);
            }
            format!(
                "{m}; the kmk is sealed again, but not moved to {}: the configuration names {side}, where it is, and the next boot loads it from there: run reseal again to finish the move",
                job.blob_path
            )
        }
        None => m,
    })?;
    let mut places = places.into_iter();
    if let Some(p) = places.next() {
        log::info!(
            "sealed the same {}-byte kmk again to {pcrs} under {parent:#010x}: {} ({} ms)",
            sealed.kmk.len(),
            p.display(),
            job.start.elapsed().as_millis()
        );
    }
    if let Some(key) = key {
        let place = places.next().unwrap_or_default();
        super::print_recovery_key(&key, &place);
    }
    if let Some(p) = places.next() {
        log::info!("wrote {}", p.display());
    }
    super::note_tpm_option(s);
    remove_side_files(env, job.blob_path);
    record_pin(env, &sealed.parent_name);
    Ok(())
}

/// Where a reseal that moves the kmk to another storage key or PCR set
/// puts the new blob until the configuration names it (MASTERKEY + this).
const SIDE: &str = ".next";

/// Whether the configuration as it is cannot load a blob sealed under
/// `parent` (Name `name`) to `pcrs`: another handle, pinned key or PCR set
/// (another TPM2_PCR_VALUES only costs the boot a PCR_Read). Not when
/// MASTERKEY comes from the kernel command line, which the configuration
/// cannot switch.
fn switches_config(
    s: &crate::config::Settings,
    parent: u32,
    name: &[u8],
    pcrs: &PcrSelection,
) -> bool {
    if matches!(s.masterkey.source, crate::config::Source::Cmdline(_)) {
        return false;
    }
    s.tpm.parent != parent
        || s.tpm
            .parent_name
            .as_ref()
            .is_some_and(|p| p.value.as_slice() != name)
        || PcrSelection::parse(&s.tpm.pcrs.value).ok().as_ref() != Some(pcrs)
}

/// The blob and recovery file a reseal put beside MASTERKEY, once the
/// configuration no longer names them (this run's, or one a crash left).
fn remove_side_files(env: &crate::commands::Env, blob_path: &str) {
    let side = format!("{blob_path}{SIDE}");
    for path in [format!("{side}{}", recovery::SUFFIX), side] {
        let Ok(place) = env.root.resolve_planned(&path) else {
            continue;
        };
        match std::fs::remove_file(&place) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => log::warn!(
                "cannot remove {} ({e}): nothing reads it any more; remove it",
                place.display()
            ),
        }
    }
}

/// AUTO_RESEAL: after the recovery key opened the kmk in this boot (and
/// the evm-key opened with it, so it is the kmk the labels hang on), seals
/// it again to this boot's PCR values under the storage key there is, so
/// the next boot needs no key. `Err` says why not; nothing is written
/// then. Never at boot: a blob the initramfs pins (it would refuse the
/// new one next boot), a new storage key (a TPM clear is an admin's
/// matter), a root mounted read-only.
pub(crate) fn at_boot(ctx: &crate::steps::Context, kmk: Secret) -> Result<(), String> {
    let s = ctx.settings;
    let blob_path = s.masterkey.value.as_str();
    if let Some(pin) = &s.masterkey_sha256 {
        return Err(format!(
            "this initramfs pins the kmk blob (MASTERKEY_SHA256, {}) and would refuse a blob sealed now at the next boot, and the initramfs cannot be rebuilt from inside it",
            pin.source
        ));
    }
    if blob_path.ends_with(".pub") {
        return Err(format!(
            "MASTERKEY={blob_path} ({}) is a tpm2-tools .pub/.priv pair, and a reseal writes a TSS2 key file",
            s.masterkey.source
        ));
    }
    let dir = blob_path.rsplit_once('/').map_or("/", |(d, _)| d);
    let place = ctx
        .root
        .resolve_planned(if dir.is_empty() { "/" } else { dir })
        .map_err(|e| format!("{e}"))?;
    if nix::sys::statvfs::statvfs(&place)
        .is_ok_and(|v| v.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
    {
        return Err(format!(
            "{} is on a file system mounted read-only here (the initramfs mounts the root `ro` unless the kernel command line says `rw`)",
            place.display()
        ));
    }
    let pcrs = PcrSelection::parse(&s.tpm.pcrs.value).map_err(|e| e.to_string())?;
    let env = crate::commands::Env {
        root: ctx.root.clone(),
        securityfs: ctx.securityfs.clone(),
        settings: s.clone(),
        keyring_spec: ctx.keyring_spec,
        keyring: ctx.keyring,
        run_dir: ctx.run_dir.to_path_buf(),
        // Only check and status read it; the boot's settings already hold
        // the UKI's PCR.
        efivars: crate::efi::EfiVars::new(crate::efi::DEFAULT_DIR),
    };
    output::check(&env.root, &[blob_path, CONFIG_PATH], true)?;
    let existing_config = read_config(&env)?;
    let start = Instant::now();
    let (mut tpm, tcti) = open_tpm(s).map_err(|e| e.to_string())?;
    let parent = s.tpm.parent;
    // A TPM clear empties the handle: a new SRK and its pin are for an
    // admin to make, not for a boot.
    match crate::tpm::commands::read_public(&mut tpm, parent) {
        Ok(_) => {}
        Err(e) if e.rc().is_some_and(|rc| rc.base() == crate::tpm::rc::HANDLE) => {
            return Err(format!(
                "there is no storage key at {parent:#010x} (a TPM clear empties it), and a boot does not make one"
            ));
        }
        Err(e) => return Err(format!("read the storage key at {parent:#010x}: {e}")),
    }
    let lock = s.tpm.pcr_lock;
    let job = Job {
        blob_path,
        pcrs: &pcrs,
        parent,
        rule: seal::PinRule {
            pinned: s.tpm.parent_name.as_ref().map(|p| &p.value),
            accept_other_key: false,
            accept_new_key: false,
        },
        owner_auth: &[],
        values: seal::Values::Current {
            lock: lock.filter(|l| pcrs.indices().any(|p| p == *l)),
        },
        recovery_key: false,
        existing_config: existing_config.as_deref(),
        start,
    };
    seal_and_replace(&env, &mut tpm, &tcti, kmk, job, |tpm, sealed| {
        // The new blob unseals with this boot's values: locked as an
        // unseal locks, before it is written, so nothing later in this
        // boot can unseal it.
        let Some(pcr) = lock else {
            return Ok(());
        };
        kmk_tpm2::record_values(ctx, &sealed.values);
        pcr_lock::lock(tpm, pcr).map_err(|e| {
            let _ = std::fs::remove_file(ctx.run_dir.join(pcr_lock::RECORD_FILE));
            format!(
                "sealed the kmk again, but could not lock PCR {pcr} ({e}), and the new blob would unseal for anything later in this boot"
            )
        })?;
        log::info!("locked PCR {pcr}: the kmk sealed again cannot be unsealed until the next boot");
        Ok(())
    })
}
