//! Command-line parsing into a typed value. Hand-written: four options do not
//! pay for an argument-parsing crate in a binary that runs on every boot.

use crate::keyring::{KeyringSpec, USER_KEYRING};
use std::fmt;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Load,
    Check,
    Status,
    Seal,
    Reseal,
}

/// Options of `seal` only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealOptions {
    /// Where the sealed kmk goes, inside the root (default: MASTERKEY when
    /// MASTERKEYTYPE=tpm2, else /etc/keys/kmk-tpm2.pem).
    pub output: Option<String>,
    /// PCR selection (default TPM2_PCRS).
    pub pcrs: Option<String>,
    /// Values for a future boot: (PCR, hex digest).
    pub pcr_values: Vec<(u8, String)>,
    /// Persistent handle of the storage key (default TPM2_PARENT).
    pub parent: Option<u32>,
    /// File holding the owner hierarchy's auth (to create the storage key).
    pub owner_auth_file: Option<PathBuf>,
    /// Also create an evm-key sealed by the new kmk and export it here.
    pub evm_key: Option<String>,
    /// Write /etc/integrity-loader.conf for this kmk.
    pub write_config: bool,
    /// Replace existing files.
    pub force: bool,
    /// Replace even the kmk the configured evm-key blob is sealed by.
    pub orphan_labels: bool,
    /// Also make a recovery key (printed once) and its file beside the blob.
    pub recovery_key: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub root: Option<PathBuf>,
    pub securityfs: Option<PathBuf>,
    pub cmdline: Option<PathBuf>,
    /// --dracut-cmdline: the command line as dracut's getcmdline joins it.
    pub dracut_cmdline: bool,
    pub keyring: KeyringSpec,
    pub config: Option<PathBuf>,
    /// --tpm TCTI, overriding TPM= of the config.
    pub tpm: Option<String>,
    /// --pins FILE: pins the initramfs carries, overriding the root's.
    pub pins: Option<PathBuf>,
    /// check --write-pins FILE: write the root's pins for the initramfs.
    pub write_pins: Option<PathBuf>,
    /// --run-dir DIR: this boot's records (default /run/integrity-loader).
    pub run_dir: Option<PathBuf>,
    /// check --repin: write pins that differ from the one this boot checked.
    pub repin: bool,
    /// check --audit-boot: also audit the files the next boot needs.
    pub audit_boot: bool,
    pub seal: SealOptions,
    /// -1 quiet, 0 normal, 1+ verbose.
    pub verbosity: i8,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            root: None,
            securityfs: None,
            cmdline: None,
            dracut_cmdline: false,
            keyring: KeyringSpec(USER_KEYRING),
            config: None,
            tpm: None,
            pins: None,
            write_pins: None,
            run_dir: None,
            repin: false,
            audit_boot: false,
            seal: SealOptions::default(),
            verbosity: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Run(Command, Box<Options>),
    Help,
    Version,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

pub const HELP: &str = "\
Usage: integrity-loader [COMMAND] [OPTIONS]

Turns on IMA/EVM at boot: loads the kernel master key, the EVM key and the
IMA/EVM certificates, writes the IMA policy and enables EVM. Reads dracut's
/etc/sysconfig/{masterkey,evm,ima} and /etc/integrity-loader.conf.

Commands:
  load      run the boot sequence (the default)
  check     read and validate everything load would use; change nothing
  status    show loaded keys and certificates, EVM state, policy state
  seal      (on the installed system) seal a new kmk in the TPM
  reseal    seal the same kmk again: new PCR values, PCR set or storage key
  audit     which files IMA appraisal would deny, before enforcing it
  relabel   (booted with ima_appraise=fix evm=fix) open every appraised
            file so that the kernel labels it
            audit and relabel run integrity-audit from this binary's
            directory; their options: integrity-loader audit --help

