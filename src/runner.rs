//! Walks the load plan: runs each step unless a step it depends on failed
//! (or FAILURE_ACTION=halt stopped the run), logs each result with its
//! duration, and returns the results for the exit code and `check`.

use crate::config::FailureAction;
use crate::plan::{PLAN, StepId, When};
use crate::steps::{self, Context, Facts, Outcome, Status};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct StepResult {
    pub step: StepId,
    pub outcome: Outcome,
    pub duration: Duration,
}

#[derive(Debug, Default)]
pub struct RunReport {
    pub results: Vec<StepResult>,
    pub total: Duration,
}

impl RunReport {
    pub fn failed(&self) -> Vec<StepId> {
        self.results
            .iter()
            .filter(|r| r.outcome.status == Status::Failed)
            .map(|r| r.step)
            .collect()
    }

    pub fn status_of(&self, step: StepId) -> Option<Status> {
        self.results
            .iter()
            .find(|r| r.step == step)
            .map(|r| r.outcome.status)
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

pub fn run(ctx: &mut Context) -> RunReport {
    let start = Instant::now();
    let mut facts = Facts::default();
    let mut report = RunReport::default();
    let mut halted = false;
    for step in PLAN.iter() {
        let t = Instant::now();
        // A dependency that was itself skipped after a failure counts as
        // failed: EVM must not be enabled with certificates only because
        // the kmk, and so the evm-key, did not load.
        let missing_dep = step
            .depends_on
            .iter()
            .filter(|(_, when)| *when == When::Always)
            .find_map(|(dep, _)| ctx.did_not_deliver(*dep).map(|why| (*dep, why)));
        // drop-keys is also the clean-up, so it runs after a halt too.
        let outcome = if halted && step.id != StepId::DropKeys {
            Outcome::skipped("an earlier step failed and FAILURE_ACTION=halt")
        } else if let Some((dep, why)) = missing_dep {
            Outcome::skipped(format!("step {dep} {why}"))
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
            duration,
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
        Status::NotConfigured => log::info!("{line}"),
        _ => log::info!("{line}"),
    }
}
