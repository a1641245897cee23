//! `integrity-loader load`: the boot sequence.

use super::{CommandError, setup};
use crate::cli::{LoadOptions, Options};
use crate::runner;
use nix::errno::Errno;

pub fn run(options: &Options, o: &LoadOptions) -> Result<(), CommandError> {
    let env = match setup(options, o.pins.as_deref(), true, true) {
        Ok(e) => e,
        Err(e) => {
            // The dracut hook dies on this line when any configuration it
            // could read asks for halt, and warns otherwise.
            let halt = crate::config::halt_requested(
                &crate::rootfs::Root::new(super::root_dir(options)),
                options.config.as_deref(),
                o.pins.as_deref(),
            );
            let action = if halt { "halt" } else { "continue" };
            println!(
                "integrity-loader: FAILURE_ACTION={action}: configuration: {}",
                e.message().unwrap_or_default()
            );
            return Err(e);
        }
    };
    log::info!(
        target: crate::logging::DETAIL,
        "{} {}: root {}, securityfs {}, keyring {}",
        crate::logging::TAG,
        env!("CARGO_PKG_VERSION"),
        // Lossy text as `display` shows it, without running its padding code.
        env.root.dir().to_string_lossy(),
        env.securityfs.dir().to_string_lossy(),
        env.keyring_spec
    );
    let _lock = match env.securityfs.lock(std::time::Duration::from_secs(60)) {
        Ok(l) => l,
        Err(Errno::EWOULDBLOCK) => {
            return Err(CommandError::failed(format!(
                "another integrity-loader has held {} for 60 s; not running beside it",
                env.securityfs.dir().display()
            )));
        }
        Err(e) => {
            log::warn!(
                "cannot lock {} ({}); running without protection against a second loader",
                env.securityfs.dir().display(),
                e.desc()
            );
            return run_locked(&env, o.lsm_rules);
        }
    };
    run_locked(&env, o.lsm_rules)
}

fn run_locked(env: &super::Env, lsm_rules: bool) -> Result<(), CommandError> {
    let mut ctx = env.context(false);
    if lsm_rules {
        return run_lsm_rules(env, &ctx);
    }
    let report = runner::run(&mut ctx);
    let failed = report.failed();
    let ms = crate::logging::Ms(report.total);
    if failed.is_empty() {
        // The run's one line on the console; each step's own is detail.
        log::info!(
            "finished in {ms} ms: every configured step succeeded ({})",
            report.by_status()
        );
        Ok(())
    } else {
        let names: Vec<&str> = failed.iter().map(|s| s.name()).collect();
        let action = env.settings.failure_action.name();
        let summary = format!(
            "finished in {ms} ms: failed: {} (FAILURE_ACTION={action})",
            names.join(", ")
        );
        // One line on stdout for the dracut hook, whatever the log sink: it
        // shows the reason and decides between warn and die from it.
        let first = report
            .results
            .iter()
            .find(|r| r.outcome.status == crate::steps::Status::Failed)
            .map(|r| format!("{}: {}", r.step, r.outcome.message))
            .unwrap_or_default();
        println!("integrity-loader: FAILURE_ACTION={action}: {first}");
        Err(CommandError::failed(summary))
    }
}

/// `load --lsm-rules`: only the IMA policy rules left for after the LSM's
/// policy load, logged as the step they belong to.
fn run_lsm_rules(env: &super::Env, ctx: &crate::steps::Context) -> Result<(), CommandError> {
    let start = std::time::Instant::now();
    let outcome = crate::steps::ima_policy::run_later(ctx);
    let ms = crate::logging::Ms(start.elapsed());
    let line = format!(
        "ima-policy (--lsm-rules): {}: {} ({ms} ms)",
        outcome.status.word(),
        outcome.message
    );
    if outcome.status == crate::steps::Status::Failed {
        println!(
            "integrity-loader: FAILURE_ACTION={}: ima-policy: {}",
            env.settings.failure_action.name(),
            outcome.message
        );
        Err(CommandError::failed(line))
    } else {
        log::info!("{line}");
        Ok(())
    }
}
