//! TPM 2.0 command execution over a transport: framing, password and
//! HMAC/policy session authorization, parameter encryption, response
//! checking. Every response is checked against the command sent: its size,
//! tag, handle and parameter areas, and for sessions its HMAC (a bus
//! interposer must not be able to forge an answer).

use super::constants::{CommandCode, RS_PW, ST_NO_SESSIONS, ST_SESSIONS};
use super::crypto;
use super::rc::ResponseCode;
use super::transport::{Transport, TransportError};
use super::wire::{Reader, Truncated, Writer};
use std::fmt;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Session attributes (TPMA_SESSION).
pub const ATTR_CONTINUE: u8 = 0x01;
pub const ATTR_DECRYPT: u8 = 0x20;
pub const ATTR_ENCRYPT: u8 = 0x40;
/// How often a command answered with RETRY/YIELDED/TESTING is sent again.
const MAX_RETRIES: u32 = 5;
const NONCE_LEN: usize = 32;

#[derive(Debug)]
pub enum TpmError {
    Transport(TransportError),
    /// The TPM answered with an error code.
    Rc {
        command: &'static str,
        rc: ResponseCode,
    },
    /// The answer is not a valid answer to the command sent.
    Malformed {
        command: &'static str,
        why: String,
    },
    /// The response HMAC does not verify: the answer was altered or forged.
    BadResponseHmac {
        command: &'static str,
    },
    Crypto(String),
    /// The step's bound on all its TPM work ([`StepBound`]) ran out while
    /// `command` was (to be) sent, after `retries` RETRY answers to it;
    /// `None` while connecting.
    StepTimeout {
        command: Option<&'static str>,
        bound: Duration,
        retries: u32,
    },
}

impl fmt::Display for TpmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TpmError::Transport(e) => write!(f, "{e}"),
            TpmError::Rc { command, rc } => write!(f, "TPM2_{command}: {rc}"),
            TpmError::Malformed { command, why } => {
                write!(f, "TPM2_{command}: malformed response from the TPM: {why}")
            }
            TpmError::BadResponseHmac { command } => write!(
                f,
                "TPM2_{command}: the response HMAC does not verify; the answer was altered on the bus, refusing it"
            ),
            TpmError::Crypto(e) => write!(f, "session crypto: {e}"),
            TpmError::StepTimeout {
                command,
                bound,
                retries,
            } => {
                match command {
                    Some(command) => write!(f, "TPM2_{command}: ")?,
                    None => f.write_str("connect to the TPM: ")?,
                }
                write!(
                    f,
                    "the TPM used up TPM_STEP_TIMEOUT, the {} its whole step may take",
                    crate::logging::Secs(*bound)
                )?;
                match retries {
                    0 => {}
                    1 => f.write_str(" (it asked to retry this command once)")?,
                    n => write!(f, " (it asked to retry this command {n} times)")?,
                }
                f.write_str("; raise TPM_STEP_TIMEOUT (seconds, 1..600) for a TPM this slow")
            }
        }
    }
}

impl std::error::Error for TpmError {}

impl From<TransportError> for TpmError {
    fn from(e: TransportError) -> Self {
        TpmError::Transport(e)
    }
}

impl TpmError {
    pub fn rc(&self) -> Option<ResponseCode> {
        match self {
            TpmError::Rc { rc, .. } => Some(*rc),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    Hmac,
    Policy,
}

/// An authorization session the TPM holds for us. The session key is a
/// secret; Debug shows only the handle.
pub struct Session {
    pub handle: u32,
    pub kind: SessionKind,
    session_key: Zeroizing<Vec<u8>>,
    nonce_tpm: Vec<u8>,
    /// False once a command without continueSession succeeded with it.
    pub open: bool,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Session({:#010x}, {:?})", self.handle, self.kind)
    }
}

impl Session {
    pub fn new(
        handle: u32,
        kind: SessionKind,
        session_key: Zeroizing<Vec<u8>>,
        nonce_tpm: Vec<u8>,
    ) -> Session {
        Session {
            handle,
            kind,
            session_key,
            nonce_tpm,
            open: true,
        }
    }
}

/// How one handle of a command is authorized.
pub enum Auth<'a> {
    /// The password session with this (usually empty) password.
    Password(&'a [u8]),
    /// An HMAC or policy session; `auth_value` of the entity (empty here).
    Session {
        session: &'a mut Session,
        attrs: u8,
        auth_value: &'a [u8],
    },
}

/// A command to send. `names` are the Names of the handles that need
/// authorization (for cpHash), in order.
pub struct Request<'a> {
    pub cc: CommandCode,
    pub handles: &'a [u32],
    pub names: &'a [&'a [u8]],
    pub params: Vec<u8>,
    pub response_handles: usize,
}

impl Request<'_> {
    /// `cc` with no handles, no parameters and no handles in the answer.
    pub fn new(cc: CommandCode) -> Self {
        Request {
            cc,
            handles: &[],
            names: &[],
            params: Vec::new(),
            response_handles: 0,
        }
    }

