//! The non-blocking fd under every transport: reads and writes bound by
//! one deadline, and the refusal to reuse a channel a failure left mid-way.

use super::{HEADER, MAX_MESSAGE, TransportError, deadline, size_field};
use crate::tpm::tcti::Tcti;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{self, MsgFlags};
use std::fs::File;
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Waits until `fd` is ready for `events`; false when the deadline passed.
pub(super) fn wait_fd(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    deadline: Instant,
) -> Result<bool, Errno> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        // Round up, so a remainder under a millisecond does not spin.
        let ms = left.as_micros().div_ceil(1000);
        let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd, events)];
        match poll(&mut fds, timeout) {
            Ok(0) | Err(Errno::EINTR) => continue,
            // Readiness includes POLLHUP and POLLERR: the read or write that
            // follows reports what happened.
            Ok(_) => return Ok(true),
            Err(e) => return Err(e),
        }
    }
}

#[derive(Debug)]
pub(super) enum Io {
    Device(File),
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// A non-blocking fd to one TPM, with the deadline-bound reads and writes
/// all transports share.
#[derive(Debug)]
pub(super) struct Channel {
    pub(super) io: Io,
    pub(super) tpm: Tcti,
    pub(super) timeout: Duration,
    /// No transaction waits past this ([`Transport::cap`]).
    pub(super) cap: Option<Instant>,
    /// Set while a transaction is in flight, and left set when it fails.
    pub(super) broken: bool,
}

impl Channel {
    pub(super) fn new(io: Io, tpm: Tcti, timeout: Duration) -> Channel {
        Channel {
            io,
            tpm,
            timeout,
            cap: None,
            broken: false,
        }
    }

    /// One whole transaction: `exchange` moves the bytes before the
    /// deadline; a failure on the way leaves the channel broken.
    pub(super) fn transact(
        &mut self,
        command: &[u8],
        exchange: impl FnOnce(&Channel, Instant) -> Result<Vec<u8>, TransportError>,
    ) -> Result<Vec<u8>, TransportError> {
        let deadline = self.begin(command)?;
        let response = exchange(self, deadline)?;
        self.broken = false;
        Ok(response)
    }

    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        match &self.io {
            Io::Device(f) => f.as_fd(),
            Io::Tcp(s) => s.as_fd(),
            Io::Unix(s) => s.as_fd(),
        }
    }

    /// Checks the command and starts a transaction; returns its deadline.
    fn begin(&mut self, command: &[u8]) -> Result<Instant, TransportError> {
        if self.broken {
            return Err(TransportError::Broken {
                tpm: self.tpm.clone(),
            });
        }
        let size = size_field(command);
        let len = command.len();
        if !(HEADER..=MAX_MESSAGE).contains(&len) || size.map(|s| s as usize) != Some(len) {
            return Err(TransportError::BadCommand {
                tpm: self.tpm.clone(),
                len,
                size,
            });
        }
        self.broken = true;
        let own = deadline(self.timeout);
        Ok(self.cap.map_or(own, |cap| cap.min(own)))
    }

    pub(super) fn timed_out(&self) -> TransportError {
        TransportError::Timeout {
            tpm: self.tpm.clone(),
            after: self.timeout,
        }
    }

    pub(super) fn io_error(&self, what: &'static str, errno: Errno) -> TransportError {
        TransportError::Io {
            tpm: self.tpm.clone(),
            what,
            errno,
        }
    }

    /// The connection ended after `got` of `expected` bytes.
    pub(super) fn ended(&self, got: usize, expected: usize) -> TransportError {
        let tpm = self.tpm.clone();
        if got == 0 {
            TransportError::Closed { tpm }
        } else {
            TransportError::Truncated { tpm, got, expected }
        }
    }

    pub(super) fn wait(&self, events: PollFlags, deadline: Instant) -> Result<(), TransportError> {
        match wait_fd(self.fd(), events, deadline) {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.timed_out()),
            Err(e) => Err(self.io_error("wait for the TPM", e)),
        }
    }

    pub(super) fn send_some(&self, data: &[u8]) -> Result<usize, Errno> {
        match &self.io {
            Io::Device(f) => nix::unistd::write(f, data),
            // send(2) with MSG_NOSIGNAL: a closed peer is EPIPE, not SIGPIPE.
            Io::Tcp(s) => socket::send(s.as_raw_fd(), data, MsgFlags::MSG_NOSIGNAL),
            Io::Unix(s) => socket::send(s.as_raw_fd(), data, MsgFlags::MSG_NOSIGNAL),
        }
    }

    pub(super) fn write_all(
        &self,
        mut data: &[u8],
        deadline: Instant,
    ) -> Result<(), TransportError> {
        while !data.is_empty() {
            match self.send_some(data) {
                Ok(0) => return Err(self.ended(0, 0)),
                Ok(n) => data = data.get(n..).unwrap_or_default(),
                Err(Errno::EAGAIN) => self.wait(PollFlags::POLLOUT, deadline)?,
                Err(Errno::EINTR) => {}
                Err(Errno::EPIPE | Errno::ECONNRESET) => return Err(self.ended(0, 0)),
                Err(e) => return Err(self.io_error("send the command", e)),
            }
        }
        Ok(())
    }

    /// Reads what has arrived, waiting for at least one byte; 0 is the end.
    pub(super) fn read_some(
        &self,
        buf: &mut [u8],
        deadline: Instant,
    ) -> Result<usize, TransportError> {
        loop {
            self.wait(PollFlags::POLLIN, deadline)?;
            match nix::unistd::read(self.fd(), buf) {
                Ok(n) => return Ok(n),
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                Err(Errno::ECONNRESET) => return Ok(0),
                Err(e) => return Err(self.io_error("read the response", e)),
            }
        }
    }

    /// Fills `buf`; `before` bytes of the `expected` came earlier (for errors).
    pub(super) fn read_exact(
        &self,
        buf: &mut [u8],
        deadline: Instant,
        before: usize,
        expected: usize,
    ) -> Result<(), TransportError> {
        let mut got = 0;
        while let Some(rest) = buf.get_mut(got..).filter(|r| !r.is_empty()) {
            match self.read_some(rest, deadline)? {
                0 => return Err(self.ended(before + got, expected)),
                n => got += n,
            }
        }
        Ok(())
    }

    /// A response size announced by the TPM, before anything is allocated.
    pub(super) fn check_size(&self, size: u32) -> Result<usize, TransportError> {
        match usize::try_from(size) {
            Ok(n) if (HEADER..=MAX_MESSAGE).contains(&n) => Ok(n),
            _ => Err(TransportError::BadSize {
                tpm: self.tpm.clone(),
                size,
            }),
        }
    }

    /// Reads a raw response: the header, then as many bytes as it announces.
    pub(super) fn read_response(&self, deadline: Instant) -> Result<Vec<u8>, TransportError> {
        let mut header = [0u8; HEADER];
        self.read_exact(&mut header, deadline, 0, HEADER)?;
        let size = self.check_size(size_field(&header).unwrap_or(0))?;
        let mut response = Vec::with_capacity(size);
        response.extend_from_slice(&header);
        response.resize(size, 0);
        if let Some(rest) = response.get_mut(HEADER..) {
            self.read_exact(rest, deadline, HEADER, size)?;
        }
        Ok(response)
    }
}
