//! `integrity-loader sign-policy`: signs the PolicyPCR of given PCR values
//! (or the TPM's current ones) with the private key a kmk sealed by `seal
//! --authorized-by` trusts, and writes systemd's `.pcrsig` JSON. Offline
//! when every value is given; the private key is read into zeroized memory
//! and never logged.

use super::{CommandError, setup};
use crate::cli::{Options, SignPolicyOptions};
use crate::rootfs::Root;
use crate::tpm::pcr::PcrSelection;
use crate::tpm::pcrsig;
use crate::tpm::policy_authorize::{self, SigningKey};
use crate::tpm::{client::Tpm, commands, tcti, transport};

/// The values to approve: --pcr-value for each PCR of `pcrs`, else `None`.
fn given_values(
    given: &[(u8, [u8; 32])],
    pcrs: &PcrSelection,
) -> Result<Option<Vec<[u8; 32]>>, String> {
    if given.is_empty() {
        return Ok(None);
    }
    if let Some((n, _)) = given.iter().find(|(n, _)| !pcrs.indices().any(|p| p == *n)) {
        return Err(format!("--pcr-value names PCR {n}, outside {pcrs}"));
    }
    pcrs.indices()
        .map(|pcr| {
            given
                .iter()
                .rev()
                .find(|(n, _)| *n == pcr)
                .map(|(_, v)| *v)
                .ok_or_else(|| {
                    format!("--pcr-value given for some PCRs but not for PCR {pcr} of {pcrs}")
                })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// The TPM's current values of `pcrs`.
fn current_values(
    s: &crate::config::Settings,
    pcrs: &PcrSelection,
) -> Result<Vec<[u8; 32]>, String> {
    let tcti =
        tcti::parse(&s.tpm.tcti.value).map_err(|e| format!("{e} ({})", s.tpm.tcti.source))?;
    let transport = transport::open(&tcti, s.tpm.timeout).map_err(|e| e.to_string())?;
    let mut tpm = Tpm::new(transport);
    let values =
        commands::pcr_read(&mut tpm, pcrs).map_err(|e| format!("read {pcrs} from {tcti}: {e}"))?;
    Ok(values.into_iter().map(|(_, v)| v).collect())
}

pub fn run(options: &Options, o: &SignPolicyOptions) -> Result<(), CommandError> {
    let env = setup(options, None, false, false)?;
    let (key_path, output) = (&o.key, o.output.as_path());
    let pcrs = match &o.pcrs {
        Some(p) => p.clone(),
        None => PcrSelection::parse(&env.settings.tpm.pcrs.value)
            .map_err(|e| CommandError::usage(e.to_string()))?,
    };
    let given = given_values(&o.pcr_values, &pcrs).map_err(CommandError::usage)?;
    let mut entries = Vec::new();
    match std::fs::read(output) {
        Ok(_) if !o.append => {
            return Err(CommandError::usage(format!(
                "{} exists: --append adds this signature to it (keeping the others valid), or remove it",
                output.display()
            )));
        }
        Ok(bytes) => {
            entries = pcrsig::parse(&bytes)
                .map_err(|e| CommandError::usage(format!("{}: {e}", output.display())))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(CommandError::usage(format!(
                "read {}: {e}",
                output.display()
            )));
        }
    }
    let key = Root::new("/")
        .read_secret(&key_path.to_string_lossy(), 16 * 1024)
        .map_err(|e| CommandError::usage(format!("read the signing key {e}")))?;
    let key = SigningKey::from_pem(key.expose())
        .map_err(|m| CommandError::usage(format!("signing key {}: {m}", key_path.display())))?;
    let values = match given {
        Some(v) => v,
        None => current_values(&env.settings, &pcrs).map_err(|m| {
            CommandError::failed(format!(
                "{m}; give every value with --pcr-value to sign offline"
            ))
        })?,
    };
    let entry = policy_authorize::sign(&key, &pcrs, &values)
        .map_err(|m| CommandError::failed(m).context(format_args!("sign the policy of {pcrs}")))?;
    drop(key);
    let before = entries.len();
    entries.retain(|e| !(e.pcrs == entry.pcrs && e.pol == entry.pol && e.pkfp == entry.pkfp));
    let kept = entries.len();
    let pol = crate::hex::encode(&entry.pol);
    let pkfp = entry
        .pkfp
        .map(|f| crate::hex::encode(&f))
        .unwrap_or_default();
    entries.push(entry);
    // As seal and reseal write theirs: their cleanup knows its temp files.
    super::seal::output::replace_file(output, pcrsig::encode(&entries).as_bytes(), 0o644)
        .map_err(|m| CommandError::failed(format!("write {}: {m}", output.display())))?;
    let shown: Vec<String> = pcrs
        .indices()
        .zip(&values)
        .map(|(p, v)| format!("{p}={}", crate::hex::encode(v)))
        .collect();
    log::info!(
        "signed the policy of {pcrs} with {} (PolicyPCR digest {pol}) with the key of fingerprint {pkfp}: {} ({} signature(s){})",
        shown.join(", "),
        output.display(),
        entries.len(),
        if kept < before {
            ", the same one replaced"
        } else {
            ""
        }
    );
    Ok(())
}
