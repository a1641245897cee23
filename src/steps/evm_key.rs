//! Step 2: the EVM HMAC key, an `encrypted` key named evm-key loaded from
//! its exported blob; the kernel decrypts it with the kmk the blob names.

use super::{Context, Facts, Outcome, keyring_errno_words, search_failed};
use crate::config::{Settings, Source};
use crate::encrypted_key::{self, BlobHeader};
use crate::evm;
use crate::keyring;
use crate::plan::StepId;
use nix::errno::Errno;

pub const EVM_KEY_TYPE: &str = "encrypted";
pub const EVM_KEY_NAME: &str = "evm-key";
const BLOB_LIMIT: usize = 64 * 1024;

pub fn run(ctx: &Context, facts: &mut Facts) -> Outcome {
    if !ctx.securityfs.has_evm() && !ctx.dry_run {
        return Outcome::not_configured(format!(
            "the kernel has no EVM ({} is missing)",
            ctx.securityfs.evm_path().display()
        ));
    }
    if let Ok(state) = ctx.securityfs.read_evm()
        && state & evm::INIT_HMAC != 0
    {
        return Outcome::already("EVM HMAC is already enabled, the evm-key is not needed again");
    }
    let path = &ctx.settings.evm_key.value;
    let shown = ctx.root.display_path(path);
    // Read once: not there is "not configured" (or failed, if REQUIRE
    // lists the step), anything else a failure.
    let bytes = match ctx.root.read(path, BLOB_LIMIT) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => {
            return super::missing(ctx, StepId::EvmKey, format!("no EVM key blob {}", shown));
        }
        Err(e) => return Outcome::failed(format!("read EVM key blob {e}")),
    };
    let blob = match encrypted_key::parse(&bytes) {
        Ok(b) => b,
        Err(e) => return Outcome::failed(format!("EVM key blob {}: {e}", shown)),
    };
    let header = &blob.header;
    // As the blob names it: the kernel key type (a tpm2 kmk is a `user` key).
    let kmk = format!(
        "{}:{}",
        ctx.settings.masterkey_type.value.kernel_type(),
        ctx.settings.kmk_name
    );

    // An evm-key already present: keep it only if it is sealed by the same
    // master key, never enable EVM with a key this configuration did not name.
    match keyring::search(ctx.keyring, EVM_KEY_TYPE, EVM_KEY_NAME) {
        Ok(Some(id)) => {
            let existing = keyring::read(id)
                .ok()
                .and_then(|b| encrypted_key::parse(&b).ok());
            return match existing {
                Some(b) if same_master(&b.header, header) => {
                    facts.evm_key = Some(id);
                    facts.evm_key_ready = true;
                    Outcome::already(format!(
                        "evm-key is already loaded (id {id}), sealed by {}",
                        header.master()
                    ))
                }
                Some(b) => Outcome::failed(format!(
                    "an evm-key sealed by {} is already in keyring {} (id {id}), but {} is sealed by {}; not enabling EVM with a key this configuration did not name",
                    b.header.master(),
                    ctx.keyring_spec,
                    shown,
                    header.master()
                )),
                None => Outcome::failed(format!(
                    "an evm-key is already in keyring {} (id {id}) and cannot be read back to check which master key seals it; remove it with `keyctl unlink {id}`",
                    ctx.keyring_spec
                )),
            };
        }
        Ok(None) => {}
        Err(e) => {
            return search_failed(ctx, e);
        }
    }

    if ctx.dry_run {
        // The kmk is not loaded in `check`: compare names with the configuration.
        if ctx.root.exists(&ctx.settings.masterkey.value) && header.master() != kmk {
            return Outcome::failed(master_mismatch(&shown, header, &kmk, ctx.settings));
        }
        facts.evm_key_ready = true;
        return Outcome::done(format!(
            "would load evm-key ({} bytes, sealed by {}) from {}",
            header.data_len,
            header.master(),
            shown
        ));
    }

    match keyring::search(
        ctx.keyring,
        header.master_type.key_type(),
        &header.master_name,
    ) {
        Ok(Some(_)) => {}
        Ok(None) => {
            let mut m = format!(
                "EVM key blob {} is sealed by {}, which is not loaded in keyring {}",
                shown,
                header.master(),
                ctx.keyring_spec
            );
            if header.master() != kmk {
                m.push_str(&format!(
                    "; the configured master key is {kmk}: {}",
                    mismatch_fix(ctx.settings, header)
                ));
            } else {
                m.push_str("; the kmk step did not load it");
            }
            return Outcome::failed(m);
        }
        Err(e) => {
            return search_failed(ctx, e);
        }
    }

    match keyring::add_key(
        EVM_KEY_TYPE,
        Some(EVM_KEY_NAME),
        &blob.load_payload(),
        ctx.keyring,
    ) {
        Ok(id) => {
            facts.evm_key = Some(id);
            facts.evm_key_added = true;
            facts.evm_key_ready = true;
            if facts.kmk_recovered && header.master() == kmk {
                auto_reseal(ctx, facts);
            }
            Outcome::done(format!(
                "loaded evm-key ({} bytes, sealed by {}) from {} into {} (id {id})",
                header.data_len,
                header.master(),
                shown,
                ctx.keyring_spec
            ))
        }
        Err(e) => Outcome::failed(format!(
            "load evm-key from {}: {}",
            shown,
            match e {
                Errno::EINVAL => format!(
                    "the kernel could not decrypt it with {} (EINVAL): the blob was sealed by another master key of that name, or it is damaged",
                    header.master()
                ),
                Errno::ENOKEY => format!(
                    "the kernel did not find the master key {} (ENOKEY)",
                    header.master()
                ),
                e => keyring_errno_words(e),
            }
        )),
    }
}

