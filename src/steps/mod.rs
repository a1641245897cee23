//! One module per step of the load plan. Each `run` does all reading and
//! validation first and only then, unless `dry_run` (the `check` command),
//! changes kernel state; so `check` runs exactly the checks `load` runs.

pub mod certs;
pub mod drop_keys;
pub mod enable_evm;
pub mod evm_key;
pub mod ima_policy;
pub mod kmk;
pub mod kmk_tpm2;
pub mod kmk_trusted;

use crate::config::Settings;
use crate::keyring::{KeySerial, KeyringSpec};
use crate::plan::{Step, StepId};
use crate::rootfs::Root;
use crate::securityfs::SecurityFs;
use nix::errno::Errno;
use std::collections::BTreeSet;

/// What every step can see.
pub struct Context<'a> {
    pub settings: &'a Settings,
    pub root: &'a Root,
    pub securityfs: &'a SecurityFs,
    pub keyring_spec: KeyringSpec,
    /// The target keyring's serial.
    pub keyring: KeySerial,
    /// Where this boot's facts are recorded (the PCR values at unseal).
    pub run_dir: &'a std::path::Path,
    pub dry_run: bool,
    /// The steps and their dependencies, as the runner walks them.
    pub plan: &'a [Step],
    /// Steps that failed so far (for conditional dependencies).
    pub failed: BTreeSet<StepId>,
    /// Steps skipped because a step they need failed: what they should
    /// have delivered is as missing as a failed step's.
    pub skipped_after_failure: BTreeSet<StepId>,
}

impl Context<'_> {
    /// Why `step` did not deliver what it should have, if it did not:
    /// "failed" or "was skipped".
    pub fn did_not_deliver(&self, step: StepId) -> Option<&'static str> {
        if self.failed.contains(&step) {
            Some("failed")
        } else if self.skipped_after_failure.contains(&step) {
            Some("was skipped")
        } else {
            None
        }
    }
}

/// The settings of `root` with no configuration file or command line: what
/// a test tree gets.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn default_settings(root: &Root) -> Settings {
    Settings::resolve(&crate::config::ConfigInputs {
        root,
        native_config: None,
        cmdline: &crate::cmdline::Cmdline::default(),
        kernel_release: "test",
        stub_pcr: None,
    })
    .unwrap()
}

/// What earlier steps did, for the later ones.
#[derive(Debug, Default)]
pub struct Facts {
    pub kmk: Option<KeySerial>,
    pub kmk_added: bool,
    /// The recovery key opened the kmk this run (the TPM did not): the
    /// evm-key step reseals it with AUTO_RESEAL once the evm-key opens.
    pub kmk_recovered: bool,
    pub evm_key: Option<KeySerial>,
    pub evm_key_added: bool,
    /// The evm-key is loaded (or, in `check`, would be): EVM gets the HMAC bit.
    pub evm_key_ready: bool,
    /// Certificates on the EVM / IMA keyring after the cert steps (loaded
    /// now, already there, or in `check`: would be loaded).
    pub evm_certs: usize,
    pub ima_certs: usize,
    pub evm_hmac_enabled: bool,
    pub evm_enabled_now: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Did (or in `check`: would do) its work.
    Done,
    /// Found its work already done, changed nothing.
    AlreadyDone,
    /// Nothing configured for it (its files are absent, the kernel lacks the feature).
    NotConfigured,
    /// Not run because a step it depends on failed.
    Skipped,
    Failed,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Done => "done",
            Status::AlreadyDone => "already done",
            Status::NotConfigured => "not configured",
            Status::Skipped => "skipped",
            Status::Failed => "FAILED",
        }
    }
}

/// A step's result: its status and one message for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: Status,
    pub message: String,
}

impl Outcome {
    pub fn done(message: impl Into<String>) -> Outcome {
        Outcome {
            status: Status::Done,
            message: message.into(),
        }
    }
    pub fn already(message: impl Into<String>) -> Outcome {
        Outcome {
            status: Status::AlreadyDone,
            message: message.into(),
        }
    }
    pub fn not_configured(message: impl Into<String>) -> Outcome {
        Outcome {
            status: Status::NotConfigured,
            message: message.into(),
        }
    }
    pub fn skipped(message: impl Into<String>) -> Outcome {
        Outcome {
            status: Status::Skipped,
            message: message.into(),
        }
    }
    pub fn failed(message: impl Into<String>) -> Outcome {
        Outcome {
            status: Status::Failed,
            message: message.into(),
        }
    }
}

/// A missing input: a failure when the step is required, else not configured.
pub fn missing(ctx: &Context, step: StepId, what: String) -> Outcome {
    if ctx.settings.is_required(step) {
        Outcome::failed(format!("{what}, and REQUIRE lists {step}"))
    } else {
        Outcome::not_configured(what)
    }
}

/// Checks that a step's input file is there. `Err` carries the outcome to
/// return: "not configured" (or failed, if REQUIRE lists the step) when the
/// file does not exist; failed when the path cannot be resolved safely
/// (loop, escape, `..`), which is never "not configured".
pub fn require_input(ctx: &Context, step: StepId, path: &str, what: &str) -> Result<(), Outcome> {
    match present(ctx, path) {
        Ok(true) => Ok(()),
        Ok(false) => Err(missing(
            ctx,
            step,
            format!("no {what} {}", ctx.root.display_path(path)),
        )),
        Err(m) => Err(Outcome::failed(m)),
    }
}

/// Whether a configured file is there: `Ok(false)` only when it does not exist.
pub fn present(ctx: &Context, path: &str) -> Result<bool, String> {
    match ctx.root.resolve(path) {
        Ok(_) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}

/// The step's failure when searching the target keyring fails.
pub fn search_failed(ctx: &Context, e: Errno) -> Outcome {
    Outcome::failed(format!(
        "cannot search keyring {}: {}",
        ctx.keyring_spec,
        keyring_errno_words(e)
    ))
}

/// Words for errnos of keyring calls that are the same whatever the key.
pub fn keyring_errno_words(e: Errno) -> String {
    match e {
        Errno::EDQUOT => "the key quota of this user is exhausted (EDQUOT)".into(),
        Errno::EACCES => "permission denied on the keyring (EACCES)".into(),
        Errno::ENOKEY => "the keyring does not exist (ENOKEY)".into(),
        Errno::EKEYREVOKED => "the keyring was revoked (EKEYREVOKED)".into(),
        e => format!("{} ({})", e.desc(), e),
    }
}
