//! `integrity-loader check`: everything `load` reads and validates, through
//! the same step code in dry-run mode; no kernel state changes.

use super::{CommandError, setup};
use crate::cli::{CheckOptions, Options};
use crate::config::{Settings, Source};
use crate::pins;
use crate::plan;
use crate::runner;
use std::path::Path;

pub fn run(options: &Options, o: &CheckOptions) -> Result<(), CommandError> {
    let env = setup(options, o.pins.as_deref(), false, false)?;
    println!("root: {}", env.root.dir().display());
    println!("securityfs: {}", env.securityfs.dir().display());
    println!("keyring: {}", env.keyring_spec);
    print_settings(&env.settings);
    print_boot(&env, options);
    let mut ctx = env.context(true);
    // The plan the runner walks, so what is printed is what is done.
    println!("plan:\n{}", plan::describe(ctx.plan));
    let report = runner::run(&mut ctx);
    if let Some(path) = &o.write_pins {
        // Building for the booted system: its pin must be the one this
        // boot checked. (For another root, this boot's records say nothing.)
        let booted = env
            .root
            .dir()
            .canonicalize()
            .is_ok_and(|d| d == Path::new("/"));
        let guarded = if booted && !o.repin {
            pins::guard_rebuild(&env.settings, &env.run_dir)
        } else {
            Ok(())
        };
        guarded
            .and_then(|()| write_pins(path, &env.settings, &env.root))
            .map_err(CommandError::failed)?;
    }
    let boot_failed = o.audit_boot && !audit_boot(options, env.root.dir());
    println!("result:");
    for r in &report.results {
        println!(
            "  {:<10} {}: {}",
            r.step.name(),
            r.outcome.status.word(),
            r.outcome.message
        );
    }
    if report.failed().is_empty() && !boot_failed {
        println!("check passed");
        Ok(())
    } else {
        println!("check FAILED");
        Err(CommandError::reported())
    }
}

/// What the firmware says about this boot (--efivars), and what the
/// loader makes of it: Secure Boot and fix mode, the PCR it will lock.
fn print_boot(env: &super::Env, options: &Options) {
    use crate::config::MasterKeyType;
    use crate::pcr_choice;
    let s = &env.settings;
    println!("boot ({}):", env.efivars.dir().display());
    match s.stub_pcr {
        Some(p) => {
            println!("  UKI: yes, systemd-stub measured it into PCR {p} (StubPcrKernelImage)")
        }
        None => println!("  UKI: no (no StubPcrKernelImage EFI variable)"),
    }
    let cmdline = super::read_cmdline(options).unwrap_or_default();
    for line in super::secure_boot_lines(&env.efivars, &cmdline) {
        println!("  {line}");
    }
    match s.masterkey_type.value {
        MasterKeyType::Tpm2 => println!(
            "  PCR lock: {}",
            pcr_choice::explain_lock(
                &s.tpm.pcrs.value,
                s.tpm.pcr_lock,
                s.tpm.pcr_lock_explicit,
                s.stub_pcr
            )
        ),
        MasterKeyType::Trusted => println!(
            "  PCR lock: {}",
            pcr_choice::explain_trusted_lock(s.trusted_pcrlock, s.stub_pcr)
        ),
        MasterKeyType::User => {}
    }
}

/// `--audit-boot`: `integrity-audit --boot-files` on the same root and
/// command line, run as a child (linked in, the audit would add some
/// 110 KB to this binary, which every boot reads). True when it passed.
fn audit_boot(options: &Options, root: &Path) -> bool {
    let mut args = vec![
        "--boot-files".to_string(),
        "--root".to_string(),
        root.display().to_string(),
    ];
    for (name, value) in [
        ("--cmdline", &options.cmdline),
        ("--config", &options.config),
    ] {
        if let Some(v) = value {
            args.extend([name.to_string(), v.display().to_string()]);
        }
    }
    match super::sibling::run_audit(&args) {
        Ok(code) => code == super::EXIT_OK,
        Err(e) => {
            log::error!("check --audit-boot: {e}");
            false
        }
    }
}

/// The root's pins, for the initramfs; no file when it pins nothing.
fn write_pins(path: &Path, settings: &Settings, root: &crate::rootfs::Root) -> Result<(), String> {
    match pins::render(settings, root)? {
        Some(text) => {
            std::fs::write(path, text).map_err(|e| format!("write {}: {e}", path.display()))?;
            println!("pins written to {}", path.display());
        }
        None => match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("remove {}: {e}", path.display())),
        },
    }
    Ok(())
}

fn print_settings(s: &Settings) {
    println!("settings:");
    let rows = [
        (
            "MASTERKEYTYPE",
            s.masterkey_type.value.name().to_string(),
            s.masterkey_type.source.to_string(),
        ),
        (
            "MASTERKEY",
            s.masterkey.value.clone(),
            s.masterkey.source.to_string(),
        ),
        (
            "kmk name",
            s.kmk_name.clone(),
            match &s.kmk_name_source {
                Source::Default => String::new(),
                source => source.to_string(),
            },
        ),
        (
            "EVMKEY",
            s.evm_key.value.clone(),
            s.evm_key.source.to_string(),
        ),
        (
            "EVMX509",
            s.evm_x509.value.clone(),
            s.evm_x509.source.to_string(),
        ),
        (
            "EVMKEYSDIR",
            s.evm_keys_dir.value.clone(),
            s.evm_keys_dir.source.to_string(),
        ),
        (
            "EVM_ACTIVATION_BITS",
            format!("{:#x}", s.evm_activation_bits.value),
            s.evm_activation_bits.source.to_string(),
        ),
        (
            "IMAPOLICY",
            s.ima_policy.value.clone(),
            s.ima_policy.source.to_string(),
        ),
        (
            "IMAKEYSDIR",
            s.ima_keys_dir.value.clone(),
            s.ima_keys_dir.source.to_string(),
        ),
        (
            "FAILURE_ACTION",
            s.failure_action.name().to_string(),
            String::new(),
        ),
        (
            "DROP_KMK",
            if s.drops_kmk() { "yes" } else { "no" }.to_string(),
            match &s.drop_kmk {
                Some(d) => d.source.to_string(),
                None => "default".to_string(),
            },
        ),
        (
            "LOCK_KEYRINGS",
            if s.lock_keyrings { "yes" } else { "no" }.to_string(),
            String::new(),
        ),
    ];
    for (name, value, source) in rows {
        if source.is_empty() {
            println!("  {name:<20} {value}");
        } else {
            println!("  {name:<20} {value}  ({source})");
        }
    }
    if !s.required.is_empty() {
        let names: Vec<&str> = s.required.iter().map(|r| r.name()).collect();
        println!("  {:<20} {}", "REQUIRE", names.join(" "));
    }
    if s.masterkey_type.value == crate::config::MasterKeyType::Tpm2 {
        println!(
            "  {:<20} {}  ({})",
            "TPM", s.tpm.tcti.value, s.tpm.tcti.source
        );
        println!("  {:<20} {:#010x}", "TPM2_PARENT", s.tpm.parent);
        match &s.tpm.parent_name {
            Some(p) => println!(
                "  {:<20} {}  ({})",
                "TPM2_PARENT_NAME",
                crate::tpm::parent_pin::name_hex(&p.value),
                p.source
            ),
            None => println!("  {:<20} not pinned", "TPM2_PARENT_NAME"),
        }
    }
}
