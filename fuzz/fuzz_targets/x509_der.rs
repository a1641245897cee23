//! Certificate intake, DER side: `x509::intake_at` on raw bytes (the files
//! under IMAKEYSDIR/EVMKEYSDIR and EVMX509), at a fixed clock. An accepted
//! certificate is exactly the input when it came as DER, and its DER passes
//! intake again with the same subject, key id, key type and warnings.
#![no_main]

use integrity_loader::x509;
use libfuzzer_sys::fuzz_target;

/// 2025-06-15, inside the fixtures' validity.
const NOW: i64 = 1_750_000_000;

fuzz_target!(|data: &[u8]| {
    let cert = match x509::intake_at(data, NOW) {
        Ok(cert) => cert,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    assert!(!cert.der().is_empty() && cert.der().len() <= x509::MAX_INPUT_LEN);
    if !cert.was_pem() {
        assert_eq!(cert.der(), data);
    }
    assert!(cert.key_id().len() >= 8);
    assert!(cert.key_id().bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(!cert.to_string().is_empty());
    let again = x509::intake_at(cert.der(), NOW).expect("an accepted certificate's DER");
    assert!(!again.was_pem());
    assert_eq!(again.der(), cert.der());
    assert_eq!(
        (
            again.subject(),
            again.key_id(),
            again.key_type(),
            again.warnings()
        ),
        (
            cert.subject(),
            cert.key_id(),
            cert.key_type(),
            cert.warnings()
        )
    );
});
