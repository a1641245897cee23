//! The kmk of MASTERKEYTYPE=tpm2: a TPM 2.0 sealed-data object (a TSS2
//! key file, or tpm2-tools' .pub/.priv pair) unsealed here, in userspace,
//! over a salted and encrypted session; the secret becomes a `user` key.

use super::{Context, Facts, Outcome};
use crate::keyring;
use crate::secret::Secret;
use crate::tpm::client::{self, StepBound, TpmError};
use crate::tpm::constants::CommandCode;
use crate::tpm::keyfile::{self, SealedBlob};
use crate::tpm::pcr::PcrSelection;
use crate::tpm::policy_authorize::{self, AuthorizedError, PolicyKey};
use crate::tpm::transport::TransportError;
use crate::tpm::{measure_log, pcr_lock, pcrsig, tcti, unseal};
use std::time::Instant;

/// TPM key files are a few KiB at most.
const BLOB_LIMIT: usize = 64 * 1024;

/// Reads and checks the sealed blob: a `.pub` path means the tpm2-tools
/// pair (`X.pub` + `X.priv`), anything else a TSS2 key file.
pub fn read_blob(ctx: &Context, path: &str) -> Result<SealedBlob, String> {
    let shown = ctx.root.display_path(path);
    if let Some(stem) = path.strip_suffix(".pub") {
        let private_path = format!("{stem}.priv");
        let public = ctx
            .root
            .read(path, BLOB_LIMIT)
            .map_err(|e| format!("read sealed kmk {e}"))?;
        crate::pins::check_blob(ctx.settings, &shown, &public)?;
        let private = ctx
            .root
            .read(&private_path, BLOB_LIMIT)
            .map_err(|e| format!("read sealed kmk {e}"))?;
        let mut blob = keyfile::parse_tpm2_tools(&public, &private)
            .map_err(|e| format!("sealed kmk {}: {e}", shown))?;
        blob.parent = ctx.settings.tpm.parent;
        Ok(blob)
    } else {
        let bytes = ctx
            .root
            .read(path, BLOB_LIMIT)
            .map_err(|e| format!("read sealed kmk {e}"))?;
        crate::pins::check_blob(ctx.settings, &shown, &bytes)?;
        keyfile::parse_tss2(&bytes).map_err(|e| format!("sealed kmk {}: {e}", shown))
    }
}

/// The PCRs to use: TPM2_PCRS, which must agree with a PolicyPCR the blob
/// itself records.
pub fn pcr_selection(ctx: &Context, blob: &SealedBlob) -> Result<PcrSelection, String> {
    let configured =
        PcrSelection::parse(&ctx.settings.tpm.pcrs.value).map_err(|e| e.to_string())?;
    for cmd in blob
        .policy
        .iter()
        .filter(|c| c.command_code == CommandCode::PolicyPcr.code())
    {
        // commandPolicy: pcrDigest TPM2B, then TPML_PCR_SELECTION.
        let sel = cmd
            .command_policy
            .split_first_chunk::<2>()
            .and_then(|(size, rest)| rest.get(usize::from(u16::from_be_bytes(*size))..))
            .and_then(PcrSelection::unmarshal)
            .map(|(s, _)| s);
        match sel {
            Some(s) if s == configured => {}
            Some(s) => {
                return Err(format!(
                    "the sealed kmk's own policy binds {s}, but TPM2_PCRS is {configured} ({}); make them agree",
                    ctx.settings.tpm.pcrs.source
                ));
            }
            None => return Err("the sealed kmk's PolicyPCR entry cannot be read".to_string()),
        }
    }
    Ok(configured)
}

/// The public key beside the blob (`seal --authorized-by`) and the signed
/// policies beside it, when the blob is sealed to that key's policies.
pub fn signed_policy(
    ctx: &Context,
    path: &str,
    blob: &SealedBlob,
) -> Result<Option<(PolicyKey, Vec<pcrsig::Entry>)>, String> {
    let key_path = format!("{path}{}", policy_authorize::PCRPKEY_SUFFIX);
    if !ctx.root.exists(&key_path) {
        return Ok(None);
    }
    let key_shown = ctx.root.display_path(&key_path);
    let pem = ctx
        .root
        .read(&key_path, BLOB_LIMIT)
        .map_err(|e| format!("read the PCR policy key {e}"))?;
    let key =
        PolicyKey::from_pem(&pem).map_err(|m| format!("PCR policy key {}: {m}", key_shown))?;
    if !policy_authorize::seals_to(blob, &key) {
        // Left from an earlier seal: the TPM decides by the blob's policy.
        log::warn!(
            "{} is not the key the sealed kmk's policy names; ignored (remove it)",
            key_shown
        );
        return Ok(None);
    }
    let sig_path = format!("{path}{}", policy_authorize::PCRSIG_SUFFIX);
    let sig_shown = ctx.root.display_path(&sig_path);
    let bytes = ctx.root.read(&sig_path, BLOB_LIMIT).map_err(|e| {
        format!(
            "the kmk is sealed to PCR policies signed by the key in {}, but there is no signed policy to unseal it with: read {e}; write one with `integrity-loader sign-policy --key PRIVATE.pem --output {}`",
            key_shown,
            sig_shown
        )
    })?;
    let entries = pcrsig::parse(&bytes).map_err(|e| format!("{}: {e}", sig_shown))?;
    Ok(Some((key, entries)))
}

