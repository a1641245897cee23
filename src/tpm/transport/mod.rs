//! Moves one whole TPM command to the TPM and one whole response back: over
//! the kernel device (/dev/tpmrm0, /dev/tpm0), swtpm's data socket (TCP or
//! unix) or the mssim simulator protocol.
//!
//! Every transaction runs under one deadline, the timeout given at open (or
//! the caller's earlier cap, see [`Transport::cap`]): the fds are
//! non-blocking and every wait is a poll(2) with the time left, so a TPM
//! that never answers is an error rather than a hung boot. `device:PATH` is
//! opened only when PATH is a character device of sysfs class tpm or tpmrm,
//! checked before the open and again on the opened fd. A response's
//! size field must be 10..=4096 before anything is allocated for it. After a
//! transaction fails half-way the transport refuses further commands, so a
//! late answer is never read as the answer to the next command.

mod channel;
mod device;
mod error;
mod mssim;
mod recording;
mod resolve;
mod socket;
mod tcp;
mod unix;

pub use device::DeviceTransport;
pub use error::TransportError;
pub use mssim::MssimTransport;
pub use recording::Recording;
pub use socket::SocketTransport;

use super::tcti::Tcti;
use std::time::{Duration, Instant};

/// How long one command may take, from sending it to the last response byte.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest command or response: the kernel's TPM_BUFSIZE.
pub const MAX_MESSAGE: usize = 4096;
/// tag u16 | size u32 | command or response code u32.
const HEADER: usize = 10;

pub trait Transport {
    /// Sends one whole TPM command and returns one whole response, whose
    /// size field has been checked against the bytes received.
    fn transact(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError>;

    /// Ends the wait of every later transaction at `until` at the latest,
    /// even when the timeout given at open leaves more (the client's bound on
    /// a whole step). A wrapper that does not pass it on keeps only its own.
    fn cap(&mut self, _until: Option<Instant>) {}
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn transact(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transact(command)
    }

    fn cap(&mut self, until: Option<Instant>) {
        (**self).cap(until)
    }
}

/// Opens the TPM a TCTI names. `device:/dev/tpmrmN` falls back to
/// /dev/tpmN when the former does not exist, with a logged warning.
pub fn open(tcti: &Tcti, timeout: Duration) -> Result<Box<dyn Transport>, TransportError> {
    Ok(match tcti {
        Tcti::Device(path) => {
            let (transport, warning) = DeviceTransport::open_with_fallback(path, timeout)?;
            if let Some(warning) = warning {
                log::warn!("{warning}");
            }
            Box::new(transport)
        }
        Tcti::SwtpmTcp { host, port } => {
            Box::new(SocketTransport::connect_tcp(host, *port, timeout)?)
        }
        Tcti::SwtpmUnix(path) => Box::new(SocketTransport::connect_unix(path, timeout)?),
        Tcti::Mssim { host, port } => Box::new(MssimTransport::connect(host, *port, timeout)?),
    })
}

/// The size field of a command or response header.
fn size_field(message: &[u8]) -> Option<u32> {
    message
        .get(2..6)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
}

fn deadline(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(now)
}

/// The swtpm harness of the integration tests, the one copy.
#[cfg(test)]
#[path = "../../../tests/common/swtpm.rs"]
mod swtpm;

#[cfg(test)]
pub mod testing;