    /// `cc` with these parameters and no handles.
    pub fn with_params(cc: CommandCode, params: Vec<u8>) -> Self {
        Request {
            params,
            ..Request::new(cc)
        }
    }
}

/// A successful answer: its handles and parameter area (decrypted).
pub struct Response {
    pub handles: Vec<u32>,
    pub params: Zeroizing<Vec<u8>>,
}

impl Response {
    /// The one handle a command answers with (`response_handles: 1`), or
    /// the response called malformed with `why`.
    pub fn handle(&self, command: CommandCode, why: &str) -> Result<u32, TpmError> {
        self.handles
            .first()
            .copied()
            .ok_or_else(|| malformed(command.name(), why))
    }
}

/// Counters for the log: how many commands and how long the TPM took, and
/// where the client's own time went.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub commands: u32,
    /// Waiting for the TPM's answers.
    pub time: Duration,
    /// Making session salts: the ECDH or RSA-OAEP and its randomness.
    pub salt: Duration,
    /// The rest of the client's work on commands: nonces, KDFa, HMACs,
    /// AES-CFB parameter encryption, marshalling.
    pub host: Duration,
}

/// The bound on all the TPM work of one step (TPM_STEP_TIMEOUT), on top of
/// each command's own: no command starts after it and no wait runs past it,
/// so a TPM that keeps asking to retry cannot hold the boot for long.
#[derive(Debug, Clone, Copy)]
pub struct StepBound {
    until: Instant,
    bound: Duration,
}

impl StepBound {
    /// `bound` from now.
    pub fn starting_now(bound: Duration) -> StepBound {
        let now = Instant::now();
        StepBound {
            until: now.checked_add(bound).unwrap_or(now),
            bound,
        }
    }

    /// What is left of it.
    pub fn left(&self) -> Duration {
        self.until.saturating_duration_since(Instant::now())
    }

    fn ran_out(&self, command: Option<&'static str>, retries: u32) -> TpmError {
        TpmError::StepTimeout {
            command,
            bound: self.bound,
            retries,
        }
    }
}

/// Opens the TPM `tcti` names for a bounded step: the connection, too,
/// waits no longer than what is left of `step`.
pub fn open_bounded(
    tcti: &super::tcti::Tcti,
    timeout: Duration,
    step: StepBound,
) -> Result<Tpm, TpmError> {
    match super::transport::open(tcti, timeout.min(step.left())) {
        Ok(transport) => Ok(Tpm::bounded(transport, step)),
        Err(TransportError::Timeout { .. }) if step.left().is_zero() => Err(step.ran_out(None, 0)),
        Err(e) => Err(e.into()),
    }
}

pub struct Tpm {
    transport: Box<dyn Transport>,
    pub stats: Stats,
    step: Option<StepBound>,
}

fn malformed(command: &'static str, why: impl Into<String>) -> TpmError {
    TpmError::Malformed {
        command,
        why: why.into(),
    }
}

fn truncated(command: &'static str) -> impl Fn(Truncated) -> TpmError {
    move |t| malformed(command, t.to_string())
}

/// Encrypts or decrypts the data bytes of the first TPM2B of a parameter
/// area in place (parameter encryption applies to that one only).
fn crypt_first_param(params: &mut [u8], key_iv: &[u8; 32], encrypt: bool) -> Result<(), String> {
    let (size, rest) = params
        .split_first_chunk_mut::<2>()
        .ok_or("no first parameter")?;
    let n = usize::from(u16::from_be_bytes(*size));
    let data = rest
        .get_mut(..n)
        .ok_or("first parameter overruns the area")?;
    if encrypt {
        crypto::aes128_cfb_encrypt(key_iv, data);
    } else {
        crypto::aes128_cfb_decrypt(key_iv, data);
    }
    Ok(())
}

