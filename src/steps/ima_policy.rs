//! Step 5: the IMA policy. Every rule is checked before anything is written;
//! the policy goes to the kernel by path when it is signed, else one rule per
//! write (the kernel parses one line per write and drops the whole update
//! if any rule is bad, see kernel-interfaces pitfalls 3 and 4).

use super::{Context, Facts, Outcome};
use crate::config::PolicyWrite;
use crate::ima_policy as grammar;
use crate::plan::StepId;
use nix::errno::Errno;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A policy of 100,000 rules fits; beyond, it is not a policy.
const POLICY_LIMIT: usize = 8 * 1024 * 1024;
/// IMA signature types in security.ima (EVM_IMA_XATTR_DIGSIG, IMA_VERITY_DIGSIG).
const IMA_XATTR_DIGSIG: u8 = 0x03;
const IMA_VERITY_DIGSIG: u8 = 0x06;

pub fn run(ctx: &Context, facts: &mut Facts) -> Outcome {
    let has_ima = ctx.securityfs.has_ima();
    if !has_ima && !ctx.dry_run {
        return Outcome::not_configured(format!(
            "the kernel has no IMA ({} is missing)",
            ctx.securityfs.dir().join("ima").display()
        ));
    }
    let path = &ctx.settings.ima_policy.value;
    let shown = ctx.root.display_path(path);
    if let Err(outcome) = super::require_input(ctx, StepId::ImaPolicy, path, "IMA policy") {
        return outcome;
    }
    let real = match ctx.root.resolve(path) {
        Ok(r) => r,
        Err(e) => return Outcome::failed(format!("IMA policy {e}")),
    };
    let text = match ctx.root.read(path, POLICY_LIMIT) {
        Ok(t) => t,
        Err(e) => return Outcome::failed(format!("read IMA policy {e}")),
    };
    let policy = match grammar::parse(&text) {
        Ok(p) => p,
        Err(e) => {
            return Outcome::failed(format!(
                "{}:{}:{}: {}; no rule was written",
                shown.display(),
                e.line,
                e.column,
                e.reason
            ));
        }
    };
    let rules = policy.rules().len();

    if policy.appraise_rule_count() > 0 {
        // Appraisal trusts file metadata that EVM protects: with EVM left
        // off by a failure the machine would run half-configured.
        let evm_missing = [StepId::EvmKey, StepId::EvmCerts]
            .into_iter()
            .find_map(|s| ctx.did_not_deliver(s).map(|why| (s, why)));
        if let Some((step, why)) = evm_missing {
            return Outcome::skipped(format!(
                "{} has appraise rules but step {step} {why}, so EVM stays off; not writing it half-configured (fix {step} and reboot)",
                shown.display()
            ));
        }
    }
    if policy.requires_signatures() {
        if let Some(why) = ctx.did_not_deliver(StepId::ImaCerts) {
            return Outcome::skipped(format!(
                "{} has appraise rules that need signatures and step ima-certs {why}; not writing it, it could make signed files unreadable",
                shown.display()
            ));
        }
        if facts.ima_certs == 0 {
            return Outcome::failed(format!(
                "{} has appraise rules that need signatures, but no IMA key is loaded: writing it would make every signed file unreadable and the machine unbootable. Not writing it; put the signing certificate in {}",
                shown.display(),
                ctx.settings.ima_keys_dir.value
            ));
        }
    }

    let signed = has_ima_signature(&real);
    let by_path = match ctx.settings.policy_write {
        PolicyWrite::Path => true,
        PolicyWrite::Rules => false,
        PolicyWrite::Auto => signed,
    };
    let how = if by_path {
        format!("by path{}", if signed { " (signed)" } else { "" })
    } else {
        format!("as {rules} rules")
    };
    let units: Vec<Vec<u8>> = if by_path {
        vec![real.as_os_str().as_bytes().to_vec()]
    } else {
        policy.write_units().collect()
    };

    // A policy file that is gone or reads back what we would write means a
    // policy was already loaded this boot.
    if has_ima && !ctx.securityfs.policy_path().exists() {
        return Outcome::already(format!(
            "{} is gone: the kernel takes one policy per boot and already has one",
            ctx.securityfs.policy_path().display()
        ));
    }
    if let Some(current) = ctx.securityfs.read_policy(POLICY_LIMIT as u64)
        && !current.is_empty()
        && current == units.concat()
    {
        return Outcome::already(format!(
            "the IMA policy from {} is already loaded",
            shown.display()
        ));
    }

    if ctx.dry_run {
        return Outcome::done(format!("would write IMA policy {} {how}", shown.display()));
    }
    let mut writer = match ctx.securityfs.open_policy() {
        Ok(w) => w,
        Err(Errno::EACCES | Errno::ENOENT) => {
            return Outcome::already(format!(
                "{} is not writable: the kernel already has a custom policy this boot",
                ctx.securityfs.policy_path().display()
            ));
        }
        Err(Errno::EBUSY) => {
            return Outcome::failed(format!(
                "{} is open by another process (EBUSY); is another loader running?",
                ctx.securityfs.policy_path().display()
            ));
        }
        Err(e) => {
            return Outcome::failed(format!(
                "open {}: {}",
                ctx.securityfs.policy_path().display(),
                e.desc()
            ));
        }
    };
    if by_path {
        if let Err(e) = units.first().map_or(Ok(()), |u| writer.write_unit(u)) {
            return Outcome::failed(format!(
                "the kernel refused IMA policy {} written by path: {}",
                shown.display(),
                match e {
                    Errno::EACCES =>
                        "its signature does not verify against the IMA keyring (EACCES)".to_string(),
                    Errno::EINVAL => "the kernel rejected a rule in it (EINVAL)".to_string(),
                    e => format!("{} ({e})", e.desc()),
                }
            ));
        }
    } else {
        for (rule, unit) in policy.rules().iter().zip(&units) {
            if let Err(e) = writer.write_unit(unit) {
                let why = match e {
                    Errno::EACCES => "the kernel requires a signed policy (secure boot or ima_policy=secure_boot); sign it with `evmctl ima_sign` and it will be written by path".to_string(),
                    Errno::EINVAL => "the kernel rejected this rule (EINVAL); it drops the whole update, so no rule of this policy is active".to_string(),
                    e => format!("{} ({e}); no rule of this policy is active", e.desc()),
                };
                return Outcome::failed(format!("{}:{}: {why}", shown.display(), rule.line));
            }
        }
    }
    if let Err(e) = writer.finish() {
        return Outcome::failed(format!(
            "close {}: {}",
            ctx.securityfs.policy_path().display(),
            e.desc()
        ));
    }
    Outcome::done(format!(
        "wrote IMA policy {} {how}; {} appraise rule(s){}",
        shown.display(),
        policy.appraise_rule_count(),
        if policy.requires_signatures() {
            ", signatures required"
        } else {
            ""
        }
    ))
}

/// Whether the policy file carries an IMA signature in security.ima.
fn has_ima_signature(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    let mut buf = [0u8; 1024];
    // SAFETY: valid NUL-terminated strings and a buffer of buf.len() bytes.
    let n = unsafe {
        nix::libc::getxattr(
            c.as_ptr(),
            c"security.ima".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    n > 0
        && matches!(
            buf.first(),
            Some(&IMA_XATTR_DIGSIG) | Some(&IMA_VERITY_DIGSIG)
        )
}