/// Unseals the kmk. In `check`, stops after reading the blob and the settings.
pub fn payload(ctx: &Context, path: &str) -> Result<Option<Secret>, String> {
    let read = Instant::now();
    let blob = read_blob(ctx, path)?;
    let read = read.elapsed();
    let pcrs = pcr_selection(ctx, &blob)?;
    let signed = signed_policy(ctx, path, &blob)?;
    let tcti_text = &ctx.settings.tpm.tcti.value;
    let tcti =
        tcti::parse(tcti_text).map_err(|e| format!("{} ({})", e, ctx.settings.tpm.tcti.source))?;
    if ctx.dry_run {
        return Ok(None);
    }
    let start = Instant::now();
    // One bound on all of it, connecting and retries included, besides
    // TPM_TIMEOUT on each command: a TPM that answers each command late or
    // keeps asking to retry cannot hold the boot for long.
    let step = StepBound::starting_now(ctx.settings.tpm.step_timeout);
    let mut tpm =
        client::open_bounded(&tcti, ctx.settings.tpm.timeout, step).map_err(|e| match e {
            TpmError::Transport(TransportError::NotTpm { .. }) => {
                format!("{e} ({})", ctx.settings.tpm.tcti.source)
            }
            e => e.to_string(),
        })?;
    let pin = ctx.settings.tpm.parent_name.as_ref();
    let parent = unseal::Parent {
        handle: blob.parent,
        pinned_name: pin.map(|p| &p.value),
        public: ctx.settings.tpm.parent_public.as_deref(),
    };
    let result = match &signed {
        Some((key, entries)) => {
            policy_authorize::unseal(&mut tpm, &blob, parent, &pcrs, key, entries)
        }
        None => unseal::unseal(&mut tpm, &blob, parent, &pcrs).map_err(AuthorizedError::Unseal),
    };
    let shown = ctx.root.display_path(path);
    let secret = result.map_err(|e| {
        let e = match e {
            AuthorizedError::Unseal(e) => e,
            other => {
                return format!(
                    "unseal the kmk from {} under {:#010x} with {tcti}: {other}",
                    shown, blob.parent
                );
            }
        };
        if let Some(m) = locked_this_boot(ctx, &e) {
            return format!(
                "unseal the kmk from {} under {:#010x} with {tcti}: {m}",
                shown, blob.parent
            );
        }
        let pin_source = match (&e, pin) {
            (unseal::UnsealError::ParentNotPinned(_), Some(p))
                if blob.parent != ctx.settings.tpm.parent =>
            {
                format!(
                    " ({}; the key file names parent {:#010x}, TPM2_PARENT is {:#010x})",
                    p.source, blob.parent, ctx.settings.tpm.parent
                )
            }
            (unseal::UnsealError::ParentNotPinned(_), Some(p)) => format!(" ({})", p.source),
            _ => String::new(),
        };
        format!(
            "unseal the kmk from {} under {:#010x} with {tcti}: {e}{pin_source}",
            shown, blob.parent
        )
    })?;
    if let Some(p) = pin
        && !ctx.dry_run
        && let Err(e) = crate::pins::record_checked(ctx.run_dir, &p.value)
    {
        log::warn!(
            "cannot record the storage key Name this boot checked in {}: {e}; the next host-only build cannot compare the root's pin with it",
            ctx.run_dir.display()
        );
    }
    if let Some(pcr) = ctx.settings.tpm.pcr_lock {
        // Without the lock a later process of this boot could unseal the
        // kmk again: the kmk is not loaded then (`secret` is zeroized).
        // Recorded before the extend: a run of this boot that finds the PCR
        // locked finds the record too.
        let record = ctx.run_dir.join(pcr_lock::RECORD_FILE);
        // The values TPM2_PCR_VALUES gives, when they make the sealed
        // object's policy: the unseal just proved the PCRs hold them.
        let known = ctx.settings.tpm.pcr_values.as_ref().and_then(|given| {
            let policy = crate::tpm::public::Public::parse(blob.public_area()).ok()?;
            pcr_lock::sealed_values(given, &pcrs, &policy.auth_policy)
        });
        if known.is_none() && ctx.settings.tpm.pcr_values.is_some() {
            log::warn!(
                "TPM2_PCR_VALUES are not the values the kmk is sealed to; reading the PCRs instead (one more command): seal again with --write-config, or remove TPM2_PCR_VALUES"
            );
        }
        // systemd's measure log is locked before the extend, as systemd
        // does, so that its records stay in the PCR's order.
        let log_path = measure_log::path();
        let locked = known
            .map_or_else(|| pcr_lock::values(&mut tpm, &pcrs), Ok)
            .map(|values| record_values(ctx, &values))
            .and_then(|()| {
                let log = measure_log::open(&log_path);
                pcr_lock::lock(&mut tpm, pcr).map(|()| log)
            });
        let log = match locked {
            Ok(log) => log,
            Err(e) => {
                let _ = std::fs::remove_file(&record);
                return Err(format!(
                    "unsealed the kmk from {}, but could not lock PCR {pcr} ({e}); not loading it, as any later process of this boot could unseal it again (TPM2_PCRLOCK=no loads it without the lock)",
                    shown
                ));
            }
        };
        log::info!(target: crate::logging::DETAIL,
            "locked PCR {pcr} (extended with SHA-256 of \"{}\"): the kmk cannot be unsealed again until the next boot",
            pcr_lock::LOCK_EVENT_TEXT
        );
        match log.and_then(|l| l.append(pcr, &pcr_lock::lock_digest(), pcr_lock::LOCK_EVENT_TEXT)) {
            Ok(()) => log::info!(target: crate::logging::DETAIL,
                "recorded the extend of PCR {pcr} in systemd's measure log {}",
                log_path.display()
            ),
            Err(e) => log::warn!(
                "the extend of PCR {pcr} is not in systemd's measure log: {e}; systemd-pcrlock and verifiers cannot replay PCR {pcr} this boot"
            ),
        }
    }
    let (st, ms) = (tpm.stats, crate::logging::Ms);
    let total = start.elapsed();
    log::debug!(
        "TPM: {} commands in {} ms: {} ms waiting for the TPM, {} ms for the session salt (ECDH or RSA), {} ms for nonces, KDF, HMAC and parameter encryption, {} ms else (connecting, the record); {} ms reading and parsing the key file before",
        st.commands,
        ms(total),
        ms(st.time),
        ms(st.salt),
        ms(st.host),
        ms(total.saturating_sub(st.time + st.salt + st.host)),
        ms(read)
    );
    Ok(Some(secret))
}

