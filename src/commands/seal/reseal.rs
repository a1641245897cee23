//! `integrity-loader reseal`: seals the machine's kmk again, the same kmk,
//! to new PCR values, another PCR set or under another storage key (a new
//! SRK after a TPM clear), so the evm-key sealed by it, and the EVM HMACs
//! made with that, stay good. The kmk comes from the keyring (a kmk still
//! loaded, DROP_KMK=no) or from unsealing the current blob while the PCRs
//! still match; it is checked against the evm-key blob before anything is
//! sealed. The blob and the configuration are replaced as `seal` replaces
//! them.

use super::{
    CONFIG_PATH, commit, config_text, labelled_evm_key, log_parent, open_tpm, opens_evm_key,
    output, owner_auth, pcrs_to_seal, pin_source, read_config, record_pin, values_to_seal,
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
use crate::tpm::{pcr_lock, policy_authorize, seal, unseal};
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
    if let Some((key, entries)) = kmk_tpm2::signed_policy(&ctx, path, &blob)? {
        return policy_authorize::unseal(tpm, &blob, parent, &pcrs, &key, &entries).map_err(|e| {
            format!(
                "unseal {} under {:#010x} with a signed policy: {e}",
                shown, blob.parent
            )
        });
    }
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
            shown,
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
            return Err(format!("no recovery key ({} does not exist)", shown));
        }
        Err(e) => return Err(format!("read recovery file {e}")),
    };
    let wrapped = recovery::parse(&bytes).map_err(|m| format!("recovery file {}: {m}", shown))?;
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
            shown
        )),
        Ok(recovery::Asked::TimedOut | recovery::Asked::NoAnswer) => {
            Err(format!("no recovery key was given on {tty}"))
        }
        Err(m) => Err(format!("recovery file {}: {m}", shown)),
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
    // A run interrupted after its switch left MASTERKEY naming the side
    // blob: read from there, write to the place.
    let current = s.masterkey.value.clone();
    let blob_path = commit::place_of(&current).to_string();
    if blob_path.ends_with(".pub") {
        return Err(CommandError::usage(format!(
            "MASTERKEY={blob_path} ({}) is a tpm2-tools .pub/.priv pair, and reseal writes a TSS2 key file: set MASTERKEY to a .pem path, keep the kmk loaded (DROP_KMK=no) and reseal from the keyring",
            s.masterkey.source
        )));
    }
    let pcrs = pcrs_to_seal(s, o)?;
    let parent = o.parent.unwrap_or(s.tpm.parent);
    let signed_by = policy_key(&env.root, &current);
    let policy = match &signed_by {
        Some(key) if !o.plain_pcrs => {
            if !o.pcr_values.is_empty() {
                return Err(CommandError::usage(format!(
                    "--pcr-value has no meaning for a kmk sealed to PCR policies signed by the key of fingerprint {} ({}): it is sealed to that key's policy again, and whatever values the key signs unseal it; add --plain-pcrs to seal it to PCR values instead",
                    crate::hex::encode(&key.fingerprint()),
                    env.root
                        .display_path(format!("{current}{}", policy_authorize::PCRPKEY_SUFFIX))
                )));
            }
            seal::Policy::Authorized(key.policy())
        }
        _ => seal::Policy::Pcr(values_to_seal(&env, o, &pcrs).map_err(CommandError::usage)?),
    };
    let evm_move = evm_move(s);
    let mut paths = vec![blob_path.clone(), CONFIG_PATH.to_string()];
    for c in commit::COMPANIONS {
        paths.push(format!("{blob_path}{c}"));
    }
    paths.extend(commit::side_files(&blob_path, evm_move.as_deref()));
    paths.extend(evm_move.clone());
    let path_refs: Vec<&str> = paths.iter().map(String::as_str).collect();
    output::check(&env.root, &path_refs, true).map_err(CommandError::usage)?;
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
            Ok(k) => (k, format!("{}, unsealed", env.root.display_path(&current))),
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
                Ok(true) => log::info!("it opens the evm-key blob {} ({needs})", shown),
                Ok(false) => {
                    return Err(CommandError::failed(format!(
                        "the kmk from {source} does not open the evm-key blob {} ({needs}): it is not the kmk the labels hang on, so sealing it would lose them; nothing was sealed or written",
                        shown
                    )));
                }
                Err(m) => {
                    return Err(CommandError::failed(format!(
                        "{m}; nothing was sealed or written"
                    ))
                    .context(format_args!("evm-key blob {}", shown)));
                }
            }
        }
        None => log::warn!(
            "no evm-key blob sealed by user:{} at EVMKEY ({}): cannot check that this kmk is the one the labels hang on",
            s.kmk_name,
            env.root.display_path(&s.evm_key.value)
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
        policy,
        signed_by: signed_by
            .filter(|_| !o.plain_pcrs)
            .map(|_| current.as_str()),
        recovery_key: o.recovery_key,
        existing_config: existing_config.as_deref(),
        current: &current,
        evm_move: evm_move.as_deref(),
        start,
    };
    seal_and_replace(&env, &mut tpm, &tcti, kmk, job, |_, _| Ok(()))
        .map_err(CommandError::failed)?;
    super::say_rebuild_initramfs();
    Ok(())
}

