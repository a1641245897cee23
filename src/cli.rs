//! Command-line parsing into a typed value: the options every command
//! takes, and the command with the options only it takes, each parsed once
//! into the type the code uses. Hand-written, to keep an argument-parsing
//! crate out of a binary that runs on every boot; options may come before
//! or after the command word, so they are gathered first and then handed
//! to the command that takes them.

use crate::keyring::{KeyringSpec, USER_KEYRING};
use crate::tpm::pcr::PcrSelection;
use std::fmt;
use std::path::PathBuf;

/// One subcommand and the options only it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Load(LoadOptions),
    Check(CheckOptions),
    Status,
    Seal(SealOptions),
    Reseal(SealingOptions),
    SignPolicy(SignPolicyOptions),
}

impl Command {
    /// The command word.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Load(_) => "load",
            Command::Check(_) => "check",
            Command::Status => "status",
            Command::Seal(_) => "seal",
            Command::Reseal(_) => "reseal",
            Command::SignPolicy(_) => "sign-policy",
        }
    }

    /// Every command but load: the installed system's, in `integrity-admin`.
    pub fn is_admin(&self) -> bool {
        !matches!(self, Command::Load(_))
    }
}

/// Options of `load`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// --pins FILE: pins the initramfs carries, overriding the root's.
    pub pins: Option<PathBuf>,
    /// --lsm-rules: write only the IMA policy rules left for after the
    /// LSM's policy load.
    pub lsm_rules: bool,
}

/// Options of `check`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// --pins FILE, as for load.
    pub pins: Option<PathBuf>,
    /// --write-pins FILE: write the root's pins for the initramfs.
    pub write_pins: Option<PathBuf>,
    /// --repin: write pins that differ from the one this boot checked.
    pub repin: bool,
    /// --audit-boot: also audit the files the next boot needs.
    pub audit_boot: bool,
}

/// What `seal` and `reseal` both take: the PCRs and their values, the
/// storage key, the recovery key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealingOptions {
    /// PCR selection (default TPM2_PCRS).
    pub pcrs: Option<PcrSelection>,
    /// Values for a future boot: (PCR, SHA-256 value).
    pub pcr_values: Vec<(u8, [u8; 32])>,
    /// Persistent handle of the storage key (default TPM2_PARENT).
    pub parent: Option<u32>,
    /// File holding the owner hierarchy's auth (to create the storage key).
    pub owner_auth_file: Option<PathBuf>,
    /// Also make a recovery key (printed once) and its file beside the blob.
    pub recovery_key: bool,
    /// reseal: PolicyPCR over the values even when the kmk is sealed to
    /// signed policies (--authorized-by), whose key file then goes.
    pub plain_pcrs: bool,
}

/// Options of `seal`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealOptions {
    pub sealing: SealingOptions,
    /// Where the sealed kmk goes, inside the root (default: MASTERKEY when
    /// MASTERKEYTYPE=tpm2, else /etc/keys/kmk-tpm2.pem).
    pub output: Option<String>,
    /// Also create an evm-key sealed by the new kmk and export it here.
    pub evm_key: Option<String>,
    /// Write /etc/integrity-loader.conf for this kmk.
    pub write_config: bool,
    /// Replace existing files.
    pub force: bool,
    /// Replace even the kmk the configured evm-key blob is sealed by.
    pub orphan_labels: bool,
    /// Seal to the PCR policies this public key (PEM) signs.
    pub authorized_by: Option<PathBuf>,
    /// --type trusted: the kernel makes a trusted kmk (MASTERKEYTYPE=trusted)
    /// instead of the loader sealing a tpm2 one.
    pub trusted: bool,
}

/// Options of `sign-policy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignPolicyOptions {
    /// --key FILE: the private key (PEM) that signs.
    pub key: PathBuf,
    /// --output FILE: the `.pcrsig` file.
    pub output: PathBuf,
    /// --pcrs (default TPM2_PCRS).
    pub pcrs: Option<PcrSelection>,
    /// --pcr-value: the values to approve (default: the TPM's current ones).
    pub pcr_values: Vec<(u8, [u8; 32])>,
    /// --append: add to the signatures --output holds.
    pub append: bool,
}