/// Why the policy failed when the lock PCR holds the lock applied to zero:
/// this boot unsealed the kmk and locked the PCR already (its record gone),
/// or its extend went through but the answer was lost. Not a PCR change a
/// reseal answers: a reboot is the cure.
fn locked_this_boot(ctx: &Context, e: &unseal::UnsealError) -> Option<String> {
    let pcr = ctx.settings.tpm.pcr_lock?;
    let unseal::UnsealError::PcrMismatch { pcrs, values } = e else {
        return None;
    };
    let (_, value) = values.iter().find(|(p, _)| *p == pcr)?;
    let times = pcr_lock::times_locked(value, &[0u8; 32])?;
    Some(format!(
        "PCR policy check failed: PCR {pcr} of {pcrs} holds the PCR lock applied {times} time(s) to zero, so the kmk was already unsealed and PCR {pcr} locked in this boot (a run whose record {} is gone, or whose answer to the lock's extend was lost); reboot to unseal it again (`seal` in this boot seals to the value before the lock)",
        ctx.run_dir.join(pcr_lock::RECORD_FILE).display()
    ))
}

/// The PCR values the unseal saw, for `seal` later in this boot. Failing
/// to write them costs only that convenience.
pub(crate) fn record_values(ctx: &Context, values: &[(u8, [u8; 32])]) {
    let path = ctx.run_dir.join(pcr_lock::RECORD_FILE);
    let written = std::fs::create_dir_all(ctx.run_dir)
        .and_then(|()| std::fs::write(&path, pcr_lock::record_text(values)));
    if let Err(e) = written {
        log::warn!(
            "cannot record the PCR values of the unseal in {}: {e}; `seal` later in this boot needs --pcr-value",
            path.display()
        );
    }
}

/// With a PCR lock, the kmk can be unsealed once a boot: a second `load`
/// finds the record of the first and does not try again. (For the tpm2
/// kmk only: kmk.rs calls it there.)
pub fn unsealed_earlier(ctx: &Context, facts: &mut Facts) -> Option<Outcome> {
    let s = ctx.settings;
    let pcr = s.tpm.pcr_lock?;
    if ctx.dry_run {
        return None;
    }
    let record = ctx.run_dir.join(pcr_lock::RECORD_FILE);
    if !record.exists() {
        return None;
    }
    let name = &s.kmk_name;
    let earlier = format!(
        "unsealed earlier this boot and PCR {pcr} locked since ({})",
        record.display()
    );
    Some(match keyring::search(ctx.keyring, "user", name) {
        Ok(Some(id)) => {
            facts.kmk = Some(id);
            Outcome::already(format!(
                "user key {name} is already loaded (id {id}): {earlier}"
            ))
        }
        _ => Outcome::already(format!(
            "the kmk was {earlier}; not unsealing it again, and it is not in keyring {} (dropped after that run)",
            ctx.keyring_spec
        )),
    })
}
