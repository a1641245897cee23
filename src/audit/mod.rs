//! `integrity-audit` (also `integrity-loader audit`): which files of a root
//! the kernel would refuse once the IMA policy `load` writes is in force,
//! decided offline before the reboot that would lock the machine out. It
//! reads what `load` reads (settings, policy, IMA/EVM certificates) through
//! the same code; the walk and the hashing run in parallel and read every
//! file once. Not in the initramfs binary: see the README.

mod boot;
pub mod elf;
mod ldso;
mod relabel;
mod report;
mod rules;
mod sig;
mod verdict;
mod walk;

pub use verdict::Verdict;

use crate::cli::Options;
use crate::commands::{self, CommandError};
use crate::steps::certs::{self, Target};
use std::path::PathBuf;

pub const HELP: &str = "\
Usage: integrity-audit [OPTIONS]
       integrity-loader audit [OPTIONS]
       integrity-audit relabel [OPTIONS]   (see integrity-audit relabel --help)

Reads what `integrity-loader load` would use (settings, the IMA policy, the
IMA and EVM certificates) and decides, for every regular file under the
root, whether an appraise rule covers it and whether appraisal would pass:
IMA signatures are verified with the certificates' keys, hashes compared
with the content. Prints a summary by verdict and by rule, then the files
the kernel would refuse. Assumes the files are opened by --uid/--gid.

Options:
  --root DIR        root to audit (default /); its /etc gives the settings
  --limit N         list at most N denied files (default: all)
  --boot-files      only the files the next boot needs (the init the
                    command line names, /bin/sh, systemd, their loader
                    and the libraries they need), resolved inside the
                    root as the loader would; skipped when the
                    policy appraises nothing or the command line has
                    ima_appraise=fix|log|off (check --audit-boot runs it)
  --json            one JSON object on stdout instead of text
  --all             also list every file with its verdict (within --limit)
  --jobs N          hashing threads (default: the number of CPUs)
  --uid N, --gid N  the process opening the files, for uid=/gid= rules
                    (default 0, root)
  --evm on|off      whether EVM appraises (default: on when load would
                    load an evm-key or EVM certificate)
  --config FILE     native config (default ROOT/etc/integrity-loader.conf)
  --cmdline FILE    kernel command line (default /proc/cmdline)
  -q, --quiet       no progress on a terminal
  -h, --help        show this help

Not walked: virtual filesystems (proc, sysfs, securityfs...), listed.
With EVM on, portable EVM signatures are verified with the EVM
certificates' keys. Counted apart, never called a pass: rules with LSM
labels or other conditions that cannot be evaluated offline, EVM HMACs
and immutable EVM signatures.

Exit status: 0 no file would be denied or is unreadable, 1 some would be
or are, 2 usage or configuration error.
";

/// Options of the audit, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditOptions {
    pub root: PathBuf,
    pub config: Option<PathBuf>,
    pub cmdline: Option<PathBuf>,
    pub limit: Option<usize>,
    pub json: bool,
    /// List every file, not only the denied ones.
    pub all: bool,
    pub jobs: usize,
    pub uid: u32,
    pub gid: u32,
    pub evm: Option<bool>,
    pub quiet: bool,
    /// `relabel`: open the covered files instead of judging them.
    pub relabel: bool,
    /// Walk into other filesystems mounted under the root (the audit
    /// always does; relabel only when asked).
    pub all_filesystems: bool,
    /// `--boot-files`: only the files the next boot needs.
    pub boot_files: bool,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            root: PathBuf::from("/"),
            config: None,
            cmdline: None,
            limit: None,
            json: false,
            all: false,
            jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
            uid: 0,
            gid: 0,
            evm: None,
            quiet: false,
            relabel: false,
            all_filesystems: true,
            boot_files: false,
        }
    }
}

pub enum ParsedAudit {
    Run(Box<AuditOptions>),
    Help,
}

pub fn parse_args(args: &[String]) -> Result<ParsedAudit, String> {
    let mut o = AuditOptions::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| format!("option {name} needs {what}")),
            }
        };
        if shared_option(&mut o, name, inline.is_some(), &mut value)? {
            continue;
        }
        let number = |v: String| -> Result<u32, String> {
            v.parse::<u32>()
                .map_err(|_| format!("{name} {v}: expected a number"))
        };
        match name {
            "-h" | "--help" => return Ok(ParsedAudit::Help),
            "--uid" => o.uid = number(value("a number")?)?,
            "--gid" => o.gid = number(value("a number")?)?,
            "--json" | "--all" | "--boot-files" if inline.is_some() => {
                return Err(format!("option {name} takes no value"));
            }
            "--json" => o.json = true,
            "--all" => o.all = true,
            "--boot-files" => o.boot_files = true,
            "audit" => {}
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            other => return Err(format!("unexpected argument {other}")),
        }
    }
    Ok(ParsedAudit::Run(Box::new(o)))
}

