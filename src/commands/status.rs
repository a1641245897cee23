//! `integrity-loader status`: what is loaded now: keys in the target
//! keyring, certificates per IMA/EVM keyring, EVM state, policy state.

use super::{EXIT_OK, setup};
use crate::cli::Options;
use crate::evm;
use crate::keyring::{self, KeySerial};

pub fn run(options: &Options) -> u8 {
    let env = match setup(options, false, false) {
        Ok(e) => e,
        Err(e) => return e.code,
    };
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
    EXIT_OK
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
