//! Step 5: the IMA policy. Every rule is checked before anything is written;
//! the policy goes to the kernel by path when it is signed, else one rule per
//! write (the kernel parses one line per write and drops the whole update
//! if any rule is bad, see kernel-interfaces pitfalls 3 and 4).

use super::{Context, Facts, Outcome};
use crate::config::PolicyWrite;
use crate::ima_policy as grammar;
use crate::plan::{Conditions, StepId};
use crate::rootfs::Root;
use crate::runner;
use nix::errno::Errno;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A policy of 100,000 rules fits; beyond, it is not a policy.
const POLICY_LIMIT: usize = 8 * 1024 * 1024;
/// IMA signature types in security.ima (EVM_IMA_XATTR_DIGSIG, IMA_VERITY_DIGSIG).
const IMA_XATTR_DIGSIG: u8 = 0x03;
const IMA_VERITY_DIGSIG: u8 = 0x06;
/// In the run directory: the normal form of the policy this boot loaded.
const RECORD_FILE: &str = "ima-policy";

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
    // Resolved once: the path written by path is the one read.
    let (text, real) = match ctx.root.read_at(std::path::Path::new(path), POLICY_LIMIT) {
        Ok(t) => t,
        Err(e) if e.is_not_found() => {
            return super::missing(
                ctx,
                StepId::ImaPolicy,
                format!("no IMA policy {}", shown.display()),
            );
        }
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

    // What the plan's conditions depend on; the runner says what they skip.
    let input = Conditions {
        policy_appraises: policy.appraise_rule_count() > 0,
        policy_needs_signatures: policy.requires_signatures(),
    };
    if let Err(skipped) = runner::gate(ctx, StepId::ImaPolicy, input, &shown.display().to_string())
    {
        return skipped;
    }
    if policy.requires_signatures() && facts.ima_certs == 0 {
        return Outcome::failed(format!(
            "{} has appraise rules that need signatures, but no IMA key is loaded: writing it would make every signed file unreadable and the machine unbootable. Not writing it; put the signing certificate in {}",
            shown.display(),
            ctx.settings.ima_keys_dir.value
        ));
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

    if by_path && let Err(e) = policy.check_by_path() {
        return Outcome::failed(format!(
            "{}:{}:{}: {}; no rule was written",
            shown.display(),
            e.line,
            e.column,
            e.reason
        ));
    }
    if has_ima && let Some(why) = already_loaded(ctx, &policy, &shown) {
        return Outcome::already(why);
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
    let record = ctx.run_dir.join(RECORD_FILE);
    let recorded = std::fs::create_dir_all(ctx.run_dir)
        .and_then(|()| std::fs::write(&record, policy.normal_form()));
    Outcome::done(format!(
        "wrote IMA policy {} {how}; {} appraise rule(s){}{}",
        shown.display(),
        policy.appraise_rule_count(),
        if policy.requires_signatures() {
            ", signatures required"
        } else {
            ""
        },
        match recorded {
            Ok(()) => String::new(),
            Err(e) => format!(
                "; could not record it in {} ({e}), so a second load this boot may write it again",
                record.display()
            ),
        }
    ))
}

/// Why the policy counts as loaded already, if it does. What the kernel
/// shows depends on its configuration (ima_fs.c, 6.1):
/// - neither CONFIG_IMA_WRITE_POLICY nor CONFIG_IMA_READ_POLICY (Debian):
///   the file is removed after the first policy;
/// - READ_POLICY only: the file loses its write bit and root's next open
///   for writing gets EBUSY; its read-back is the active policy;
/// - WRITE_POLICY: the file stays and every load appends. Its read-back
///   (with READ_POLICY) shows the boot policy until a first load too, so
///   the rules being there is not enough: our record in the run directory
///   says this boot's load wrote them.
///
/// The read-back is compared in the kernel's normal form (`Policy::is_shown_in`).
fn already_loaded(ctx: &Context, policy: &grammar::Policy, shown: &Path) -> Option<String> {
    let file = ctx.securityfs.policy_path();
    if !file.exists() {
        return Some(format!(
            "{} is gone: the kernel takes one policy per boot and already has one",
            file.display()
        ));
    }
    let in_kernel = ctx
        .securityfs
        .read_policy(POLICY_LIMIT as u64)
        .map(|text| policy.is_shown_in(&text));
    if !ctx.securityfs.policy_writable() {
        return Some(match in_kernel {
            Some(true) => format!(
                "the IMA policy from {} is already loaded (the kernel shows its rules)",
                shown.display()
            ),
            _ => format!(
                "{} is read-only: the kernel already has a custom policy this boot and takes no other{}",
                file.display(),
                if in_kernel == Some(false) {
                    format!("; it does not show the rules of {}", shown.display())
                } else {
                    String::new()
                }
            ),
        });
    }
    let record = ctx.run_dir.join(RECORD_FILE);
    let normal = policy.normal_form();
    let recorded = std::fs::File::open(&record)
        .and_then(|f| {
            let mut text = Vec::new();
            f.take(normal.len() as u64 + 1).read_to_end(&mut text)?;
            Ok(text)
        })
        .is_ok_and(|r| r == normal.as_bytes());
    match (recorded, in_kernel) {
        (true, Some(true)) => Some(format!(
            "the IMA policy from {} is already loaded (the kernel shows its rules, {} records this boot's load)",
            shown.display(),
            record.display()
        )),
        (true, None) => Some(format!(
            "the IMA policy from {} is already loaded ({} records this boot's load; the kernel does not show its policy)",
            shown.display(),
            record.display()
        )),
        _ => None,
    }
}

/// Whether the policy file carries an IMA signature in security.ima.
fn has_ima_signature(real: &Path) -> bool {
    Root::xattr::<1024>(real, c"security.ima").is_some_and(|value| {
        matches!(
            value.first(),
            Some(&IMA_XATTR_DIGSIG) | Some(&IMA_VERITY_DIGSIG)
        )
    })
}
