//! `seal --type trusted`: the chapter's trusted-key procedure as one
//! command. The storage key is made or reused as for a tpm2 kmk, then the
//! KERNEL makes the kmk (`new 32 keyhandle=...`, with `policydigest=` of
//! PolicyPCR computed here when PCRs are asked for) in a session keyring
//! private to this process, exports its blob (the hex of the TSS2 ASN.1
//! key), makes an evm-key sealed by it and exports that; the files go in
//! place all or none. The kmk itself never leaves the kernel.

use super::{CONFIG_PATH, commit, config_update, output, setup};
use crate::cli::{Options, SealOptions};
use crate::commands::CommandError;
use crate::config::{MasterKeyType, Settings};
use crate::keyring::{self, KeySerial};
use crate::tpm::pcr::PcrSelection;
use crate::tpm::seal;
use nix::errno::Errno;
use std::time::Instant;

const DEFAULT_OUTPUT: &str = "/etc/keys/kmk-trusted.blob";

/// The fix when the kernel has no `trusted` key type.
fn no_trusted_keys() -> String {
    "this kernel has no trusted keys (CONFIG_TRUSTED_KEYS is off, as in Debian's kernels, or no TPM was found before it initialised), so it cannot make a trusted kmk; run `integrity-loader seal` without --type trusted: the loader seals the kmk itself and unseals it at boot (MASTERKEYTYPE=tpm2)".to_string()
}

/// Where the blob goes by default: MASTERKEY when a trusted kmk is
/// configured there; else dracut's default path, with MULTIKERNELMODE=YES
/// the running release's.
fn default_output(s: &Settings, release: &str) -> String {
    if s.masterkey_type.value == MasterKeyType::Trusted {
        // A run interrupted after its switch left MASTERKEY naming the
        // blob beside its place.
        commit::place_of(&s.masterkey.value).to_string()
    } else if s.multikernel {
        release_path(release)
    } else {
        DEFAULT_OUTPUT.to_string()
    }
}

/// 97masterkey's path for this release under MULTIKERNELMODE=YES.
fn release_path(release: &str) -> String {
    format!("/etc/keys/kmk-trusted-{release}.blob")
}

