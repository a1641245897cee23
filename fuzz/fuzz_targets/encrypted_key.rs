//! The exported encrypted-key blob (the evm-key file): `encrypted_key::parse`.
//! An accepted blob is one line of text whose lengths agree with the
//! kernel's; its text parses again to the same blob, and so does the header
//! written back field by field.
#![no_main]

use integrity_loader::encrypted_key;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(blob) = encrypted_key::parse(data) else {
        if let Err(e) = encrypted_key::parse(data) {
            assert!(!e.to_string().is_empty());
        }
        return;
    };
    let h = &blob.header;
    assert!((20..=4096).contains(&h.data_len));
    assert!(!blob.text.contains('\n'));
    assert_eq!(
        blob.load_payload(),
        format!("load {}", blob.text).into_bytes()
    );
    assert_eq!(
        encrypted_key::parse(blob.text.as_bytes()).as_ref(),
        Ok(&blob)
    );

    let hex = blob
        .text
        .split([' ', '\t'])
        .rfind(|f| !f.is_empty())
        .expect("the hex field");
    assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
    // IV, a separator byte, the data rounded up to AES blocks, the HMAC.
    assert_eq!(hex.len(), 2 * (16 + 1 + h.data_len.div_ceil(16) * 16 + 32));
    let canonical = format!("{} {} {} {hex}\n", h.format, h.master(), h.data_len);
    let again = encrypted_key::parse(canonical.as_bytes()).expect("the canonical form parses");
    assert_eq!(&again.header, h);
});
