//! Step 7: unlink what is no longer needed. EVM keeps its own copy of the
//! HMAC key (and zeroes the key's payload, pitfall 2), so the evm-key goes,
//! as in dracut; the kmk goes when DROP_KMK=yes, or by default when a tpm2
//! kmk's PCR policy is locked. An evm-key this run loaded
//! for an EVM that was not enabled goes too: nothing is left half-configured.

use super::{Context, Facts, Outcome, keyring_errno_words};
use crate::keyring;

pub fn run(ctx: &Context, facts: &mut Facts) -> Outcome {
    let mut drops: Vec<(&str, keyring::KeySerial, &str)> = Vec::new();
    if let Some(id) = facts.evm_key {
        if facts.evm_hmac_enabled {
            drops.push(("evm-key", id, "EVM holds the HMAC key now"));
        } else if facts.evm_key_added {
            drops.push(("evm-key", id, "EVM was not enabled with it"));
        }
    }
    if ctx.settings.drops_kmk()
        && let Some(id) = facts.kmk
    {
        let why = match &ctx.settings.drop_kmk {
            Some(_) => "DROP_KMK=yes",
            None => "DROP_KMK is unset and the PCR lock is on",
        };
        drops.push((ctx.settings.kmk_name.as_str(), id, why));
    }
    if facts.kmk.is_some()
        && let Some(w) = ctx.settings.kept_kmk_warning()
    {
        log::warn!("{w}");
    }
    if drops.is_empty() {
        return Outcome::not_configured("no key to unlink");
    }
    let mut done = Vec::new();
    for (name, id, why) in drops {
        if ctx.dry_run {
            done.push(format!("would unlink {name} ({why})"));
            continue;
        }
        match keyring::unlink(id, ctx.keyring) {
            Ok(()) | Err(nix::errno::Errno::ENOENT) => {
                done.push(format!("unlinked {name} (id {id}): {why}"))
            }
            Err(e) => {
                return Outcome::failed(format!(
                    "unlink {name} (id {id}) from {}: {}",
                    ctx.keyring_spec,
                    keyring_errno_words(e)
                ));
            }
        }
        if name == "evm-key" {
            facts.evm_key = None;
        } else {
            facts.kmk = None;
        }
    }
    Outcome::done(done.join("; "))
}