/// The options every command takes.
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
    /// --run-dir DIR: this boot's records (default /run/integrity-loader).
    pub run_dir: Option<PathBuf>,
    /// --efivars DIR: EFI variables (default /sys/firmware/efi/efivars).
    pub efivars: Option<PathBuf>,
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
            run_dir: None,
            efivars: None,
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
  sign-policy  sign a PCR policy for a kmk sealed with seal --authorized-by
  audit     which files IMA appraisal would deny, before enforcing it
  relabel   (booted with ima_appraise=fix evm=fix) open every appraised
            file so that the kernel labels it
            audit and relabel run integrity-audit from this binary's
            directory (their options: integrity-loader audit --help);
            the other commands but load run integrity-admin from there:
            the initramfs carries neither

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
                    device:/dev/tpmrm0; swtpm:host=H,port=P; mssim:...);
                    for this run only, never written into the config
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
                    the boot needs (init, /bin/sh, systemd, loader, libs)
                    with integrity-audit --boot-files; fail if the kernel
                    would refuse one (host-only initramfs builds pass it)
  --run-dir DIR     this boot's records, such as the PCR values the kmk
                    was unsealed with (default /run/integrity-loader)
  --efivars DIR     EFI variables: Secure Boot, and whether a UKI booted,
                    which decides the PCRs (default /sys/firmware/efi/efivars)
  --lsm-rules       (load, once the LSM has loaded its policy) write only
                    the IMA policy rules the initramfs left for then, those
                    with LSM labels (IMA_LSM_RULES); run by the unit
                    integrity-loader-lsm.service
  -v, --verbose     more detail (repeat for debug)
  -q, --quiet       errors only
  -h, --help        show this help
  -V, --version     show the version

