//! Walks the load plan: runs each step unless a step it depends on failed
//! (or FAILURE_ACTION=halt stopped the run), logs each result with its
//! duration, and returns the results for the exit code and `check`. The
//! plan's dependencies are evaluated here and only here: the unconditional
//! ones before a step, the conditional ones in [`gate`] once the step has
//! read its input.

use crate::config::FailureAction;
use crate::plan::{Conditions, StepId, When};
use crate::steps::{self, Context, Facts, Outcome, Status};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct StepResult {
    pub step: StepId,
    pub outcome: Outcome,
}

#[derive(Debug, Default)]
pub struct RunReport {
    pub results: Vec<StepResult>,
    pub total: Duration,
}

impl RunReport {
    /// The steps by what became of them, for the run's summary line:
    /// "done: kmk, evm-key; not configured: evm".
    pub fn by_status(&self) -> String {
        [
            Status::Done,
            Status::AlreadyDone,
            Status::NotConfigured,
            Status::Skipped,
            Status::Failed,
        ]
        .into_iter()
        .filter_map(|status| {
            let steps: Vec<&str> = self
                .results
                .iter()
                .filter(|r| r.outcome.status == status)
                .map(|r| r.step.name())
                .collect();
            (!steps.is_empty()).then(|| format!("{}: {}", status.word(), steps.join(", ")))
        })
        .collect::<Vec<_>>()
        .join("; ")
    }

    pub fn failed(&self) -> Vec<StepId> {
        self.results
            .iter()
            .filter(|r| r.outcome.status == Status::Failed)
            .map(|r| r.step)
            .collect()
    }
}

fn run_step(step: StepId, ctx: &Context, facts: &mut Facts) -> Outcome {
    match step {
        StepId::Kmk => steps::kmk::run(ctx, facts),
        StepId::EvmKey => steps::evm_key::run(ctx, facts),
        StepId::EvmCerts => steps::certs::run(ctx, facts, steps::certs::Target::Evm),
        StepId::ImaCerts => steps::certs::run(ctx, facts, steps::certs::Target::Ima),
        StepId::ImaPolicy => steps::ima_policy::run(ctx, facts),
        StepId::Evm => steps::enable_evm::run(ctx, facts),
        StepId::DropKeys => steps::drop_keys::run(ctx, facts),
    }
}

/// The first dependency of `step` that applies to an input with `input`'s
/// conditions and did not deliver what it should have, with why not. A
/// dependency that was itself skipped after a failure counts as failed: EVM
/// must not be enabled with certificates only because the kmk, and so the
/// evm-key, did not load.
fn unmet(ctx: &Context, step: StepId, input: Conditions) -> Option<(StepId, When, &'static str)> {
    ctx.plan
        .iter()
        .filter(|s| s.id == step)
        .flat_map(|s| s.depends_on)
        .filter(|(_, when)| when.holds(input))
        .find_map(|&(dep, when)| ctx.did_not_deliver(dep).map(|why| (dep, when, why)))
}

/// For a step that has read its input (`subject`, as shown in messages) and
/// found `input`'s conditions in it: the skip outcome when a dependency those
/// conditions bring in did not deliver.
pub fn gate(ctx: &Context, step: StepId, input: Conditions, subject: &str) -> Result<(), Outcome> {
    let Some((dep, when, why)) = unmet(ctx, step, input) else {
        return Ok(());
    };
    Err(Outcome::skipped(match when {
        When::Always => format!("step {dep} {why}"),
        When::PolicyAppraises => {
            // Appraisal trusts file metadata that EVM protects.
            let evm_needs_it = ctx
                .plan
                .iter()
                .any(|s| s.id == StepId::Evm && s.depends_on.contains(&(dep, When::Always)));
            format!(
                "{subject} has appraise rules but step {dep} {why}{}; not writing it half-configured (fix {dep} and reboot)",
                if evm_needs_it {
                    ", so EVM stays off"
                } else {
                    ""
                }
            )
        }
        When::PolicyNeedsSignatures => format!(
            "{subject} has appraise rules that need signatures and step {dep} {why}; not writing it, it could make signed files unreadable"
        ),
    }))
}

pub fn run(ctx: &mut Context) -> RunReport {
    let start = Instant::now();
    let mut facts = Facts::default();
    let mut report = RunReport::default();
    let mut halted = false;
    let plan = ctx.plan;
    for step in plan {
        let t = Instant::now();
        // drop-keys is also the clean-up, so it runs after a halt too.
        let outcome = if halted && step.id != StepId::DropKeys {
            Outcome::skipped("an earlier step failed and FAILURE_ACTION=halt")
        } else if let Err(skipped) = gate(ctx, step.id, Conditions::NONE, "") {
            skipped
        } else if let Some(e) = ctx.settings.unusable_for(step.id) {
            Outcome::failed(format!(
                "{e}; nothing in this file is used until it is fixed"
            ))
        } else {
            run_step(step.id, ctx, &mut facts)
        };
        let duration = t.elapsed();
        log_outcome(step.id, &outcome, duration);
        match outcome.status {
            Status::Failed => {
                ctx.failed.insert(step.id);
                if ctx.settings.failure_action == FailureAction::Halt {
                    halted = true;
                }
            }
            // Every skip follows a failure (a dependency's or a halt).
            Status::Skipped => {
                ctx.skipped_after_failure.insert(step.id);
            }
            _ => {}
        }
        report.results.push(StepResult {
            step: step.id,
            outcome,
        });
    }
    report.total = start.elapsed();
    report
}

