//! `integrity-audit relabel` (also `integrity-loader relabel`): the
//! chapter's `find / -exec head -n 1` done once per file that matters. On a
//! kernel booted with `ima_appraise=fix evm=fix`, opening a file an appraise
//! rule covers for FILE_CHECK makes the kernel hash it and write its
//! `security.ima` (and the EVM HMAC). The rule evaluation and the walk are
//! the audit's; files only appraised on exec, mmap or kernel reads, and
//! files whose rule wants a signature, are listed for the admin instead.

use super::{AuditOptions, walk};
use crate::cmdline::Cmdline;
use crate::commands::CommandError;
use crate::efi::SecureBoot;
use std::path::{Path, PathBuf};

pub const HELP: &str = "\
Usage: integrity-audit relabel [OPTIONS]
       integrity-loader relabel [OPTIONS]

On a system booted with ima_appraise=fix evm=fix: opens and reads every
regular file an appraise rule of the policy `integrity-loader load` writes
covers when a file is opened (FILE_CHECK), so that the kernel writes its
security.ima hash (and EVM HMAC). Lists the files it cannot label that way:
those whose rule wants a signature (appraise_type=imasig: sign them with
evmctl ima_sign) and those appraised only when executed, mapped or read by
the kernel (label them with evmctl ima_hash or ima_sign). Refuses when the
kernel is not in fix mode, or Secure Boot is on (the kernel then ignores
ima_appraise=fix). Safe to run again. Check the result with integrity-audit.

Options:
  --root DIR          root to relabel (default /); its /etc gives the
                      settings
  --all-filesystems   also enter other filesystems mounted under the root
                      (default: stay on the root's filesystem)
  --jobs N            files opened in parallel (default: the number of CPUs)
  --limit N           list at most N files of each list (default: all)
  --evm on|off        whether EVM appraises (default: on when load would
                      load an evm-key or EVM certificate); on needs evm=fix
  --config FILE       native config (default ROOT/etc/integrity-loader.conf)
  --cmdline FILE      kernel command line (default /proc/cmdline)
  --efivars DIR       EFI variables, for Secure Boot (default
                      /sys/firmware/efi/efivars)
  -q, --quiet         no progress on a terminal
  -h, --help          show this help

Exit status: 0 every covered file was opened and none is left to label by
hand, 1 some could not be opened or need evmctl, 2 usage error, refusal
or configuration error.
";

#[derive(Debug)]
struct Relabel {
    audit: AuditOptions,
    efivars: PathBuf,
}

enum Parsed {
    Run(Box<Relabel>),
    Help,
}

fn parse_args(args: &[String]) -> Result<Parsed, String> {
    let mut o = AuditOptions {
        relabel: true,
        all_filesystems: false,
        ..AuditOptions::default()
    };
    let mut efivars = PathBuf::from(crate::efi::DEFAULT_DIR);
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
        if super::shared_option(&mut o, name, inline.is_some(), &mut value)? {
            continue;
        }
        match name {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--efivars" => efivars = PathBuf::from(value("a directory")?),
            "--all-filesystems" if inline.is_some() => {
                return Err(format!("option {name} takes no value"));
            }
            "--all-filesystems" => o.all_filesystems = true,
            "relabel" => {}
            other if other.starts_with('-') => return Err(format!("unknown option {other}")),
            other => return Err(format!("unexpected argument {other}")),
        }
    }
    Ok(Parsed::Run(Box::new(Relabel { audit: o, efivars })))
}

/// Why the running kernel would not label files on open; `None` when it
/// would.
fn refusal(cmdline: &str, secure_boot: SecureBoot, evm_on: bool) -> Option<String> {
    let c = Cmdline::parse(cmdline);
    let ima = c.value("ima_appraise");
    if ima != Some("fix") {
        return Some(format!(
            "the kernel is not in IMA fix mode (ima_appraise={} on its command line): \
             opening a file would not label it; boot once with ima_appraise=fix evm=fix \
             added to the kernel command line, then run relabel",
            ima.unwrap_or("<absent>")
        ));
    }
    if secure_boot == SecureBoot::On {
        return Some(
            "secure boot is on, and then the kernel ignores ima_appraise=fix (its \
             architecture policy appraises): turn Secure Boot off in the firmware for \
             the relabelling boot, or sign the files with evmctl ima_sign"
                .into(),
        );
    }
    let evm = c.value("evm");
    if evm_on && evm != Some("fix") {
        return Some(format!(
            "EVM is on and the kernel is not in EVM fix mode (evm={} on its command \
             line): files without a valid security.evm stay refused; boot once with \
             ima_appraise=fix evm=fix, or pass --evm off if this system does not use EVM",
            evm.unwrap_or("<absent>")
        ));
    }
    None
}

