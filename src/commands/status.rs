//! `integrity-loader status`: what is loaded now: keys in the target
//! keyring, certificates per IMA/EVM keyring, EVM state, policy state.

use super::{CommandError, setup};
use crate::cli::Options;
use crate::evm;
use crate::keyring::{self, KeySerial};
use crate::tpm::client::Tpm;
use crate::tpm::{commands, parent_pin, pcr_lock, rc, seal};

pub fn run(options: &Options) -> Result<(), CommandError> {
    let env = setup(options, None, false, false)?;
    let cmdline = super::read_cmdline(options).unwrap_or_default();
    for line in super::secure_boot_lines(&env.efivars, &cmdline) {
        println!("{line}");
    }
    if env.settings.masterkey_type.value == crate::config::MasterKeyType::Tpm2 {
        print_tpm2_kmk(&env);
    }
    println!("keyring {} (id {}):", env.keyring_spec, env.keyring);
    print_keys(env.keyring, "  ");
    for (system, fallback) in [(".evm", "_evm"), (".ima", "_ima")] {
        let found = keyring::find_system_keyring(system)
            .map(|id| (system, id))
            .or_else(|| {
                keyring::search(env.keyring, "keyring", fallback)
                    .ok()
                    .flatten()
                    .map(|id| (fallback, id))
            });
        match found {
            Some((name, id)) => {
                let locked = keyring::describe(id).is_ok_and(|k| k.is_write_locked());
                if locked && name == fallback {
                    println!("{name} (id {id}, locked: no key can be added until the next boot):");
                } else {
                    println!("{name} (id {id}):");
                }
                print_keys(id, "  ");
            }
            None => println!("{system}/{fallback}: not found"),
        }
    }
    let sfs = &env.securityfs;
    if sfs.has_evm() {
        match sfs.read_evm() {
            Ok(v) => println!("evm: {v} ({})", evm::describe(v)),
            Err(e) => println!(
                "evm: cannot read {}: {}",
                sfs.evm_path().display(),
                e.desc()
            ),
        }
    } else {
        println!(
            "evm: not in this kernel ({} missing)",
            sfs.evm_path().display()
        );
    }
    if !sfs.has_ima() {
        println!("ima policy: IMA not in this kernel");
    } else if !sfs.policy_path().exists() {
        println!("ima policy: custom policy loaded (the policy file is gone)");
    } else {
        match sfs.read_policy(8 * 1024 * 1024) {
            Some(p) if !p.is_empty() => {
                let rules = p.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
                println!(
                    "ima policy: {rules} rule(s) readable in {}",
                    sfs.policy_path().display()
                );
            }
            _ => println!(
                "ima policy: no custom policy readable ({})",
                sfs.policy_path().display()
            ),
        }
    }
    let later = env.run_dir.join(crate::steps::ima_policy::LATER_FILE);
    if let Ok(text) = std::fs::read_to_string(&later) {
        println!(
            "ima policy: {} rule(s) wait for the LSM's policy load ({}; {} writes them)",
            text.lines().skip(1).filter(|l| !l.is_empty()).count(),
            later.display(),
            crate::steps::ima_policy::LATER_UNIT
        );
    }
    Ok(())
}

