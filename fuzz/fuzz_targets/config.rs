//! The whole configuration as `load` and `check` resolve it:
//! `Settings::resolve` over a root holding dracut's /etc/sysconfig/
//! {masterkey,evm,ima} and /etc/integrity-loader.conf, plus a kernel command
//! line. This reaches sysconfig::parse, the value checks of config.rs,
//! tcti::parse and PcrSelection::parse.
//!
//! Input: sections `@@masterkey`, `@@evm`, `@@ima`, `@@native` (file
//! contents; a missing section is a missing file), `@@cmdline` and
//! `@@pins` (the initramfs's pins file, applied over the settings).
//! Accepted settings must keep the promises `load` relies on.
#![no_main]

use integrity_loader::cmdline::Cmdline;
use integrity_loader::config::{self, ConfigInputs, Settings};
use integrity_loader::rootfs::Root;
use integrity_loader::tpm::{pcr::PcrSelection, tcti};
use integrity_loader_fuzz::sections;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

const FILES: [(&str, &str); 4] = [
    ("masterkey", config::MASTERKEY_CONFIG),
    ("evm", config::EVM_CONFIG),
    ("ima", config::IMA_CONFIG),
    ("native", config::NATIVE_CONFIG),
];

/// One root per fuzzing process, under $TMPDIR when it is set, else in
/// memory when /dev/shm is there. It is left behind (a few KiB).
fn root_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = PathBuf::from("/dev/shm");
        let base = match std::env::var_os("TMPDIR") {
            Some(dir) => PathBuf::from(dir),
            None if shm.is_dir() => shm,
            None => std::env::temp_dir(),
        };
        let dir = base.join(format!("il-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("etc/sysconfig")).expect("create the fuzz root");
        dir
    })
}

fuzz_target!(|data: &[u8]| {
    let dir = root_dir();
    let parts = sections(data);
    let body = |name: &str| {
        parts
            .iter()
            .rev()
            .find(|(n, _)| *n == name.as_bytes())
            .map(|(_, b)| *b)
    };
    for (name, path) in FILES {
        let file = dir.join(path.trim_start_matches('/'));
        match body(name) {
            Some(bytes) => std::fs::write(&file, bytes).expect("write a config file"),
            None => {
                let _ = std::fs::remove_file(&file);
            }
        }
    }
    let cmdline = Cmdline::parse(&String::from_utf8_lossy(
        body("cmdline").unwrap_or_default(),
    ));
    let root = Root::new(dir.as_path());
    let inputs = ConfigInputs {
        root: &root,
        native_config: None,
        cmdline: &cmdline,
        kernel_release: "6.12.0-fuzz",
        // A UKI booted, measured into PCR 11, for the inputs that ask.
        stub_pcr: body("uki").map(|_| 11),
    };
    match Settings::resolve(&inputs) {
        Ok(s) => {
            for path in [
                &s.masterkey,
                &s.evm_key,
                &s.evm_x509,
                &s.evm_keys_dir,
                &s.ima_policy,
                &s.ima_keys_dir,
            ] {
                assert!(path.value.starts_with('/'), "{path:?}");
            }
            assert!(!s.kmk_name.is_empty() || body("native").is_some());
            assert!(s.trusted_pcrlock.is_none_or(|p| p < 24));
            assert!(s.tpm.pcr_lock.is_none_or(|p| p < 24));
            assert!((0x8100_0000..=0x817F_FFFF).contains(&s.tpm.parent));
            // A pin is a SHA-256 Name, whatever the spelling accepted.
            assert!(s.tpm.parent_name.as_ref().is_none_or(|p| p.value[..2] == [0, 0x0b]));
            assert!((1..=600).contains(&s.tpm.timeout.as_secs()));
            tcti::parse(&s.tpm.tcti.value).expect("the accepted TPM= parses again");
            PcrSelection::parse(&s.tpm.pcrs.value).expect("the accepted TPM2_PCRS= parses again");
            // The same inputs resolve to the same settings.
            assert_eq!(Settings::resolve(&inputs).ok(), Some(s.clone()));
            // Pins: only the pinnable settings change, the floors only
            // rise, and what `render` writes back applies to the same pins.
            if let Some(bytes) = body("pins") {
                let file = dir.join("pins");
                std::fs::write(&file, bytes).expect("write the pins file");
                let mut pinned = s.clone();
                if integrity_loader::pins::apply(&file, &mut pinned).is_ok() {
                    let mut rest = pinned.clone();
                    rest.masterkey_type = s.masterkey_type.clone();
                    rest.masterkey = s.masterkey.clone();
                    rest.masterkey_sha256 = s.masterkey_sha256.clone();
                    rest.recovery_sha256 = s.recovery_sha256.clone();
                    rest.kmk_name = s.kmk_name.clone();
                    rest.kmk_name_source = s.kmk_name_source.clone();
                    rest.tpm.parent_name = s.tpm.parent_name.clone();
                    rest.tpm.pcr_lock = s.tpm.pcr_lock;
                    rest.tpm.pcr_lock_explicit = s.tpm.pcr_lock_explicit;
                    rest.drop_kmk = s.drop_kmk.clone();
                    rest.failure_action = s.failure_action;
                    rest.required = s.required.clone();
                    assert_eq!(rest, s, "a pins file changed more than the pins");
                    assert!(pinned.masterkey.value.starts_with('/'));
                    assert!(pinned.tpm.pcr_lock.is_none_or(|p| p < 24));
                    assert!(pinned.required.is_superset(&s.required), "REQUIRE lowered");
                    assert!(
                        s.failure_action != config::FailureAction::Halt
                            || pinned.failure_action == config::FailureAction::Halt,
                        "halt lowered"
                    );
                    if let Ok(Some(text)) = integrity_loader::pins::render(&pinned, &root) {
                        std::fs::write(&file, text).expect("write the pins file");
                        let mut again = s.clone();
                        integrity_loader::pins::apply(&file, &mut again)
                            .expect("rendered pins apply");
                        assert_eq!(
                            again.tpm.parent_name.as_ref().map(|p| p.value),
                            pinned.tpm.parent_name.as_ref().map(|p| p.value)
                        );
                        assert_eq!(again.failure_action, pinned.failure_action);
                        assert_eq!(again.required, pinned.required);
                        assert_eq!(again.drops_kmk(), pinned.drops_kmk());
                    }
                }
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    // Numbers as the shell reads them: what is printed reads back.
    if let Some(text) = body("number").and_then(|b| std::str::from_utf8(b).ok())
        && let Some(n) = config::parse_shell_number(text)
    {
        assert_eq!(config::parse_shell_number(&n.to_string()), Some(n));
        assert_eq!(config::parse_shell_number(&format!("{n:#x}")), Some(n));
        assert_eq!(config::parse_shell_number(&format!("0{n:o}")), Some(n));
    }
});