/// The options `audit` and `relabel` share; `Ok(false)` when `name` is
/// not one of them. `value` takes the option's value (inline after `=`,
/// else the next argument); `inline`: a value was given after `=`.
pub(crate) fn shared_option(
    o: &mut AuditOptions,
    name: &str,
    inline: bool,
    value: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<bool, String> {
    let number = |v: String| -> Result<usize, String> {
        v.parse::<usize>()
            .map_err(|_| format!("{name} {v}: expected a number"))
    };
    match name {
        "--root" => o.root = PathBuf::from(value("a directory")?),
        "--config" => o.config = Some(PathBuf::from(value("a file")?)),
        "--cmdline" => o.cmdline = Some(PathBuf::from(value("a file")?)),
        "--limit" => o.limit = Some(number(value("a number")?)?),
        "--jobs" => {
            o.jobs = number(value("a number")?)?;
            if o.jobs == 0 || o.jobs > 256 {
                return Err(format!("--jobs {}: expected 1 to 256", o.jobs));
            }
        }
        "--evm" => {
            o.evm = Some(match value("on or off")?.as_str() {
                "on" => true,
                "off" => false,
                v => return Err(format!("--evm {v}: expected on or off")),
            })
        }
        "-q" | "--quiet" if inline => return Err(format!("option {name} takes no value")),
        "-q" | "--quiet" => o.quiet = true,
        _ => return Ok(false),
    }
    Ok(true)
}

/// Everything the walk needs, read once.
pub struct Inputs {
    pub policy_path: String,
    pub rules: Vec<rules::AppraiseRule>,
    pub ima_keys: Vec<sig::Key>,
    /// The EVM certificates' keys, for portable EVM signatures.
    pub evm_keys: Vec<sig::Key>,
    pub evm_on: bool,
    pub evm_why: String,
    /// Certificates that could not be used, for the report.
    pub warnings: Vec<String>,
}

/// `inputs`, its error logged once and turned into the usage exit code.
pub(crate) fn inputs_or_usage(o: &AuditOptions) -> Result<Inputs, CommandError> {
    inputs(o).map_err(|e| match e {
        Some(e) => CommandError::usage(format!("configuration error: {e}")),
        None => CommandError::usage_reported(),
    })
}

/// Reads settings, policy and certificates as `load` would; an error is a
/// configuration error (exit 2), `None` when the setup already logged it.
pub fn inputs(o: &AuditOptions) -> Result<Inputs, Option<String>> {
    let options = Options {
        root: Some(o.root.clone()),
        config: o.config.clone(),
        cmdline: o.cmdline.clone(),
        ..Options::default()
    };
    let env = commands::setup(&options, None, false, false).map_err(|e| {
        log::error!("{e}");
        None
    })?;
    let ctx = env.context(true);
    let s = &env.settings;
    let policy_path = s.ima_policy.value.clone();
    let rules = match env.root.read(&policy_path, 8 * 1024 * 1024) {
        Ok(text) => {
            let shown = env.root.display_path(&policy_path);
            let policy = crate::ima_policy::parse(&text)
                .map_err(|e| format!("{}:{}:{}: {}", shown, e.line, e.column, e.reason))?;
            rules::appraise_rules(&policy)
        }
        // The boot files of a root without a policy: nothing is appraised,
        // as `load` writes none.
        Err(e) if o.boot_files && e.is_not_found() => Vec::new(),
        Err(e) => {
            return Err(Some(format!(
                "read IMA policy {e} (IMA_POLICY at {})",
                s.ima_policy.source
            )));
        }
    };
    let mut warnings = Vec::new();
    let mut load_keys = |target| -> Result<Vec<sig::Key>, String> {
        let mut keys = Vec::new();
        for path in certs::configured_paths(&ctx, target)? {
            let shown = env.root.display_path(&path);
            let bytes = match env.root.read_path(&path, crate::x509::MAX_INPUT_LEN) {
                Ok(b) => b,
                Err(e) => {
                    warnings.push(format!("certificate {e}: not used"));
                    continue;
                }
            };
            let key = crate::x509::intake(&bytes)
                .map_err(|e| e.to_string())
                .and_then(|c| sig::key_from_cert(c.der(), c.key_id(), shown.clone()));
            match key {
                Ok(k) => keys.push(k),
                Err(e) => warnings.push(format!(
                    "certificate {shown}: {e}; load refuses it, signatures by its key fail"
                )),
            }
        }
        Ok(keys)
    };
    let ima_keys = load_keys(Target::Ima)?;
    let evm_keys = load_keys(Target::Evm)?;
    let evm_key = crate::steps::present(&ctx, &s.evm_key.value)?;
    let (evm_on, evm_why) = match o.evm {
        Some(on) => (on, "--evm".to_string()),
        None if !evm_keys.is_empty() => (true, format!("{} EVM certificate(s)", evm_keys.len())),
        None if evm_key => (true, format!("evm-key {}", s.evm_key.value)),
        None => (false, "no evm-key and no EVM certificate".to_string()),
    };
    Ok(Inputs {
        policy_path,
        rules,
        ima_keys,
        evm_keys,
        evm_on,
        evm_why,
        warnings,
    })
}

/// The whole command; returns the exit code.
pub fn run(args: &[String]) -> Result<(), CommandError> {
    if args.first().is_some_and(|a| a == "relabel") {
        return relabel::run(args);
    }
    let o = match parse_args(args) {
        Ok(ParsedAudit::Run(o)) => o,
        Ok(ParsedAudit::Help) => {
            print!("{HELP}");
            return Ok(());
        }
        Err(e) => {
            eprintln!("integrity-audit: {e}\nTry 'integrity-audit --help'.");
            return Err(CommandError::usage_reported());
        }
    };
    let mut inputs = inputs_or_usage(&o)?;
    let cmdline = o
        .cmdline
        .as_deref()
        .unwrap_or(std::path::Path::new("/proc/cmdline"));
    if o.boot_files {
        let secure_boot = crate::efi::EfiVars::new(crate::efi::DEFAULT_DIR).secure_boot()
            == crate::efi::SecureBoot::On;
        return boot::run(&o, &inputs, cmdline, secure_boot);
    }
    if let Ok(text) = std::fs::read(cmdline)
        && crate::cmdline::Cmdline::parse_bytes(&text).value("ima_appraise") == Some("fix")
    {
        inputs.warnings.push(format!(
            "the kernel is in IMA fix mode (ima_appraise=fix in {}): opening a file to \
             audit it makes the kernel label it, so this audit labels what it covers \
             and reports the result; audit the root from another system (or before \
             booting in fix mode) to see it unlabelled",
            cmdline.display()
        ));
    }
    let tally = walk::walk(&o, &inputs);
    report::print(&o, &inputs, &tally);
    // The report gave the verdict: files denied or unreadable.
    if tally.denied_total() > 0 || tally.count(&Verdict::Unreadable) > 0 {
        Err(CommandError::reported())
    } else {
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn parse(words: &str) -> Result<AuditOptions, String> {
        let args: Vec<String> = words.split_whitespace().map(String::from).collect();
        match parse_args(&args)? {
            ParsedAudit::Run(o) => Ok(*o),
            ParsedAudit::Help => Err("help".into()),
        }
    }

    #[test]
    fn options() {
        let o = parse("audit --root /r --limit 5 --json --jobs=3 --uid 1000 --evm off").unwrap();
        assert_eq!(o.root, PathBuf::from("/r"));
        assert_eq!((o.limit, o.json, o.jobs, o.uid), (Some(5), true, 3, 1000));
        assert_eq!(o.evm, Some(false));
        for (words, msg) in [
            ("--limit x", "--limit x: expected a number"),
            ("--jobs 0", "--jobs 0: expected 1 to 256"),
            ("--evm maybe", "--evm maybe: expected on or off"),
            ("--json=1", "option --json takes no value"),
            ("--bogus", "unknown option --bogus"),
            ("--root", "option --root needs a directory"),
        ] {
            assert_eq!(parse(words).unwrap_err(), msg, "{words}");
        }
        assert_eq!(parse("-h").unwrap_err(), "help");
    }

    #[test]
    fn help_fits_80_columns() {
        for line in HELP.lines() {
            assert!(line.len() <= 80, "too long: {line}");
        }
    }
}
