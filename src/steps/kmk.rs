//! Step 1: the kernel master key (kmk), from a `user` key file (exact bytes)
//! or a `trusted` blob the kernel unseals with the TPM.

use super::{Context, Facts, Outcome, keyring_errno_words, search_failed};
use crate::config::MasterKeyType;
use crate::keyring;
use crate::plan::StepId;
use crate::secret::Secret;
use nix::errno::Errno;

/// The kernel's limit on a `user` key payload.
const USER_PAYLOAD_MAX: usize = 32767;
/// A trusted blob is at most 512 bytes, so 1024 hex digits (trusted-type.h).
const TRUSTED_HEX_MAX: usize = 1024;

pub fn run(ctx: &Context, facts: &mut Facts) -> Outcome {
    let s = ctx.settings;
    let path = &s.masterkey.value;
    let shown = ctx.root.display_path(path);
    let key_type = s.masterkey_type.value.kernel_type();
    let name = &s.kmk_name;
    if let Err(outcome) = super::require_input(ctx, StepId::Kmk, path, "master key file") {
        return outcome;
    }
    if let Some(pin) = &s.tpm.parent_name
        && s.masterkey_type.value != MasterKeyType::Tpm2
    {
        log::warn!(
            "TPM2_PARENT_NAME ({}) has no effect with MASTERKEYTYPE={}: only a tpm2 kmk is unsealed by the loader",
            pin.source,
            s.masterkey_type.value.name()
        );
    }
    if s.masterkey_type.value == MasterKeyType::Tpm2
        && let Some(w) =
            crate::pcr_choice::unlocked_warning(&s.tpm.pcrs.value, s.tpm.pcr_lock, s.stub_pcr)
    {
        log::warn!("{w}");
    }
    let mut recovered = false;
    let payload = match s.masterkey_type.value {
        MasterKeyType::User => match user_payload(ctx, path) {
            Ok(p) => p,
            Err(message) => return Outcome::failed(message),
        },
        MasterKeyType::Trusted => {
            if let Some(outcome) = trusted_locked_earlier(ctx, facts) {
                return outcome;
            }
            match trusted_payload(ctx, path) {
                Ok(p) => p,
                Err(message) => return Outcome::failed(message),
            }
        }
        MasterKeyType::Tpm2 => {
            if let Some(outcome) = super::kmk_tpm2::unsealed_earlier(ctx, facts) {
                return outcome;
            }
            match super::kmk_tpm2::payload(ctx, path) {
                Ok(Some(p)) => p,
                Ok(None) => {
                    let pin = match &s.tpm.parent_name {
                        Some(p) => format!("pinned by TPM2_PARENT_NAME ({})", p.source),
                        None => "not pinned (no TPM2_PARENT_NAME)".to_string(),
                    };
                    let lock = match s.tpm.pcr_lock {
                        Some(pcr) => format!(", then lock PCR {pcr}"),
                        None => String::new(),
                    };
                    return Outcome::done(format!(
                        "would unseal user key {name} from {} with {} ({}), storage key {pin}{lock}",
                        shown, s.tpm.tcti.value, s.tpm.pcrs.value
                    ));
                }
                Err(message) => {
                    // Another run of this boot may have unsealed and locked
                    // meanwhile (two loads at once).
                    if let Some(outcome) = super::kmk_tpm2::unsealed_earlier(ctx, facts) {
                        return outcome;
                    }
                    match crate::recovery::at_boot(ctx, path, &message) {
                        None => return Outcome::failed(message),
                        Some(Err(m)) => return Outcome::failed(m),
                        Some(Ok(kmk)) => {
                            recovered = true;
                            kmk
                        }
                    }
                }
            }
        }
    };

    // A key of this name already there: adding would update it in place.
    match keyring::search(ctx.keyring, key_type, name) {
        Ok(Some(id)) => {
            facts.kmk = Some(id);
            return if same_key(s.masterkey_type.value, id, &payload) {
                Outcome::already(format!(
                    "{key_type} key {name} is already loaded (id {id}) with the same content"
                ))
            } else {
                facts.kmk = None;
                Outcome::failed(format!(
                    "a different {key_type} key {name} is already in keyring {} (id {id}); not replacing it. Remove it with `keyctl unlink {id} {}` if it is stale",
                    ctx.keyring_spec, ctx.keyring_spec
                ))
            };
        }
        Ok(None) => {}
        Err(e) => {
            return search_failed(ctx, e);
        }
    }

    let what = match s.masterkey_type.value {
        MasterKeyType::User => format!("user key {name} ({} bytes)", payload.len()),
        MasterKeyType::Tpm2 if recovered && s.tpm.auto_reseal => format!(
            "user key {name} ({} bytes, opened with the recovery key, as the TPM did not unseal it; AUTO_RESEAL seals it again once the evm-key opens with it)",
            payload.len()
        ),
        MasterKeyType::Tpm2 if recovered => format!(
            "user key {name} ({} bytes, opened with the recovery key, as the TPM did not unseal it: run `integrity-loader reseal` so the next boot needs no key)",
            payload.len()
        ),
        MasterKeyType::Tpm2 => format!(
            "user key {name} ({} bytes, unsealed by the TPM)",
            payload.len()
        ),
        MasterKeyType::Trusted if super::kmk_trusted::pcr_bound(s) => {
            format!(
                "trusted key {name} (PCR-bound, TPM2_PCRS={})",
                s.tpm.pcrs.value
            )
        }
        MasterKeyType::Trusted => format!("trusted key {name}"),
    };
    let pcr_bound = super::kmk_trusted::pcr_bound(s);
    if ctx.dry_run {
        let session = if pcr_bound {
            match super::kmk_trusted::plan(s) {
                Ok(p) => format!(" {p}"),
                Err(message) => return Outcome::failed(message),
            }
        } else {
            String::new()
        };
        return Outcome::done(format!("would load {what} from {}{session}", shown));
    }
    // Recorded before the load: the kernel extends the PCR as it loads, and
    // a later run of this boot must find the record if it finds the PCR
    // extended.
    let pcrlock = ctx
        .settings
        .trusted_pcrlock
        .filter(|_| s.masterkey_type.value == MasterKeyType::Trusted);
    if let Some(pcr) = pcrlock {
        record_trusted_pcrlock(ctx, pcr);
    }
    let added = if pcr_bound {
        super::kmk_trusted::add(ctx, name, &payload)
    } else {
        keyring::add_key(key_type, Some(name), payload.expose(), ctx.keyring)
            .map_err(|e| add_error_words(s.masterkey_type.value, e))
    };
    match added {
        Ok(id) => {
            facts.kmk = Some(id);
            facts.kmk_added = true;
            facts.kmk_recovered = recovered;
            Outcome::done(format!(
                "loaded {what} from {} into {} (id {id})",
                shown, ctx.keyring_spec
            ))
        }
        Err(e) => {
            if pcrlock.is_some() {
                let _ = std::fs::remove_file(ctx.run_dir.join(TRUSTED_PCRLOCK_RECORD));
            }
            Outcome::failed(format!("load {what} from {}: {e}", shown))
        }
    }
}