/// EVMKEY's place, when EVMKEY of our file names the evm-key beside it (a
/// seal interrupted past its switch).
fn evm_move(s: &crate::config::Settings) -> Option<String> {
    let place = commit::place_of(&s.evm_key.value);
    match &s.evm_key.source {
        crate::config::Source::File { path, .. }
            if place != s.evm_key.value
                && !path.ends_with(crate::config::EVM_CONFIG.trim_start_matches('/')) =>
        {
            Some(place.to_string())
        }
        _ => None,
    }
}

/// The key of the signed PCR policies the blob at `path` is sealed to
/// (`seal --authorized-by`), from the `.pcrpkey` beside it.
fn policy_key(root: &crate::rootfs::Root, path: &str) -> Option<policy_authorize::PolicyKey> {
    let pem = root
        .read(
            &format!("{path}{}", policy_authorize::PCRPKEY_SUFFIX),
            64 * 1024,
        )
        .ok()?;
    let key = policy_authorize::PolicyKey::from_pem(&pem).ok()?;
    let bytes = root.read(path, 64 * 1024).ok()?;
    let blob = keyfile::parse_tss2(&bytes).ok()?;
    policy_authorize::seals_to(&blob, &key).then_some(key)
}

/// What a reseal seals and where.
struct Job<'a> {
    blob_path: &'a str,
    pcrs: &'a PcrSelection,
    parent: u32,
    rule: seal::PinRule<'a>,
    owner_auth: &'a [u8],
    policy: seal::Policy,
    /// The blob whose `.pcrpkey` and `.pcrsig` go with the new one (it is
    /// sealed to the same signed policies).
    signed_by: Option<&'a str>,
    recovery_key: bool,
    existing_config: Option<&'a [u8]>,
    /// MASTERKEY as configured: the blob's place, or beside it after an
    /// interrupted switch; its companions are carried from there.
    current: &'a str,
    /// EVMKEY's place, when the configuration names the evm-key beside it.
    evm_move: Option<&'a str>,
    start: Instant,
}

/// The core of `reseal` and of the boot's AUTO_RESEAL: seals `kmk` again
/// and replaces the blob (with its recovery file and signed-policy files,
/// and the configuration when it no longer says what the blob is) through
/// `commit`. `before_write` runs between the seal and the writes (the boot
/// locks its PCR there): an error from it writes nothing.
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
    let sealed = seal::reseal_kmk(tpm, parent, job.rule, job.owner_auth, pcrs, job.policy, kmk)
        .map_err(|e| {
            format!(
                "seal the kmk again under {parent:#010x} with {tcti}: {e}{}; nothing was written",
                pin_source(&e, pin)
            )
        })?;
    log_parent(&sealed, parent, pin, &env.run_dir);
    before_write(tpm, &sealed).map_err(|m| format!("{m}; nothing was written"))?;

    let blob_path = job.blob_path;
    // Not over the side files an interrupted run's configuration names.
    let side = commit::side_of(blob_path, job.current);
    let file = |suffix: &str, bytes: Vec<u8>, mode: u32| commit::File {
        path: format!("{blob_path}{suffix}"),
        side: format!("{side}{suffix}"),
        bytes,
        mode,
    };
    // Files beside the current blob that go with the new one as they are.
    let carry = |suffix: &str| match env
        .root
        .read(&format!("{}{suffix}", job.current), 64 * 1024)
    {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(format!("read {e}; nothing was written")),
    };
    let pem = keyfile::encode_tss2_pem(&sealed.blob, Fields::Kernel).into_bytes();
    let mut files = vec![file("", pem, 0o600)];
    let recovery = match job.recovery_key.then(|| super::recovery_file(&sealed.kmk)) {
        Some(Ok((key, text))) => {
            files.push(file(recovery::SUFFIX, text, 0o600));
            Some(key)
        }
        Some(Err(e)) => return Err(e.to_string()),
        None => {
            if let Some(text) = carry(recovery::SUFFIX)? {
                files.push(file(recovery::SUFFIX, text, 0o600));
            }
            None
        }
    };
    let mut stale = Vec::new();
    let signed = [
        (policy_authorize::PCRPKEY_SUFFIX, 0o644),
        (policy_authorize::PCRSIG_SUFFIX, 0o644),
    ];
    for (suffix, mode) in signed {
        match job.signed_by {
            Some(_) => {
                if let Some(bytes) = carry(suffix)? {
                    files.push(file(suffix, bytes, mode));
                }
            }
            None => stale.push(commit::Stale {
                path: format!("{blob_path}{suffix}"),
                why: "the kmk is sealed again to PCR values, not to the policies its key signs"
                    .into(),
            }),
        }
    }
    let side_evm = job.evm_move.map(|e| commit::side_of(e, &s.evm_key.value));
    if let (Some(evm), Some(side_evm)) = (job.evm_move, &side_evm) {
        let bytes = env
            .root
            .read(&s.evm_key.value, 64 * 1024)
            .map_err(|e| format!("read the evm-key {e}; nothing was written"))?;
        files.push(commit::File {
            path: evm.to_string(),
            side: side_evm.clone(),
            bytes,
            mode: 0o600,
        });
    }
    let config_naming = |masterkey: &str, evm_key: Option<&str>| {
        config_text(
            env,
            job.existing_config,
            masterkey,
            evm_key,
            pcrs,
            parent,
            &sealed,
        )
        .map_err(|m| format!("{m}; nothing was written"))
    };
    let (config, config_says_it) = config_naming(blob_path, job.evm_move)?;
    // The old configuration cannot load the new blob (another storage key
    // or PCR set) nor the new one the old: beside, then switched.
    let switched = switches_config(s, parent, &sealed.parent_name, pcrs);
    let order = if switched {
        let (side_config, _) = config_naming(&side, side_evm.as_deref())?;
        commit::Order::Switch {
            side_config: side_config.into_bytes(),
            config: Some(config.into_bytes()),
        }
    } else {
        // The blob alone when the configuration already says all this:
        // one rename, so a crash leaves the old blob or the new.
        commit::Order::InPlace {
            config: (!config_says_it).then(|| config.into_bytes()),
        }
    };
    let config_at = files.len();
    let set = commit::Set {
        files,
        stale,
        order,
        leftovers: commit::side_files(blob_path, job.evm_move.or(Some(&s.evm_key.value))),
    };
    let places = set.commit(&env.root, true).map_err(|e| match e {
        commit::CommitError::Old(m) if switched => {
            format!("{m}; the kmk is sealed again, but the configuration still names the old blob")
        }
        commit::CommitError::Old(m) => m,
        commit::CommitError::Switched(m) => {
            if let Some(key) = &recovery {
                let place = env.root.display_path(format!("{side}{}", recovery::SUFFIX));
                super::print_recovery_key(key, &place);
            }
            format!("{m}: run reseal again to finish the move to {blob_path}")
        }
    })?;
    if let Some(p) = places.get(config_at) {
        log::info!("wrote {}", p.display());
    }
    let mut places = places.into_iter();
    if let Some(p) = places.next() {
        log::info!(
            "sealed the same {}-byte kmk again to {}{pcrs} under {parent:#010x}: {} ({} ms)",
            sealed.kmk.len(),
            if job.signed_by.is_some() {
                "the signed policies over "
            } else {
                ""
            },
            p.display(),
            job.start.elapsed().as_millis()
        );
    }
    if let Some(key) = recovery {
        let place = places.next().unwrap_or_default();
        super::print_recovery_key(&key, &place.to_string_lossy());
    }
    super::note_tpm_option(s);
    record_pin(env, &sealed.parent_name);
    Ok(())
}

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

