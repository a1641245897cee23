//! Step 5: the IMA policy. Every rule is checked before anything is written;
//! the policy goes to the kernel by path when it is signed, else one rule per
//! write (the kernel parses one line per write and drops the whole update
//! if any rule is bad, see kernel-interfaces pitfalls 3 and 4).

use super::{Context, Facts, Outcome};
use crate::config::{LsmRules, PolicyWrite};
use crate::ima_policy as grammar;
use crate::plan::{Conditions, StepId};
use crate::rootfs::Root;
use crate::runner;
use grammar::split::Split;
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
            return super::missing(ctx, StepId::ImaPolicy, format!("no IMA policy {}", shown));
        }
        Err(e) => return Outcome::failed(format!("read IMA policy {e}")),
    };
    let policy = match parse(&text, &shown) {
        Ok(p) => p,
        Err(failed) => return failed,
    };
    let rules = policy.rules().len();

    // What the plan's conditions depend on; the runner says what they skip.
    let input = Conditions {
        policy_appraises: policy.appraise_rule_count() > 0,
        policy_needs_signatures: policy.requires_signatures(),
    };
    if let Err(skipped) = runner::gate(ctx, StepId::ImaPolicy, input, &shown) {
        return skipped;
    }
    if policy.requires_signatures() && facts.ima_certs == 0 {
        return Outcome::failed(format!(
            "{} has appraise rules that need signatures, but no IMA key is loaded: writing it would make every signed file unreadable and the machine unbootable. Not writing it; put the signing certificate in {}",
            shown, ctx.settings.ima_keys_dir.value
        ));
    }

    let signed = has_ima_signature(&real);
    let by_path = match ctx.settings.policy_write {
        PolicyWrite::Path => true,
        PolicyWrite::Rules => false,
        PolicyWrite::Auto => signed,
    };
    let how = |rules: usize| {
        if by_path {
            format!("by path{}", if signed { " (signed)" } else { "" })
        } else {
            format!("as {rules} rules")
        }
    };
    if by_path && let Err(e) = policy.check_by_path() {
        return Outcome::failed(format!(
            "{}:{}:{}: {}; no rule was written",
            shown, e.line, e.column, e.reason
        ));
    }
    // Advice on the policy, not on this boot: `check` (run when a host-only
    // initramfs is built, and by the admin) warns; the boot keeps it out of
    // the console, where every character costs (a 115200-baud serial
    // console prints ~11 per ms, and printk waits for it).
    if ctx.dry_run || log::log_enabled!(log::Level::Debug) {
        for gap in grammar::attest::gaps(&policy, by_path) {
            if ctx.dry_run {
                log::warn!("ima-policy: {}: {gap}", shown);
            } else {
                log::debug!("ima-policy: {}: {gap}", shown);
            }
        }
    }

    let split = Split::of(&policy);
    let (placement, why) = placement(ctx, &split, by_path);
    let now = match placement {
        Placement::Whole => policy.clone(),
        Placement::Split => split.now(),
        Placement::Later => {
            if has_ima && let Some(why) = already_loaded(ctx, &policy, &shown) {
                return Outcome::already(why);
            }
            let what = format!(
                "the whole IMA policy {} for after the LSM's policy load ({LATER_UNIT} writes it {}): it has {}; {why}; until then the kernel keeps its boot policy",
                shown,
                how(rules),
                split.describe()
            );
            if ctx.dry_run {
                return Outcome::done(format!("would leave {what}"));
            }
            return match leave_for_later(ctx, Placement::Later, &policy) {
                Ok(()) => Outcome::done(format!("left {what}")),
                Err(e) => Outcome::failed(e),
            };
        }
    };
    if has_ima {
        let both = split.in_kernel_order();
        let found = match placement {
            Placement::Split => already_loaded(ctx, &both, &shown)
                .or_else(|| already_loaded(ctx, &now, &shown).filter(|_| pending(ctx))),
            _ => already_loaded(ctx, &now, &shown),
        };
        if let Some(why) = found {
            return Outcome::already(why);
        }
    }
    let later = split.later();
    let tail = match placement {
        Placement::Split => format!(
            "; {why}: the {} rule(s) with LSM labels and those kept after them wait for the LSM's policy load ({LATER_UNIT} appends them): {}",
            later.rules().len(),
            split.describe()
        ),
        _ => String::new(),
    };
    if ctx.dry_run {
        return Outcome::done(format!(
            "would write IMA policy {} {}{tail}",
            shown,
            how(now.rules().len())
        ));
    }
    if let Err(failed) = write(ctx, &now, by_path.then_some(real.as_path()), &shown) {
        return failed;
    }
    let record = ctx.run_dir.join(RECORD_FILE);
    let recorded = record_load(ctx, || now.normal_form());
    let mut tail = tail;
    if placement == Placement::Split {
        // Without CONFIG_IMA_WRITE_POLICY the file is gone now, and with it
        // any chance of the rest this boot.
        if !ctx.securityfs.policy_path().exists() {
            return Outcome::failed(format!(
                "wrote the first {} rules of IMA policy {}, but the kernel then removed {} (it has no CONFIG_IMA_WRITE_POLICY): the {} rule(s) waiting for the LSM's policy cannot be written this boot; set IMA_LSM_RULES=later to write the whole policy after the LSM's policy load",
                now.rules().len(),
                shown,
                ctx.securityfs.policy_path().display(),
                later.rules().len()
            ));
        }
        if let Err(e) = leave_for_later(ctx, Placement::Split, &later) {
            tail = format!("{tail}; but {e}");
        }
    }
    Outcome::done(format!(
        "wrote IMA policy {} {}; {} appraise rule(s){}{}{tail}",
        shown,
        how(now.rules().len()),
        now.appraise_rule_count(),
        if now.requires_signatures() {
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

/// The unit that runs `load --lsm-rules` after the LSM's policy load.
pub const LATER_UNIT: &str = "integrity-loader-lsm.service";
/// In the run directory: what waits for the LSM's policy, for `load
/// --lsm-rules`: `split` or `later`, then the rules in normal form.
pub const LATER_FILE: &str = "ima-policy-later";

/// Where the rules of a policy go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// All in the initramfs (no LSM labels, or IMA_LSM_RULES=initramfs).
    Whole,
    /// The rules that need no LSM now, the rest appended later.
    Split,
    /// All after the LSM's policy load.
    Later,
}

impl Placement {
    fn word(self) -> &'static str {
        match self {
            Placement::Whole => "whole",
            Placement::Split => "split",
            Placement::Later => "later",
        }
    }
}

/// Where this policy goes, and why (for the messages).
fn placement(ctx: &Context, split: &Split, by_path: bool) -> (Placement, String) {
    if !split.has_labels() {
        return (Placement::Whole, String::new());
    }
    let (p, why) = match ctx.settings.lsm_rules {
        LsmRules::Initramfs => (Placement::Whole, "IMA_LSM_RULES=initramfs".to_string()),
        _ if by_path => (
            Placement::Later,
            "it is written by path, which the kernel reads whole".to_string(),
        ),
        LsmRules::Later => (Placement::Later, "IMA_LSM_RULES=later".to_string()),
        LsmRules::Split => (Placement::Split, "IMA_LSM_RULES=split".to_string()),
        LsmRules::Auto => match kernel_appends(ctx.root) {
            Some((true, file)) => (
                Placement::Split,
                format!("the kernel takes a second load ({file} has CONFIG_IMA_WRITE_POLICY=y)"),
            ),
            Some((false, file)) => (
                Placement::Later,
                format!("the kernel takes one policy per boot ({file} has no CONFIG_IMA_WRITE_POLICY)"),
            ),
            None => (
                Placement::Later,
                "no kernel configuration file says the kernel takes a second load (CONFIG_IMA_WRITE_POLICY; IMA_LSM_RULES=split if it does)".to_string(),
            ),
        },
    };
    if p == Placement::Split && split.now().rules().is_empty() {
        return (Placement::Later, format!("{why}, but no rule can go first"));
    }
    (p, why)
}

/// Whether the running kernel keeps its policy file writable after a load
/// (CONFIG_IMA_WRITE_POLICY), from its configuration file on the root, with
/// that file's path; `None` when there is none.
fn kernel_appends(root: &Root) -> Option<(bool, String)> {
    let release = nix::sys::utsname::uname()
        .ok()?
        .release()
        .to_string_lossy()
        .into_owned();
    [
        format!("/boot/config-{release}"),
        format!("/lib/modules/{release}/config"),
        format!("/usr/lib/modules/{release}/config"),
    ]
    .into_iter()
    .find_map(|path| {
        let text = root.read(&path, 4 * 1024 * 1024).ok()?;
        let on = text
            .split(|&b| b == b'\n')
            .any(|l| l == b"CONFIG_IMA_WRITE_POLICY=y");
        Some((on, root.display_path(&path)))
    })
}

/// Whether rules wait for `load --lsm-rules` this boot.
fn pending(ctx: &Context) -> bool {
    ctx.run_dir.join(LATER_FILE).exists()
}

/// Records what waits for the LSM's policy.
fn leave_for_later(
    ctx: &Context,
    placement: Placement,
    rules: &grammar::Policy,
) -> Result<(), String> {
    let file = ctx.run_dir.join(LATER_FILE);
    std::fs::create_dir_all(ctx.run_dir)
        .and_then(|()| std::fs::write(&file, format!("{}\n{}", placement.word(), rules.normal_form())))
        .map_err(|e| {
            format!(
                "could not record the rules that wait in {} ({e}), so {LATER_UNIT} will not write them",
                file.display()
            )
        })
}

/// Writes `policy` to the kernel: the file `by_path` names, or rule by rule.
fn write(
    ctx: &Context,
    policy: &grammar::Policy,
    by_path: Option<&Path>,
    shown: &str,
) -> Result<(), Outcome> {
    let mut writer = match ctx.securityfs.open_policy() {
        Ok(w) => w,
        Err(Errno::EACCES | Errno::ENOENT) => {
            return Err(Outcome::already(format!(
                "{} is not writable: the kernel already has a custom policy this boot",
                ctx.securityfs.policy_path().display()
            )));
        }
        Err(Errno::EBUSY) => {
            return Err(Outcome::failed(format!(
                "{} is open by another process (EBUSY); is another loader running?",
                ctx.securityfs.policy_path().display()
            )));
        }
        Err(e) => {
            return Err(Outcome::failed(format!(
                "open {}: {}",
                ctx.securityfs.policy_path().display(),
                e.desc()
            )));
        }
    };
    if let Some(real) = by_path {
        if let Err(e) = writer.write_unit(real.as_os_str().as_bytes()) {
            return Err(Outcome::failed(format!(
                "the kernel refused IMA policy {} written by path: {}",
                shown,
                match e {
                    Errno::EACCES =>
                        "its signature does not verify against the IMA keyring (EACCES)".to_string(),
                    Errno::EINVAL => "the kernel rejected a rule in it (EINVAL)".to_string(),
                    e => format!("{} ({e})", e.desc()),
                }
            )));
        }
    } else {
        for (rule, unit) in policy.rules().iter().zip(policy.write_units()) {
            if let Err(e) = writer.write_unit(&unit) {
                let why = match e {
                    Errno::EACCES => "the kernel requires a signed policy (secure boot or ima_policy=secure_boot); sign it with `evmctl ima_sign` and it will be written by path".to_string(),
                    Errno::EINVAL if rule.lsm => "the kernel rejected this rule (EINVAL): the LSM does not know its label (has it loaded its policy? IMA_LSM_RULES); the kernel drops the whole update, so no rule of this load is active".to_string(),
                    Errno::EINVAL => "the kernel rejected this rule (EINVAL); it drops the whole update, so no rule of this policy is active".to_string(),
                    e => format!("{} ({e}); no rule of this policy is active", e.desc()),
                };
                return Err(Outcome::failed(format!("{}:{}: {why}", shown, rule.line)));
            }
        }
    }
    let published = writer.finish().map_err(|e| {
        Outcome::failed(format!(
            "close {}: {}",
            ctx.securityfs.policy_path().display(),
            e.desc()
        ))
    })?;
    log::debug!(
        "the kernel took the rules in on close in {} ms{}",
        crate::logging::Ms(published.took),
        if published.expedited {
            " (its RCU grace period expedited through rcu_expedited)"
        } else {
            ""
        }
    );
    Ok(())
}

/// `load --lsm-rules`, once the LSM has loaded its policy: writes what the
/// initramfs left in the run directory, after checking the policy file
/// still gives exactly those rules.
pub fn run_later(ctx: &Context) -> Outcome {
    let file = ctx.run_dir.join(LATER_FILE);
    let left = match std::fs::File::open(&file).and_then(|f| {
        let mut text = Vec::new();
        f.take(POLICY_LIMIT as u64).read_to_end(&mut text)?;
        Ok(text)
    }) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Outcome::not_configured(format!(
                "no IMA policy rules wait for the LSM's policy this boot ({} is absent)",
                file.display()
            ));
        }
        Err(e) => return Outcome::failed(format!("read {}: {e}", file.display())),
    };
    let (mode, body) = match left.iter().position(|&b| b == b'\n') {
        Some(n) => (
            left.get(..n).unwrap_or_default(),
            left.get(n + 1..).unwrap_or_default(),
        ),
        None => (left.as_slice(), &[][..]),
    };
    let placement = match mode {
        b"split" => Placement::Split,
        b"later" => Placement::Later,
        _ => {
            return Outcome::failed(format!(
                "{}: first line is neither split nor later; remove the file and reboot",
                file.display()
            ));
        }
    };
    let path = &ctx.settings.ima_policy.value;
    let shown = ctx.root.display_path(path);
    let (text, real) = match ctx.root.read_at(Path::new(path), POLICY_LIMIT) {
        Ok(t) => t,
        Err(e) => return Outcome::failed(format!("read IMA policy {e}")),
    };
    let policy = match parse(&text, &shown) {
        Ok(p) => p,
        Err(failed) => return failed,
    };
    let split = Split::of(&policy);
    let (rules, by_path) = match placement {
        Placement::Later => {
            let by_path = match ctx.settings.policy_write {
                PolicyWrite::Path => true,
                PolicyWrite::Rules => false,
                PolicyWrite::Auto => has_ima_signature(&real),
            };
            (policy.clone(), by_path)
        }
        _ => (split.later(), false),
    };
    if rules.normal_form().as_bytes() != body {
        return Outcome::failed(format!(
            "{} no longer gives the rules the initramfs left in {} (changed since the boot?); nothing written: reboot to load the policy",
            shown,
            file.display()
        ));
    }
    if let Err(e) = write(ctx, &rules, by_path.then_some(real.as_path()), &shown) {
        if e.status == super::Status::AlreadyDone && placement == Placement::Split {
            return Outcome::failed(format!(
                "the kernel takes no second policy load ({} is not writable; no CONFIG_IMA_WRITE_POLICY): the {} rule(s) waiting for the LSM are not loaded; set IMA_LSM_RULES=later and reboot",
                ctx.securityfs.policy_path().display(),
                rules.rules().len()
            ));
        }
        return e;
    }
    // What the kernel holds now: the whole policy, or both parts in order.
    let _ = record_load(ctx, || match placement {
        Placement::Later => rules.normal_form(),
        _ => split.in_kernel_order().normal_form(),
    });
    let _ = std::fs::remove_file(&file);
    Outcome::done(format!(
        "wrote {} rule(s) of IMA policy {} after the LSM's policy load ({})",
        rules.rules().len(),
        shown,
        if placement == Placement::Later {
            "the whole policy"
        } else {
            "appended to the rules the initramfs wrote"
        }
    ))
}