/// The PCRs to bind to: --pcrs, else TPM2_PCRS when configured (the loader
/// loads a trusted kmk under a PCR policy exactly then), else none: the
/// chapter's kmk, which any root process of any boot can load.
fn pcrs_to_bind(s: &Settings, o: &SealOptions) -> Result<Option<PcrSelection>, String> {
    let o = &o.sealing;
    let text = match (&o.pcrs, s.tpm.pcrs.source.is_default()) {
        (Some(p), _) => return Ok(Some(p.clone())),
        (None, false) => s.tpm.pcrs.value.clone(),
        (None, true) if o.pcr_values.is_empty() => return Ok(None),
        (None, true) => {
            return Err("--pcr-value needs --pcrs (or TPM2_PCRS): a trusted kmk is bound to PCRs only when asked".into());
        }
    };
    PcrSelection::parse(&text)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// How many times the kernel's `pcrlock=` (an extend with a zero digest)
/// took `value` from zero, up to a few.
fn kernel_locks_from_zero(value: &[u8; 32]) -> Option<usize> {
    use sha2::{Digest, Sha256};
    let mut v = [0u8; 32];
    (1..=8).find(|_| {
        let mut h = Sha256::new();
        h.update(v);
        h.update([0u8; 32]);
        v = h.finalize().into();
        v == *value
    })
}

/// Warns when the PCRs lack the one the kernel locks; with the current
/// values (`current`), takes that PCR back to zero when a trusted kmk
/// loaded this boot locked it from there: the next boot loads before its
/// own lock.
fn unlocked_values(
    s: &Settings,
    pcrs: &PcrSelection,
    values: &mut [(u8, [u8; 32])],
    current: bool,
) {
    let Some(lock) = s.trusted_pcrlock else {
        return;
    };
    let Some((pcr, value)) = values.iter_mut().find(|(p, _)| u32::from(*p) == lock) else {
        log::warn!(
            "TRUSTED_PCRLOCK={lock}: the kernel extends PCR {lock} after loading the kmk, and {pcrs} lacks it, so the blob still unseals for the rest of the boot; add PCR {lock} to --pcrs"
        );
        return;
    };
    if !current || *value == [0u8; 32] {
        return;
    }
    match kernel_locks_from_zero(value) {
        Some(times) => {
            *value = [0u8; 32];
            log::info!(
                "PCR {pcr} holds the kernel's pcrlock={pcr} applied {times} time(s) to zero (a trusted kmk loaded this boot); sealed to PCR {pcr} = 0, its value before the lock, as the next boot starts it"
            );
        }
        None => log::warn!(
            "PCR {pcr} holds {}, neither zero nor the kernel's pcrlock applied to zero: sealed to it as it is; if the boot extends it before the loader, the kmk does not load: seal with --pcr-value {pcr}=HEX",
            crate::hex::encode(value)
        ),
    }
}

/// The kmk's blob (hex) and, asked for, the evm-key's.
type Made = (Vec<u8>, Option<Vec<u8>>);

/// The blob and, asked for, the evm-key, made by the kernel in a session
/// keyring private to this process (the keys are unlinked after).
fn kernel_made(
    session: KeySerial,
    name: &str,
    payload: &str,
    evm_key: bool,
) -> Result<Made, CommandError> {
    let kmk = keyring::add_key("trusted", Some(name), payload.as_bytes(), session).map_err(
        |e| match e {
            Errno::ENODEV => CommandError::usage(no_trusted_keys()),
            e => CommandError::failed(format!(
                "the kernel could not make the trusted kmk (`{payload}`): {}",
                crate::steps::keyring_errno_words(e)
            )),
        },
    )?;
    let made = keyring::read(kmk)
        .map_err(|e| CommandError::failed(format!("export the trusted kmk: {}", e.desc())))
        .and_then(|blob| {
            if blob.is_empty() || !blob.iter().all(u8::is_ascii_hexdigit) {
                return Err(CommandError::failed(
                    "the kernel exported the trusted kmk as something other than hex",
                ));
            }
            if !evm_key {
                return Ok((blob, None));
            }
            let evm_payload = format!("new trusted:{name} 32");
            let evm = keyring::add_key(
                "encrypted",
                Some("evm-key"),
                evm_payload.as_bytes(),
                session,
            )
            .map_err(|e| {
                CommandError::failed(format!(
                    "create the evm-key: {} (is CONFIG_ENCRYPTED_KEYS on?)",
                    e.desc()
                ))
            })?;
            let read = keyring::read(evm);
            let _ = keyring::unlink(evm, session);
            let evm_blob = read
                .map_err(|e| CommandError::failed(format!("export the evm-key: {}", e.desc())))?;
            Ok((blob, Some(evm_blob)))
        });
    let _ = keyring::unlink(kmk, session);
    made
}

pub(super) fn run(options: &Options, o: &SealOptions) -> Result<(), CommandError> {
    let env = setup(options, None, false, false)?;
    let s = &env.settings;
    let pcrs = pcrs_to_bind(s, o).map_err(CommandError::usage)?;
    let given = match &pcrs {
        Some(p) if !o.sealing.pcr_values.is_empty() => {
            match super::values_to_seal(&env, &o.sealing, p).map_err(CommandError::usage)? {
                seal::Values::Given(v) => Some(v),
                seal::Values::Current { .. } => None,
            }
        }
        _ => None,
    };
    let parent = o.sealing.parent.unwrap_or(s.tpm.parent);
    let release = super::super::kernel_release();
    let output = o
        .output
        .clone()
        .unwrap_or_else(|| default_output(s, &release));
    // 97masterkey suffixes only its default path: MASTERKEY must not be set.
    let per_release = s.multikernel && output == release_path(&release);
    // The name the loader gives a configured trusted kmk; else the
    // chapter's, which a natively typed one gets (--write-config).
    let configured =
        s.masterkey_type.value == MasterKeyType::Trusted && !s.masterkey_type.source.is_default();
    let kmk_name = if configured || !s.kmk_name_source.is_default() {
        s.kmk_name.clone()
    } else {
        "kmk".to_string()
    };

    // Every target is checked before the TPM is touched.
    let force = o.force || o.orphan_labels;
    let mut targets = vec![output.clone()];
    targets.extend(o.evm_key.clone());
    if o.write_config {
        targets.push(CONFIG_PATH.to_string());
    }
    let target_refs: Vec<&str> = targets.iter().map(String::as_str).collect();
    output::check(&env.root, &target_refs, force).map_err(CommandError::usage)?;
    // Where they may wait while the configuration switches.
    let side_blob = commit::side_of(&output, &s.masterkey.value);
    let side_evm = o
        .evm_key
        .as_deref()
        .map(|e| commit::side_of(e, &s.evm_key.value));
    let sides: Vec<&str> = [Some(side_blob.as_str()), side_evm.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    output::check(&env.root, &sides, true).map_err(CommandError::usage)?;
    let orphaned = super::orphans_labels(&env, o, &output).or_else(|| {
        // Per release, this release's blob may not exist yet while the one
        // evm-key of every release is sealed by the kmk of the others.
        let (evm, _, needs) = super::labelled_evm_key(&env, false)?;
        if !per_release {
            return None;
        }
        let replaced = o
            .evm_key
            .as_deref()
            .is_some_and(|e| super::same_place(&env.root, e, &evm));
        let lost = if replaced {
            "and --evm-key would replace that evm-key: every EVM HMAC made with it becomes unverifiable"
        } else if o.evm_key.is_none() {
            "which that boot could not open the evm-key with"
        } else {
            return None;
        };
        Some(format!(
            "with MULTIKERNELMODE=YES one evm-key serves every release and every release's blob must hold its kmk: the evm-key blob {} is sealed by {needs}, and this seal would make a new kmk for release {release} ({output}), {lost}",
            env.root.display_path(&evm)
        ))
    });
    match (orphaned, o.orphan_labels) {
        (Some(m), false) => {
            return Err(CommandError::usage(format!(
                "{m}. A trusted kmk cannot be sealed again (the kernel never shows it); to replace it and lose the labels, add --replace-kmk-and-orphan-labels (with --evm-key for a new evm-key)"
            )));
        }
        (Some(m), true) => log::warn!("{m}: replacing it, as --replace-kmk-and-orphan-labels asks"),
        (None, _) => {}
    }
    // Read without --write-config too: a switch rewrites it for a while.
    let existing_config = super::read_config(&env).map_err(CommandError::usage)?;
    let owner_auth = super::owner_auth(&o.sealing).map_err(CommandError::usage)?;
    // Before the TPM: a kernel without the key type refuses at the type
    // lookup (ENODEV), ahead of the payload it would refuse anyway.
    let session = keyring::join_new_session().map_err(|e| {
        CommandError::failed(format!("join a private session keyring: {}", e.desc()))
    })?;
    match keyring::add_key("trusted", Some("integrity-loader-probe"), b"", session) {
        Err(Errno::ENODEV) => return Err(CommandError::usage(no_trusted_keys())),
        Ok(id) => {
            let _ = keyring::unlink(id, session);
        }
        Err(_) => {}
    }

    let start = Instant::now();
    let (mut tpm, tcti) = super::open_tpm(s)?;
    let rule = seal::PinRule {
        pinned: s.tpm.parent_name.as_ref().map(|p| &p.value),
        accept_other_key: o.write_config && parent != s.tpm.parent,
        accept_new_key: o.write_config,
    };
    let values_given = given.is_some();
    let prepared = (|| {
        if let Some(p) = &pcrs {
            seal::check_bank(&mut tpm, p)?;
        }
        let (public, created) = seal::ensure_parent(&mut tpm, parent, rule, owner_auth.expose())?;
        let values = match (&pcrs, given) {
            (Some(p), Some(v)) => Some(p.indices().zip(v).collect::<Vec<_>>()),
            (Some(p), None) => Some(crate::tpm::commands::pcr_read(&mut tpm, p)?),
            (None, _) => None,
        };
        Ok::<_, seal::SealError>((public, created, values))
    })();
    // The kernel talks to the TPM itself from here.
    drop(tpm);
    let (public, created, mut values) = prepared.map_err(|e| {
        CommandError::failed(e.to_string()).context(format_args!(
            "prepare the storage key {parent:#010x} with {tcti}"
        ))
    })?;
    if created {
        log::info!("created the storage key (ECC P-256 SRK) at {parent:#010x}");
    }
    if public.attributes & crate::tpm::public::ATTR_NO_DA == 0 {
        log::warn!(
            "the storage key at {parent:#010x} lacks noDA (attributes {:#010x}): while the TPM is in dictionary-attack lockout the kernel cannot load the kmk under it",
            public.attributes
        );
    }
    let mut payload = format!("new 32 keyhandle={parent:#010x}");
    if let (Some(p), Some(v)) = (&pcrs, values.as_mut()) {
        unlocked_values(s, p, v, !values_given);
        let digests: Vec<[u8; 32]> = v.iter().map(|(_, d)| *d).collect();
        let policy = seal::pcr_policy(p, &digests);
        payload.push_str(&format!(
            " hash=sha256 policydigest={}",
            crate::hex::encode(&policy)
        ));
    }
    let (blob, evm_blob) = kernel_made(session, &kmk_name, &payload, o.evm_key.is_some())
        .map_err(CommandError::nothing_written)?;

    let pcr_text = pcrs.as_ref().map(ToString::to_string);
    // The configuration --write-config writes, naming the blob at
    // `masterkey`; EVMKEY only while the evm-key waits beside its place
    // (the boot's EVMKEY stays /etc/sysconfig/evm's).
    let config = |masterkey: &str, evm_key: Option<&str>| {
        let kmk = config_update::TrustedKmk {
            masterkey: (!per_release).then_some(masterkey),
            pcrs: pcr_text.as_deref(),
        };
        let text = config_update::merge_trusted(existing_config.as_deref(), &kmk);
        let text = match (text, evm_key) {
            (Ok(t), Some(e)) if side_evm.as_deref() == Some(e) => {
                config_update::name_files(Some(t.as_bytes()), None, Some(e))
            }
            (text, _) => text,
        };
        text.map(String::into_bytes)
            .map_err(|e| format!("update {}: {e}", env.root.display_path(CONFIG_PATH)))
    };
    let mut files = vec![commit::File {
        path: output.clone(),
        side: side_blob.clone(),
        bytes: blob,
        mode: 0o600,
    }];
    if let (Some(path), Some(evm), Some(side)) = (&o.evm_key, evm_blob, &side_evm) {
        files.push(commit::File {
            path: path.clone(),
            side: side.clone(),
            bytes: evm,
            mode: 0o600,
        });
    }
    let commit = super::Commit {
        output: &output,
        evm: o.evm_key.as_deref(),
        write_config: o.write_config,
        existing: existing_config.as_deref(),
        // 97masterkey's per-release path is no MASTERKEY line to switch.
        fixed_blob: per_release.then(|| {
            format!("the blob {output} (MULTIKERNELMODE=YES: this release's, MASTERKEY unset)")
        }),
    };
    let order = super::commit_order(&env, commit, config)?;
    let switched = matches!(order, commit::Order::Switch { .. });
    let set = commit::Set {
        files,
        stale: Vec::new(),
        order,
        leftovers: commit::side_files(&output, o.evm_key.as_deref()),
    };
    let places = set.commit(&env.root, force).map_err(|e| {
        CommandError::failed(match e {
            commit::CommitError::Old(m) => m,
            // A trusted kmk cannot be sealed again, so no reseal finishes
            // this: the set beside loads as it is.
            commit::CommitError::Switched(m) => format!(
                "{m}: to put them in place, copy {} to {output}{}, then set MASTERKEY (and EVMKEY) back to the places in {CONFIG_PATH} and remove the side files",
                env.root.display_path(&side_blob),
                match (&o.evm_key, &side_evm) {
                    (Some(e), Some(side)) => format!(
                        " and {} to {e}",
                        env.root.display_path(side)
                    ),
                    _ => String::new(),
                }
            ),
        })
    })?;
    if switched {
        log::info!(
            "the new files went beside the old ones first, and the configuration switched to them in one rename, so a crash at any point left the old set or the new in force"
        );
    }
    let mut places = places.into_iter();
    if let Some(p) = places.next() {
        let bound = match &pcr_text {
            Some(p) => format!("bound to {p}"),
            None => "bound to no PCRs (give --pcrs to bind it)".to_string(),
        };
        log::info!(
            "the kernel made a trusted kmk {kmk_name} under {parent:#010x}, {bound}: {} ({} ms)",
            p.display(),
            start.elapsed().as_millis()
        );
    }
    if o.evm_key.is_some()
        && let Some(p) = places.next()
    {
        log::info!(
            "exported an evm-key sealed by trusted:{kmk_name}: {}; point EVMKEY in /etc/sysconfig/evm at it",
            p.display()
        );
    }
    if o.write_config {
        if let Some(p) = places.next() {
            log::info!("wrote {}", p.display());
        }
    } else {
        let bound = pcr_text
            .map(|p| format!(", TPM2_PCRS={p}"))
            .unwrap_or_default();
        log::info!(
            "point the boot at it: MASTERKEYTYPE=trusted, MASTERKEY={output}{bound} in {CONFIG_PATH} (or --write-config)"
        );
    }
    super::say_rebuild_initramfs();
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_pcrlock_is_recognised() {
        use sha2::{Digest, Sha256};
        let once: [u8; 32] = Sha256::digest([0u8; 64]).into();
        let mut twice_input = once.to_vec();
        twice_input.extend_from_slice(&[0u8; 32]);
        let twice: [u8; 32] = Sha256::digest(&twice_input).into();
        assert_eq!(kernel_locks_from_zero(&once), Some(1));
        assert_eq!(kernel_locks_from_zero(&twice), Some(2));
        assert_eq!(kernel_locks_from_zero(&[0x5a; 32]), None);
        assert_eq!(kernel_locks_from_zero(&[0; 32]), None);
    }

    #[test]
    fn a_pcr_the_kernel_locked_is_sealed_as_zero() {
        use sha2::{Digest, Sha256};
        let dir = std::env::temp_dir().join(format!("il-seal-trusted-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let s = crate::steps::default_settings(&crate::rootfs::Root::new(&dir));
        assert_eq!(s.trusted_pcrlock, Some(11));
        let pcrs = PcrSelection::parse("sha256:7,11").unwrap();
        let locked: [u8; 32] = Sha256::digest([0u8; 64]).into();
        let mut values = vec![(7, [7u8; 32]), (11, locked)];
        // Values given: taken as they are.
        unlocked_values(&s, &pcrs, &mut values, false);
        assert_eq!(values, vec![(7, [7u8; 32]), (11, locked)]);
        unlocked_values(&s, &pcrs, &mut values, true);
        assert_eq!(values, vec![(7, [7u8; 32]), (11, [0u8; 32])]);
        // A value the lock does not explain stays.
        let mut values = vec![(7, [7u8; 32]), (11, [0x5a; 32])];
        unlocked_values(&s, &pcrs, &mut values, true);
        assert_eq!(values[1], (11, [0x5a; 32]));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
