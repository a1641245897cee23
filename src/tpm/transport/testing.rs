//! Test helpers, also for other modules' tests: fake TPMs that misbehave, a
//! command with a known answer. A real swtpm comes from the harness.

use super::mssim::MS_SIM_SESSION_END;
use super::swtpm::Swtpm;
use super::{MAX_MESSAGE, Transport, TransportError, open};
use crate::tpm::tcti::{self, Tcti};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

/// The timeout of the transport tests.
pub const SHORT: Duration = Duration::from_secs(1);

/// What opening `tcti` fails with.
pub fn open_err(tcti: &Tcti) -> TransportError {
    match open(tcti, SHORT) {
        Ok(_) => panic!("{tcti} opened"),
        Err(e) => e,
    }
}

/// The swtpm's TCTI, parsed.
pub fn tcti_of(swtpm: &Swtpm) -> Tcti {
    tcti::parse(&swtpm.tcti()).unwrap()
}

/// A transport to the swtpm with a 5 s timeout.
pub fn open_swtpm(swtpm: &Swtpm) -> Box<dyn Transport> {
    open(&tcti_of(swtpm), Duration::from_secs(5)).unwrap()
}

/// TPM2_GetRandom(bytesRequested = 16), no sessions.
pub const GET_RANDOM_16: [u8; 12] = [0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7B, 0, 16];

/// Checks a successful answer to [`GET_RANDOM_16`]: tag NO_SESSIONS,
/// size 28, rc 0, a 16-byte TPM2B.
pub fn assert_random_16(response: &[u8]) {
    assert_eq!(response.len(), 28, "{response:02x?}");
    assert_eq!(&response[..2], &[0x80, 0x01], "tag");
    assert_eq!(&response[2..6], &28u32.to_be_bytes(), "size");
    assert_eq!(&response[6..10], &[0, 0, 0, 0], "rc");
    assert_eq!(&response[10..12], &[0, 16], "randomBytes.size");
}

/// A fake TPM server; the connection stays open until this drops.
#[derive(Debug)]
pub struct FakeTpm {
    pub port: u16,
    _hold: mpsc::Sender<()>,
}

/// Listens on 127.0.0.1, accepts one connection, reads one message and
/// hands the stream to `behave` (which answers, or not, or closes).
pub fn fake_tpm(behave: impl FnOnce(&mut TcpStream) + Send + 'static) -> FakeTpm {
    fake_tpm_on(TcpListener::bind("127.0.0.1:0").unwrap(), behave)
}

pub fn fake_tpm_on(
    listener: TcpListener,
    behave: impl FnOnce(&mut TcpStream) + Send + 'static,
) -> FakeTpm {
    let port = listener.local_addr().unwrap().port();
    let (hold, held) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut buf = [0u8; MAX_MESSAGE];
        let _ = stream.read(&mut buf);
        behave(&mut stream);
        let _ = held.recv();
    });
    FakeTpm { port, _hold: hold }
}

/// A fake mssim platform port: answers each u32 code with `answer`, and
/// reports the codes it got.
pub fn fake_platform(listener: TcpListener, answer: u32) -> mpsc::Receiver<u32> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut code = [0u8; 4];
        while stream.read_exact(&mut code).is_ok() {
            let code = u32::from_be_bytes(code);
            let _ = tx.send(code);
            if code == MS_SIM_SESSION_END {
                break;
            }
            stream.write_all(&answer.to_be_bytes()).unwrap();
        }
    });
    rx
}
