//! `integrity-loader seal`, on the installed system: the seed procedure's
//! manual steps in one command. Makes sure the storage key exists (and is
//! the pinned one), seals a new kmk to PCR values, optionally exports an
//! evm-key sealed by that kmk and updates /etc/integrity-loader.conf, then
//! puts the files in place together (`output`). Secrets go nowhere else.

use super::{CommandError, setup};
use crate::cli::{Options, SealOptions, SealingOptions};
use crate::config::MasterKeyType;
use crate::keyring;
use crate::rootfs::Root;
use crate::secret::Secret;
use crate::tpm::client::Tpm;
use crate::tpm::keyfile::{self, Fields};
use crate::tpm::pcr::PcrSelection;
use crate::tpm::{parent_pin, policy_authorize, seal, tcti, transport};
use std::time::Instant;

mod commit;
mod config_update;
pub(super) mod output;
pub(crate) mod reseal;
mod trusted;

const DEFAULT_OUTPUT: &str = "/etc/keys/kmk-tpm2.pem";
const CONFIG_PATH: &str = "/etc/integrity-loader.conf";

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
    let values = record_covering(&record, pcrs);
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

/// The values of `pcrs` in a record of the PCR lock, when it has them all.
pub(crate) fn record_covering(
    record: &[(u8, [u8; 32])],
    pcrs: &PcrSelection,
) -> Option<Vec<[u8; 32]>> {
    pcrs.indices()
        .map(|i| record.iter().find(|(p, _)| *p == i).map(|(_, v)| *v))
        .collect()
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

/// Whether `kmk` (a `user` key named `kmk_name`) opens the evm-key blob
/// `blob`: the kernel loads it in a session keyring private to this
/// process, and refuses (EINVAL) a blob whose HMAC the kmk does not verify.
fn opens_evm_key(kmk: &Secret, kmk_name: &str, blob: &[u8]) -> Result<bool, String> {
    let parsed =
        crate::encrypted_key::parse(blob).map_err(|e| format!("not an evm-key blob: {e}"))?;
    let session = keyring::join_new_session()
        .map_err(|e| format!("join a private session keyring: {}", e.desc()))?;
    let kmk_id = keyring::add_key("user", Some(kmk_name), kmk.expose(), session)
        .map_err(|e| format!("add the kmk to a private keyring: {}", e.desc()))?;
    let loaded = keyring::add_key(
        "encrypted",
        Some("evm-key"),
        &parsed.load_payload(),
        session,
    );
    let _ = keyring::unlink(kmk_id, session);
    match loaded {
        Ok(id) => {
            let _ = keyring::unlink(id, session);
            Ok(true)
        }
        Err(nix::errno::Errno::EINVAL) => Ok(false),
        Err(e) => Err(format!(
            "load it with the kmk: {} (is CONFIG_ENCRYPTED_KEYS on?)",
            e.desc()
        )),
    }
}

/// The evm-key blob the configuration names, when it is sealed by the
/// configured kmk (and, with `kmk_blob`, that kmk's blob exists): the
/// labels (EVM HMACs) of the files hang on both. Returns the blob's path,
/// its bytes and the master key it names (`user:kmk`).
fn labelled_evm_key(env: &super::Env, kmk_blob: bool) -> Option<(String, Vec<u8>, String)> {
    let s = &env.settings;
    let path = s.evm_key.value.clone();
    let bytes = env.root.read(&path, 64 * 1024).ok()?;
    let needs = crate::encrypted_key::parse(&bytes).ok()?.header.master();
    let kmk = format!("{}:{}", s.masterkey_type.value.kernel_type(), s.kmk_name);
    (needs == kmk && (!kmk_blob || env.root.exists(&s.masterkey.value)))
        .then_some((path, bytes, needs))
}

/// Whether two paths inside the root name the same place.
fn same_place(root: &Root, a: &str, b: &str) -> bool {
    a == b
        || matches!(
            (root.resolve_planned(a), root.resolve_planned(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

/// What this `seal` would do to the kmk the configured evm-key blob is
/// sealed by, when it would orphan the labels: `None` when nothing is lost.
fn orphans_labels(env: &super::Env, o: &SealOptions, output: &str) -> Option<String> {
    let (evm, _, needs) = labelled_evm_key(env, true)?;
    let s = &env.settings;
    let kmk = &s.masterkey.value;
    // After a run cut short past its switch the configuration names the
    // files beside their places, and names the places again once the move
    // is finished: either is the kmk's.
    let names = |path: &str, configured: &str| {
        same_place(&env.root, path, configured)
            || same_place(&env.root, path, commit::place_of(configured))
    };
    let mut what = Vec::new();
    if same_place(&env.root, output, kmk) {
        what.push(format!("it replaces {kmk}"));
    } else if names(output, kmk) {
        what.push(format!("it replaces {output}, where {kmk} goes"));
    } else if o.write_config {
        what.push(format!(
            "--write-config points the boot at {output} instead of {kmk}"
        ));
    }
    if let Some(e) = o.evm_key.as_deref().filter(|e| names(e, &evm)) {
        what.push(format!("--evm-key replaces {e}"));
    }
    if what.is_empty() {
        return None;
    }
    Some(format!(
        "the evm-key blob {} (EVMKEY, {}) is sealed by {needs}, the kmk of {} ({}), and this seal would make a new kmk: {}. The evm-key could never be opened again, so every EVM HMAC made with it (the labels of the files) becomes unverifiable, and an appraise policy refuses the files until the whole system is labelled again",
        env.root.display_path(&evm),
        s.evm_key.source,
        env.root.display_path(kmk),
        s.masterkey.source,
        what.join(" and ")
    ))
}

/// The PCR values to seal to: --pcr-value, else this boot's record of the
/// unseal, else the current ones.
fn values_to_seal(
    env: &super::Env,
    o: &SealingOptions,
    pcrs: &PcrSelection,
) -> Result<seal::Values, String> {
    if o.pcr_values.is_empty() {
        // Without a record, the lock PCR is recognised by its value.
        return Ok(recorded_values(&env.run_dir, pcrs).map_or_else(
            || seal::Values::Current {
                lock: env
                    .settings
                    .tpm
                    .pcr_lock
                    .filter(|l| pcrs.indices().any(|p| p == *l)),
            },
            seal::Values::Given,
        ));
    }
    let mut values = Vec::new();
    for pcr in pcrs.indices() {
        let Some((_, value)) = o.pcr_values.iter().find(|(n, _)| *n == pcr) else {
            return Err(format!(
                "--pcr-value given for some PCRs but not for PCR {pcr} of {pcrs}"
            ));
        };
        values.push(*value);
    }
    if o.pcr_values
        .iter()
        .any(|(n, _)| !pcrs.indices().any(|p| p == *n))
    {
        return Err(format!("--pcr-value names a PCR outside {pcrs}"));
    }
    Ok(seal::Values::Given(values))
}

/// The public key of --authorized-by; --pcr-value has no meaning with it.
fn authorized_by(o: &SealOptions) -> Result<Option<policy_authorize::PolicyKey>, String> {
    let Some(path) = &o.authorized_by else {
        return Ok(None);
    };
    if !o.sealing.pcr_values.is_empty() {
        return Err("--pcr-value has no meaning with --authorized-by: the kmk is sealed to whatever values the key signs; sign them with `integrity-loader sign-policy`".into());
    }
    let pem = Root::new("/")
        .read(&path.to_string_lossy(), 64 * 1024)
        .map_err(|e| format!("read --authorized-by {e}"))?;
    policy_authorize::PolicyKey::from_pem(&pem)
        .map(Some)
        .map_err(|m| format!("--authorized-by {}: {m}", path.display()))
}

/// The owner hierarchy's auth (--owner-auth-file), empty by default.
fn owner_auth(o: &SealingOptions) -> Result<Secret, String> {
    match &o.owner_auth_file {
        None => Ok(Secret::new(Vec::new())),
        Some(f) => match Root::new("/").read_secret(&f.to_string_lossy(), 1024) {
            Ok(mut a) => {
                let len = a.expose().strip_suffix(b"\n").map_or(a.len(), |t| t.len());
                a.truncate(len);
                Ok(a)
            }
            Err(e) => Err(format!("read owner auth {e}")),
        },
    }
}

/// The TPM of the configuration (TPM=, --tpm), and its TCTI string.
fn open_tpm(s: &crate::config::Settings) -> Result<(Tpm, String), CommandError> {
    let tcti = tcti::parse(&s.tpm.tcti.value)
        .map_err(|e| CommandError::usage(format!("{e} ({})", s.tpm.tcti.source)))?;
    let transport =
        transport::open(&tcti, s.tpm.timeout).map_err(|e| CommandError::failed(e.to_string()))?;
    Ok((Tpm::new(transport), tcti.to_string()))
}

/// The PCR set to seal to: --pcrs, else TPM2_PCRS.
fn pcrs_to_seal(
    s: &crate::config::Settings,
    o: &SealingOptions,
) -> Result<PcrSelection, CommandError> {
    match &o.pcrs {
        Some(pcrs) => Ok(pcrs.clone()),
        None => {
            PcrSelection::parse(&s.tpm.pcrs.value).map_err(|e| CommandError::usage(e.to_string()))
        }
    }
}

/// " (where the pin comes from)" after a seal error about the storage key.
fn pin_source(
    e: &seal::SealError,
    pin: Option<&crate::config::Setting<[u8; parent_pin::NAME_LEN]>>,
) -> String {
    match (e, pin) {
        (seal::SealError::Parent(_), Some(p)) => format!(" ({})", p.source),
        _ => String::new(),
    }
}

/// What sealing found about the storage key, for the log.
fn log_parent(
    sealed: &seal::Sealed,
    parent: u32,
    pin: Option<&crate::config::Setting<[u8; crate::tpm::parent_pin::NAME_LEN]>>,
    run_dir: &std::path::Path,
) {
    let parent_name = parent_pin::name_hex(&sealed.parent_name);
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
    log_lock_state(&sealed.lock, run_dir);
    if let Some(p) = pin
        && p.value.as_slice() != sealed.parent_name.as_slice()
    {
        log::warn!(
            "TPM2_PARENT_NAME {} ({}) is replaced by {parent_name}",
            parent_pin::name_hex(&p.value),
            p.source
        );
    }
}

/// /etc/integrity-loader.conf with the lines of the kmk just sealed, and
/// whether the existing file already says all they say.
fn config_text(
    env: &super::Env,
    existing: Option<&[u8]>,
    masterkey: &str,
    evm_key: Option<&str>,
    pcrs: &PcrSelection,
    parent: u32,
    sealed: &crate::tpm::seal::Sealed,
) -> Result<(String, bool), String> {
    let kmk = config_update::SealedKmk {
        masterkey,
        pcrs: &pcrs.to_string(),
        parent,
        parent_name: &parent_pin::name_hex(&sealed.parent_name),
        parent_public: &crate::hex::encode(&sealed.parent_public),
        pcr_values: &crate::tpm::pcr_lock::values_text(&sealed.values),
        evm_key,
    };
    let text = config_update::merge(existing, &kmk)
        .map_err(|e| format!("update {}: {e}", env.root.display_path(CONFIG_PATH)))?;
    let same = existing.is_some_and(|e| config_update::already_says(e, &kmk));
    Ok((text, same))
}

/// Says that --tpm is not recorded, where the configuration is written.
fn note_tpm_option(s: &crate::config::Settings) {
    if let crate::config::Source::Argument(option) = s.tpm.tcti.source {
        log::info!(
            "{option} {} names the TPM for this run only and is not written into {CONFIG_PATH}: the boot uses its TPM= line (default device:/dev/tpmrm0); set it there if the boot reaches the TPM another way",
            s.tpm.tcti.value
        );
    }
}

/// The existing /etc/integrity-loader.conf, `None` when there is none.
fn read_config(env: &super::Env) -> Result<Option<Vec<u8>>, String> {
    match env.root.read(CONFIG_PATH, 64 * 1024) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(format!("read {e}")),
    }
}

pub fn run(options: &Options, o: &SealOptions) -> Result<(), CommandError> {
    if o.trusted {
        return trusted::run(options, o);
    }
    let env = setup(options, None, false, false)?;
    let s = &env.settings;
    let pcrs = pcrs_to_seal(s, &o.sealing)?;
    let parent = o.sealing.parent.unwrap_or(s.tpm.parent);
    let values = values_to_seal(&env, &o.sealing, &pcrs).map_err(CommandError::usage)?;
    let authorized_by = authorized_by(o).map_err(CommandError::usage)?;
    let output = o.output.clone().unwrap_or_else(|| {
        if s.masterkey_type.value == MasterKeyType::Tpm2 {
            // A run interrupted after its switch left MASTERKEY naming the
            // blob beside its place.
            commit::place_of(&s.masterkey.value).to_string()
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
    let force = o.force || o.orphan_labels;
    let recovery_path = format!("{output}{}", crate::recovery::SUFFIX);
    let pcrpkey_path = format!("{output}{}", policy_authorize::PCRPKEY_SUFFIX);
    let mut targets = vec![output.clone()];
    if authorized_by.is_some() {
        targets.push(pcrpkey_path.clone());
    }
    if o.sealing.recovery_key {
        targets.push(recovery_path.clone());
    }
    targets.extend(o.evm_key.clone());
    if o.write_config {
        targets.push(CONFIG_PATH.to_string());
    }
    let target_refs: Vec<&str> = targets.iter().map(String::as_str).collect();
    output::check(&env.root, &target_refs, force).map_err(CommandError::usage)?;
    // Where they may wait while the configuration switches (the side
    // names not in use): leftovers of an interrupted run are replaced.
    let side_blob = commit::side_of(&output, &s.masterkey.value);
    let side = |path: &str| match path.strip_prefix(output.as_str()) {
        Some(companion) => format!("{side_blob}{companion}"),
        None => commit::side_of(path, &s.evm_key.value),
    };
    let sides: Vec<String> = targets
        .iter()
        .filter(|t| t.as_str() != CONFIG_PATH)
        .map(|t| side(t))
        .collect();
    let side_refs: Vec<&str> = sides.iter().map(String::as_str).collect();
    output::check(&env.root, &side_refs, true).map_err(CommandError::usage)?;
    // --force replaces files; the kmk the labels hang on only by name.
    match (orphans_labels(&env, o, &output), o.orphan_labels) {
        (Some(m), false) => {
            return Err(CommandError::usage(format!(
                "{m}. To seal this kmk again (new PCR values, PCR set or storage key), run `integrity-loader reseal`; to replace it and lose the labels, add --replace-kmk-and-orphan-labels"
            )));
        }
        (Some(m), true) => log::warn!("{m}: replacing it, as --replace-kmk-and-orphan-labels asks"),
        (None, _) => {}
    }
    // Read without --write-config too: a switch rewrites it for a while.
    let existing_config = read_config(&env).map_err(CommandError::usage)?;
    let owner_auth = owner_auth(&o.sealing).map_err(CommandError::usage)?;

    let start = Instant::now();
    let (mut tpm, tcti) = open_tpm(s)?;
    // A pinned storage key is the only one sealed under, except when this
    // run records another: a deliberate move to another handle, or a new
    // SRK after a TPM clear emptied the handle (--write-config).
    let pin = s.tpm.parent_name.as_ref();
    let rule = seal::PinRule {
        pinned: pin.map(|p| &p.value),
        accept_other_key: o.write_config && parent != s.tpm.parent,
        accept_new_key: o.write_config,
    };
    let sealed = match &authorized_by {
        Some(key) => seal::seal_new_kmk_authorized(
            &mut tpm,
            parent,
            rule,
            owner_auth.expose(),
            &pcrs,
            key.policy(),
        ),
        None => seal::seal_new_kmk(&mut tpm, parent, rule, owner_auth.expose(), &pcrs, values),
    };
    let sealed = sealed.map_err(|e| {
        CommandError::failed(format!("{e}{}", pin_source(&e, pin))).context(format_args!(
            "seal a new kmk under {parent:#010x} with {tcti}"
        ))
    })?;
    let parent_name = parent_pin::name_hex(&sealed.parent_name);
    drop(tpm);
    log_parent(&sealed, parent, pin, &env.run_dir);

    // Everything is made before anything is written.
    let pem = keyfile::encode_tss2_pem(&sealed.blob, Fields::Kernel);
    let evm_blob = match &o.evm_key {
        Some(_) => Some(
            export_evm_key(&sealed.kmk, &kmk_name)
                .map_err(|m| CommandError::failed(m).nothing_written())?,
        ),
        None => None,
    };
    let recovery = match o.sealing.recovery_key {
        true => Some(recovery_file(&sealed.kmk)?),
        false => None,
    };
    // Blobs are private; the configuration stays readable (check as a user).
    let file = |path: &str, bytes: Vec<u8>, mode: u32| commit::File {
        path: path.to_string(),
        side: side(path),
        bytes,
        mode,
    };
    let mut files = vec![file(&output, pem.into_bytes(), 0o600)];
    if let Some(key) = &authorized_by {
        files.push(file(&pcrpkey_path, key.to_pem().into_bytes(), 0o644));
    }
    let key = recovery.map(|(key, text)| {
        files.push(file(&recovery_path, text, 0o600));
        key
    });
    if let (Some(path), Some(blob)) = (&o.evm_key, evm_blob) {
        files.push(file(path, blob.into_bytes(), 0o600));
    }
    let mut stale = Vec::new();
    if authorized_by.is_none() {
        stale.push(commit::Stale {
            path: pcrpkey_path.clone(),
            why: "the kmk this seal replaced was sealed to the policies its key signs".into(),
        });
    }
    if key.is_none() {
        stale.push(commit::Stale {
            path: recovery_path.clone(),
            why: "it opened the kmk this seal replaced (--recovery-key makes one for the new kmk)"
                .into(),
        });
    }
    let commit = Commit {
        output: &output,
        evm: o.evm_key.as_deref(),
        write_config: o.write_config,
        existing: existing_config.as_deref(),
        fixed_blob: None,
    };
    let order = commit_order(&env, commit, |masterkey, evm_key| {
        config_text(
            &env,
            existing_config.as_deref(),
            masterkey,
            evm_key,
            &pcrs,
            parent,
            &sealed,
        )
        .map(|(text, _)| text.into_bytes())
    })?;
    let switched = matches!(order, commit::Order::Switch { .. });
    let set = commit::Set {
        files,
        stale,
        order,
        leftovers: commit::side_files(&output, o.evm_key.as_deref()),
    };
    let places = set.commit(&env.root, force).map_err(|e| {
        if let (commit::CommitError::Switched(_), Some(key)) = (&e, &key) {
            let place = env
                .root
                .display_path(format!("{side_blob}{}", crate::recovery::SUFFIX));
            print_recovery_key(key, &place);
        }
        CommandError::failed(match e {
            commit::CommitError::Old(m) => m,
            commit::CommitError::Switched(m) => {
                format!("{m}: run `integrity-loader reseal` to move them into place")
            }
        })
    })?;
    if switched {
        log::info!(
            "the new files went beside the old ones first, and the configuration switched to them in one rename, so a crash at any point left the old set or the new in force"
        );
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
    if let Some(key) = &authorized_by {
        let place = places.next().unwrap_or_default();
        log::info!(
            "the kmk unseals only with a policy over {pcrs} signed by the key of fingerprint {} ({}): sign the PCR values to boot with (`integrity-loader sign-policy --key PRIVATE.pem --output {output}{}`)",
            crate::hex::encode(&key.fingerprint()),
            place.display(),
            policy_authorize::PCRSIG_SUFFIX
        );
    }
    if let Some(key) = key {
        let place = places.next().unwrap_or_default();
        print_recovery_key(&key, &place.to_string_lossy());
    }
    if o.evm_key.is_some()
        && let Some(p) = places.next()
    {
        log::info!(
            "exported an evm-key sealed by user:{kmk_name}: {}{}",
            p.display(),
            if o.write_config {
                ", named by EVMKEY in the configuration"
            } else {
                "; point EVMKEY in /etc/sysconfig/evm at it"
            }
        );
    }
    if o.write_config {
        if let Some(p) = places.next() {
            log::info!("wrote {}", p.display());
        }
        note_tpm_option(s);
        record_pin(&env, &sealed.parent_name);
    } else if pin.is_none() {
        log::info!(
            "pin the storage key so the boot can tell it from a substitute: TPM2_PARENT_NAME={parent_name} in {CONFIG_PATH}"
        );
    }
    say_rebuild_initramfs();
    Ok(())
}

/// How `seal` (both types) puts its files in place. When the boot reads
/// what it replaces (the kmk blob at MASTERKEY, or at the path
/// --write-config names, and the evm-key at EVMKEY) and an old set is
/// there to fall back to, beside the old files with a switch of the
/// configuration, so no crash leaves a new kmk with the old evm-key or the
/// old configuration; on a first seal, in place. `config` is the
/// configuration --write-config writes naming a blob and an evm-key;
/// `fixed_blob`, why the configuration cannot name the blob elsewhere.
pub(super) struct Commit<'a> {
    pub output: &'a str,
    pub evm: Option<&'a str>,
    pub write_config: bool,
    pub existing: Option<&'a [u8]>,
    pub fixed_blob: Option<String>,
}

pub(super) fn commit_order(
    env: &super::Env,
    c: Commit,
    config: impl Fn(&str, Option<&str>) -> Result<Vec<u8>, String>,
) -> Result<commit::Order, CommandError> {
    let s = &env.settings;
    let root = &env.root;
    let failed = |m: String| CommandError::failed(m).nothing_written();
    let (output, evm, existing) = (c.output, c.evm, c.existing);
    // The place of a file the configuration names beside it (a run cut
    // short past its switch) is read once that move is finished: this one
    // finishes it, naming the place.
    let back = |path: &str, configured: &str| {
        configured != commit::place_of(configured)
            && same_place(root, path, commit::place_of(configured))
    };
    let blob_back = back(output, &s.masterkey.value);
    let evm_back = evm.is_some_and(|e| back(e, &s.evm_key.value));
    let reads_blob = c.write_config || blob_back || same_place(root, output, &s.masterkey.value);
    let reads_evm =
        evm.is_some_and(|e| c.write_config || evm_back || same_place(root, e, &s.evm_key.value));
    let old_set = root.exists(&s.masterkey.value) || root.exists(&s.evm_key.value);
    let final_config = match c.write_config {
        true => Some(config(output, evm).map_err(failed)?),
        false => None,
    };
    if !(reads_blob || reads_evm) || !old_set {
        return Ok(commit::Order::InPlace {
            config: final_config,
        });
    }
    let cmdline = |source: &crate::config::Source| {
        matches!(
            source,
            crate::config::Source::Cmdline(_) | crate::config::Source::CmdlineEmpty(_)
        )
    };
    let mut fixed: Vec<String> = [
        (reads_blob, "MASTERKEY", &s.masterkey),
        (reads_evm, "EVMKEY", &s.evm_key),
    ]
    .into_iter()
    .filter(|(read, _, setting)| *read && cmdline(&setting.source))
    .map(|(_, name, setting)| format!("{name} ({})", setting.source))
    .collect();
    fixed.extend(c.fixed_blob.filter(|_| reads_blob));
    if !fixed.is_empty() {
        log::warn!(
            "{}, which the configuration cannot switch: the files are renamed over the old ones one after another, and a crash between two renames leaves a new kmk beside old files",
            fixed.join(" and ")
        );
        return Ok(commit::Order::InPlace {
            config: final_config,
        });
    }
    let side_blob = commit::side_of(output, &s.masterkey.value);
    let side_evm = evm.map(|e| commit::side_of(e, &s.evm_key.value));
    let side_evm = side_evm.as_deref().filter(|_| reads_evm);
    let side_config = match c.write_config {
        true => config(&side_blob, side_evm),
        false => config_update::name_files(existing, reads_blob.then_some(&side_blob), side_evm)
            .map(String::into_bytes)
            .map_err(|e| format!("update {}: {e}", root.display_path(CONFIG_PATH))),
    };
    let config = match final_config {
        Some(text) => Some(text),
        None if blob_back || evm_back => Some(
            config_update::name_files(
                existing,
                blob_back.then_some(output),
                evm.filter(|_| evm_back),
            )
            .map(String::into_bytes)
            .map_err(|e| failed(format!("update {}: {e}", root.display_path(CONFIG_PATH))))?,
        ),
        None => existing.map(<[u8]>::to_vec),
    };
    Ok(commit::Order::Switch {
        side_config: side_config.map_err(failed)?,
        config,
    })
}

/// After a new blob (seal, reseal): a host-only initramfs pins the blob's
/// SHA-256 (and the storage key) of its build, so the old one refuses it.
fn say_rebuild_initramfs() {
    log::info!(
        "a host-only initramfs pins the kmk blob's SHA-256 and the storage key of its build: rebuild it (dracut -f) before the next boot, or the boot refuses the new blob"
    );
}

/// A new recovery key and the recovery file wrapping `kmk` under it.
fn recovery_file(kmk: &Secret) -> Result<(Secret, Vec<u8>), CommandError> {
    let made = crate::recovery::new_key().and_then(|key| {
        let text = crate::recovery::wrap(kmk, &key, crate::recovery::DEFAULT_KDF)?;
        Ok((key, text.into_bytes()))
    });
    made.map_err(|m| {
        CommandError::failed(m)
            .context("make the recovery key")
            .nothing_written()
    })
}

/// The recovery key, once, on stdout: the only place it ever goes.
fn print_recovery_key(key: &Secret, file: &str) {
    use std::io::Write;
    let shown = crate::recovery::format_key(key);
    let mut out = std::io::stdout().lock();
    let printed = out
        .write_all(b"recovery key (shown this once: write it down and keep it off this machine):\n")
        .and_then(|()| out.write_all(shown.expose()))
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    match printed {
        Ok(()) => log::info!(
            "wrote the kmk wrapped under the recovery key (Argon2id): {}; a boot the TPM cannot unseal the kmk for asks for the key on the console",
            file
        ),
        Err(e) => log::error!(
            "could not print the recovery key ({e}): {} opens with a key nobody has; run `integrity-loader reseal --recovery-key` for a new one",
            file
        ),
    }
}

/// The pin this system now stands by, for the next host-only build.
fn record_pin(env: &super::Env, name: &[u8]) {
    if let Err(e) = crate::pins::record_checked(&env.run_dir, name) {
        log::warn!(
            "cannot record the new pin in {}: {e}; the next host-only build needs INTEGRITY_LOADER_REPIN=1",
            env.run_dir.display()
        );
    }
}