/// AUTO_RESEAL: after the recovery key opened the kmk in this boot (and
/// the evm-key opened with it, so it is the kmk the labels hang on), seals
/// it again to this boot's PCR values under the storage key there is, so
/// the next boot needs no key. `Err` says why not; nothing is written
/// then. Never at boot: a blob the initramfs pins (it would refuse the
/// new one next boot), a new storage key (a TPM clear is an admin's
/// matter), a root mounted read-only, files a seal or reseal cut short
/// past its switch left beside their places (the rest of that move is
/// reseal's).
pub(crate) fn at_boot(ctx: &crate::steps::Context, kmk: Secret) -> Result<(), String> {
    let s = ctx.settings;
    let blob_path = s.masterkey.value.as_str();
    if let Some(pin) = &s.masterkey_sha256 {
        return Err(format!(
            "this initramfs pins the kmk blob (MASTERKEY_SHA256, {}) and would refuse a blob sealed now at the next boot, and the initramfs cannot be rebuilt from inside it",
            pin.source
        ));
    }
    // Finishing a move takes a switch and the renames after it, and a
    // boot does one reseal in place, nothing more.
    let mut beside = Vec::new();
    if commit::place_of(blob_path) != blob_path {
        beside.push(format!("MASTERKEY={blob_path} ({})", s.masterkey.source));
    }
    if evm_move(s).is_some() {
        beside.push(format!("EVMKEY={} ({})", s.evm_key.value, s.evm_key.source));
    }
    if !beside.is_empty() {
        return Err(format!(
            "{}: the configuration names the files a seal or reseal cut short past its switch left beside their places, and moving them there is `integrity-loader reseal`'s, not a boot's",
            beside.join(" and ")
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
    if let Some(key) = policy_key(ctx.root, blob_path) {
        return Err(format!(
            "the kmk is sealed to PCR policies signed by the key of fingerprint {}: sign this boot's PCR values with it (`integrity-loader sign-policy`) instead",
            crate::hex::encode(&key.fingerprint())
        ));
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
        policy: seal::Policy::Pcr(seal::Values::Current {
            lock: lock.filter(|l| pcrs.indices().any(|p| p == *l)),
        }),
        signed_by: None,
        recovery_key: false,
        existing_config: existing_config.as_deref(),
        current: blob_path,
        evm_move: None,
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