Options of seal:
  --type TYPE       tpm2 (default): the loader seals the kmk and unseals it
                    at boot; trusted: the kernel makes a trusted key
                    (MASTERKEYTYPE=trusted, the chapter's keyctl procedure),
                    bound to PCRs only with --pcrs or TPM2_PCRS set
  --output PATH     sealed kmk, inside the root (default MASTERKEY when
                    MASTERKEYTYPE is the type sealed, else
                    /etc/keys/kmk-tpm2.pem or /etc/keys/kmk-trusted.blob,
                    kmk-trusted-RELEASE.blob with MULTIKERNELMODE=YES)
  --pcrs SPEC       PCRs to seal to (default TPM2_PCRS, sha256:7,11)
  --pcr-value N=HEX expected value of PCR N at unseal (default: current)
  --parent HANDLE   storage key, ECC P-256 or RSA (default TPM2_PARENT,
                    0x81000001); if absent, seal creates an ECC P-256 SRK
                    there; with TPM2_PARENT_NAME set, only the pinned key
                    is taken unless --write-config records another
  --owner-auth-file FILE  owner hierarchy auth, to create the storage key
  --evm-key PATH    also create an evm-key sealed by the kmk, export it here
  --write-config    update /etc/integrity-loader.conf for this kmk (its
                    kmk, PCR, parent and parent Name lines, and EVMKEY
                    with --evm-key; others kept)
  --force           replace existing files (not the kmk the configured
                    evm-key blob is sealed by)
  --replace-kmk-and-orphan-labels  replace that kmk too: the evm-key and
                    every EVM HMAC made with it are lost
  --recovery-key    also make a recovery key, printed once on stdout (write
                    it down), and OUTPUT.recovery: the kmk wrapped under it
                    (Argon2id). A boot the TPM cannot unseal for asks for
                    it (RECOVERY_TIMEOUT, default 60 s); with AUTO_RESEAL=yes
                    it seals the kmk again itself
  --authorized-by FILE  seal to the PCR policies that the public key in
                    FILE (PEM, ECDSA P-256 or RSA) signs (PolicyAuthorize)
                    instead of to PCR values; the key goes to
                    OUTPUT.pcrpkey, the boot reads the signatures from
                    OUTPUT.pcrsig (sign-policy)

Options of sign-policy (offline; systemd's .pcrsig JSON):
  --key FILE        the private key to sign with: ECDSA P-256 (PKCS#8 or
                    SEC1 PEM) or RSA 2048/3072/4096 (PKCS#8 or PKCS#1
                    PEM); read from FILE, never logged
  --pcrs SPEC       PCRs of the policy (default TPM2_PCRS)
  --pcr-value N=HEX the value of PCR N to approve, for each of --pcrs
                    (default: the TPM's current values)
  --output FILE     the signature file (MASTERKEY.pcrsig at boot)
  --append          add to the signatures FILE holds (another kernel)

Options of reseal: --pcrs, --pcr-value, --parent, --owner-auth-file and
the flag --recovery-key, as for seal (defaults: the configuration's). The
kmk comes from --keyring (a kmk still loaded: DROP_KMK=no), else from
unsealing MASTERKEY while the PCRs still match, else from the recovery
key, asked for on the terminal; MASTERKEY and /etc/integrity-loader.conf
are replaced (and MASTERKEY.recovery with --recovery-key). A kmk sealed
with --authorized-by is sealed to the same key's policies again (existing
signatures still open it) unless --plain-pcrs asks for PCR values, which
removes MASTERKEY.pcrpkey and .pcrsig.

seal and reseal replace files the boot reads together so that a crash
leaves the old set or the new: where they must, the new files go to
PATH.next first (PATH.next2 while the configuration names a PATH.next)
and the configuration switches to them in one rename. Temp files a crash
cut short (.NAME.tmpPID, of a process gone) go at the next run.

Exit status: 0 every configured step succeeded, 1 a step failed,
2 usage or configuration error.
";

/// The command word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Word {
    Load,
    Check,
    Status,
    Seal,
    Reseal,
    SignPolicy,
}

/// Options that belong to one command or two, as given, before the
/// command is known.
#[derive(Default)]
struct Gathered {
    pins: Option<PathBuf>,
    write_pins: Option<PathBuf>,
    repin: bool,
    audit_boot: bool,
    lsm_rules: bool,
    sealing: SealingOptions,
    seal: SealOptions,
    signing_key: Option<PathBuf>,
    append: bool,
}

pub fn parse_args(args: &[String]) -> Result<Parsed, UsageError> {
    let mut opts = Options::default();
    let mut g = Gathered::default();
    let mut command: Option<Word> = None;
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
            "--pins" => g.pins = Some(PathBuf::from(value("a file")?)),
            "--write-pins" => g.write_pins = Some(PathBuf::from(value("a file")?)),
            "--run-dir" => opts.run_dir = Some(PathBuf::from(value("a directory")?)),
            "--efivars" => opts.efivars = Some(PathBuf::from(value("a directory")?)),
            "--repin" => g.repin = true,
            "--lsm-rules" => g.lsm_rules = true,
            "--audit-boot" => g.audit_boot = true,
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
            "load" | "check" | "status" | "seal" | "reseal" | "sign-policy"
                if command.is_none() =>
            {
                command = Some(match name {
                    "load" => Word::Load,
                    "check" => Word::Check,
                    "seal" => Word::Seal,
                    "reseal" => Word::Reseal,
                    "sign-policy" => Word::SignPolicy,
                    _ => Word::Status,
                });
            }
            "--output" => g.seal.output = Some(value("a path")?),
            "--pcrs" => {
                let v = value("a PCR selection")?;
                g.sealing.pcrs =
                    Some(PcrSelection::parse(&v).map_err(|e| UsageError(format!("--pcrs: {e}")))?);
            }
            "--pcr-value" => {
                let v = value("N=HEX")?;
                let parsed = v.split_once('=').and_then(|(n, hex)| {
                    let n: u8 = n.parse().ok().filter(|n| *n < 24)?;
                    let value: [u8; 32] = crate::hex::decode(hex).ok()?;
                    Some((n, value))
                });
                g.sealing.pcr_values.push(parsed.ok_or_else(|| {
                    UsageError(format!(
                        "--pcr-value {v}: expected N=64 hex digits (a sha256 PCR value)"
                    ))
                })?);
            }
            "--parent" => {
                let v = value("a handle")?;
                g.sealing.parent = Some(
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
                g.sealing.owner_auth_file = Some(PathBuf::from(value("a file")?))
            }
            "--evm-key" => g.seal.evm_key = Some(value("a path")?),
            "--write-config" => g.seal.write_config = true,
            "--force" => g.seal.force = true,
            "--replace-kmk-and-orphan-labels" => g.seal.orphan_labels = true,
            "--recovery-key" => g.sealing.recovery_key = true,
            "--plain-pcrs" => g.sealing.plain_pcrs = true,
            "--authorized-by" => {
                g.seal.authorized_by = Some(PathBuf::from(value("a public key file")?))
            }
            "--key" => g.signing_key = Some(PathBuf::from(value("a private key file")?)),
            "--append" => g.append = true,
            "--type" => {
                g.seal.trusted = match value("tpm2 or trusted")?.as_str() {
                    "tpm2" => false,
                    "trusted" => true,
                    other => {
                        return Err(UsageError(format!(
                            "--type {other}: expected tpm2 or trusted"
                        )));
                    }
                }
            }
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
                    | "--lsm-rules"
                    | "--audit-boot"
                    | "--replace-kmk-and-orphan-labels"
                    | "--recovery-key"
                    | "--plain-pcrs"
                    | "--append"
            )
        {
            return Err(UsageError(format!("option {name} takes no value")));
        }
    }
    let command = hand_to(command.unwrap_or(Word::Load), g)?;
    Ok(Parsed::Run(command, Box::new(opts)))
}

/// The command with the options it takes; an option it does not take is a
/// usage error.
fn hand_to(word: Word, g: Gathered) -> Result<Command, UsageError> {
    if word != Word::Check && g.write_pins.is_some() {
        return Err(UsageError("--write-pins is an option of check".into()));
    }
    if g.lsm_rules && word != Word::Load {
        return Err(UsageError("--lsm-rules is an option of load".into()));
    }
    if g.audit_boot && word != Word::Check {
        return Err(UsageError("--audit-boot is an option of check".into()));
    }
    if g.repin && g.write_pins.is_none() {
        return Err(UsageError("--repin goes with check --write-pins".into()));
    }
    if !matches!(word, Word::Load | Word::Check) && g.pins.is_some() {
        return Err(UsageError("--pins is an option of load and check".into()));
    }
    if word == Word::Reseal && g.seal.authorized_by.is_some() {
        return Err(UsageError(
            "--authorized-by is an option of seal: reseal keeps the signed policy a kmk is sealed to (or drops it with --plain-pcrs)".into(),
        ));
    }
    if word != Word::Reseal && g.sealing.plain_pcrs {
        return Err(UsageError(
            "--plain-pcrs is an option of reseal: seal seals to PCR values unless --authorized-by is given".into(),
        ));
    }
    if word == Word::SignPolicy {
        return sign_policy_options(g);
    }
    if word == Word::Reseal && g.seal.trusted {
        return Err(UsageError(
            "--type trusted is an option of seal: the kernel never shows a trusted kmk, so reseal cannot seal it again; make a new one with seal --type trusted".into(),
        ));
    }
    if g.seal.trusted && g.sealing.recovery_key {
        return Err(UsageError(
            "--recovery-key goes with a tpm2 kmk: the kernel never shows a trusted kmk, so there is nothing to wrap under a recovery key".into(),
        ));
    }
    let seal_only = g.seal != SealOptions::default();
    if word == Word::Reseal && seal_only {
        return Err(UsageError(
            "--output, --evm-key, --write-config, --force and --replace-kmk-and-orphan-labels are options of seal: reseal replaces MASTERKEY and updates the configuration itself".into(),
        ));
    }
    if g.signing_key.is_some() || g.append {
        return Err(UsageError(
            "--key and --append are options of sign-policy".into(),
        ));
    }
    if !matches!(word, Word::Seal | Word::Reseal)
        && (seal_only || g.sealing != SealingOptions::default())
    {
        return Err(UsageError(
            "--type, --output, --pcrs, --pcr-value, --parent, --owner-auth-file, --evm-key, --write-config, --force, --replace-kmk-and-orphan-labels and --recovery-key are options of seal (the PCR, parent and recovery ones of reseal too)".into(),
        ));
    }
    Ok(match word {
        Word::Load => Command::Load(LoadOptions {
            pins: g.pins,
            lsm_rules: g.lsm_rules,
        }),
        Word::Check => Command::Check(CheckOptions {
            pins: g.pins,
            write_pins: g.write_pins,
            repin: g.repin,
            audit_boot: g.audit_boot,
        }),
        Word::Status => Command::Status,
        Word::Seal => Command::Seal(SealOptions {
            sealing: g.sealing,
            ..g.seal
        }),
        Word::Reseal => Command::Reseal(g.sealing),
        Word::SignPolicy => sign_policy_options(g)?,
    })
}

/// sign-policy's options: the key and the output, required; the PCRs and
/// their values; nothing of seal's else.
fn sign_policy_options(g: Gathered) -> Result<Command, UsageError> {
    let only_output = SealOptions {
        output: g.seal.output.clone(),
        ..SealOptions::default()
    };
    if g.seal != only_output
        || g.sealing.parent.is_some()
        || g.sealing.owner_auth_file.is_some()
        || g.sealing.recovery_key
    {
        return Err(UsageError(
            "sign-policy takes --key, --pcrs, --pcr-value, --output and --append".into(),
        ));
    }
    let (Some(key), Some(output)) = (g.signing_key, g.seal.output) else {
        return Err(UsageError(
            "sign-policy needs --key FILE and --output FILE".into(),
        ));
    };
    Ok(Command::SignPolicy(SignPolicyOptions {
        key,
        output: PathBuf::from(output),
        pcrs: g.sealing.pcrs,
        pcr_values: g.sealing.pcr_values,
        append: g.append,
    }))
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
            Parsed::Run(Command::Load(LoadOptions::default()), Box::default())
        );
        assert_eq!(parse("--help").unwrap(), Parsed::Help);
        assert_eq!(parse("check -V").unwrap(), Parsed::Version);
        let Parsed::Run(cmd, o) =
            parse("check --root /r --securityfs=/s --keyring @s -v -v").unwrap()
        else {
            panic!()
        };
        assert_eq!(cmd, Command::Check(CheckOptions::default()));
        assert_eq!(o.root, Some(PathBuf::from("/r")));
        assert_eq!(o.securityfs, Some(PathBuf::from("/s")));
        assert_eq!(o.keyring, KeyringSpec(SESSION_KEYRING));
        assert_eq!(o.verbosity, 2);
        let Parsed::Run(Command::Status, o) = parse("status --keyring 1234 -q").unwrap() else {
            panic!()
        };
        assert_eq!((o.keyring, o.verbosity), (KeyringSpec(1234), -1));
        let Parsed::Run(Command::Reseal(o), _) = parse("reseal --pcrs sha256:7").unwrap() else {
            panic!()
        };
        assert_eq!(o.pcrs.map(|p| p.to_string()).as_deref(), Some("sha256:7"));
        let Parsed::Run(Command::Seal(o), _) =
            parse("seal --replace-kmk-and-orphan-labels").unwrap()
        else {
            panic!()
        };
        assert!(o.orphan_labels && !o.force);
        assert!(parse("status --replace-kmk-and-orphan-labels").is_err());
        for cmd in ["seal", "reseal"] {
            let sealing = match parse(&format!("{cmd} --recovery-key")).unwrap() {
                Parsed::Run(Command::Seal(o), _) => o.sealing,
                Parsed::Run(Command::Reseal(o), _) => o,
                other => panic!("{other:?}"),
            };
            assert!(sealing.recovery_key);
        }
        assert!(parse("load --recovery-key").is_err());
        let Parsed::Run(Command::Seal(o), _) = parse("seal --type trusted").unwrap() else {
            panic!()
        };
        assert!(o.trusted);
        let Parsed::Run(Command::Seal(o), _) = parse("seal --type=tpm2").unwrap() else {
            panic!()
        };
        assert!(!o.trusted);
        assert!(parse("seal --recovery-key=ABCDE").is_err());
        let Parsed::Run(Command::Load(_), o) = parse("load --dracut-cmdline").unwrap() else {
            panic!()
        };
        assert!(o.dracut_cmdline && o.cmdline.is_none());
        let Parsed::Run(Command::Load(o), _) = parse("load --lsm-rules").unwrap() else {
            panic!()
        };
        assert!(o.lsm_rules);
        assert!(!LoadOptions::default().lsm_rules);
        assert!(parse("check --lsm-rules").is_err());
        let Parsed::Run(Command::SignPolicy(o), _) =
            parse("sign-policy --key k.pem --pcrs sha256:7 --output s.pcrsig --append").unwrap()
        else {
            panic!()
        };
        assert_eq!(o.key, PathBuf::from("k.pem"));
        assert_eq!(o.output, PathBuf::from("s.pcrsig"));
        assert_eq!(o.pcrs.map(|p| p.to_string()).as_deref(), Some("sha256:7"));
        assert!(o.append);
        let Parsed::Run(Command::Seal(o), _) = parse("seal --authorized-by p.pem").unwrap() else {
            panic!()
        };
        assert_eq!(o.authorized_by, Some(PathBuf::from("p.pem")));
        assert!(parse("sign-policy --key k.pem").is_err());
        assert!(parse("sign-policy --key k.pem --output o --force").is_err());
        assert!(parse("seal --key k.pem").is_err());
        assert!(parse("reseal --authorized-by p.pem").is_err());
        assert!(parse("load --authorized-by p.pem").is_err());
        let Parsed::Run(Command::Reseal(o), _) = parse("reseal --plain-pcrs").unwrap() else {
            panic!()
        };
        assert!(o.plain_pcrs);
        for cmd in ["seal", "sign-policy --key k --output o", "status"] {
            assert!(parse(&format!("{cmd} --plain-pcrs")).is_err(), "{cmd}");
        }
        assert!(parse("reseal --plain-pcrs=yes").is_err());
    }

    /// Each command gets its own options, parsed into the types the code
    /// uses, wherever they stand on the line.
    #[test]
    fn options_go_to_their_command() {
        let Parsed::Run(Command::Check(o), _) =
            parse("--pins /p check --write-pins /w --repin").unwrap()
        else {
            panic!()
        };
        assert_eq!(
            o,
            CheckOptions {
                pins: Some(PathBuf::from("/p")),
                write_pins: Some(PathBuf::from("/w")),
                repin: true,
                audit_boot: false,
            }
        );
        let Parsed::Run(Command::Load(o), _) = parse("--pins=/p").unwrap() else {
            panic!()
        };
        assert_eq!(o.pins, Some(PathBuf::from("/p")));
        let value = "0123456789abcdefABCDEF0123456789abcdef0123456789abcdef0123456789";
        let Parsed::Run(Command::Seal(o), _) = parse(&format!(
            "--pcr-value 11={value} seal --pcrs sha256:7,11 --pcr-value 7={} --parent 0x81000002 --output /o",
            "00".repeat(32)
        ))
        .unwrap() else {
            panic!()
        };
        assert_eq!(o.sealing.pcrs, PcrSelection::from_indices(&[7, 11]));
        assert_eq!(
            o.sealing.pcr_values,
            vec![(11, crate::hex::decode(value).unwrap()), (7, [0u8; 32])]
        );
        assert_eq!(o.sealing.parent, Some(0x8100_0002));
        assert_eq!(o.output.as_deref(), Some("/o"));
        for bad in [
            "7=00",
            "24=0000000000000000000000000000000000000000000000000000000000000000",
            "7=000000000000000000000000000000000000000000000000000000000000000g",
        ] {
            assert_eq!(
                parse(&format!("seal --pcr-value {bad}")).unwrap_err().0,
                format!("--pcr-value {bad}: expected N=64 hex digits (a sha256 PCR value)")
            );
        }
        assert!(parse("status --pcrs sha256:7").is_err());
        assert!(parse("reseal --output /o").is_err());
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
            ("check --lsm-rules", "--lsm-rules is an option of load"),
            ("load --lsm-rules=1", "option --lsm-rules takes no value"),
            ("seal --pins /p", "--pins is an option of load and check"),
            (
                "reseal --force",
                "--output, --evm-key, --write-config, --force and --replace-kmk-and-orphan-labels are options of seal: reseal replaces MASTERKEY and updates the configuration itself",
            ),
            ("seal --type user", "--type user: expected tpm2 or trusted"),
            (
                "reseal --type trusted",
                "--type trusted is an option of seal: the kernel never shows a trusted kmk, so reseal cannot seal it again; make a new one with seal --type trusted",
            ),
            (
                "seal --type trusted --recovery-key",
                "--recovery-key goes with a tpm2 kmk: the kernel never shows a trusted kmk, so there is nothing to wrap under a recovery key",
            ),
            (
                "status --type trusted",
                "--type, --output, --pcrs, --pcr-value, --parent, --owner-auth-file, --evm-key, --write-config, --force, --replace-kmk-and-orphan-labels and --recovery-key are options of seal (the PCR, parent and recovery ones of reseal too)",
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