impl Tpm {
    pub fn new(transport: Box<dyn Transport>) -> Tpm {
        Tpm {
            transport,
            stats: Stats::default(),
            step: None,
        }
    }

    /// A client whose commands all end within `step`.
    pub fn bounded(transport: Box<dyn Transport>, step: StepBound) -> Tpm {
        Tpm {
            step: Some(step),
            ..Tpm::new(transport)
        }
    }

    /// Sends one command and checks its answer.
    pub fn execute(&mut self, req: Request, auths: &mut [Auth]) -> Result<Response, TpmError> {
        let (start, in_tpm) = (Instant::now(), self.stats.time);
        let result = self.execute_untimed(req, auths);
        let tpm = self.stats.time.saturating_sub(in_tpm);
        self.stats.host += start.elapsed().saturating_sub(tpm);
        result
    }

    fn execute_untimed(
        &mut self,
        mut req: Request,
        auths: &mut [Auth],
    ) -> Result<Response, TpmError> {
        let name = req.cc.name();
        let mut params = Zeroizing::new(std::mem::take(&mut req.params));
        // Fresh caller nonces, one per session, for this command.
        let mut nonces: Vec<Vec<u8>> = Vec::with_capacity(auths.len());
        for auth in auths.iter() {
            nonces.push(match auth {
                Auth::Password(_) => Vec::new(),
                Auth::Session { .. } => {
                    crypto::random_bytes(NONCE_LEN).map_err(|e| TpmError::Crypto(e.to_string()))?
                }
            });
        }
        // Parameter encryption of the first command parameter.
        for (auth, nonce) in auths.iter().zip(&nonces) {
            if let Auth::Session {
                session,
                attrs,
                auth_value,
            } = auth
                && attrs & ATTR_DECRYPT != 0
            {
                let key_iv =
                    crypto::cfb_key_iv(&session.session_key, auth_value, nonce, &session.nonce_tpm);
                crypt_first_param(&mut params, &key_iv, true).map_err(|e| malformed(name, e))?;
            }
        }
        let cp_hash = crypto::cp_hash(req.cc.code(), req.names, &params);

        let mut w = Writer::new();
        let tag = if auths.is_empty() {
            ST_NO_SESSIONS
        } else {
            ST_SESSIONS
        };
        w.u16(tag).u32(0).u32(req.cc.code());
        for h in req.handles {
            w.u32(*h);
        }
        if !auths.is_empty() {
            let mut area = Writer::new();
            for (auth, nonce) in auths.iter().zip(&nonces) {
                match auth {
                    Auth::Password(pw) => {
                        area.u32(RS_PW).tpm2b(&[]).u8(ATTR_CONTINUE).tpm2b(pw);
                    }
                    Auth::Session {
                        session,
                        attrs,
                        auth_value,
                    } => {
                        let hmac = crypto::command_hmac(
                            &session.session_key,
                            auth_value,
                            &cp_hash,
                            nonce,
                            &session.nonce_tpm,
                            *attrs,
                        );
                        area.u32(session.handle)
                            .tpm2b(nonce)
                            .u8(*attrs)
                            .tpm2b(&hmac);
                    }
                }
            }
            w.u32(u32::try_from(area.len()).unwrap_or(u32::MAX))
                .bytes(area.as_slice());
        }
        w.bytes(&params);
        let mut command = Zeroizing::new(w.into_vec());
        let size = u32::try_from(command.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes();
        if let Some(field) = command.get_mut(2..6) {
            field.copy_from_slice(&size);
        }

        let answer = Zeroizing::new(self.send(name, &command)?);
        self.parse_response(&req, &answer, auths, &nonces)
    }

    /// Sends, retrying a bounded number of times when the TPM asks to, all
    /// within the step's bound when there is one.
    fn send(&mut self, name: &'static str, command: &[u8]) -> Result<Vec<u8>, TpmError> {
        let mut attempt = 0;
        loop {
            if let Some(step) = self.step {
                if step.left().is_zero() {
                    return Err(step.ran_out(Some(name), attempt));
                }
                self.transport.cap(Some(step.until));
            }
            let start = Instant::now();
            let answer = match (self.transport.transact(command), self.step) {
                (Ok(answer), _) => answer,
                // The wait ended at the step's bound, not at the command's.
                (Err(TransportError::Timeout { .. }), Some(step)) if step.left().is_zero() => {
                    return Err(step.ran_out(Some(name), attempt));
                }
                (Err(e), _) => return Err(e.into()),
            };
            self.stats.commands += 1;
            self.stats.time += start.elapsed();
            let rc = answer
                .get(6..10)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes)
                .ok_or_else(|| {
                    malformed(
                        name,
                        format!("{} bytes is shorter than a header", answer.len()),
                    )
                })?;
            if ResponseCode(rc).is_retryable() && attempt < MAX_RETRIES {
                attempt += 1;
                let pause = Duration::from_millis(20 * u64::from(attempt));
                std::thread::sleep(self.step.map_or(pause, |s| pause.min(s.left())));
                continue;
            }
            return Ok(answer);
        }
    }

