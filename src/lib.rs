//! integrity-loader: turns on the kernel integrity subsystem (IMA/EVM) from
//! the initramfs. The binary's commands share these modules, so `check` runs
//! exactly the parsing and validation that `load` runs.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod base64;
pub mod cli;
pub mod cmdline;
pub mod commands;
pub mod config;
pub mod encrypted_key;
pub mod evm;
pub mod hex;
pub mod ima_policy;
pub mod keyring;
pub mod logging;
pub mod pem;
pub mod pins;
pub mod plan;
pub mod random;
pub mod rootfs;
pub mod runner;
pub mod secret;
pub mod securityfs;
pub mod steps;
pub mod sysconfig;
pub mod tpm;
pub mod x509;
