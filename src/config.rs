//! Everything `load` needs to know, resolved from (lowest to highest
//! precedence) built-in defaults equal to dracut's, dracut's
//! /etc/sysconfig/{masterkey,evm,ima}, our /etc/integrity-loader.conf, and the
//! kernel command line (`masterkey=`, `masterkeytype=`, `evmkey=`,
//! `evmx509=`, `rd.debug`), as dracut's 97masterkey and 98integrity do.

use crate::cmdline::Cmdline;
use crate::plan::StepId;
use crate::rootfs::{FileError, Root};
use crate::sysconfig::{self, Assignment, Assignments};
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

pub const MASTERKEY_CONFIG: &str = "/etc/sysconfig/masterkey";
pub const EVM_CONFIG: &str = "/etc/sysconfig/evm";
pub const IMA_CONFIG: &str = "/etc/sysconfig/ima";
pub const NATIVE_CONFIG: &str = "/etc/integrity-loader.conf";
/// Config files are a few lines; anything bigger is not one.
const CONFIG_LIMIT: usize = 64 * 1024;

/// Where a value came from, for messages and for naming the kmk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Default,
    File {
        path: PathBuf,
        line: usize,
    },
    Cmdline(&'static str),
    /// The default, because the kernel command line gives the option empty
    /// (`name=` or a bare `name`): dracut then drops the files' value.
    CmdlineEmpty(&'static str),
    /// A command-line option of integrity-loader itself.
    Argument(&'static str),
    /// The header of the evm-key blob at this path (the kmk's name).
    EvmKeyBlob(String),
}

impl Source {
    pub fn is_default(&self) -> bool {
        *self == Source::Default
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => write!(f, "default"),
            Source::File { path, line } => write!(f, "{}:{line}", path.display()),
            Source::Cmdline(name) => write!(f, "kernel command line {name}="),
            Source::CmdlineEmpty(name) => {
                write!(f, "default: kernel command line {name}= is empty")
            }
            Source::Argument(name) => write!(f, "option {name}"),
            Source::EvmKeyBlob(path) => write!(f, "the header of the evm-key blob {path}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    pub source: Source,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterKeyType {
    /// The kernel unseals a TPM-sealed blob itself.
    Trusted,
    /// Plain key bytes from a file.
    User,
    /// A TPM 2.0 sealed-data object we unseal in userspace; loaded as the
    /// `user` key `kmk` (kernels without trusted keys, Debian's among them).
    Tpm2,
}

impl MasterKeyType {
    pub fn name(self) -> &'static str {
        match self {
            MasterKeyType::Trusted => "trusted",
            MasterKeyType::User => "user",
            MasterKeyType::Tpm2 => "tpm2",
        }
    }

    /// The kernel key type the kmk is loaded as.
    pub fn kernel_type(self) -> &'static str {
        match self {
            MasterKeyType::Trusted => "trusted",
            MasterKeyType::User | MasterKeyType::Tpm2 => "user",
        }
    }
}

/// How to reach the TPM and what the sealed kmk is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmSettings {
    /// TCTI string as tpm2-tools take it (`device:/dev/tpmrm0`, `swtpm:...`).
    pub tcti: Setting<String>,
    /// Persistent handle of the storage key the kmk is sealed under.
    pub parent: u32,
    /// TPM2_PARENT was set (a trusted kmk's payload then names it).
    pub parent_configured: bool,
    /// TPM2_PARENT_NAME: the Name the storage key must have before a
    /// session is salted to it.
    pub parent_name: Option<Setting<[u8; crate::tpm::parent_pin::NAME_LEN]>>,
    /// TPM2_PARENT_PUBLIC: the storage key's public area (TPMT_PUBLIC), so
    /// the unseal need not ask the TPM for it; used only when its Name is
    /// the pinned one.
    pub parent_public: Option<Vec<u8>>,
    /// TPM2_PCR_VALUES: the values the kmk was sealed to, so the PCR lock's
    /// record need not read them; used only when they give the sealed
    /// object's policy.
    pub pcr_values: Option<Vec<(u8, [u8; 32])>>,
    /// The PCRs of the sealing policy.
    pub pcrs: Setting<String>,
    /// TPM2_PCRLOCK: the PCR extended once the kmk is unsealed, so nothing
    /// later in this boot can unseal it again; `None` for no lock.
    pub pcr_lock: Option<u8>,
    /// TPM2_PCRLOCK was set (or pinned), not chosen by `pcr_choice`.
    pub pcr_lock_explicit: bool,
    /// How long one TPM command may take before the step fails.
    pub timeout: std::time::Duration,
    /// TPM_STEP_TIMEOUT: how long all of a step's TPM commands may take,
    /// retries included.
    pub step_timeout: std::time::Duration,
    /// RECOVERY_TIMEOUT: how long the boot asks for the recovery key when
    /// the TPM does not unseal the kmk; zero never asks.
    pub recovery_timeout: std::time::Duration,
    /// AUTO_RESEAL: after a boot the recovery key opened the kmk in, seal
    /// it again to this boot's PCR values (when the initramfs pins no blob
    /// and the root is writable), so the next boot needs no key.
    pub auto_reseal: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureAction {
    /// Report and go on with the steps that do not depend on the failed one
    /// (dracut's behaviour).
    Continue,
    /// Stop at the first failure; the dracut hook then drops to the
    /// emergency shell.
    Halt,
}

impl FailureAction {
    /// FAILURE_ACTION's value; empty is the default.
    pub fn parse(text: &str) -> Result<FailureAction, String> {
        match text {
            "continue" | "" => Ok(FailureAction::Continue),
            "halt" => Ok(FailureAction::Halt),
            other => Err(format!(
                "FAILURE_ACTION=\"{other}\": expected continue or halt"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FailureAction::Continue => "continue",
            FailureAction::Halt => "halt",
        }
    }
}

/// REQUIRE's value: step names separated by spaces or commas.
pub fn parse_required(text: &str) -> Result<BTreeSet<StepId>, String> {
    let mut required = BTreeSet::new();
    for word in text.split([' ', ',', '\t']).filter(|w| !w.is_empty()) {
        let Some(id) = StepId::parse(word) else {
            let names: Vec<&str> = StepId::ALL.iter().map(|s| s.name()).collect();
            return Err(format!(
                "REQUIRE names unknown step \"{word}\"; steps are {}",
                names.join(", ")
            ));
        };
        required.insert(id);
    }
    Ok(required)
}

/// MASTERKEYTYPE's value.
pub fn parse_masterkey_type(text: &str) -> Result<MasterKeyType, String> {
    match text {
        "trusted" => Ok(MasterKeyType::Trusted),
        "user" => Ok(MasterKeyType::User),
        "tpm2" => Ok(MasterKeyType::Tpm2),
        other => Err(format!(
            "master key type \"{other}\" is not supported; use trusted, user or tpm2"
        )),
    }
}

/// TPM2_PCRLOCK's value: a PCR, or `no`; empty is `default`.
pub fn parse_pcr_lock(text: &str, default: Option<u8>) -> Result<Option<u8>, String> {
    match text {
        "" => Ok(default),
        "no" => Ok(None),
        v => match v.parse::<u8>() {
            Ok(pcr) if pcr < 24 => Ok(Some(pcr)),
            _ => Err(format!(
                "TPM2_PCRLOCK=\"{v}\": expected a PCR number 0..23, or no"
            )),
        },
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyWrite {
    /// By path when the policy file carries an IMA signature, else rule by rule.
    Auto,
    Path,
    Rules,
}

/// IMA_LSM_RULES: where a policy with LSM-label rules is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LsmRules {
    /// `split` when the kernel takes a second policy load
    /// (CONFIG_IMA_WRITE_POLICY in its config file), else `later`.
    Auto,
    /// The initramfs writes the rules that do not wait for the LSM, the
    /// unit after the LSM's policy load appends the rest.
    Split,
    /// The whole policy is written after the LSM's policy load.
    Later,
    /// Everything in the initramfs (its LSM policy is loaded before).
    Initramfs,
}

/// The resolved configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub masterkey_type: Setting<MasterKeyType>,
    pub masterkey: Setting<String>,
    /// MULTIKERNELMODE=YES in /etc/sysconfig/masterkey: the default
    /// MASTERKEY ends in the kernel release (kmk-TYPE-RELEASE.blob).
    pub multikernel: bool,
    /// Description of the kmk in the keyring: KMK_NAME when set (or
    /// pinned); else the name the evm-key blob's header gives its master
    /// key; else `kmk-<type>` as dracut names it, or `kmk` (the kernel
    /// documentation's name) when set up natively.
    pub kmk_name: String,
    /// Where `kmk_name` comes from (Default: neither KMK_NAME nor the blob).
    pub kmk_name_source: Source,
    /// `pcrlock=N` added when loading a trusted kmk, as dracut does (11).
    pub trusted_pcrlock: Option<u32>,
    pub tpm: TpmSettings,
    pub evm_key: Setting<String>,
    pub evm_x509: Setting<String>,
    pub evm_keys_dir: Setting<String>,
    pub evm_activation_bits: Setting<u32>,
    pub ima_policy: Setting<String>,
    pub ima_keys_dir: Setting<String>,
    pub failure_action: FailureAction,
    pub required: BTreeSet<StepId>,
    /// DROP_KMK as configured; unset, see `drops_kmk`.
    pub drop_kmk: Option<Setting<bool>>,
    /// The SHA-256 of the kmk blob file (for a tpm2-tools pair, of the
    /// `.pub`, which binds the sealed data): only an initramfs pins it.
    pub masterkey_sha256: Option<Setting<[u8; 32]>>,
    /// The SHA-256 of the recovery file beside the kmk blob, or `None` for
    /// "there was none": only an initramfs pins it. With the kmk pinned, a
    /// recovery file the initramfs does not pin is never used.
    pub recovery_sha256: Option<Setting<Option<[u8; 32]>>>,
    pub policy_write: PolicyWrite,
    pub lsm_rules: LsmRules,
    /// LOCK_KEYRINGS: once certificates are in the userspace `_ima`/`_evm`
    /// keyrings, refuse any later link into them.
    pub lock_keyrings: bool,
    pub debug: bool,
    /// ConfigInputs' `stub_pcr`: a UKI booted, measured into this PCR.
    pub stub_pcr: Option<u8>,
    /// dracut's files that could not be used (unreadable, not data, a bad
    /// value): the steps reading their keys fail with the error; the other
    /// steps run.
    pub unusable: Vec<UnusableFile>,
}

/// One of dracut's /etc/sysconfig files that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnusableFile {
    /// `MASTERKEY_CONFIG`, `EVM_CONFIG` or `IMA_CONFIG`.
    pub file: &'static str,
    pub error: ConfigError,
}

impl UnusableFile {
    /// The steps that read this file's keys.
    pub fn steps(&self) -> &'static [StepId] {
        match self.file {
            MASTERKEY_CONFIG => &[StepId::Kmk],
            EVM_CONFIG => &[StepId::EvmKey, StepId::EvmCerts, StepId::Evm],
            _ => &[StepId::ImaCerts, StepId::ImaPolicy],
        }
    }
}

/// A configuration problem: file, line, column when known, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub place: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.message)
    }
}