/// The whole command; returns the exit code.
pub fn run(args: &[String]) -> Result<(), CommandError> {
    let r = match parse_args(args) {
        Ok(Parsed::Run(r)) => r,
        Ok(Parsed::Help) => {
            print!("{HELP}");
            return Ok(());
        }
        Err(e) => {
            eprintln!("integrity-audit relabel: {e}\nTry 'integrity-audit relabel --help'.");
            return Err(CommandError::usage_reported());
        }
    };
    let o = &r.audit;
    let inputs = super::inputs_or_usage(o)?;
    let cmdline_path = o
        .cmdline
        .clone()
        .unwrap_or_else(|| PathBuf::from("/proc/cmdline"));
    let cmdline = match std::fs::read(&cmdline_path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => {
            return Err(CommandError::usage(format!(
                "relabel: read {}: {}; pass the kernel command line with --cmdline FILE",
                cmdline_path.display(),
                e.to_string().to_ascii_lowercase()
            )));
        }
    };
    let secure_boot = crate::efi::EfiVars::new(&r.efivars).secure_boot();
    if let Some(why) = refusal(&cmdline, secure_boot, inputs.evm_on) {
        return Err(CommandError::usage(format!("relabel refused: {why}")));
    }
    let tally = walk::walk(o, &inputs);
    super::report::print_relabel(o, &inputs, &tally, Path::new(&cmdline_path));
    // The report said what is left and why.
    if tally.left_to_label() > 0 || tally.count(&super::Verdict::Unreadable) > 0 {
        Err(CommandError::reported())
    } else {
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    fn parse(words: &str) -> Result<Relabel, String> {
        let args: Vec<String> = words.split_whitespace().map(String::from).collect();
        match parse_args(&args)? {
            Parsed::Run(r) => Ok(*r),
            Parsed::Help => Err("help".into()),
        }
    }

    #[test]
    fn options() {
        let r = parse("relabel --root /r --jobs=3 --all-filesystems --efivars /e").unwrap();
        assert_eq!(r.audit.root, PathBuf::from("/r"));
        assert!(r.audit.relabel && r.audit.all_filesystems);
        assert_eq!((r.audit.jobs, r.efivars), (3, PathBuf::from("/e")));
        assert!(!parse("relabel").unwrap().audit.all_filesystems);
        for (words, msg) in [
            ("--jobs 0", "--jobs 0: expected 1 to 256"),
            (
                "--all-filesystems=1",
                "option --all-filesystems takes no value",
            ),
            ("--json", "unknown option --json"),
            ("x", "unexpected argument x"),
        ] {
            assert_eq!(parse(words).unwrap_err(), msg, "{words}");
        }
    }

    #[test]
    fn fix_mode_is_required() {
        let fix = "root=/dev/vda ima_appraise=fix evm=fix";
        assert_eq!(refusal(fix, SecureBoot::Unknown, true), None);
        assert_eq!(
            refusal("ima_appraise=fix", SecureBoot::Unknown, false),
            None
        );
        let why = refusal("root=/dev/vda", SecureBoot::Unknown, false).unwrap();
        assert!(why.contains("ima_appraise=<absent>"), "{why}");
        let why = refusal(
            "ima_appraise=fix ima_appraise=enforce",
            SecureBoot::Unknown,
            false,
        )
        .unwrap();
        assert!(why.contains("ima_appraise=enforce"), "{why}");
        let why = refusal("ima_appraise=fix", SecureBoot::Unknown, true).unwrap();
        assert!(why.contains("evm=<absent>"), "{why}");
        let why = refusal(fix, SecureBoot::On, true).unwrap();
        assert!(why.starts_with("secure boot is on"), "{why}");
        assert_eq!(refusal(fix, SecureBoot::Off, true), None);
    }

    #[test]
    fn help_fits_80_columns() {
        for line in HELP.lines() {
            assert!(line.len() <= 80, "too long: {line}");
        }
    }
}