fn log_outcome(step: StepId, outcome: &Outcome, duration: Duration) {
    let ms = crate::logging::Ms(duration);
    let line = format!(
        "{step}: {}: {} ({ms} ms)",
        outcome.status.word(),
        outcome.message
    );
    match outcome.status {
        Status::Failed => log::error!("{line}"),
        Status::Skipped => log::warn!("{line}"),
        _ => log::info!(target: crate::logging::DETAIL, "{line}"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::keyring::KeyringSpec;
    use crate::plan::{PLAN, Step, describe};
    use crate::rootfs::Root;
    use crate::securityfs::SecurityFs;
    use std::fs;
    use std::path::{Path, PathBuf};

    /// A root whose IMA policy appraises by hash (no signatures) and whose
    /// only IMA certificate is not one, over a securityfs with IMA.
    fn tree(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "integrity-loader-runner-{tag}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("root/etc/sysconfig")).unwrap();
        fs::create_dir_all(dir.join("root/etc/keys/ima")).unwrap();
        fs::create_dir_all(dir.join("sfs/ima")).unwrap();
        fs::write(
            dir.join("root/etc/sysconfig/ima-policy"),
            "appraise func=BPRM_CHECK\n",
        )
        .unwrap();
        fs::write(
            dir.join("root/etc/keys/ima/broken.der"),
            b"not a certificate",
        )
        .unwrap();
        fs::write(dir.join("sfs/ima/policy"), b"").unwrap();
        dir
    }

    fn run_plan(dir: &Path, plan: &[Step], dry_run: bool) -> RunReport {
        let root = Root::new(dir.join("root"));
        let settings = crate::steps::default_settings(&root);
        let securityfs = SecurityFs::new(dir.join("sfs"));
        let run_dir = dir.join("run");
        let mut ctx = Context {
            settings: &settings,
            root: &root,
            securityfs: &securityfs,
            keyring_spec: KeyringSpec::parse("@s").unwrap(),
            keyring: 0,
            run_dir: &run_dir,
            dry_run,
            plan,
            failed: Default::default(),
            skipped_after_failure: Default::default(),
        };
        run(&mut ctx)
    }

    fn outcome(report: &RunReport, step: StepId) -> &Outcome {
        &report
            .results
            .iter()
            .find(|r| r.step == step)
            .unwrap()
            .outcome
    }

    #[test]
    fn the_summary_names_each_step_under_what_became_of_it() {
        let result = |step, outcome| StepResult { step, outcome };
        let report = RunReport {
            results: vec![
                result(StepId::Kmk, Outcome::done("x")),
                result(StepId::EvmKey, Outcome::not_configured("x")),
                result(StepId::EvmCerts, Outcome::done("x")),
                result(StepId::ImaPolicy, Outcome::already("x")),
            ],
            total: Duration::ZERO,
        };
        assert_eq!(
            report.by_status(),
            "done: kmk, evm-certs; already done: ima-policy; not configured: evm-key"
        );
        assert_eq!(RunReport::default().by_status(), "");
    }

    /// An edit to a conditional dependency in the plan changes what `check`
    /// prints and what `check` and `load` do, alike.
    #[test]
    fn an_edited_plan_entry_is_what_check_prints_and_load_does() {
        let dir = tree("edited");
        // As shipped, ima-certs matters only to a policy that needs
        // signatures: this one is written although ima-certs failed.
        let shipped = run_plan(&dir, &PLAN, true);
        assert_eq!(outcome(&shipped, StepId::ImaCerts).status, Status::Failed);
        assert_eq!(
            outcome(&shipped, StepId::ImaPolicy).status,
            Status::Done,
            "{:?}",
            outcome(&shipped, StepId::ImaPolicy)
        );

        // Edited: the policy needs ima-certs as soon as it appraises.
        let mut plan = PLAN;
        let entry = plan.iter_mut().find(|s| s.id == StepId::ImaPolicy).unwrap();
        entry.depends_on = &[(StepId::ImaCerts, When::PolicyAppraises)];
        assert!(
            describe(&plan).contains(
                "ima-policy check and write the IMA policy; skipped if ima-certs (when the policy appraises) failed"
            ),
            "{}",
            describe(&plan)
        );
        for dry_run in [true, false] {
            let report = run_plan(&dir, &plan, dry_run);
            let policy = outcome(&report, StepId::ImaPolicy);
            assert_eq!(
                policy.status,
                Status::Skipped,
                "dry run {dry_run}: {policy:?}"
            );
            assert!(
                policy
                    .message
                    .ends_with("/etc/sysconfig/ima-policy has appraise rules but step ima-certs failed; not writing it half-configured (fix ima-certs and reboot)"),
                "{}",
                policy.message
            );
        }
        assert_eq!(fs::read(dir.join("sfs/ima/policy")).unwrap(), b"");
        let _ = fs::remove_dir_all(&dir);
    }
}