impl std::error::Error for ConfigError {}

impl From<FileError> for ConfigError {
    fn from(e: FileError) -> Self {
        ConfigError {
            place: e.path.display().to_string(),
            message: e.kind.to_string(),
        }
    }
}

/// Inputs for resolving the settings.
pub struct ConfigInputs<'a> {
    pub root: &'a Root,
    /// `--config FILE` (a path on this machine), else the root's default.
    pub native_config: Option<&'a Path>,
    pub cmdline: &'a Cmdline,
    /// `uname -r`, for MULTIKERNELMODE=YES.
    pub kernel_release: &'a str,
    /// The PCR systemd-stub measured this boot's UKI into (EFI variable
    /// StubPcrKernelImage), `None` without a UKI: it decides the default
    /// PCRs (`pcr_choice`).
    pub stub_pcr: Option<u8>,
}

#[derive(Clone)]
struct ConfigFile {
    /// Where the file is, for messages.
    path: String,
    vars: Assignments,
}

impl ConfigFile {
    fn get(&self, name: &str) -> Option<(&Assignment, Source)> {
        self.vars.get(name).map(|a| {
            (
                a,
                Source::File {
                    path: PathBuf::from(&self.path),
                    line: a.line,
                },
            )
        })
    }

    fn error(&self, a: &Assignment, message: String) -> ConfigError {
        ConfigError {
            place: format!("{}:{}", self.path, a.line),
            message,
        }
    }
}