/// In the run directory: a trusted kmk was loaded this boot with
/// `pcrlock=` (the PCR number and the kmk's name).
pub const TRUSTED_PCRLOCK_RECORD: &str = "trusted-pcrlock";

fn record_trusted_pcrlock(ctx: &Context, pcr: u32) {
    let path = ctx.run_dir.join(TRUSTED_PCRLOCK_RECORD);
    let written = std::fs::create_dir_all(ctx.run_dir).and_then(|()| {
        std::fs::write(
            &path,
            format!("pcrlock={pcr} kmk={}\n", ctx.settings.kmk_name),
        )
    });
    if let Err(e) = written {
        log::warn!(
            "cannot record the trusted kmk's pcrlock in {}: {e}; a second load in this boot cannot say why it fails",
            path.display()
        );
    }
}

/// A trusted kmk loaded with `pcrlock=` earlier this boot and gone since
/// (DROP_KMK, or unlinked): loading the blob again would extend the PCR a
/// second time, and a blob sealed to that PCR no longer unseals. Fails,
/// saying so, rather than trying. With the kmk still there the usual
/// check (same blob: already loaded) applies.
fn trusted_locked_earlier(ctx: &Context, facts: &mut Facts) -> Option<Outcome> {
    let pcr = ctx.settings.trusted_pcrlock?;
    if ctx.dry_run {
        return None;
    }
    let record = ctx.run_dir.join(TRUSTED_PCRLOCK_RECORD);
    let text = std::fs::read_to_string(&record).ok()?;
    let name = &ctx.settings.kmk_name;
    if let Ok(Some(id)) = keyring::search(ctx.keyring, "trusted", name) {
        facts.kmk = Some(id);
        return None;
    }
    let earlier = text
        .split_ascii_whitespace()
        .find_map(|w| w.strip_prefix("pcrlock="))
        .unwrap_or("?")
        .to_string();
    Some(Outcome::failed(format!(
        "the trusted kmk was loaded earlier in this boot with pcrlock={earlier} ({}), so PCR {earlier} is extended since, and it is not in keyring {} now (DROP_KMK, or unlinked); not loading it again: a blob sealed to PCR {pcr} no longer unseals, and one that is not would extend PCR {pcr} once more. Reboot to load it",
        record.display(),
        ctx.keyring_spec
    )))
}