/// The sealed kmk: its blob, PCR set and storage key, and whether the
/// PCR values of this boot satisfy its policy (the PolicyPCR digest of the
/// current values against the sealed object's authPolicy), i.e. whether a
/// reseal is due.
fn print_tpm2_kmk(env: &super::Env) {
    let s = &env.settings;
    let ctx = env.context(true);
    let path = &s.masterkey.value;
    let blob = match crate::steps::kmk_tpm2::read_blob(&ctx, path) {
        Ok(b) => b,
        Err(e) => {
            println!("kmk (tpm2): {e}");
            return;
        }
    };
    println!(
        "kmk (tpm2): {}, sealed under {:#010x}",
        env.root.display_path(path),
        blob.parent
    );
    let pcrs = match crate::steps::kmk_tpm2::pcr_selection(&ctx, &blob) {
        Ok(p) => p,
        Err(e) => {
            println!("  PCR set: {e}");
            return;
        }
    };
    println!("  PCR set: {pcrs}");
    let recovery = format!("{path}{}", crate::recovery::SUFFIX);
    if env.root.exists(&recovery) {
        println!("  recovery key: yes ({})", env.root.display_path(&recovery));
    } else {
        println!("  recovery key: none (`integrity-loader reseal --recovery-key` makes one)");
    }
    let Some(policy) = blob.auth_policy().map(<[u8]>::to_vec) else {
        println!("  policy: none (the sealed object has no authPolicy)");
        return;
    };
    let tpm = crate::tpm::tcti::parse(&s.tpm.tcti.value)
        .map_err(|e| e.to_string())
        .and_then(|t| crate::tpm::transport::open(&t, s.tpm.timeout).map_err(|e| e.to_string()));
    let mut tpm = match tpm {
        Ok(t) => Tpm::new(t),
        Err(e) => {
            println!("  TPM: {e}");
            return;
        }
    };
    let pin = s.tpm.parent_name.as_ref().map(|p| &p.value);
    match commands::read_public(&mut tpm, blob.parent) {
        Ok(p) => {
            let state = match pin {
                None => "not pinned",
                Some(n) if n.as_slice() == p.name().as_slice() => "the pinned one",
                Some(_) => "NOT the pinned one (TPM2_PARENT_NAME)",
            };
            println!(
                "  storage key: Name {}, {state}",
                parent_pin::name_hex(&p.name())
            );
        }
        Err(e) if e.rc().is_some_and(|rc| rc.base() == rc::HANDLE) => println!(
            "  storage key: none at {:#010x} (a TPM clear empties it): reseal due: `integrity-loader reseal` with the kmk still loaded makes a new one",
            blob.parent
        ),
        Err(e) => println!("  storage key: {e}"),
    }
    let current = match commands::pcr_read(&mut tpm, &pcrs) {
        Ok(v) => v,
        Err(e) => {
            println!("  PCR values: {e}");
            return;
        }
    };
    match crate::steps::kmk_tpm2::signed_policy(&ctx, path, &blob) {
        Ok(Some((key, entries))) => return print_signed(s, &key, &entries, &pcrs, &current),
        Ok(None) => {}
        Err(e) => return println!("  policy: {e}"),
    }
    let digest = |values: &[[u8; 32]]| seal::pcr_policy(&pcrs, values);
    let now: Vec<[u8; 32]> = current.iter().map(|(_, v)| *v).collect();
    if digest(&now).as_slice() == policy.as_slice() {
        println!("  PCR values: the current ones satisfy the policy; no reseal due");
        return;
    }
    // After the PCR lock, the values of this boot before it count: those
    // the record kept, or the lock PCR taken back to zero.
    let lock = s.tpm.pcr_lock.filter(|l| pcrs.indices().any(|p| p == *l));
    if let Some(lock) = lock {
        let record = std::fs::read_to_string(env.run_dir.join(pcr_lock::RECORD_FILE)).ok();
        let recorded = record
            .as_deref()
            .and_then(pcr_lock::parse_record)
            .and_then(|r| super::seal::record_covering(&r, &pcrs));
        let before = recorded.or_else(|| {
            let mut v = current.clone();
            let (_, value) = v.iter_mut().find(|(p, _)| *p == lock)?;
            pcr_lock::times_locked(value, &[0u8; 32])?;
            *value = [0u8; 32];
            Some(v.into_iter().map(|(_, v)| v).collect())
        });
        if before.is_some_and(|b| digest(&b).as_slice() == policy.as_slice()) {
            println!(
                "  PCR values: this boot's before the PCR lock on PCR {lock} satisfy the policy; no reseal due"
            );
            return;
        }
    }
    let shown: Vec<String> = current
        .iter()
        .map(|(p, v)| format!("{p}={}", crate::hex::encode(v)))
        .collect();
    println!(
        "  PCR values: the current ones ({}) do not satisfy the policy: reseal due (`integrity-loader reseal` while the kmk is loaded, or with --pcr-value for the values the next boot will have)",
        shown.join(", ")
    );
}

/// A kmk sealed to signed PCR policies: whether a signature approves this
/// boot's values (before the PCR lock, when it is on).
fn print_signed(
    s: &crate::config::Settings,
    key: &crate::tpm::policy_authorize::PolicyKey,
    entries: &[crate::tpm::pcrsig::Entry],
    pcrs: &crate::tpm::pcr::PcrSelection,
    current: &[(u8, [u8; 32])],
) {
    let ours: Vec<_> = entries.iter().filter(|e| &e.pcrs == pcrs).collect();
    println!(
        "  policy: PCR policies signed by the key of fingerprint {} ({} signature(s) over {pcrs})",
        crate::hex::encode(&key.fingerprint()),
        ours.len()
    );
    let lock = s.tpm.pcr_lock.filter(|l| pcrs.indices().any(|p| p == *l));
    let before: Vec<[u8; 32]> = current
        .iter()
        .map(|(p, v)| match lock {
            Some(l) if *p == l && pcr_lock::times_locked(v, &[0u8; 32]).is_some() => [0u8; 32],
            _ => *v,
        })
        .collect();
    let approved = seal::pcr_policy(pcrs, &before);
    if ours.iter().any(|e| e.pol == approved) {
        println!(
            "  PCR values: a signature approves this boot's (the TPM checks it at boot); no reseal due"
        );
    } else {
        println!(
            "  PCR values: this boot's are not signed: the next boot with them does not unseal (`integrity-loader sign-policy` for them)"
        );
    }
}

fn print_keys(ring: KeySerial, indent: &str) {
    match keyring::list(ring) {
        Ok(ids) if ids.is_empty() => println!("{indent}(empty)"),
        Ok(ids) => {
            for id in ids {
                match keyring::describe(id) {
                    Ok(k) => println!("{indent}{id} {} {}", k.key_type, k.description),
                    Err(e) => println!("{indent}{id} (cannot describe: {})", e.desc()),
                }
            }
        }
        Err(e) => println!("{indent}(cannot read: {})", e.desc()),
    }
}
