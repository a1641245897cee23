//! TCP connections to a TPM under the deadline, as swtpm and mssim need.

use super::TransportError;
use super::error::errno_of;
use super::resolve::resolve;
use crate::tpm::tcti::Tcti;
use std::io;
use std::net::TcpStream;
use std::time::{Duration, Instant};

pub(super) fn connect_tcp(
    tpm: &Tcti,
    host: &str,
    port: u16,
    platform: Option<u16>,
    deadline: Instant,
    timeout: Duration,
) -> Result<TcpStream, TransportError> {
    let mut last = TransportError::Resolve { tpm: tpm.clone() };
    for addr in resolve(host, port) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => {
                stream
                    .set_nonblocking(true)
                    .map_err(|e| TransportError::Io {
                        tpm: tpm.clone(),
                        what: "make the socket non-blocking",
                        errno: errno_of(&e),
                    })?;
                // One small write per command: do not wait for more.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            // Report the first address's failure ("localhost" is tried as
            // 127.0.0.1, then ::1, which may not even exist in an initramfs).
            Err(_) if !matches!(last, TransportError::Resolve { .. }) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                last = TransportError::Timeout {
                    tpm: tpm.clone(),
                    after: timeout,
                }
            }
            Err(e) => {
                last = TransportError::Connect {
                    tpm: tpm.clone(),
                    port: platform,
                    errno: errno_of(&e),
                }
            }
        }
    }
    if deadline <= Instant::now() {
        last = TransportError::Timeout {
            tpm: tpm.clone(),
            after: timeout,
        };
    }
    Err(last)
}