    fn parse_response(
        &mut self,
        req: &Request,
        answer: &[u8],
        auths: &mut [Auth],
        nonces: &[Vec<u8>],
    ) -> Result<Response, TpmError> {
        let name = req.cc.name();
        let t = truncated(name);
        let mut r = Reader::new(answer);
        let tag = r.u16().map_err(&t)?;
        let size = r.u32().map_err(&t)?;
        let rc = r.u32().map_err(&t)?;
        if size as usize != answer.len() {
            return Err(malformed(
                name,
                format!("size field {size}, {} bytes received", answer.len()),
            ));
        }
        if rc != 0 {
            if tag != ST_NO_SESSIONS || answer.len() != 10 {
                return Err(malformed(name, "error response with a body"));
            }
            return Err(TpmError::Rc {
                command: name,
                rc: ResponseCode(rc),
            });
        }
        let want_tag = if auths.is_empty() {
            ST_NO_SESSIONS
        } else {
            ST_SESSIONS
        };
        if tag != want_tag {
            return Err(malformed(
                name,
                format!("tag {tag:#06x}, expected {want_tag:#06x}"),
            ));
        }
        let mut handles = Vec::with_capacity(req.response_handles);
        for _ in 0..req.response_handles {
            handles.push(r.u32().map_err(&t)?);
        }
        let params = if auths.is_empty() {
            r.take(r.remaining()).map_err(&t)?
        } else {
            let n = r.u32().map_err(&t)? as usize;
            r.take(n).map_err(&t)?
        };
        let mut params = Zeroizing::new(params.to_vec());
        let rp_hash = crypto::rp_hash(0, req.cc.code(), &params);
        for (auth, nonce_caller) in auths.iter_mut().zip(nonces) {
            let nonce_tpm = r.tpm2b().map_err(&t)?.to_vec();
            let attrs = r.u8().map_err(&t)?;
            let hmac = r.tpm2b().map_err(&t)?;
            match auth {
                Auth::Password(_) => {
                    if !hmac.is_empty() || !nonce_tpm.is_empty() {
                        return Err(malformed(
                            name,
                            "password session answer carries a nonce or HMAC",
                        ));
                    }
                }
                Auth::Session {
                    session,
                    attrs: sent_attrs,
                    auth_value,
                } => {
                    let ok = crypto::verify_response_hmac(
                        &session.session_key,
                        auth_value,
                        &rp_hash,
                        &nonce_tpm,
                        nonce_caller,
                        attrs,
                        hmac,
                    );
                    if !ok {
                        return Err(TpmError::BadResponseHmac { command: name });
                    }
                    if *sent_attrs & ATTR_ENCRYPT != 0 {
                        let key_iv = crypto::cfb_key_iv(
                            &session.session_key,
                            auth_value,
                            &nonce_tpm,
                            nonce_caller,
                        );
                        crypt_first_param(&mut params, &key_iv, false)
                            .map_err(|e| malformed(name, e))?;
                    }
                    session.nonce_tpm = nonce_tpm;
                    if *sent_attrs & ATTR_CONTINUE == 0 {
                        session.open = false;
                    }
                }
            }
        }
        if r.remaining() != 0 {
            return Err(malformed(
                name,
                format!("{} unexpected trailing bytes", r.remaining()),
            ));
        }
        Ok(Response { handles, params })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_one_response_handle_or_a_malformed_answer() {
        let with = |handles: Vec<u32>| Response {
            handles,
            params: Zeroizing::new(Vec::new()),
        };
        let ok = with(vec![0x8000_0001]).handle(CommandCode::Load, "no object handle");
        assert_eq!(ok.ok(), Some(0x8000_0001));
        let err = with(Vec::new())
            .handle(CommandCode::Load, "no object handle")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("TPM2_Load: malformed response from the TPM: no object handle")
        );
    }
}
