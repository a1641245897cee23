//! Unix-socket connections to swtpm under the deadline.

use super::TransportError;
use super::channel::wait_fd;
use crate::tpm::tcti::Tcti;
use nix::errno::Errno;
use nix::poll::PollFlags;
use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, UnixAddr};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

pub(super) fn connect_unix(
    tpm: &Tcti,
    path: &Path,
    deadline: Instant,
    timeout: Duration,
) -> Result<UnixStream, TransportError> {
    let failed = |errno| TransportError::Connect {
        tpm: tpm.clone(),
        port: None,
        errno,
    };
    let fd = socket::socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(failed)?;
    let addr = UnixAddr::new(path).map_err(failed)?;
    loop {
        match socket::connect(fd.as_raw_fd(), &addr) {
            Ok(()) => break,
            Err(Errno::EINTR) => {}
            // The listener's backlog is full (it is not accepting): retry.
            Err(Errno::EAGAIN) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(TransportError::Timeout {
                        tpm: tpm.clone(),
                        after: timeout,
                    });
                }
                std::thread::sleep(left.min(Duration::from_millis(10)));
            }
            Err(Errno::EINPROGRESS) => match wait_fd(fd.as_fd(), PollFlags::POLLOUT, deadline) {
                Ok(true) => break,
                Ok(false) => {
                    return Err(TransportError::Timeout {
                        tpm: tpm.clone(),
                        after: timeout,
                    });
                }
                Err(e) => return Err(failed(e)),
            },
            Err(e) => return Err(failed(e)),
        }
    }
    Ok(UnixStream::from(fd))
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::test_support::temp_dir;
    use crate::tpm::transport::SocketTransport;

    /// A unix listener that does not accept and whose backlog is full makes
    /// connect(2) fail with EAGAIN, which is retried until the deadline.
    #[test]
    fn unix_connect_times_out() {
        let dir = temp_dir("backlog");
        let path = dir.join("sock");
        let listener = socket::socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::empty(),
            None,
        )
        .unwrap();
        socket::bind(listener.as_raw_fd(), &UnixAddr::new(&path).unwrap()).unwrap();
        socket::listen(&listener, socket::Backlog::new(0).unwrap()).unwrap();
        let mut queued = Vec::new();
        let start = Instant::now();
        let err = loop {
            match SocketTransport::connect_unix(&path, SHORT) {
                Ok(t) => queued.push(t),
                Err(e) => break e,
            }
            assert!(queued.len() < 10, "backlog never filled");
        };
        assert!(matches!(err, TransportError::Timeout { .. }), "{err:?}");
        assert!(start.elapsed() >= SHORT);
        let _ = std::fs::remove_dir_all(dir);
    }
}
