//! The subcommands and the setup they share: where the root, securityfs and
//! command line are, the resolved settings, the target keyring.

pub(crate) mod check;
mod error;
pub mod load;
pub(crate) mod seal;
pub mod sibling;
pub(crate) mod sign_policy;
pub(crate) mod status;

use crate::cli::{Command, Options};
use crate::cmdline::Cmdline;
use crate::config::{ConfigInputs, Settings};
use crate::keyring::{self, KeySerial, KeyringSpec};
use crate::rootfs::Root;
use crate::securityfs::{self, SecurityFs};
use std::path::{Path, PathBuf};

pub use error::{CommandError, finish};

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// What both binaries do with their arguments before a command runs: the
/// command and options, or the exit code once `--help`, `--version` or a
/// usage error has been printed (`binary` names the version line).
pub fn parse_or_exit(binary: &str, args: &[String]) -> Result<(Command, Box<Options>), u8> {
    match crate::cli::parse_args(args) {
        Ok(crate::cli::Parsed::Run(c, o)) => Ok((c, o)),
        Ok(crate::cli::Parsed::Help) => {
            print!("{}", crate::cli::HELP);
            Err(EXIT_OK)
        }
        Ok(crate::cli::Parsed::Version) => {
            println!("{binary} {}", env!("CARGO_PKG_VERSION"));
            Err(EXIT_OK)
        }
        Err(e) => {
            eprintln!("integrity-loader: {e}\nTry 'integrity-loader --help'.");
            Err(EXIT_USAGE)
        }
    }
}

/// Starts the logger, then says whether the process could be kept out of
/// core dumps (`protected`, from [`crate::secret::protect_process`], which
/// runs first thing, before anything could hold a secret).
pub fn start_logging(
    sink: crate::logging::Sink,
    options: &Options,
    protected: Result<(), nix::errno::Errno>,
) {
    crate::logging::init(sink, crate::logging::level_for(options.verbosity));
    if let Err(e) = protected {
        log::warn!(
            "cannot keep secrets out of core dumps ({}): a crash could write the kmk to disk",
            e.desc()
        );
    }
}

/// Runs `integrity-loader`'s one command, `load`; its error says what
/// failed, for [`finish`] to log. The others are `integrity-admin`'s
/// ([`run_admin`]): not calling them here keeps their code out of the
/// initramfs's binary.
pub fn run(command: Command, options: &Options) -> Result<(), CommandError> {
    match command {
        Command::Load(o) => load::run(options, &o),
        other => Err(CommandError::usage(format!(
            "{} runs {}",
            other.name(),
            sibling::ADMIN_BIN
        ))),
    }
}

/// Runs one command of `integrity-admin`: check, status, seal, reseal,
/// sign-policy.
pub fn run_admin(command: Command, options: &Options) -> Result<(), CommandError> {
    match command {
        Command::Check(o) => check::run(options, &o),
        Command::Status => status::run(options),
        Command::Seal(o) => seal::run(options, &o),
        Command::Reseal(o) => seal::reseal::run(options, &o),
        Command::SignPolicy(o) => sign_policy::run(options, &o),
        Command::Load(_) => Err(CommandError::usage(format!(
            "{} runs the installed system's commands; the boot's is integrity-loader load",
            sibling::ADMIN_BIN
        ))),
    }
}

/// What Secure Boot means here, for `check` and `status`: its state, and
/// when the command line asks for IMA fix mode, that the kernel ignores it
/// under Secure Boot.
fn secure_boot_lines(efivars: &crate::efi::EfiVars, cmdline: &Cmdline) -> Vec<String> {
    let sb = efivars.secure_boot();
    let mut lines = vec![format!("Secure Boot: {}", sb.describe())];
    if cmdline.value("ima_appraise") == Some("fix") {
        lines.push(match sb {
            crate::efi::SecureBoot::On => "ima_appraise=fix is on the kernel command line, but Secure Boot is on: the kernel ignored it (\"Secure boot enabled: ignoring ima_appraise=fix option\"), so `relabel` cannot label files in this boot; turn Secure Boot off in the firmware for the relabelling boot, or sign the files with evmctl ima_sign".to_string(),
            _ => "ima_appraise=fix is on the kernel command line: IMA fix mode, `relabel` can label files in this boot".to_string(),
        });
    }
    lines
}

/// What every command works on.
pub struct Env {
    pub root: Root,
    pub securityfs: SecurityFs,
    pub settings: Settings,
    pub keyring_spec: KeyringSpec,
    pub keyring: KeySerial,
    /// Where this boot's facts are recorded for later commands (--run-dir).
    pub run_dir: PathBuf,
    /// The EFI variables (--efivars): Secure Boot, the UKI's PCR.
    pub efivars: crate::efi::EfiVars,
}

/// The default --run-dir: /run lives from the initramfs to shutdown.
pub const DEFAULT_RUN_DIR: &str = "/run/integrity-loader";

