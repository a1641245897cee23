//! Step 6: enable EVM with what loaded: the HMAC bit when the evm-key
//! loaded, the X509 bit when EVM certificates did, plus EVM_ACTIVATION_BITS,
//! all in one write (the first HMAC write locks the file).

use super::{Context, Facts, Outcome};
use crate::evm;
use nix::errno::Errno;

pub fn run(ctx: &Context, facts: &mut Facts) -> Outcome {
    let has_evm = ctx.securityfs.has_evm();
    if !has_evm && !ctx.dry_run {
        return Outcome::not_configured(format!(
            "the kernel has no EVM ({} is missing)",
            ctx.securityfs.evm_path().display()
        ));
    }
    let current = match ctx.securityfs.read_evm() {
        Ok(v) => v,
        Err(_) if !has_evm => 0,
        Err(e) => {
            return Outcome::failed(format!(
                "read {}: {}",
                ctx.securityfs.evm_path().display(),
                e.desc()
            ));
        }
    };
    if current != 0 {
        facts.evm_hmac_enabled = current & evm::INIT_HMAC != 0;
        return Outcome::already(format!(
            "EVM is already enabled ({}, value {current}); not changing it",
            evm::describe(current)
        ));
    }
    let bits = &ctx.settings.evm_activation_bits;
    let activation = match evm::activation_value(
        facts.evm_key_ready,
        facts.evm_certs > 0,
        bits.value,
    ) {
        Ok(a) => a,
        Err(evm::ValueError::NothingToEnable(_)) => {
            let asked = if bits.value & evm::INIT_X509 != 0 {
                format!(
                    " (EVM_ACTIVATION_BITS={:#x} at {} asks for x509 verification, but with no EVM certificate every file EVM checks would fail it)",
                    bits.value, bits.source
                )
            } else {
                String::new()
            };
            let message = format!("no evm-key and no EVM certificate loaded; EVM stays off{asked}");
            return if ctx.settings.is_required(crate::plan::StepId::Evm) {
                Outcome::failed(format!("{message}; REQUIRE names evm"))
            } else {
                Outcome::not_configured(message)
            };
        }
        Err(e) => return Outcome::failed(format!("{}: {e}", bits.source)),
    };
    for w in &activation.warnings {
        log::warn!("{w}");
    }
    let value = activation.value;
    if ctx.dry_run {
        return Outcome::done(format!(
            "would write {value} ({}) to {}",
            evm::describe(value),
            ctx.securityfs.evm_path().display()
        ));
    }
    if let Err(e) = ctx.securityfs.write_evm(value) {
        let why = match e {
            Errno::EPERM => {
                "EVM is locked (setup already complete) or we lack CAP_SYS_ADMIN (EPERM)"
                    .to_string()
            }
            Errno::ENOENT => format!(
                "the kernel found no evm-key in this process's keyrings (ENOENT); it searches the writer's keyrings, so the key must be in {} as seen from here",
                ctx.keyring_spec
            ),
            Errno::EBUSY => "an HMAC key is already installed (EBUSY)".to_string(),
            Errno::EINVAL => {
                "the kernel rejected the value, or the evm-key is longer than 128 bytes (EINVAL)"
                    .to_string()
            }
            e => format!("{} ({e})", e.desc()),
        };
        return Outcome::failed(format!(
            "write {value} to {}: {why}",
            ctx.securityfs.evm_path().display()
        ));
    }
    facts.evm_hmac_enabled = value & evm::INIT_HMAC != 0;
    facts.evm_enabled_now = true;
    // The kernel reads back the state without the lock bit.
    match ctx.securityfs.read_evm() {
        Ok(now) if now & !evm::SETUP_COMPLETE & value == value & !evm::SETUP_COMPLETE => {}
        Ok(now) => log::warn!(
            "EVM reads {now} ({}) after writing {value}",
            evm::describe(now)
        ),
        Err(e) => log::warn!(
            "cannot read back {}: {}",
            ctx.securityfs.evm_path().display(),
            e.desc()
        ),
    }
    Outcome::done(format!(
        "enabled EVM: wrote {value} ({})",
        evm::describe(value)
    ))
}