Options:
  --root DIR        real root holding config, keys and policy
                    (default: $NEWROOT, else /sysroot if it has /etc, else /)
  --securityfs DIR  securityfs (default /sys/kernel/security, mounted if needed)
  --cmdline FILE    kernel command line (default /proc/cmdline)
  --dracut-cmdline  the command line as dracut's getcmdline joins it:
                    /etc/cmdline.d/*.conf, /etc/cmdline, /proc/cmdline
  --keyring SPEC    where keys go: @u (default), @s, @us, or a key id
  --config FILE     native config (default ROOT/etc/integrity-loader.conf)
  --tpm TCTI        TPM to use, as tpm2-tools spell it (default
                    device:/dev/tpmrm0; swtpm:host=H,port=P; mssim:...)
  --pins FILE       pins carried by the initramfs (the kmk's type, blob
                    digest and storage key, halt...), overriding the
                    root's configuration (the dracut hook passes the file
                    a host-only build wrote)
  --write-pins FILE (check) write the root's pins there, for the initramfs;
                    the file is removed when the root pins nothing; for
                    the root /, refused when they differ from the pin this
                    boot checked, unless --repin
  --audit-boot      (check) when the policy appraises and the command line
                    has no ima_appraise=fix|log|off: also audit the files
                    the boot needs (init, /bin/sh, loader, libc, systemd)
                    with integrity-audit --boot-files; fail if the kernel
                    would refuse one (host-only initramfs builds pass it)
  --run-dir DIR     this boot's records, such as the PCR values the kmk
                    was unsealed with (default /run/integrity-loader)
  -v, --verbose     more detail (repeat for debug)
  -q, --quiet       errors only
  -h, --help        show this help
  -V, --version     show the version

Options of seal:
  --output PATH     sealed kmk, inside the root (default MASTERKEY when
                    MASTERKEYTYPE=tpm2, else /etc/keys/kmk-tpm2.pem)
  --pcrs SPEC       PCRs to seal to (default TPM2_PCRS, sha256:7,11)
  --pcr-value N=HEX expected value of PCR N at unseal (default: current)
  --parent HANDLE   storage key, ECC P-256 or RSA (default TPM2_PARENT,
                    0x81000001); if absent, seal creates an ECC P-256 SRK
                    there; with TPM2_PARENT_NAME set, only the pinned key
                    is taken unless --write-config records another
  --owner-auth-file FILE  owner hierarchy auth, to create the storage key
  --evm-key PATH    also create an evm-key sealed by the kmk, export it here
  --write-config    update /etc/integrity-loader.conf for this kmk (its
                    kmk, PCR, parent and parent Name lines; others kept)
  --force           replace existing files (not the kmk the configured
                    evm-key blob is sealed by)
  --replace-kmk-and-orphan-labels  replace that kmk too: the evm-key and
                    every EVM HMAC made with it are lost
  --recovery-key    also make a recovery key, printed once on stdout (write
                    it down), and OUTPUT.recovery: the kmk wrapped under it
                    (Argon2id). A boot the TPM cannot unseal for asks for
                    it on the console (RECOVERY_TIMEOUT, default 60 s)

Options of reseal: --pcrs, --pcr-value, --parent, --owner-auth-file and
the flag --recovery-key, as for seal (defaults: the configuration's). The
kmk comes from --keyring (a kmk still loaded: DROP_KMK=no), else from
unsealing MASTERKEY while the PCRs still match, else from the recovery
key, asked for on the terminal; MASTERKEY and /etc/integrity-loader.conf
are replaced (and MASTERKEY.recovery with --recovery-key).

Exit status: 0 every configured step succeeded, 1 a step failed,
2 usage or configuration error.
";

pub fn parse_args(args: &[String]) -> Result<Parsed, UsageError> {
    let mut opts = Options::default();
    let mut command: Option<Command> = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = |what: &str| -> Result<String, UsageError> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| UsageError(format!("option {name} needs {what}"))),
            }
        };
        match name {
            "-h" | "--help" => return Ok(Parsed::Help),
            "-V" | "--version" => return Ok(Parsed::Version),
            "-v" | "--verbose" => opts.verbosity = opts.verbosity.max(0).saturating_add(1),
            "-vv" => opts.verbosity = 2,
            "-q" | "--quiet" => opts.verbosity = -1,
            "--root" => opts.root = Some(PathBuf::from(value("a directory")?)),
            "--securityfs" => opts.securityfs = Some(PathBuf::from(value("a directory")?)),
            "--cmdline" => opts.cmdline = Some(PathBuf::from(value("a file")?)),
            "--config" => opts.config = Some(PathBuf::from(value("a file")?)),
            "--pins" => opts.pins = Some(PathBuf::from(value("a file")?)),
            "--write-pins" => opts.write_pins = Some(PathBuf::from(value("a file")?)),
            "--run-dir" => opts.run_dir = Some(PathBuf::from(value("a directory")?)),
            "--repin" => opts.repin = true,
            "--audit-boot" => opts.audit_boot = true,
            "--dracut-cmdline" => opts.dracut_cmdline = true,
            "--tpm" => {
                let v = value("a TCTI")?;
                crate::tpm::tcti::parse(&v).map_err(|e| UsageError(format!("--tpm: {e}")))?;
                opts.tpm = Some(v);
            }
            "--keyring" => {
                let v = value("a keyring")?;
                opts.keyring = KeyringSpec::parse(&v).ok_or_else(|| {
                    UsageError(format!(
                        "--keyring {v}: expected @u, @s, @us, @p, @t or a key id"
                    ))
                })?;
            }
            "load" | "check" | "status" | "seal" | "reseal" if command.is_none() => {
                command = Some(match name {
                    "load" => Command::Load,
                    "check" => Command::Check,
                    "seal" => Command::Seal,
                    "reseal" => Command::Reseal,
                    _ => Command::Status,
                });
            }
            "--output" => opts.seal.output = Some(value("a path")?),
            "--pcrs" => {
                let v = value("a PCR selection")?;
                crate::tpm::pcr::PcrSelection::parse(&v)
                    .map_err(|e| UsageError(format!("--pcrs: {e}")))?;
                opts.seal.pcrs = Some(v);
            }
            "--pcr-value" => {
                let v = value("N=HEX")?;
                let parsed = v.split_once('=').and_then(|(n, hex)| {
                    let n: u8 = n.parse().ok().filter(|n| *n < 24)?;
                    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
                        .then(|| (n, hex.to_string()))
                });
                opts.seal.pcr_values.push(parsed.ok_or_else(|| {
                    UsageError(format!(
                        "--pcr-value {v}: expected N=64 hex digits (a sha256 PCR value)"
                    ))
                })?);
            }
            "--parent" => {
                let v = value("a handle")?;
                opts.seal.parent = Some(
                    u32::from_str_radix(v.trim_start_matches("0x"), 16)
                        .ok()
                        .filter(|h| (0x8100_0000..=0x817F_FFFF).contains(h))
                        .ok_or_else(|| {
                            UsageError(format!(
                                "--parent {v}: expected a persistent handle 0x81000000..0x817FFFFF"
                            ))
                        })?,
                );
            }
            "--owner-auth-file" => {
                opts.seal.owner_auth_file = Some(PathBuf::from(value("a file")?))
            }
            "--evm-key" => opts.seal.evm_key = Some(value("a path")?),
            "--write-config" => opts.seal.write_config = true,
            "--force" => opts.seal.force = true,
            "--replace-kmk-and-orphan-labels" => opts.seal.orphan_labels = true,
            "--recovery-key" => opts.seal.recovery_key = true,
            "audit" | "relabel" => {
                return Err(UsageError(format!(
                    "{name} must come first: integrity-loader {name} [OPTIONS]"
                )));
            }
            other if other.starts_with('-') => {
                return Err(UsageError(format!("unknown option {other}")));
            }
            other => return Err(UsageError(format!("unexpected argument {other}"))),
        }
        if inline.is_some()
            && matches!(
                name,
                "-v" | "--verbose"
                    | "-q"
                    | "--quiet"
                    | "--write-config"
                    | "--force"
                    | "--repin"
                    | "--audit-boot"
                    | "--replace-kmk-and-orphan-labels"
                    | "--recovery-key"
            )
        {
            return Err(UsageError(format!("option {name} takes no value")));
        }
    }
    let command = command.unwrap_or(Command::Load);
    if command != Command::Check && opts.write_pins.is_some() {
        return Err(UsageError("--write-pins is an option of check".into()));
    }
    if command != Command::Check && opts.audit_boot {
        return Err(UsageError("--audit-boot is an option of check".into()));
    }
    if opts.repin && opts.write_pins.is_none() {
        return Err(UsageError("--repin goes with check --write-pins".into()));
    }
    if !matches!(command, Command::Load | Command::Check) && opts.pins.is_some() {
        return Err(UsageError("--pins is an option of load and check".into()));
    }
    let o = &opts.seal;
    let seal_only =
        o.output.is_some() || o.evm_key.is_some() || o.write_config || o.force || o.orphan_labels;
    if command == Command::Reseal && seal_only {
        return Err(UsageError(
            "--output, --evm-key, --write-config, --force and --replace-kmk-and-orphan-labels are options of seal: reseal replaces MASTERKEY and updates the configuration itself".into(),
        ));
    }
    if !matches!(command, Command::Seal | Command::Reseal) && opts.seal != SealOptions::default() {
        return Err(UsageError(
            "--output, --pcrs, --pcr-value, --parent, --owner-auth-file, --evm-key, --write-config, --force, --replace-kmk-and-orphan-labels and --recovery-key are options of seal (the PCR, parent and recovery ones of reseal too)".into(),
        ));
    }
    Ok(Parsed::Run(command, Box::new(opts)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::SESSION_KEYRING;

    fn parse(words: &str) -> Result<Parsed, UsageError> {
        let args: Vec<String> = words.split_whitespace().map(String::from).collect();
        parse_args(&args)
    }

    #[test]
    fn table() {
        assert_eq!(
            parse("").unwrap(),
            Parsed::Run(Command::Load, Box::default())
        );
        assert_eq!(parse("--help").unwrap(), Parsed::Help);
        assert_eq!(parse("check -V").unwrap(), Parsed::Version);
        let Parsed::Run(cmd, o) =
            parse("check --root /r --securityfs=/s --keyring @s -v -v").unwrap()
        else {
            panic!()
        };
        assert_eq!(cmd, Command::Check);
        assert_eq!(o.root, Some(PathBuf::from("/r")));
        assert_eq!(o.securityfs, Some(PathBuf::from("/s")));
        assert_eq!(o.keyring, KeyringSpec(SESSION_KEYRING));
        assert_eq!(o.verbosity, 2);
        let Parsed::Run(Command::Status, o) = parse("status --keyring 1234 -q").unwrap() else {
            panic!()
        };
        assert_eq!((o.keyring, o.verbosity), (KeyringSpec(1234), -1));
        let Parsed::Run(Command::Reseal, o) = parse("reseal --pcrs sha256:7").unwrap() else {
            panic!()
        };
        assert_eq!(o.seal.pcrs.as_deref(), Some("sha256:7"));
        let Parsed::Run(Command::Seal, o) = parse("seal --replace-kmk-and-orphan-labels").unwrap()
        else {
            panic!()
        };
        assert!(o.seal.orphan_labels && !o.seal.force);
        assert!(parse("status --replace-kmk-and-orphan-labels").is_err());
        for cmd in ["seal", "reseal"] {
            let Parsed::Run(_, o) = parse(&format!("{cmd} --recovery-key")).unwrap() else {
                panic!()
            };
            assert!(o.seal.recovery_key);
        }
        assert!(parse("load --recovery-key").is_err());
        assert!(parse("seal --recovery-key=ABCDE").is_err());
        let Parsed::Run(Command::Load, o) = parse("load --dracut-cmdline").unwrap() else {
            panic!()
        };
        assert!(o.dracut_cmdline && o.cmdline.is_none());
    }

    #[test]
    fn usage_errors() {
        for (words, msg) in [
            ("--root", "option --root needs a directory"),
            ("--bogus", "unknown option --bogus"),
            ("load check", "unexpected argument check"),
            ("frobnicate", "unexpected argument frobnicate"),
            (
                "--root /r audit",
                "audit must come first: integrity-loader audit [OPTIONS]",
            ),
            (
                "--keyring @x",
                "--keyring @x: expected @u, @s, @us, @p, @t or a key id",
            ),
            ("--verbose=2", "option --verbose takes no value"),
            ("load --write-pins /p", "--write-pins is an option of check"),
            ("status --audit-boot", "--audit-boot is an option of check"),
            ("--pins", "option --pins needs a file"),
            ("seal --pins /p", "--pins is an option of load and check"),
            (
                "reseal --force",
                "--output, --evm-key, --write-config, --force and --replace-kmk-and-orphan-labels are options of seal: reseal replaces MASTERKEY and updates the configuration itself",
            ),
            (
                "seal --replace-kmk-and-orphan-labels=yes",
                "option --replace-kmk-and-orphan-labels takes no value",
            ),
        ] {
            assert_eq!(parse(words).unwrap_err().0, msg, "{words}");
        }
    }

    #[test]
    fn help_fits_80_columns() {
        for line in HELP.lines() {
            assert!(line.len() <= 80, "too long: {line}");
        }
    }
}
