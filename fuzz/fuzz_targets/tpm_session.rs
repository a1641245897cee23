//! Session-authorized TPM answers through the real verification code.
//!
//! `Tpm::execute` sends a command with one or two authorizations (password,
//! or an HMAC/policy session with a fixed session key known here) to a
//! scripted TPM. The script reads the command the client really sent (so it
//! learns the fresh caller nonces), checks its authorization area, and
//! answers like a TPM would: handles, parameters encrypted when the session
//! asked for it, new TPM nonces, response attributes and a correct response
//! HMAC. Then the answer may be damaged: one bit flipped, cut short, bytes
//! appended (each with or without the size field fixed up, as an attacker on
//! the bus would), or an HMAC replaced by fuzz bytes.
//!
//! Oracles:
//! - an undamaged answer is accepted, with the handles and the decrypted
//!   parameters the TPM sent;
//! - a damaged answer is accepted only when every changed byte is one no
//!   HMAC covers (a response handle, a password session's attributes, the
//!   parameters when only passwords authorize); a cut or extended answer
//!   never is; a replaced HMAC only when it is the right one;
//! - a second command on the same sessions carries HMACs computed with the
//!   nonces the first answer delivered (the session state moved on).
//!
//! Input, read in order as the script needs it (a byte count before each
//! variable-length field): shape byte (bit 0: two authorizations, bits 1-2:
//! response handles 0..2, bit 3: a second command); per authorization a kind
//! byte (bit 0 session, bit 1 continueSession, 0x20 decrypt, 0x40 encrypt)
//! and its password or authValue; the command parameters. Then per answer:
//! the handles, the parameters, per session its nonceTPM and attributes
//! (bit 7: an HMAC follows to use instead of the right one), per password
//! its attributes; the damage byte (0 none, 1 flip: u16 offset and bit,
//! 2 cut: u16 length, 3 append: bytes; +4 fix the size field) and its data.
#![no_main]

use integrity_loader::tpm::client::{
    ATTR_CONTINUE, ATTR_DECRYPT, ATTR_ENCRYPT, Auth, Request, Session, SessionKind, Tpm, TpmError,
};
use integrity_loader::tpm::constants::{CommandCode, RS_PW};
use integrity_loader::tpm::crypto;
use integrity_loader::tpm::transport::{Transport, TransportError};
use integrity_loader::tpm::wire::{Reader, Writer};
use integrity_loader_fuzz::{Input, closed};
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use std::rc::Rc;
use zeroize::Zeroizing;

const CC: CommandCode = CommandCode::Unseal; // one handle, parameters either way.
const ITEM: u32 = 0x8000_0001;
const ITEM_NAME: [u8; 34] = [0x44; 34];
const FIRST_NONCE_TPM: [u8; 32] = [0xa5; 32];

fn session_handle(slot: usize) -> u32 {
    0x0300_0000 + slot as u32
}

fn session_key(slot: usize) -> Vec<u8> {
    format!("fixed session key of slot {slot}!").into_bytes()
}

#[derive(Clone)]
enum Slot {
    Password(Vec<u8>),
    Session { attrs: u8, auth_value: Vec<u8> },
}

/// What the script sent, for the caller to check `execute`'s result against.
struct Sent {
    /// Whether `execute` must accept the answer.
    accept: bool,
    /// The handles as they are in the (possibly damaged) answer.
    handles: Vec<u32>,
    /// The parameters as the client must return them.
    params: Vec<u8>,
    /// The new nonceTPM of each session slot.
    nonces: Vec<Vec<u8>>,
}

struct Script {
    input: Input,
    slots: Vec<Slot>,
    response_handles: usize,
    command_params: Vec<u8>,
    /// The nonceTPM each session holds, as far as this TPM knows.
    nonce_tpm: Vec<Vec<u8>>,
    sent: Option<Sent>,
}

/// The data of the first TPM2B of a parameter area, if it has one that fits.
fn first_param(params: &mut [u8]) -> Option<&mut [u8]> {
    let (size, rest) = params.split_first_chunk_mut::<2>()?;
    let n = usize::from(u16::from_be_bytes(*size));
    rest.get_mut(..n)
}