fn same_master(a: &BlobHeader, b: &BlobHeader) -> bool {
    a.master_type == b.master_type && a.master_name == b.master_name && a.data_len == b.data_len
}

fn master_mismatch(path: &str, header: &BlobHeader, kmk: &str, settings: &Settings) -> String {
    format!(
        "EVM key blob {path} is sealed by {}, but the configured master key is {kmk}; {}",
        header.master(),
        mismatch_fix(settings, header)
    )
}

/// The setting that makes the kmk the key that sealed the blob: its type
/// (MASTERKEYTYPE) or, when only the name differs, KMK_NAME where it is
/// set (without KMK_NAME the name already follows the blob).
fn mismatch_fix(settings: &Settings, header: &BlobHeader) -> String {
    let kind = settings.masterkey_type.value;
    if header.master_type.key_type() != kind.kernel_type() {
        let wanted = match header.master_type.key_type() {
            "trusted" => "MASTERKEYTYPE=trusted",
            _ => "MASTERKEYTYPE=user (or tpm2)",
        };
        return format!(
            "set {wanted} and MASTERKEY to the blob of that key (MASTERKEYTYPE is {}, {}), or re-export the evm-key sealed by the configured kmk",
            kind.name(),
            settings.masterkey_type.source
        );
    }
    let name = &header.master_name;
    match &settings.kmk_name_source {
        Source::Default | Source::EvmKeyBlob(_) => format!(
            "set KMK_NAME={name} in /etc/integrity-loader.conf, or re-export the evm-key sealed by the configured kmk"
        ),
        source => format!(
            "change KMK_NAME ({source}) to {name}, or re-export the evm-key sealed by {}:{}",
            kind.kernel_type(),
            settings.kmk_name
        ),
    }
}

/// The kmk came from the recovery key and has just opened the evm-key, so
/// it is the one the labels hang on: with AUTO_RESEAL it is sealed again
/// to this boot's PCRs. Either way the boot goes on; the log says what is
/// left to do.
fn auto_reseal(ctx: &Context, facts: &Facts) {
    let todo = "run `integrity-loader reseal` once booted (it asks for the recovery key again unless DROP_KMK=no; after a TPM clear add --parent for a new storage key), then rebuild the initramfs if it is host-only (dracut -f); `integrity-loader status` says whether a reseal is due";
    if !ctx.settings.tpm.auto_reseal {
        log::warn!(
            "the kmk was opened with the recovery key and the next boot will ask again: {todo} (or set AUTO_RESEAL=yes in /etc/integrity-loader.conf)"
        );
        return;
    }
    let kmk = match facts.kmk.map(keyring::read_secret) {
        Some(Ok(k)) => k,
        Some(Err(e)) => {
            log::warn!(
                "AUTO_RESEAL: cannot read the kmk back from keyring {}: {}; not sealed again: {todo}",
                ctx.keyring_spec,
                e.desc()
            );
            return;
        }
        None => return,
    };
    match crate::commands::seal::reseal::at_boot(ctx, kmk) {
        Ok(()) => log::info!(
            "AUTO_RESEAL: the kmk opened with the recovery key is sealed again to this boot's PCR values: the next boot needs no key"
        ),
        Err(m) => log::warn!("AUTO_RESEAL: not sealed again: {m}: {todo}"),
    }
}