/// Records this boot's load in the run directory for `already_loaded`,
/// where the kernel keeps its policy file (CONFIG_IMA_WRITE_POLICY).
/// Without it (Debian) the kernel removed the file on close: that absence
/// tells a second load, and the record (the policy's normal form, and a
/// file on /run) is not made.
fn record_load(ctx: &Context, normal_form: impl FnOnce() -> String) -> std::io::Result<()> {
    if !ctx.securityfs.policy_path().exists() {
        return Ok(());
    }
    std::fs::create_dir_all(ctx.run_dir)
        .and_then(|()| std::fs::write(ctx.run_dir.join(RECORD_FILE), normal_form()))
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
fn already_loaded(ctx: &Context, policy: &grammar::Policy, shown: &str) -> Option<String> {
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
                shown
            ),
            _ => format!(
                "{} is read-only: the kernel already has a custom policy this boot and takes no other{}",
                file.display(),
                if in_kernel == Some(false) {
                    format!("; it does not show the rules of {}", shown)
                } else {
                    String::new()
                }
            ),
        });
    }
    let record = ctx.run_dir.join(RECORD_FILE);
    // The record first: before a first load there is none, and the normal
    // form need not be computed.
    let recorded = std::fs::File::open(&record).is_ok_and(|f| {
        let normal = policy.normal_form();
        let mut text = Vec::new();
        f.take(normal.len() as u64 + 1)
            .read_to_end(&mut text)
            .is_ok_and(|_| text == normal.as_bytes())
    });
    match (recorded, in_kernel) {
        (true, Some(true)) => Some(format!(
            "the IMA policy from {} is already loaded (the kernel shows its rules, {} records this boot's load)",
            shown,
            record.display()
        )),
        (true, None) => Some(format!(
            "the IMA policy from {} is already loaded ({} records this boot's load; the kernel does not show its policy)",
            shown,
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

/// The policy file's rules, or the step's failure naming file:line:column.
fn parse(text: &[u8], shown: &str) -> Result<grammar::Policy, Outcome> {
    grammar::parse(text).map_err(|e| {
        Outcome::failed(format!(
            "{}:{}:{}: {}; no rule was written",
            shown, e.line, e.column, e.reason
        ))
    })
}