impl Script {
    /// Checks the command `execute` built; returns the caller nonces.
    fn check_command(&self, command: &[u8]) -> Vec<Vec<u8>> {
        let mut r = Reader::new(command);
        assert_eq!(r.u16(), Ok(0x8002));
        assert_eq!(r.u32().map(|s| s as usize), Ok(command.len()));
        assert_eq!(r.u32(), Ok(CC.code()));
        assert_eq!(r.u32(), Ok(ITEM));
        let area_len = r.u32().expect("authorizationSize") as usize;
        let mut area = Reader::new(r.take(area_len).expect("the authorization area"));
        let sent_params = r.rest();
        let cp_hash = crypto::cp_hash(CC.code(), &[&ITEM_NAME], sent_params);
        let mut nonces = Vec::new();
        for (slot, auth) in self.slots.iter().enumerate() {
            let handle = area.u32().expect("session handle");
            let nonce = area.tpm2b().expect("nonceCaller").to_vec();
            let attrs = area.u8().expect("session attributes");
            let hmac = area.tpm2b().expect("hmac");
            match auth {
                Slot::Password(pw) => {
                    assert_eq!(handle, RS_PW);
                    assert!(nonce.is_empty());
                    assert_eq!(attrs, ATTR_CONTINUE);
                    assert_eq!(hmac, pw.as_slice());
                }
                Slot::Session {
                    attrs: sent,
                    auth_value,
                } => {
                    assert_eq!(handle, session_handle(slot));
                    assert_eq!(nonce.len(), 32);
                    assert_eq!(attrs, *sent);
                    let expected = crypto::command_hmac(
                        &session_key(slot),
                        auth_value,
                        &cp_hash,
                        &nonce,
                        &self.nonce_tpm[slot],
                        attrs,
                    );
                    assert_eq!(hmac, expected.as_slice(), "command HMAC of slot {slot}");
                }
            }
            nonces.push(nonce);
        }
        assert_eq!(area.remaining(), 0);
        // Undo the parameter encryption, last session first: the client
        // encrypts for each decrypt session in order.
        let mut plain = sent_params.to_vec();
        for (slot, auth) in self.slots.iter().enumerate().rev() {
            if let Slot::Session { attrs, auth_value } = auth
                && attrs & ATTR_DECRYPT != 0
            {
                let key_iv = crypto::cfb_key_iv(
                    &session_key(slot),
                    auth_value,
                    &nonces[slot],
                    &self.nonce_tpm[slot],
                );
                let data = first_param(&mut plain).expect("an encrypted first parameter");
                crypto::aes128_cfb_decrypt(&key_iv, data);
            }
        }
        assert_eq!(plain, self.command_params);
        nonces
    }

    fn answer(&mut self, command: &[u8]) -> Vec<u8> {
        let callers = self.check_command(command);
        let input = &mut self.input;
        let handles: Vec<u32> = (0..self.response_handles).map(|_| input.u32()).collect();
        let plain = input.short_bytes();
        // Per slot: the new nonceTPM, response attributes and maybe a forged HMAC.
        let mut nonces = Vec::new();
        let mut attrs = Vec::new();
        let mut forged = Vec::new();
        for slot in &self.slots {
            match slot {
                Slot::Password(_) => {
                    nonces.push(Vec::new());
                    attrs.push(input.u8());
                    forged.push(None);
                }
                Slot::Session { .. } => {
                    let len = usize::from(input.u8() % 65);
                    nonces.push(input.bytes(len));
                    let a = input.u8();
                    attrs.push(a & 0x7f);
                    forged.push((a & 0x80 != 0).then(|| input.short_bytes()));
                }
            }
        }
        // Encrypt the first parameter for each encrypt session, last first,
        // so the client's in-order decryption gives back `plain`.
        let mut params = plain.clone();
        let mut decryptable = true;
        for (slot, auth) in self.slots.iter().enumerate().rev() {
            if let Slot::Session { attrs, auth_value } = auth
                && attrs & ATTR_ENCRYPT != 0
            {
                let key_iv = crypto::cfb_key_iv(
                    &session_key(slot),
                    auth_value,
                    &nonces[slot],
                    &callers[slot],
                );
                match first_param(&mut params) {
                    Some(data) => crypto::aes128_cfb_encrypt(&key_iv, data),
                    None => decryptable = false,
                }
            }
        }
        let rp_hash = crypto::rp_hash(0, CC.code(), &params);

        let mut w = Writer::new();
        w.u16(0x8002).u32(0).u32(0);
        for h in &handles {
            w.u32(*h);
        }
        // Bytes no HMAC covers: the handles, a password session's
        // attributes, and the parameters when no session signs them.
        let mut uncovered: Vec<usize> = (10..w.len()).collect();
        w.u32(params.len() as u32);
        let params_area = w.len()..w.len() + params.len();
        let signed = self.slots.iter().any(|s| matches!(s, Slot::Session { .. }));
        if !signed {
            uncovered.extend(params_area.clone());
        }
        w.bytes(&params);
        let mut hmacs_right = true;
        for (slot, auth) in self.slots.iter().enumerate() {
            match auth {
                Slot::Password(_) => {
                    w.tpm2b(&[]);
                    uncovered.push(w.len());
                    w.u8(attrs[slot]).tpm2b(&[]);
                }
                Slot::Session { auth_value, .. } => {
                    let right = crypto::response_hmac(
                        &session_key(slot),
                        auth_value,
                        &rp_hash,
                        &nonces[slot],
                        &callers[slot],
                        attrs[slot],
                    );
                    let hmac = match &forged[slot] {
                        Some(f) => {
                            hmacs_right &= f.as_slice() == right.as_slice();
                            f.clone()
                        }
                        None => right.to_vec(),
                    };
                    w.tpm2b(&nonces[slot]).u8(attrs[slot]).tpm2b(&hmac);
                }
            }
        }
        let mut answer = w.into_vec();
        let size = (answer.len() as u32).to_be_bytes();
        answer[2..6].copy_from_slice(&size);
        let original = answer.clone();

        // The damage.
        let damage = input.u8();
        match damage % 4 {
            0 => {}
            1 => {
                let at = usize::from(input.u16()) % answer.len();
                answer[at] ^= 1 << (input.u8() % 8);
            }
            2 => {
                let len = usize::from(input.u16()) % answer.len();
                answer.truncate(len);
            }
            _ => {
                let extra = input.short_bytes();
                answer.extend_from_slice(if extra.is_empty() { &[0] } else { &extra });
            }
        }
        if damage & 4 != 0 && answer.len() >= 6 {
            let size = (answer.len() as u32).to_be_bytes();
            answer[2..6].copy_from_slice(&size);
        }
        let untouched = answer.len() == original.len()
            && (0..answer.len())
                .filter(|&i| answer[i] != original[i])
                .all(|i| uncovered.contains(&i));
        let handles = (0..self.response_handles)
            .map(|i| {
                let at = 10 + 4 * i;
                answer
                    .get(at..at + 4)
                    .map_or(0, |b| u32::from_be_bytes(b.try_into().expect("4 bytes")))
            })
            .collect();
        // Unsigned parameters are taken as they arrive (never encrypted:
        // only sessions encrypt).
        let params = match answer.get(params_area) {
            Some(arrived) if !signed => arrived.to_vec(),
            _ => plain,
        };
        self.sent = Some(Sent {
            accept: untouched && hmacs_right && decryptable,
            handles,
            params,
            nonces,
        });
        answer
    }
}