fn read_config(root: &Root, path: &str) -> Result<Option<ConfigFile>, ConfigError> {
    match root.read(path, CONFIG_LIMIT) {
        Ok(bytes) => parse_config(root.display_path(path), &bytes).map(Some),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn parse_config(path: String, bytes: &[u8]) -> Result<ConfigFile, ConfigError> {
    let vars = sysconfig::parse(bytes).map_err(|e| ConfigError {
        place: format!("{}:{}:{}", path, e.line, e.column),
        message: e.kind.to_string(),
    })?;
    Ok(ConfigFile { path, vars })
}

const NATIVE_KEYS: &[&str] = &[
    "MASTERKEYTYPE",
    "MASTERKEY",
    "EVMKEY",
    "KMK_NAME",
    "TRUSTED_PCRLOCK",
    "FAILURE_ACTION",
    "REQUIRE",
    "DROP_KMK",
    "IMA_POLICY_WRITE",
    "IMA_LSM_RULES",
    "LOCK_KEYRINGS",
    "TPM",
    "TPM2_PARENT",
    "TPM2_PARENT_NAME",
    "TPM2_PARENT_PUBLIC",
    "TPM2_PCR_VALUES",
    "TPM2_PCRS",
    "TPM2_PCRLOCK",
    "TPM_TIMEOUT",
    "TPM_STEP_TIMEOUT",
    "RECOVERY_TIMEOUT",
    "AUTO_RESEAL",
];

/// Our own file: any problem in it is a configuration error, since it
/// decides what a failure does (FAILURE_ACTION, REQUIRE).
fn read_native(inputs: &ConfigInputs) -> Result<Option<ConfigFile>, ConfigError> {
    let native = match inputs.native_config {
        Some(path) => {
            let bytes = Root::new("/")
                .read(&path.to_string_lossy(), CONFIG_LIMIT)
                .map_err(|e| ConfigError {
                    place: path.display().to_string(),
                    message: format!("cannot read the --config file: {}", e.kind),
                })?;
            Some(parse_config(path.to_string_lossy().into_owned(), &bytes)?)
        }
        None => read_config(inputs.root, NATIVE_CONFIG)?,
    };
    if let Some(n) = &native {
        if let Some(line) = n.vars.first_crowded_line() {
            return Err(ConfigError {
                place: format!("{}:{line}", n.path),
                message: "one setting per line in this file (seal --write-config rewrites it line by line): put each on a line of its own".to_string(),
            });
        }
        for a in n.vars.iter() {
            if !NATIVE_KEYS.contains(&a.name.as_str()) {
                return Err(n.error(
                    a,
                    format!(
                        "unknown key {}; known keys: {}",
                        a.name,
                        NATIVE_KEYS.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(native)
}

/// Picks the highest-precedence value among the candidates; an empty value
/// in a file counts as unset, as in dracut's `[ -z "$VAR" ] && VAR=default`.
/// An empty command-line option means the default whatever the files say:
/// dracut's `X=$(getarg name=) && VAR=$X` empties the variable first.
fn pick(candidates: Vec<Option<(String, Source)>>, default: &str) -> Setting<String> {
    for (value, source) in candidates.into_iter().rev().flatten() {
        if !value.is_empty() {
            return Setting { value, source };
        }
        if let Source::Cmdline(name) = source {
            return Setting {
                value: default.to_string(),
                source: Source::CmdlineEmpty(name),
            };
        }
    }
    Setting {
        value: default.to_string(),
        source: Source::Default,
    }
}

/// The name of the master key the evm-key blob at `path` says sealed it,
/// when the blob is there, parses, and names a key of the kernel type the
/// kmk is loaded as. Anything else leaves the name to the defaults; the
/// evm-key step reports what is wrong with the blob.
fn blob_master_name(root: &Root, path: &str, kmk_type: MasterKeyType) -> Option<String> {
    let bytes = root.read(path, 64 * 1024).ok()?;
    let header = crate::encrypted_key::parse(&bytes).ok()?.header;
    (header.master_type.key_type() == kmk_type.kernel_type()).then_some(header.master_name)
}

fn from_file(file: &Option<ConfigFile>, name: &str) -> Option<(String, Source)> {
    file.as_ref()?.get(name).map(|(a, s)| (a.value.clone(), s))
}

fn from_cmdline(cmdline: &Cmdline, name: &'static str) -> Option<(String, Source)> {
    cmdline
        .value(name)
        .map(|v| (v.to_string(), Source::Cmdline(name)))
}

fn parse_bool(file: &ConfigFile, a: &Assignment) -> Result<bool, ConfigError> {
    match a.value.as_str() {
        "yes" | "true" | "1" | "YES" => Ok(true),
        "no" | "false" | "0" | "NO" | "" => Ok(false),
        other => Err(file.error(a, format!("{}=\"{other}\": expected yes or no", a.name))),
    }
}

/// Parses a number as the shell's $((...)) does: decimal, 0x hex, 0 octal.
pub fn parse_shell_number(text: &str) -> Option<u32> {
    let t = text.trim();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).ok()
    } else if t.len() > 1 && t.starts_with('0') {
        u32::from_str_radix(&t[1..], 8).ok()
    } else {
        t.parse().ok()
    }
}

/// TPM=, TPM2_PARENT=, TPM2_PARENT_NAME=, TPM2_PCRS=, TPM_TIMEOUT=,
/// TPM_STEP_TIMEOUT= of the native config.
fn tpm_settings(
    native: &Option<ConfigFile>,
    stub_pcr: Option<u8>,
) -> Result<TpmSettings, ConfigError> {
    use crate::pcr_choice;
    let tcti = pick(vec![from_file(native, "TPM")], "device:/dev/tpmrm0");
    let pcrs = pick(
        vec![from_file(native, "TPM2_PCRS")],
        pcr_choice::default_pcrs(stub_pcr),
    );
    let mut settings = TpmSettings {
        tcti,
        parent: 0x8100_0001,
        parent_configured: false,
        parent_name: None,
        parent_public: None,
        pcr_values: None,
        pcr_lock: None,
        pcr_lock_explicit: false,
        pcrs,
        timeout: std::time::Duration::from_secs(30),
        step_timeout: std::time::Duration::from_secs(20),
        recovery_timeout: std::time::Duration::from_secs(60),
        auto_reseal: false,
    };
    // The policy's latch PCR, by systemd's registry (pcr_choice).
    let lock_default = |pcrs: &str| pcr_choice::default_lock(pcrs, stub_pcr);
    settings.pcr_lock = lock_default(&settings.pcrs.value);
    let Some(n) = native else { return Ok(settings) };
    if let Some((a, _)) = n.get("TPM")
        && let Err(e) = crate::tpm::tcti::parse(&a.value)
    {
        return Err(n.error(a, e.to_string()));
    }
    if let Some((a, _)) = n.get("TPM2_PARENT") {
        let v = a.value.trim_start_matches("0x");
        settings.parent =
            match u32::from_str_radix(v, 16) {
                Ok(h) if (0x8100_0000..=0x817F_FFFF).contains(&h) => h,
                _ => {
                    return Err(n.error(a, format!(
                    "TPM2_PARENT=\"{}\": expected a persistent handle 0x81000000..0x817FFFFF",
                    a.value
                )));
                }
            };
    }
    // Empty counts as unset, as everywhere in these files.
    if let Some((a, source)) = n.get("TPM2_PARENT_NAME")
        && !a.value.trim().is_empty()
    {
        let name = crate::tpm::parent_pin::parse_name_hex(&a.value)
            .map_err(|e| n.error(a, format!("TPM2_PARENT_NAME: {e}")))?;
        settings.parent_name = Some(Setting {
            value: name,
            source,
        });
    }
    if let Some((a, _)) = n.get("TPM2_PARENT_PUBLIC")
        && !a.value.trim().is_empty()
    {
        let public = crate::tpm::parent_pin::parse_public_hex(&a.value)
            .map_err(|e| n.error(a, format!("TPM2_PARENT_PUBLIC: {e}")))?;
        settings.parent_public = Some(public);
    }
    if let Some((a, _)) = n.get("TPM2_PCR_VALUES")
        && !a.value.trim().is_empty()
    {
        let values = crate::tpm::pcr_lock::parse_values(&a.value)
            .map_err(|e| n.error(a, format!("TPM2_PCR_VALUES: {e}")))?;
        settings.pcr_values = Some(values);
    }
    if let Some((a, _)) = n.get("TPM2_PCRS")
        && let Err(e) = crate::tpm::pcr::PcrSelection::parse(&a.value)
    {
        return Err(n.error(a, e.to_string()));
    }
    if let Some((a, _)) = n.get("TPM2_PCRLOCK") {
        settings.pcr_lock = parse_pcr_lock(&a.value, lock_default(&settings.pcrs.value))
            .map_err(|m| n.error(a, m))?;
        settings.pcr_lock_explicit = !a.value.is_empty();
        if let Some(pcr) = settings.pcr_lock.filter(|_| settings.pcr_lock_explicit) {
            pcr_choice::refuse_stub_pcr("TPM2_PCRLOCK", u32::from(pcr), stub_pcr)
                .map_err(|m| n.error(a, m))?;
        }
    }
    if let Some((a, _)) = n.get("TPM_TIMEOUT") {
        settings.timeout = match a.value.parse::<u64>() {
            Ok(s) if (1..=600).contains(&s) => std::time::Duration::from_secs(s),
            _ => {
                return Err(n.error(
                    a,
                    format!("TPM_TIMEOUT=\"{}\": expected seconds, 1..600", a.value),
                ));
            }
        };
    }
    if let Some((a, _)) = n.get("TPM_STEP_TIMEOUT") {
        settings.step_timeout = match a.value.parse::<u64>() {
            Ok(s) if (1..=600).contains(&s) => std::time::Duration::from_secs(s),
            _ => {
                return Err(n.error(
                    a,
                    format!("TPM_STEP_TIMEOUT=\"{}\": expected seconds, 1..600", a.value),
                ));
            }
        };
    }
    if let Some((a, _)) = n.get("RECOVERY_TIMEOUT") {
        settings.recovery_timeout = match a.value.parse::<u64>() {
            Ok(s) if s <= 3600 => std::time::Duration::from_secs(s),
            _ => {
                return Err(n.error(
                    a,
                    format!(
                        "RECOVERY_TIMEOUT=\"{}\": expected seconds, 0..3600 (0 never asks)",
                        a.value
                    ),
                ));
            }
        };
    }
    if let Some((a, _)) = n.get("AUTO_RESEAL") {
        settings.auto_reseal = parse_bool(n, a)?;
    }
    Ok(settings)
}

/// The kmk's type and blob: 97masterkey's file, then ours, then the
/// command line.
struct MasterKeySettings {
    kmk_type: Setting<MasterKeyType>,
    path: Setting<String>,
    /// MASTERKEYTYPE comes from our own file (the kmk is then named `kmk`).
    natively_typed: bool,
    /// MULTIKERNELMODE=YES: the default path names the kernel release.
    multikernel: bool,
}

fn masterkey_settings(
    inputs: &ConfigInputs,
    masterkey_file: &Option<ConfigFile>,
    native: &Option<ConfigFile>,
) -> Result<MasterKeySettings, ConfigError> {
    let cmdline = inputs.cmdline;
    let type_setting = pick(
        vec![
            from_file(masterkey_file, "MASTERKEYTYPE"),
            from_file(native, "MASTERKEYTYPE"),
            from_cmdline(cmdline, "masterkeytype"),
        ],
        "trusted",
    );
    let masterkey_type =
        parse_masterkey_type(&type_setting.value).map_err(|message| ConfigError {
            place: type_setting.source.to_string(),
            message,
        })?;
    let natively_typed = matches!(&type_setting.source,
        Source::File { path, .. } if native.as_ref().is_some_and(|n| &n.path == path));
    let multikernel = from_file(masterkey_file, "MULTIKERNELMODE").is_some_and(|(v, _)| v == "YES");
    let default_masterkey = if multikernel {
        format!(
            "/etc/keys/kmk-{}-{}.blob",
            masterkey_type.name(),
            inputs.kernel_release
        )
    } else {
        format!("/etc/keys/kmk-{}.blob", masterkey_type.name())
    };
    let path = pick(
        vec![
            from_file(masterkey_file, "MASTERKEY"),
            from_file(native, "MASTERKEY"),
            from_cmdline(cmdline, "masterkey"),
        ],
        &default_masterkey,
    );
    Ok(MasterKeySettings {
        kmk_type: Setting {
            value: masterkey_type,
            source: type_setting.source,
        },
        path,
        natively_typed,
        multikernel,
    })
}

/// EVMKEY=, EVMX509=, EVMKEYSDIR=, EVM_ACTIVATION_BITS= of dracut's EVM
/// file (98integrity/evm-enable.sh), the first two also on the command line.
/// EVMKEY also in our file, beside MASTERKEY: seal switches both in one
/// rename (see `commands::seal::commit`).
struct EvmSettings {
    key: Setting<String>,
    x509: Setting<String>,
    keys_dir: Setting<String>,
    activation_bits: Setting<u32>,
}

fn evm_settings(
    cmdline: &Cmdline,
    evm_file: &Option<ConfigFile>,
    native: &Option<ConfigFile>,
) -> Result<EvmSettings, ConfigError> {
    let key = pick(
        vec![
            from_file(evm_file, "EVMKEY"),
            from_file(native, "EVMKEY"),
            from_cmdline(cmdline, "evmkey"),
        ],
        "/etc/keys/evm-trusted.blob",
    );
    if let Some(f) = evm_file {
        for (name, required) in [("EVMKEYTYPE", "encrypted"), ("EVMKEYDESC", "evm-key")] {
            if let Some((a, _)) = f.get(name)
                && !a.value.is_empty()
                && a.value != required
            {
                return Err(f.error(a, format!(
                        "{name}=\"{}\": the kernel's EVM only takes an encrypted key named evm-key; remove this line",
                        a.value
                    )));
            }
        }
    }
    let x509 = pick(
        vec![
            from_file(evm_file, "EVMX509"),
            from_cmdline(cmdline, "evmx509"),
        ],
        "/etc/keys/x509_evm.der",
    );
    let keys_dir = pick(vec![from_file(evm_file, "EVMKEYSDIR")], "/etc/keys/evm");
    let bits = pick(vec![from_file(evm_file, "EVM_ACTIVATION_BITS")], "0");
    let Some(bits_value) = parse_shell_number(&bits.value) else {
        return Err(ConfigError {
            place: bits.source.to_string(),
            message: format!(
                "EVM_ACTIVATION_BITS=\"{}\" is not a number (decimal or 0x hex)",
                bits.value
            ),
        });
    };
    Ok(EvmSettings {
        key,
        x509,
        keys_dir,
        activation_bits: Setting {
            value: bits_value,
            source: bits.source,
        },
    })
}

/// The kmk's name in the keyring: KMK_NAME of our file; else the name the
/// evm-key blob gives the master key that sealed it (dracut always says
/// kmk-<type>, so the kernel documentation's `kmk` fails there); else the
/// default of who set the type up.
fn kmk_name(
    root: &Root,
    native: &Option<ConfigFile>,
    mk: &MasterKeySettings,
    evm_key: &Setting<String>,
) -> (String, Source) {
    let kmk_type = mk.kmk_type.value;
    match from_file(native, "KMK_NAME") {
        Some((name, source)) if !name.is_empty() => (name, source),
        _ => match blob_master_name(root, &evm_key.value, kmk_type) {
            Some(name) => (name, Source::EvmKeyBlob(evm_key.value.clone())),
            None if mk.natively_typed || kmk_type == MasterKeyType::Tpm2 => {
                ("kmk".to_string(), Source::Default)
            }
            None => (format!("kmk-{}", kmk_type.name()), Source::Default),
        },
    }
}

/// IMAPOLICY= and IMAKEYSDIR= of dracut's IMA file (98integrity/ima-*.sh).
fn ima_settings(ima_file: &Option<ConfigFile>) -> (Setting<String>, Setting<String>) {
    let policy = pick(
        vec![from_file(ima_file, "IMAPOLICY")],
        "/etc/sysconfig/ima-policy",
    );
    let keys_dir = pick(vec![from_file(ima_file, "IMAKEYSDIR")], "/etc/keys/ima");
    (policy, keys_dir)
}

/// The settings only our own file has.
struct NativeSettings {
    failure_action: FailureAction,
    required: BTreeSet<StepId>,
    drop_kmk: Option<Setting<bool>>,
    policy_write: PolicyWrite,
    lsm_rules: LsmRules,
    lock_keyrings: bool,
    trusted_pcrlock: Option<u32>,
}

/// FAILURE_ACTION=, REQUIRE=, DROP_KMK=, LOCK_KEYRINGS=, IMA_POLICY_WRITE=,
/// IMA_LSM_RULES= and TRUSTED_PCRLOCK= of the native config.
fn native_settings(
    native: &Option<ConfigFile>,
    stub_pcr: Option<u8>,
) -> Result<NativeSettings, ConfigError> {
    let mut settings = NativeSettings {
        failure_action: FailureAction::Continue,
        required: BTreeSet::new(),
        drop_kmk: None,
        policy_write: PolicyWrite::Auto,
        lsm_rules: LsmRules::Auto,
        lock_keyrings: true,
        trusted_pcrlock: Some(crate::pcr_choice::default_trusted_lock(stub_pcr)),
    };
    let Some(n) = native else { return Ok(settings) };
    if let Some((a, _)) = n.get("FAILURE_ACTION") {
        settings.failure_action = FailureAction::parse(&a.value).map_err(|m| n.error(a, m))?;
    }
    if let Some((a, _)) = n.get("REQUIRE") {
        settings.required = parse_required(&a.value).map_err(|m| n.error(a, m))?;
    }
    if let Some((a, source)) = n.get("DROP_KMK")
        && !a.value.is_empty()
    {
        settings.drop_kmk = Some(Setting {
            value: parse_bool(n, a)?,
            source,
        });
    }
    if let Some((a, _)) = n.get("LOCK_KEYRINGS") {
        // Empty means the default, as for the other keys.
        settings.lock_keyrings = a.value.is_empty() || parse_bool(n, a)?;
    }
    if let Some((a, _)) = n.get("IMA_POLICY_WRITE") {
        settings.policy_write = match a.value.as_str() {
            "auto" | "" => PolicyWrite::Auto,
            "path" => PolicyWrite::Path,
            "rules" => PolicyWrite::Rules,
            other => {
                return Err(n.error(
                    a,
                    format!("IMA_POLICY_WRITE=\"{other}\": expected auto, path or rules"),
                ));
            }
        };
    }
    if let Some((a, _)) = n.get("IMA_LSM_RULES") {
        settings.lsm_rules = match a.value.as_str() {
            "auto" | "" => LsmRules::Auto,
            "split" => LsmRules::Split,
            "later" => LsmRules::Later,
            "initramfs" => LsmRules::Initramfs,
            other => {
                return Err(n.error(
                    a,
                    format!("IMA_LSM_RULES=\"{other}\": expected auto, split, later or initramfs"),
                ));
            }
        };
    }
    if let Some((a, _)) = n.get("TRUSTED_PCRLOCK") {
        settings.trusted_pcrlock = match a.value.as_str() {
            "" | "no" => None,
            v => match v.parse::<u32>() {
                Ok(n) if n < 24 => Some(n),
                _ => {
                    return Err(n.error(
                        a,
                        format!("TRUSTED_PCRLOCK=\"{v}\": expected a PCR number 0..23, or no"),
                    ));
                }
            },
        };
        if let Some(pcr) = settings.trusted_pcrlock {
            crate::pcr_choice::refuse_stub_pcr("TRUSTED_PCRLOCK", pcr, stub_pcr)
                .map_err(|m| n.error(a, m))?;
        }
    }
    Ok(settings)
}

impl Settings {
    /// Errors in our own file and on the command line are configuration
    /// errors. A problem in one of dracut's files (it cannot be read, a line
    /// is not data, a value is wrong) makes that file unusable: the steps
    /// reading it fail, the others run with their own files.
    pub fn resolve(inputs: &ConfigInputs) -> Result<Settings, ConfigError> {
        let mut unusable = Vec::new();
        let mut dracut = [MASTERKEY_CONFIG, EVM_CONFIG, IMA_CONFIG].map(|file| {
            read_config(inputs.root, file).unwrap_or_else(|error| {
                unusable.push(UnusableFile { file, error });
                None
            })
        });
        let native = read_native(inputs)?;
        loop {
            let [masterkey_file, evm_file, ima_file] = &dracut;
            let error = match Settings::resolve_files(
                inputs,
                masterkey_file,
                evm_file,
                ima_file,
                &native,
            ) {
                Ok(settings) => {
                    return Ok(Settings {
                        unusable,
                        ..settings
                    });
                }
                Err(e) => e,
            };
            // A value from one of dracut's files: drop that file, try again.
            let from_file = [MASTERKEY_CONFIG, EVM_CONFIG, IMA_CONFIG]
                .into_iter()
                .zip(dracut.iter_mut())
                .find(|(_, f)| {
                    f.as_ref().is_some_and(|f| {
                        error
                            .place
                            .strip_prefix(f.path.as_str())
                            .is_some_and(|rest| rest.starts_with(':'))
                    })
                });
            let Some((file, slot)) = from_file else {
                return Err(error);
            };
            *slot = None;
            unusable.push(UnusableFile { file, error });
        }
    }

    fn resolve_files(
        inputs: &ConfigInputs,
        masterkey_file: &Option<ConfigFile>,
        evm_file: &Option<ConfigFile>,
        ima_file: &Option<ConfigFile>,
        native: &Option<ConfigFile>,
    ) -> Result<Settings, ConfigError> {
        let cmdline = inputs.cmdline;
        let mk = masterkey_settings(inputs, masterkey_file, native)?;
        let evm = evm_settings(cmdline, evm_file, native)?;
        let (kmk_name, kmk_name_source) = kmk_name(inputs.root, native, &mk, &evm.key);
        let (ima_policy, ima_keys_dir) = ima_settings(ima_file);
        let n = native_settings(native, inputs.stub_pcr)?;
        let settings = Settings {
            masterkey_type: mk.kmk_type,
            masterkey: mk.path,
            multikernel: mk.multikernel,
            kmk_name,
            kmk_name_source,
            trusted_pcrlock: n.trusted_pcrlock,
            tpm: tpm_settings(native, inputs.stub_pcr)?,
            evm_key: evm.key,
            evm_x509: evm.x509,
            evm_keys_dir: evm.keys_dir,
            evm_activation_bits: evm.activation_bits,
            ima_policy,
            ima_keys_dir,
            failure_action: n.failure_action,
            required: n.required,
            drop_kmk: n.drop_kmk,
            masterkey_sha256: None,
            recovery_sha256: None,
            policy_write: n.policy_write,
            lsm_rules: n.lsm_rules,
            lock_keyrings: n.lock_keyrings,
            debug: cmdline.flag("rd.debug"),
            stub_pcr: inputs.stub_pcr,
            unusable: Vec::new(),
        };
        settings.check_paths()?;
        Ok(settings)
    }

    /// Paths are taken inside the real root: they must be absolute.
    fn check_paths(&self) -> Result<(), ConfigError> {
        for (name, s) in [
            ("MASTERKEY", &self.masterkey),
            ("EVMKEY", &self.evm_key),
            ("EVMX509", &self.evm_x509),
            ("EVMKEYSDIR", &self.evm_keys_dir),
            ("IMAPOLICY", &self.ima_policy),
            ("IMAKEYSDIR", &self.ima_keys_dir),
        ] {
            if !s.value.starts_with('/') {
                return Err(ConfigError {
                    place: s.source.to_string(),
                    message: format!(
                        "{name}=\"{}\" must be an absolute path (it is taken inside the real root)",
                        s.value
                    ),
                });
            }
        }
        Ok(())
    }

    pub fn is_required(&self, step: StepId) -> bool {
        self.required.contains(&step)
    }

    /// Whether the kmk is unlinked at the end: DROP_KMK when set; else yes
    /// for a tpm2 kmk whose PCR policy is locked after the unseal, since a
    /// `user` key stays readable by root and would hand the booted system
    /// the very key the lock keeps the TPM from giving out again.
    pub fn drops_kmk(&self) -> bool {
        match &self.drop_kmk {
            Some(s) => s.value,
            None => self.kmk_lock_default_drop(),
        }
    }

    fn kmk_lock_default_drop(&self) -> bool {
        self.masterkey_type.value == MasterKeyType::Tpm2 && self.tpm.pcr_lock.is_some()
    }

    /// A warning when DROP_KMK=no keeps a locked tpm2 kmk readable.
    pub fn kept_kmk_warning(&self) -> Option<String> {
        let keep = self.drop_kmk.as_ref().filter(|s| !s.value)?;
        let pcr = self.tpm.pcr_lock.filter(|_| self.kmk_lock_default_drop())?;
        Some(format!(
            "DROP_KMK=no ({}) keeps the kmk as a user key that root can read after boot, although PCR {pcr} is locked so that the TPM does not give it out again; remove the line unless something after the boot needs the kmk",
            keep.source
        ))
    }

    /// Why `step` cannot run: one of dracut's files it reads is unusable.
    pub fn unusable_for(&self, step: StepId) -> Option<&ConfigError> {
        self.unusable
            .iter()
            .find(|u| u.steps().contains(&step))
            .map(|u| &u.error)
    }
}

/// Whether any configuration that can still be read asks for halt, once
/// resolving the settings failed: the initramfs's pins, or the native
/// config, parsed when it parses and else read line by line. A syntax
/// error in one file must not switch off the halt another file asks for.
pub fn halt_requested(root: &Root, native_config: Option<&Path>, pins: Option<&Path>) -> bool {
    let native = match native_config {
        Some(path) => Root::new("/").read(&path.to_string_lossy(), CONFIG_LIMIT),
        None => root.read(NATIVE_CONFIG, CONFIG_LIMIT),
    };
    let pins = pins.map(|p| Root::new("/").read(&p.to_string_lossy(), CONFIG_LIMIT));
    [Some(native), pins]
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .any(|bytes| asks_to_halt(&bytes))
}

fn asks_to_halt(bytes: &[u8]) -> bool {
    if let Ok(vars) = sysconfig::parse(bytes) {
        return vars
            .iter()
            .filter(|a| a.name == "FAILURE_ACTION")
            .last()
            .is_some_and(|a| a.value == "halt");
    }
    let text = String::from_utf8_lossy(bytes);
    text.lines().any(|line| {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        line.strip_prefix("FAILURE_ACTION=")
            .map(|v| v.trim().trim_matches(|c| c == '\'' || c == '"'))
            .is_some_and(|v| v == "halt")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    struct Tree(PathBuf);
    impl Tree {
        fn new(files: &[(&str, &str)]) -> Tree {
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let dir = std::env::temp_dir().join(format!("il-config-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            for (path, text) in files {
                let p = dir.join(path.trim_start_matches('/'));
                fs::create_dir_all(p.parent().unwrap()).unwrap();
                fs::write(p, text).unwrap();
            }
            fs::create_dir_all(&dir).unwrap();
            Tree(dir)
        }
        fn resolve(&self, cmdline: &str) -> Result<Settings, ConfigError> {
            let root = Root::new(&self.0);
            let cmdline = Cmdline::parse(cmdline);
            Settings::resolve(&ConfigInputs {
                root: &root,
                native_config: None,
                cmdline: &cmdline,
                kernel_release: "6.1.0-test",
                stub_pcr: None,
            })
        }
    }
    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn dracut_defaults() {
        let t = Tree::new(&[]);
        let s = t.resolve("").unwrap();
        assert_eq!(s.masterkey_type.value, MasterKeyType::Trusted);
        assert_eq!(s.masterkey.value, "/etc/keys/kmk-trusted.blob");
        assert_eq!(s.kmk_name, "kmk-trusted");
        assert_eq!(s.trusted_pcrlock, Some(11));
        assert_eq!(s.evm_key.value, "/etc/keys/evm-trusted.blob");
        assert_eq!(s.evm_x509.value, "/etc/keys/x509_evm.der");
        assert_eq!(s.evm_keys_dir.value, "/etc/keys/evm");
        assert_eq!(s.evm_activation_bits.value, 0);
        assert_eq!(s.ima_policy.value, "/etc/sysconfig/ima-policy");
        assert_eq!(s.ima_keys_dir.value, "/etc/keys/ima");
        assert_eq!(s.failure_action, FailureAction::Continue);
        assert!(!s.drops_kmk() && !s.debug && !s.multikernel);
    }

    #[test]
    fn dracut_files_and_precedence() {
        let t = Tree::new(&[
            (
                MASTERKEY_CONFIG,
                "MASTERKEYTYPE=user\nMULTIKERNELMODE=YES\n",
            ),
            (
                EVM_CONFIG,
                "EVMKEY=/k/evm.blob\nEVMX509=/k/x.der\nEVM_ACTIVATION_BITS=0x80000000\n",
            ),
            (IMA_CONFIG, "IMAPOLICY=/k/policy\nIMAKEYSDIR=/k/ima\n"),
        ]);
        let s = t.resolve("").unwrap();
        assert_eq!(s.masterkey.value, "/etc/keys/kmk-user-6.1.0-test.blob");
        assert!(s.multikernel);
        assert_eq!(s.kmk_name, "kmk-user");
        assert_eq!(s.evm_key.value, "/k/evm.blob");
        assert_eq!(s.evm_activation_bits.value, 0x8000_0000);
        assert_eq!(s.ima_policy.value, "/k/policy");
        // The command line wins; an empty value means the built-in default,
        // not the file's value.
        let s = t
            .resolve("masterkey=/c/kmk evmkey=/c/evm evmx509= rd.debug")
            .unwrap();
        assert_eq!(s.masterkey.value, "/c/kmk");
        assert_eq!(s.masterkey.source, Source::Cmdline("masterkey"));
        assert_eq!(s.evm_key.value, "/c/evm");
        assert_eq!(s.evm_x509.value, "/etc/keys/x509_evm.der");
        assert_eq!(s.evm_x509.source, Source::CmdlineEmpty("evmx509"));
        assert!(s.debug);
        let s = t.resolve("masterkeytype=trusted").unwrap();
        assert_eq!(s.kmk_name, "kmk-trusted");
        assert_eq!(s.masterkey.value, "/etc/keys/kmk-trusted-6.1.0-test.blob");
    }

    /// Without KMK_NAME the kmk is named as the evm-key blob's header
    /// names its master key (the chapter's `kmk`), when the types agree.
    #[test]
    fn kmk_named_as_the_evm_key_blob_says() {
        let blob = |master: &str| format!("default {master} 32 {}\n", "ab".repeat(81));
        let t = Tree::new(&[
            (MASTERKEY_CONFIG, "MASTERKEY=/etc/keys/kmk\n"),
            (EVM_CONFIG, "EVMKEY=/etc/keys/evm-key\n"),
            ("/etc/keys/evm-key", &blob("trusted:kmk")),
        ]);
        let s = t.resolve("").unwrap();
        assert_eq!(s.masterkey_type.value, MasterKeyType::Trusted);
        assert_eq!(s.kmk_name, "kmk");
        assert_eq!(
            s.kmk_name_source.to_string(),
            "the header of the evm-key blob /etc/keys/evm-key"
        );
        // Another type than the blob's master: the name stays dracut's.
        let s = t.resolve("masterkeytype=user").unwrap();
        assert_eq!(s.kmk_name, "kmk-user");
        assert_eq!(s.kmk_name_source, Source::Default);
        // The user variant of the chapter.
        let t = Tree::new(&[
            (
                MASTERKEY_CONFIG,
                "MASTERKEYTYPE=user\nMASTERKEY=/etc/keys/kmk\n",
            ),
            (EVM_CONFIG, "EVMKEY=/etc/keys/evm-key\n"),
            ("/etc/keys/evm-key", &blob("user:kmk")),
        ]);
        assert_eq!(t.resolve("").unwrap().kmk_name, "kmk");
        // A damaged blob names nothing: the default, the evm-key step says why.
        let t = Tree::new(&[
            (MASTERKEY_CONFIG, "MASTERKEYTYPE=user\n"),
            (EVM_CONFIG, "EVMKEY=/etc/keys/evm-key\n"),
            ("/etc/keys/evm-key", "default user:kmk\n"),
        ]);
        assert_eq!(t.resolve("").unwrap().kmk_name, "kmk-user");
    }

    /// EVMKEY of our file wins over the EVM file's (a seal switches it with
    /// MASTERKEY in one rename); the command line over both.
    #[test]
    fn evmkey_of_our_file_wins_over_the_evm_file() {
        let t = Tree::new(&[
            (EVM_CONFIG, "EVMKEY=/etc/keys/evm-key\n"),
            (
                NATIVE_CONFIG,
                "MASTERKEYTYPE=tpm2\nEVMKEY=/etc/keys/evm-key.next\n",
            ),
        ]);
        let s = t.resolve("").unwrap();
        assert_eq!(s.evm_key.value, "/etc/keys/evm-key.next");
        assert!(
            s.evm_key
                .source
                .to_string()
                .ends_with("integrity-loader.conf:2")
        );
        assert_eq!(t.resolve("evmkey=/x").unwrap().evm_key.value, "/x");
    }

    /// KMK_NAME wins over the blob.
    #[test]
    fn kmk_name_setting_wins_over_the_blob() {
        let t = Tree::new(&[
            (EVM_CONFIG, "EVMKEY=/etc/keys/evm-key\n"),
            (
                "/etc/keys/evm-key",
                &format!("default user:kmk 32 {}\n", "ab".repeat(81)),
            ),
            (NATIVE_CONFIG, "MASTERKEYTYPE=user\nKMK_NAME=mine\n"),
        ]);
        let s = t.resolve("").unwrap();
        assert_eq!(s.kmk_name, "mine");
        assert!(
            s.kmk_name_source
                .to_string()
                .ends_with("integrity-loader.conf:2"),
            "{}",
            s.kmk_name_source
        );
    }

    /// The command line as dracut's scripts take it: `X=$(getarg x=) &&
    /// VAR=$X`, then `[ -z "$VAR" ] && VAR=default`.
    #[test]
    fn cmdline_over_files_as_dracut() {
        let t = Tree::new(&[
            (MASTERKEY_CONFIG, "MASTERKEYTYPE=user\nMASTERKEY=/f/kmk\n"),
            (EVM_CONFIG, "EVMKEY=/f/evm\nEVMX509=/f/x.der\n"),
        ]);
        // (cmdline, MASTERKEYTYPE, MASTERKEY, EVMKEY, EVMX509)
        let cases: &[(&str, &str, &str, &str, &str)] = &[
            ("", "user", "/f/kmk", "/f/evm", "/f/x.der"),
            ("masterkeytype=", "trusted", "/f/kmk", "/f/evm", "/f/x.der"),
            ("masterkeytype", "trusted", "/f/kmk", "/f/evm", "/f/x.der"),
            (
                "masterkey=",
                "user",
                "/etc/keys/kmk-user.blob",
                "/f/evm",
                "/f/x.der",
            ),
            (
                "masterkey= masterkeytype=",
                "trusted",
                "/etc/keys/kmk-trusted.blob",
                "/f/evm",
                "/f/x.der",
            ),
            (
                "evmkey=/a evmkey",
                "user",
                "/f/kmk",
                "/etc/keys/evm-trusted.blob",
                "/f/x.der",
            ),
            ("evmkey evmkey=/a", "user", "/f/kmk", "/a", "/f/x.der"),
            (
                "evmx509=",
                "user",
                "/f/kmk",
                "/f/evm",
                "/etc/keys/x509_evm.der",
            ),
            ("masterkey=\"/a\"b", "user", "/a\"b", "/f/evm", "/f/x.der"),
            ("master\"key\"=/q", "user", "/f/kmk", "/f/evm", "/f/x.der"),
            ("\"evmkey=/q\"", "user", "/f/kmk", "/q", "/f/x.der"),
        ];
        for (cmdline, kind, masterkey, evmkey, x509) in cases {
            let s = t.resolve(cmdline).unwrap();
            let got = (
                s.masterkey_type.value.name(),
                s.masterkey.value.as_str(),
                s.evm_key.value.as_str(),
                s.evm_x509.value.as_str(),
            );
            assert_eq!(got, (*kind, *masterkey, *evmkey, *x509), "{cmdline}");
        }
        // The kmk is named after the type the command line left.
        assert_eq!(t.resolve("masterkeytype=").unwrap().kmk_name, "kmk-trusted");
        let s = t.resolve("evmx509").unwrap();
        assert_eq!(
            s.evm_x509.source.to_string(),
            "default: kernel command line evmx509= is empty"
        );
    }

    /// A problem in one of dracut's files makes that file's keys unusable
    /// (its steps fail with the error); the others resolve as usual.
    #[test]
    fn dracut_file_problems_stay_in_that_file() {
        let all = || {
            vec![
                (MASTERKEY_CONFIG, "MASTERKEYTYPE=user\n".to_string()),
                (EVM_CONFIG, "EVMKEY=/k/evm\n".to_string()),
                (IMA_CONFIG, "IMAPOLICY=/k/policy\n".to_string()),
            ]
        };
        let cases: &[(&str, &str, &str)] = &[
            (
                MASTERKEY_CONFIG,
                "MASTERKEYTYPE=logon\n",
                "masterkey:1: master key type \"logon\" is not supported",
            ),
            (
                MASTERKEY_CONFIG,
                "MASTERKEY=keys/kmk.blob\n",
                "masterkey:1: MASTERKEY=\"keys/kmk.blob\" must be an absolute path",
            ),
            (
                MASTERKEY_CONFIG,
                "MASTERKEYTYPE=user\nunset -f x\n",
                "masterkey:2:7: unset takes variable names only",
            ),
            (
                EVM_CONFIG,
                "\n\nEVMKEY=$HOME/x\n",
                "evm:3:8: shell expansion",
            ),
            (
                EVM_CONFIG,
                "EVMKEYTYPE=user\n",
                "evm:1: EVMKEYTYPE=\"user\": the kernel's EVM only takes an encrypted key named evm-key",
            ),
            (
                EVM_CONFIG,
                "EVM_ACTIVATION_BITS=lots\n",
                "evm:1: EVM_ACTIVATION_BITS=\"lots\" is not a number",
            ),
            (
                EVM_CONFIG,
                "EVMKEY=/k/evm; reboot\n",
                "evm:1:16: expected NAME=value",
            ),
            (IMA_CONFIG, "IMAPOLICY=/p\r\n", "ima:1:13: carriage return"),
            (IMA_CONFIG, "IMAKEYSDIR=`ls`\n", "ima:1:12: shell expansion"),
        ];
        for (file, text, want) in cases {
            let mut files = all();
            files.retain(|(f, _)| f != file);
            files.push((file, text.to_string()));
            let files: Vec<(&str, &str)> = files.iter().map(|(f, t)| (*f, t.as_str())).collect();
            let s = Tree::new(&files).resolve("").unwrap();
            assert_eq!(s.unusable.len(), 1, "{text:?}");
            for step in StepId::ALL {
                let reads_it = match *file {
                    MASTERKEY_CONFIG => step == StepId::Kmk,
                    EVM_CONFIG => matches!(step, StepId::EvmKey | StepId::EvmCerts | StepId::Evm),
                    _ => matches!(step, StepId::ImaCerts | StepId::ImaPolicy),
                };
                let e = s.unusable_for(step).map(|e| e.to_string());
                assert_eq!(e.is_some(), reads_it, "{text:?}: {step}");
                if let Some(e) = e {
                    assert!(e.contains(want), "{text:?}: got {e}");
                }
            }
            // The other files' values are kept; the broken one's are not.
            assert_eq!(
                s.masterkey_type.value == MasterKeyType::User,
                *file != MASTERKEY_CONFIG,
                "{text:?}"
            );
            assert_eq!(s.evm_key.value == "/k/evm", *file != EVM_CONFIG, "{text:?}");
            assert_eq!(
                s.ima_policy.value == "/k/policy",
                *file != IMA_CONFIG,
                "{text:?}"
            );
        }
        // Two broken files, each reported.
        let t = Tree::new(&[(EVM_CONFIG, "EVMKEY=$X\n"), (IMA_CONFIG, "unset -x\n")]);
        let s = t.resolve("").unwrap();
        assert_eq!(s.unusable.len(), 2);
        assert!(s.unusable_for(StepId::Kmk).is_none());
        // An unreadable file (here a directory) is unusable too.
        let t = Tree::new(&[("/etc/sysconfig/ima/x", "")]);
        let e = t
            .resolve("")
            .unwrap()
            .unusable_for(StepId::ImaPolicy)
            .unwrap()
            .to_string();
        assert!(
            e.ends_with("ima: is a directory, not a regular file"),
            "{e}"
        );
    }

    #[test]
    fn native_config() {
        let t = Tree::new(&[(
            NATIVE_CONFIG,
            "# ours\nMASTERKEYTYPE=user\nMASTERKEY=/etc/keys/kmk\nFAILURE_ACTION=halt\nREQUIRE=\"kmk evm\"\nDROP_KMK=yes\nIMA_POLICY_WRITE=rules\nTRUSTED_PCRLOCK=no\n",
        )]);
        let s = t.resolve("").unwrap();
        assert_eq!(s.kmk_name, "kmk");
        assert_eq!(s.masterkey.value, "/etc/keys/kmk");
        assert_eq!(s.failure_action, FailureAction::Halt);
        assert!(s.is_required(StepId::Kmk) && s.is_required(StepId::Evm));
        assert!(!s.is_required(StepId::ImaPolicy));
        assert!(s.drops_kmk());
        assert_eq!(s.policy_write, PolicyWrite::Rules);
        assert_eq!(s.trusted_pcrlock, None);
        assert_eq!(s.tpm.parent_name, None);
        assert_eq!(s.lsm_rules, LsmRules::Auto);
    }

    #[test]
    fn lsm_rules() {
        let mode = |text: &str| {
            Tree::new(&[(NATIVE_CONFIG, text)])
                .resolve("")
                .map(|s| s.lsm_rules)
        };
        assert_eq!(mode("IMA_LSM_RULES=later\n").unwrap(), LsmRules::Later);
        assert_eq!(mode("IMA_LSM_RULES=split\n").unwrap(), LsmRules::Split);
        assert_eq!(
            mode("IMA_LSM_RULES=initramfs\n").unwrap(),
            LsmRules::Initramfs
        );
        assert_eq!(mode("IMA_LSM_RULES=\n").unwrap(), LsmRules::Auto);
        let e = mode("IMA_LSM_RULES=never\n").unwrap_err().to_string();
        assert!(
            e.ends_with(
                "integrity-loader.conf:1: IMA_LSM_RULES=\"never\": expected auto, split, later or initramfs"
            ),
            "{e}"
        );
    }

    #[test]
    fn pcr_lock() {
        let lock = |text: &str| {
            Tree::new(&[(NATIVE_CONFIG, text)])
                .resolve("")
                .map(|s| s.tpm.pcr_lock)
        };
        // PCR 11 when the policy has it, by default.
        assert_eq!(lock("").unwrap(), Some(11));
        assert_eq!(lock("TPM2_PCRS=sha256:7\n").unwrap(), None);
        assert_eq!(
            lock("TPM2_PCRS=sha256:7\nTPM2_PCRLOCK=7\n").unwrap(),
            Some(7)
        );
        assert_eq!(lock("TPM2_PCRLOCK=no\n").unwrap(), None);
        assert_eq!(lock("TPM2_PCRLOCK=\n").unwrap(), Some(11));
        let e = lock("\nTPM2_PCRLOCK=24\n").unwrap_err().to_string();
        assert!(
            e.ends_with(
                "integrity-loader.conf:2: TPM2_PCRLOCK=\"24\": expected a PCR number 0..23, or no"
            ),
            "{e}"
        );
    }

    #[test]
    fn parent_name_pin() {
        let name = format!("000b{}", "5a".repeat(32));
        let t = Tree::new(&[(
            NATIVE_CONFIG,
            &format!("MASTERKEYTYPE=tpm2\n\nTPM2_PARENT_NAME=\"{name}\"\n"),
        )]);
        let pin = t.resolve("").unwrap().tpm.parent_name.unwrap();
        assert_eq!(pin.value[..2], [0x00, 0x0b]);
        assert!(pin.value[2..].iter().all(|b| *b == 0x5a));
        assert!(pin.source.to_string().ends_with("integrity-loader.conf:3"));
        // Empty is unset, as for every other key.
        let t = Tree::new(&[(NATIVE_CONFIG, "TPM2_PARENT_NAME=\n")]);
        assert_eq!(t.resolve("").unwrap().tpm.parent_name, None);
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases: &[(&str, &str, &str)] = &[
            (
                NATIVE_CONFIG,
                "FAILURE_ACTION=halt\nBOGUS=1\n",
                "integrity-loader.conf:2: unknown key BOGUS",
            ),
            (
                NATIVE_CONFIG,
                "FAILURE_ACTION=stop\n",
                "integrity-loader.conf:1: FAILURE_ACTION=\"stop\": expected continue or halt",
            ),
            (
                NATIVE_CONFIG,
                "REQUIRE=kmk,evmkey\n",
                "REQUIRE names unknown step \"evmkey\"",
            ),
            (
                NATIVE_CONFIG,
                "DROP_KMK=maybe\n",
                "DROP_KMK=\"maybe\": expected yes or no",
            ),
            (
                NATIVE_CONFIG,
                "RECOVERY_TIMEOUT=-1\n",
                "RECOVERY_TIMEOUT=\"-1\": expected seconds, 0..3600 (0 never asks)",
            ),
            (
                NATIVE_CONFIG,
                "AUTO_RESEAL=always\n",
                "integrity-loader.conf:1: AUTO_RESEAL=\"always\": expected yes or no",
            ),
            (
                NATIVE_CONFIG,
                "MASTERKEYTYPE=user; DROP_KMK=yes\n",
                "integrity-loader.conf:1: one setting per line in this file",
            ),
            (
                NATIVE_CONFIG,
                "FAILURE_ACTION=halt\nunset -x\n",
                "integrity-loader.conf:2:7: unset takes variable names only",
            ),
            (
                NATIVE_CONFIG,
                "MASTERKEYTYPE=tpm2\nTPM2_PARENT_NAME=0004aaaa\n",
                "integrity-loader.conf:2: TPM2_PARENT_NAME: 8 characters; expected 68 hex digits",
            ),
        ];
        for (file, text, want) in cases {
            let t = Tree::new(&[(file, text)]);
            let e = t.resolve("").unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: got {e}");
        }
    }

    #[test]
    fn shell_numbers() {
        assert_eq!(parse_shell_number("0"), Some(0));
        assert_eq!(parse_shell_number("6"), Some(6));
        assert_eq!(parse_shell_number("0x80000000"), Some(0x8000_0000));
        assert_eq!(parse_shell_number("010"), Some(8));
        assert_eq!(parse_shell_number("09"), None);
        assert_eq!(parse_shell_number("-1"), None);
    }
}