/// The file's exact bytes: dracut's `read -r` would cut a binary key at its
/// first newline or NUL byte; we do not.
fn user_payload(ctx: &Context, path: &str) -> Result<Secret, String> {
    let shown = ctx.root.display_path(path);
    let key = ctx
        .root
        .read_secret(path, USER_PAYLOAD_MAX)
        .map_err(|e| format!("read master key {e}"))?;
    if key.is_empty() {
        return Err(format!("master key file {} is empty", shown));
    }
    Ok(key)
}

/// `load <hex> [pcrlock=N]`, as dracut's 97masterkey builds it.
fn trusted_payload(ctx: &Context, path: &str) -> Result<Secret, String> {
    let shown = ctx.root.display_path(path);
    let bytes = ctx
        .root
        .read(path, 64 * 1024)
        .map_err(|e| format!("read trusted key blob {e}"))?;
    crate::pins::check_blob(ctx.settings, &shown, &bytes)?;
    let first_line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let hex = first_line.trim_ascii();
    if hex.is_empty() {
        return Err(format!("trusted key blob {} is empty", shown));
    }
    if let Some(pos) = hex.iter().position(|b| !b.is_ascii_hexdigit()) {
        return Err(format!(
            "trusted key blob {} is not hex (offset {pos}); export it with `keyctl pipe <id>`",
            shown
        ));
    }
    if hex.len() % 2 != 0 || hex.len() > TRUSTED_HEX_MAX {
        return Err(format!(
            "trusted key blob {} has {} hex digits; a blob is an even number of at most {TRUSTED_HEX_MAX}",
            shown,
            hex.len()
        ));
    }
    Ok(Secret::new(trusted_load_payload(
        hex,
        ctx.settings
            .tpm
            .parent_configured
            .then_some(ctx.settings.tpm.parent),
        ctx.settings.trusted_pcrlock,
    )))
}

/// `load <hex> [keyhandle=0x...] [pcrlock=N]`: dracut's payload, with the
/// parent named when TPM2_PARENT is set (old-format TPM 2.0 blobs need it;
/// ASN.1 blobs carry their own, which the kernel prefers).
pub fn trusted_load_payload(hex: &[u8], keyhandle: Option<u32>, pcrlock: Option<u32>) -> Vec<u8> {
    let mut payload = b"load ".to_vec();
    payload.extend_from_slice(hex);
    if let Some(handle) = keyhandle {
        payload.extend_from_slice(format!(" keyhandle={handle:#x}").as_bytes());
    }
    if let Some(pcr) = pcrlock {
        payload.extend_from_slice(format!(" pcrlock={pcr}").as_bytes());
    }
    payload
}

fn same_key(kind: MasterKeyType, id: keyring::KeySerial, payload: &Secret) -> bool {
    match kind {
        MasterKeyType::User | MasterKeyType::Tpm2 => {
            keyring::read_secret(id).is_ok_and(|k| payload.constant_time_eq(k.expose()))
        }
        // A trusted key reads back as its sealed blob (hex).
        MasterKeyType::Trusted => keyring::read(id).is_ok_and(|blob| {
            let hex = payload.expose().get(5..).unwrap_or_default();
            let hex = hex.split(|b| *b == b' ').next().unwrap_or_default();
            blob.trim_ascii().eq_ignore_ascii_case(hex)
        }),
    }
}

pub fn add_error_words(kind: MasterKeyType, e: Errno) -> String {
    match (kind, e) {
        (MasterKeyType::Trusted, Errno::ENODEV) => "this kernel has no trusted keys (CONFIG_TRUSTED_KEYS is off, or no TPM was found before it initialised); unseal in userspace with MASTERKEYTYPE=tpm2 in /etc/integrity-loader.conf".into(),
        (MasterKeyType::Trusted, Errno::EINVAL | Errno::EPERM) => "the kernel could not unseal the blob: the TPM refused it (PCR values differ from sealing time, another TPM, or a damaged blob) (EINVAL/EPERM)".into(),
        (MasterKeyType::User | MasterKeyType::Tpm2, Errno::EINVAL) => "the kernel refused the payload size (1..32767 bytes) (EINVAL)".into(),
        (_, e) => keyring_errno_words(e),
    }
}

#[cfg(test)]
mod tests {
    use super::trusted_load_payload;

    #[test]
    fn trusted_payloads() {
        assert_eq!(
            trusted_load_payload(b"00ab", None, Some(11)),
            b"load 00ab pcrlock=11"
        );
        assert_eq!(
            trusted_load_payload(b"00ab", Some(0x8100_0001), Some(11)),
            b"load 00ab keyhandle=0x81000001 pcrlock=11"
        );
        assert_eq!(trusted_load_payload(b"00ab", None, None), b"load 00ab");
    }
}