struct ScriptedTpm(Rc<RefCell<Script>>);

impl Transport for ScriptedTpm {
    fn transact(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let mut script = self.0.borrow_mut();
        if script.sent.is_some() {
            return Err(closed()); // one answer per execute
        }
        Ok(script.answer(command))
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let shape = input.u8();
    let slot_count = 1 + usize::from(shape & 1);
    let response_handles = usize::from((shape >> 1) & 3) % 3;
    let commands = 1 + usize::from((shape >> 3) & 1);
    let mut slots = Vec::new();
    for _ in 0..slot_count {
        // Bit 0: a session (else the password session), bit 1: continue,
        // and the decrypt and encrypt bits of TPMA_SESSION.
        let kind = input.u8();
        let len = usize::from(input.u8() % 33);
        let value = input.bytes(len);
        slots.push(if kind & 1 == 0 {
            Slot::Password(value)
        } else {
            let mut attrs = kind & (ATTR_DECRYPT | ATTR_ENCRYPT);
            if kind & 2 != 0 {
                attrs |= ATTR_CONTINUE;
            }
            Slot::Session {
                attrs,
                auth_value: value,
            }
        });
    }
    let command_params = input.short_bytes();

    let script = Rc::new(RefCell::new(Script {
        input,
        slots: slots.clone(),
        response_handles,
        command_params: command_params.clone(),
        nonce_tpm: vec![FIRST_NONCE_TPM.to_vec(); slot_count],
        sent: None,
    }));
    let mut tpm = Tpm::new(Box::new(ScriptedTpm(Rc::clone(&script))));
    let mut sessions: Vec<Session> = (0..slot_count)
        .map(|slot| {
            let kind = if slot == 0 {
                SessionKind::Policy
            } else {
                SessionKind::Hmac
            };
            Session::new(
                session_handle(slot),
                kind,
                Zeroizing::new(session_key(slot)),
                FIRST_NONCE_TPM.to_vec(),
            )
        })
        .collect();

    for _ in 0..commands {
        let mut auths: Vec<Auth> = slots
            .iter()
            .zip(sessions.iter_mut())
            .map(|(slot, session)| match slot {
                Slot::Password(pw) => Auth::Password(pw),
                Slot::Session { attrs, auth_value } => Auth::Session {
                    session,
                    attrs: *attrs,
                    auth_value,
                },
            })
            .collect();
        let request = Request {
            cc: CC,
            handles: &[ITEM],
            names: &[&ITEM_NAME],
            params: command_params.clone(),
            response_handles,
        };
        let result = tpm.execute(request, &mut auths);
        drop(auths);
        let Some(sent) = script.borrow_mut().sent.take() else {
            // Nothing was sent: the client refused its own command (a decrypt
            // session without a first parameter to encrypt).
            assert!(
                matches!(result, Err(TpmError::Malformed { .. })),
                "{:?}",
                result.err()
            );
            return;
        };
        let response = match (sent.accept, result) {
            (true, Ok(response)) => response,
            (false, Err(_)) => return,
            (true, Err(e)) => panic!("a good answer was refused: {e}"),
            (false, Ok(_)) => panic!("a damaged or forged answer was accepted"),
        };
        assert_eq!(response.handles, sent.handles);
        assert_eq!(response.params.as_slice(), sent.params.as_slice());
        let mut script = script.borrow_mut();
        for (slot, auth) in slots.iter().enumerate() {
            if let Slot::Session { attrs, .. } = auth {
                assert_eq!(sessions[slot].open, attrs & ATTR_CONTINUE != 0);
                script.nonce_tpm[slot] = sent.nonces[slot].clone();
            }
        }
        if sessions.iter().any(|s| !s.open) {
            return;
        }
    }
});
