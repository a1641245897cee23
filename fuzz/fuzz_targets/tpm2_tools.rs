//! tpm2-tools' `.pub`/`.priv` pair (`keyfile::parse_tpm2_tools`) and the
//! TPMT_PUBLIC parser (`Public::parse`/`parse_2b`) that also reads the
//! public areas TPM answers carry.
//!
//! Input: a big-endian u16 length, that many bytes of `.pub`, then `.priv`.
//! An accepted pair converts to a TSS2 key file that parses back to it, and
//! its `.pub` is one `Public::parse_2b` takes. A public area `Public` takes
//! is kept byte for byte and has a 34-byte Name.
#![no_main]

use integrity_loader::tpm::keyfile::{self, Fields};
use integrity_loader::tpm::public::Public;
use integrity_loader_fuzz::Input;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let n = usize::from(input.u16());
    let (public, private) = (input.bytes(n), input.rest());
    let (public, private) = (public.as_slice(), private.as_slice());

    // The public parser on its own, bare and with its size.
    for area in [public, private] {
        if let Ok(p) = Public::parse(area) {
            assert_eq!(p.bytes, area);
            assert_eq!(p.name().len(), 34);
            let mut sized = (area.len() as u16).to_be_bytes().to_vec();
            sized.extend_from_slice(area);
            if area.len() <= usize::from(u16::MAX) {
                assert_eq!(Public::parse_2b(&sized), Ok(p));
            }
        }
    }

    let blob = match keyfile::parse_tpm2_tools(public, private) {
        Ok(blob) => blob,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    assert_eq!(
        (blob.public.as_slice(), blob.private.as_slice()),
        (public, private)
    );
    assert_eq!(blob.parent, keyfile::DEFAULT_PARENT);
    Public::parse_2b(public).expect("Public::parse_2b takes the .pub keyfile took");
    let der = keyfile::encode_tss2_der(&blob, Fields::All);
    assert_eq!(keyfile::parse_tss2(&der), Ok(blob));
});
