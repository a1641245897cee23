//! TSS2 key files (`-----BEGIN TSS2 PRIVATE KEY-----` or DER), the
//! MASTERKEYTYPE=tpm2 blob: `keyfile::parse_tss2`. An accepted key must
//! survive a round trip through the encoder (DER and PEM), and its public
//! area must be one the unseal path's `Public::parse` takes too (both
//! parsers read the same bytes at boot).
#![no_main]

use integrity_loader::tpm::keyfile::{self, Fields, KeyType};
use integrity_loader::tpm::public::{KeyDetail, Public};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let blob = match keyfile::parse_tss2(data) {
        Ok(blob) => blob,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    assert!(blob.parent >> 24 == 0x40 || blob.parent >> 24 == 0x81);
    let public = Public::parse(blob.public_area()).expect("Public::parse takes what keyfile took");
    assert_eq!(public.detail, KeyDetail::KeyedHash);
    assert_eq!(public.attributes, blob.object_attributes());
    assert_eq!(
        public.auth_policy.as_slice(),
        blob.auth_policy().unwrap_or_default()
    );
    assert_eq!(Public::parse_2b(&blob.public).as_ref(), Ok(&public));

    // The encoder writes OID .5 and drops rsaParent; all else comes back.
    let mut expected = blob.clone();
    expected.oid = KeyType::SealedData;
    let der = keyfile::encode_tss2_der(&blob, Fields::All);
    assert_eq!(keyfile::parse_tss2(&der).as_ref(), Ok(&expected));
    let pem = keyfile::encode_tss2_pem(&blob, Fields::All);
    assert_eq!(keyfile::parse_tss2(pem.as_bytes()).as_ref(), Ok(&expected));
    // The kernel's subset: no policy, no description.
    expected.policy.clear();
    expected.description = None;
    let der = keyfile::encode_tss2_der(&blob, Fields::Kernel);
    assert_eq!(keyfile::parse_tss2(&der).as_ref(), Ok(&expected));
});
