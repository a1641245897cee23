//! Certificate intake, PEM side. With an even first byte the rest is taken
//! as a PEM file (the PEM decoder's own grammar: boundaries, whitespace,
//! padding, text around the block). With an odd first byte the rest is taken
//! as DER and armoured here in well-formed PEM: intake of the armour must
//! agree with intake of the DER (same certificate, or the same refusal).
#![no_main]

use integrity_loader::x509::{self, CertError};
use integrity_loader_fuzz::{Input, armor};
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_750_000_000;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let mode = input.u8();
    if mode & 1 == 0 {
        let text = input.rest();
        match x509::intake_at(&text, NOW) {
            Ok(cert) => {
                let again = x509::intake_at(cert.der(), NOW).expect("the decoded DER");
                assert_eq!(
                    (again.subject(), again.key_id(), again.key_type()),
                    (cert.subject(), cert.key_id(), cert.key_type())
                );
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
        return;
    }
    // Lines of 4..=131 characters: whole base64 quads per line or not.
    let width = usize::from(mode >> 1) + 4;
    let der = input.rest();
    let der = der.as_slice();
    // Only DER the intake itself takes as DER can be compared.
    if der.first() != Some(&0x30) || der.windows(11).any(|w| w == b"-----BEGIN ") {
        return;
    }
    let pem = armor("CERTIFICATE", der, width);
    if pem.len() > x509::MAX_INPUT_LEN {
        return;
    }
    match (x509::intake_at(der, NOW), x509::intake_at(&pem, NOW)) {
        (Ok(a), Ok(b)) => {
            assert!(b.was_pem() && !a.was_pem());
            assert_eq!(a.der(), b.der());
            assert_eq!(
                (a.subject(), a.key_id(), a.key_type(), a.warnings()),
                (b.subject(), b.key_id(), b.key_type(), b.warnings())
            );
        }
        (Err(a), Err(b)) => {
            // Too large and empty are about the file, not the certificate.
            if !matches!(a, CertError::TooLarge { .. } | CertError::Empty) {
                assert_eq!(a, b);
            }
        }
        (a, b) => panic!("DER gives {a:?}, its PEM armour {b:?}"),
    }
});