/// The real root: --root, else $NEWROOT (dracut's hook environment), else
/// /sysroot when it holds an /etc (the root is mounted), else /.
pub fn root_dir(options: &Options) -> PathBuf {
    if let Some(r) = &options.root {
        return r.clone();
    }
    if let Some(n) = std::env::var_os("NEWROOT").filter(|n| !n.is_empty()) {
        return PathBuf::from(n);
    }
    if Path::new("/sysroot/etc").is_dir() {
        return PathBuf::from("/sysroot");
    }
    PathBuf::from("/")
}

/// The kernel command line, bounded; a missing default file is an empty line.
fn read_cmdline(options: &Options) -> Result<Cmdline, String> {
    if options.dracut_cmdline {
        if options.cmdline.is_some() {
            return Err(
                "--cmdline and --dracut-cmdline both name the command line; give one".into(),
            );
        }
        return Ok(Cmdline::parse_bytes(&crate::cmdline::dracut_text(
            Path::new("/"),
        )));
    }
    let (path, explicit) = match &options.cmdline {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from("/proc/cmdline"), false),
    };
    match Root::new("/").read(&path.to_string_lossy(), 64 * 1024) {
        Ok(bytes) => Ok(Cmdline::parse_bytes(&bytes)),
        Err(e) if !explicit && e.is_not_found() => Ok(Cmdline::default()),
        Err(e) => Err(format!("read kernel command line {e}")),
    }
}

fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl Env {
    /// The step context over this environment.
    pub fn context(&self, dry_run: bool) -> crate::steps::Context<'_> {
        crate::steps::Context {
            settings: &self.settings,
            root: &self.root,
            securityfs: &self.securityfs,
            keyring_spec: self.keyring_spec,
            keyring: self.keyring,
            run_dir: &self.run_dir,
            dry_run,
            plan: &crate::plan::PLAN,
            failed: Default::default(),
            skipped_after_failure: Default::default(),
        }
    }
}

/// Resolves everything, with the pins of `pins` (load and check --pins)
/// over the configuration; an error is a usage error (the root, the
/// command line, the configuration or the keyring).
pub fn setup(
    options: &Options,
    pins: Option<&Path>,
    mount_securityfs: bool,
    create_keyring: bool,
) -> Result<Env, CommandError> {
    let root_dir = root_dir(options);
    if !root_dir.is_dir() {
        return Err(CommandError::usage(format!(
            "root directory {} does not exist (see --root)",
            root_dir.display()
        )));
    }
    let root = Root::new(root_dir);
    let (sfs_dir, is_default) = match &options.securityfs {
        Some(d) => (d.clone(), false),
        None => (PathBuf::from(securityfs::DEFAULT_DIR), true),
    };
    let securityfs = SecurityFs::new(sfs_dir);
    if is_default && mount_securityfs {
        match securityfs.mount_default_if_needed() {
            Ok(true) => {
                log::info!(target: crate::logging::DETAIL, "mounted securityfs on {}", securityfs.dir().display())
            }
            Ok(false) => {}
            Err(e) => log::warn!(
                "cannot mount securityfs on {}: {}",
                securityfs.dir().display(),
                e.desc()
            ),
        }
    } else if !securityfs.dir().is_dir() {
        log::warn!(
            "securityfs directory {} does not exist",
            securityfs.dir().display()
        );
    }
    let cmdline = read_cmdline(options).map_err(CommandError::usage)?;
    let release = kernel_release();
    let efivars = crate::efi::EfiVars::new(
        options
            .efivars
            .clone()
            .unwrap_or_else(|| PathBuf::from(crate::efi::DEFAULT_DIR)),
    );
    let settings = Settings::resolve(&ConfigInputs {
        root: &root,
        native_config: options.config.as_deref(),
        cmdline: &cmdline,
        kernel_release: &release,
        stub_pcr: efivars.stub_pcr_kernel_image(),
    })
    .map_err(|e| CommandError::usage(format!("configuration error: {e}")))?;
    let mut settings = settings;
    if let Some(path) = pins {
        match crate::pins::apply(path, &mut settings) {
            Ok(warnings) => {
                for w in warnings {
                    log::warn!("{w}");
                }
            }
            Err(e) => return Err(CommandError::usage(format!("configuration error: {e}"))),
        }
    }
    if let Some(tcti) = &options.tpm {
        settings.tpm.tcti = crate::config::Setting {
            value: tcti.clone(),
            source: crate::config::Source::Argument("--tpm"),
        };
    }
    if settings.debug && log::max_level() < log::LevelFilter::Debug {
        log::set_max_level(log::LevelFilter::Debug);
    }
    let keyring = match keyring::keyring_id(options.keyring, create_keyring) {
        Ok(id) => id,
        // check and status only search; a keyring that does not exist yet
        // simply holds nothing.
        Err(_) if !create_keyring => options.keyring.0,
        Err(e) => {
            return Err(CommandError::usage(format!(
                "keyring {}: {}",
                options.keyring,
                crate::steps::keyring_errno_words(e)
            )));
        }
    };
    Ok(Env {
        root,
        securityfs,
        settings,
        keyring_spec: options.keyring,
        keyring,
        run_dir: options
            .run_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_RUN_DIR)),
        efivars,
    })
}
