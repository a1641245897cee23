//! TPM answers as the boot path and `seal` unmarshal them: each command of
//! `tpm::commands` run through the real client (`Tpm::execute`: framing,
//! tag, size, handle and parameter areas, password and session areas, then
//! the command's own parameter parsing with `wire::Reader`, `Public::parse`
//! and `PcrSelection::unmarshal`) against a TPM that answers the fuzz bytes.
//!
//! Input: command selector, flags (bit 0: make the header's size field
//! match, as the transport guarantees for real TPMs; bit 1: session kind or
//! bus encryption), then the answer, given to every command of the call.
//! Answers asking for a retry are skipped: the client sleeps before retrying.
//!
//! Oracles: whatever is returned agrees with what was asked (Names match
//! public areas, PCR_Read returns the selected PCRs), and no answer without
//! the session key can pass as an authorized Unseal or Create.
#![no_main]

use integrity_loader::tpm::client::{Session, SessionKind, Tpm};
use integrity_loader::tpm::commands;
use integrity_loader::tpm::constants;
use integrity_loader::tpm::pcr::PcrSelection;
use integrity_loader::tpm::public::{self, KeyDetail, Public};
use integrity_loader::tpm::rc::ResponseCode;
use integrity_loader_fuzz::{Input, Replay};
use libfuzzer_sys::fuzz_target;
use zeroize::Zeroizing;

const SEAL_PUB: &[u8] = include_bytes!("../../tests/fixtures/tpm/seal.pub");
const SEAL_PRIV: &[u8] = include_bytes!("../../tests/fixtures/tpm/seal.priv");
const PARENT: u32 = 0x8100_0001;

/// An ECC P-256 storage key whose point is the curve's base point G
/// (FIPS 186-4 D.1.2.3), so the ECDH salt computation succeeds.
fn salt_key() -> Public {
    let x = hex("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296");
    let y = hex("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5");
    Public {
        object_type: constants::ALG_ECC,
        name_alg: constants::ALG_SHA256,
        attributes: public::SRK_ATTRIBUTES,
        auth_policy: Vec::new(),
        detail: KeyDetail::Ecc {
            curve: constants::ECC_NIST_P256,
            x,
            y,
        },
        bytes: public::srk_ecc_template(),
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn session(kind: SessionKind) -> Session {
    Session::new(
        0x0300_0000,
        kind,
        Zeroizing::new(b"session key the fuzzer never sees".to_vec()),
        vec![0x5a; 32],
    )
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let which = input.u8();
    let flags = input.u8();
    let pcr_bits = input.u32();
    let mut answer = input.rest();
    if flags & 1 != 0 && answer.len() >= 6 {
        let size = (answer.len() as u32).to_be_bytes();
        answer[2..6].copy_from_slice(&size);
    }
    if let Some(rc) = answer.get(6..10) {
        let rc = u32::from_be_bytes(rc.try_into().expect("4 bytes"));
        if ResponseCode(rc).is_retryable() {
            return;
        }
    }
    let alt = flags & 2 != 0;
    let kind = if alt {
        SessionKind::Hmac
    } else {
        SessionKind::Policy
    };
    let mut tpm = Tpm::new(Box::new(Replay(answer)));
    let sealed = Public::parse_2b(SEAL_PUB).expect("the fixture's public area");

    match which % 14 {
        0 => {
            let _ = commands::startup_clear(&mut tpm);
        }
        1 => {
            if let Ok(p) = commands::read_public(&mut tpm, PARENT) {
                assert_eq!(Public::parse(&p.bytes).as_ref(), Ok(&p));
            }
        }
        2 => {
            if let Ok(s) = commands::start_salted_session(&mut tpm, PARENT, &salt_key(), kind) {
                assert!(s.open);
                assert_eq!(s.kind, kind);
            }
        }
        3 => {
            let pcrs = PcrSelection::parse("sha256:7,11").expect("pcrs");
            let _ = commands::policy_pcr(&mut tpm, &session(kind), &pcrs);
        }
        4 => {
            let _ = commands::policy_get_digest(&mut tpm, &session(kind));
        }
        5 => {
            let parent_name = salt_key().name();
            if let Ok((_, name)) =
                commands::load(&mut tpm, PARENT, &parent_name, SEAL_PRIV, SEAL_PUB, &sealed)
            {
                assert_eq!(name, sealed.name());
            }
        }
        6 => {
            let mut s = session(SessionKind::Policy);
            let r = commands::unseal(&mut tpm, 0x8000_0001, &sealed.name(), &mut s, alt);
            assert!(
                r.is_err(),
                "an Unseal answer passed without the session key"
            );
            assert!(s.open);
        }
        7 => {
            let _ = commands::flush(&mut tpm, 0x8000_0001);
        }
        8 => {
            let wanted: Vec<u8> = (0..24).filter(|i| pcr_bits & (1 << i) != 0).collect();
            let Some(pcrs) = PcrSelection::from_indices(&wanted) else {
                return;
            };
            if let Ok(values) = commands::pcr_read(&mut tpm, &pcrs) {
                let got: Vec<u8> = values.iter().map(|(i, _)| *i).collect();
                assert_eq!(got, wanted);
            }
        }
        9 => {
            let _ = commands::pcr_extend(&mut tpm, 11, &[7; 32]);
        }
        10 => {
            let _ = commands::get_random(&mut tpm, 32);
        }
        11 => {
            if let Ok((_, p)) = commands::create_primary(&mut tpm, &[], &public::srk_ecc_template())
            {
                assert_eq!(Public::parse(&p.bytes).as_ref(), Ok(&p));
            }
        }
        12 => {
            let _ = commands::evict_control(&mut tpm, &[], 0x8000_0001, &sealed.name(), PARENT);
        }
        _ => {
            let mut s = session(SessionKind::Hmac);
            let template = public::sealed_template(&[0; 32]);
            let r = commands::create_sealed(
                &mut tpm,
                PARENT,
                &salt_key().name(),
                &mut s,
                b"secret",
                &template,
            );
            assert!(r.is_err(), "a Create answer passed without the session key");
        }
    }
});
