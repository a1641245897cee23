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

use super::tcti::{self, Tcti};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long one command may take, from sending it to the last response byte.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest command or response: the kernel's TPM_BUFSIZE.
pub const MAX_MESSAGE: usize = 4096;
/// tag u16 | size u32 | command or response code u32.
const HEADER: usize = 10;
/// Where sysfs names the class of each character device (`MAJ:MIN/subsystem`).
const SYS_DEV_CHAR: &str = "/sys/dev/char";
/// The sysfs classes of TPM character devices (`/dev/tpmN`, `/dev/tpmrmN`).
const TPM_CLASSES: &[&str] = &["tpm", "tpmrm"];

// The mssim protocol (tpm2-tss `tss2_tcti_mssim.h`, ms-tpm-20-ref `TcpServer.c`).
const MS_SIM_POWER_ON: u32 = 1;
const MS_SIM_NV_ON: u32 = 11;
const MS_SIM_TPM_SEND_COMMAND: u32 = 8;
const MS_SIM_SESSION_END: u32 = 20;

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

/// Every error names the TPM (as its TCTI string) it happened with.
#[derive(Debug)]
pub enum TransportError {
    /// The device could not be opened.
    Open { tpm: Tcti, errno: Errno },
    /// `device:PATH` names something else than a TPM character device
    /// (`what` it is); it was not opened, or closed unused.
    NotTpm { tpm: Tcti, what: String },
    /// The host name did not resolve to an address.
    Resolve { tpm: Tcti },
    /// A socket could not be connected; `port` is set for mssim's platform port.
    Connect {
        tpm: Tcti,
        port: Option<u16>,
        errno: Errno,
    },
    /// A read, write or poll on the TPM's fd failed.
    Io {
        tpm: Tcti,
        what: &'static str,
        errno: Errno,
    },
    /// No (complete) answer within the timeout given at open.
    Timeout { tpm: Tcti, after: Duration },
    /// The response's size field is below 10 or above 4096.
    BadSize { tpm: Tcti, size: u32 },
    /// The connection ended before any byte of the response.
    Closed { tpm: Tcti },
    /// The connection ended in the middle of the response.
    Truncated {
        tpm: Tcti,
        got: usize,
        expected: usize,
    },
    /// The bytes delivered disagree with the response's own size field.
    Mismatch {
        tpm: Tcti,
        framed: usize,
        header: u32,
    },
    /// The mssim trailer after a response is not 0.
    BadAck { tpm: Tcti, ack: u32 },
    /// The mssim platform port refused a command (`answer`) or did not answer.
    Platform {
        tpm: Tcti,
        command: &'static str,
        answer: Option<u32>,
    },
    /// The caller passed something that is not a TPM command; nothing was sent.
    BadCommand {
        tpm: Tcti,
        len: usize,
        size: Option<u32>,
    },
    /// An earlier transaction failed half-way; nothing was sent.
    Broken { tpm: Tcti },
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::Open { tpm, errno } => {
                write!(f, "open the TPM at {tpm}: {}", words(*errno))?;
                f.write_str(match errno {
                    Errno::ENOENT | Errno::ENODEV | Errno::ENXIO => {
                        ": is the TPM enabled in the firmware and its driver (tpm_tis, tpm_crb) \
                         loaded?"
                    }
                    Errno::EBUSY => ": another process has it open; use /dev/tpmrm0",
                    Errno::EACCES | Errno::EPERM => ": run as root",
                    _ => "",
                })
            }
            TransportError::NotTpm { tpm, what } => write!(
                f,
                "refusing {tpm} as the TPM: {what}, not a TPM character device (sysfs class tpm \
                 or tpmrm); nothing was written to it: name the TPM's device, device:/dev/tpmrm0 \
                 or device:/dev/tpm0"
            ),
            TransportError::Resolve { tpm } => write!(
                f,
                "TPM at {tpm}: cannot resolve the host name; use an IP address"
            ),
            TransportError::Connect { tpm, port, errno } => {
                write!(f, "connect to the TPM at {tpm}")?;
                if let Some(port) = port {
                    write!(f, " (platform port {port})")?;
                }
                write!(f, ": {}{}", words(*errno), running_hint(tpm))
            }
            TransportError::Io { tpm, what, errno } => {
                write!(f, "TPM at {tpm}: {what}: {}", words(*errno))
            }
            TransportError::Timeout { tpm, after } => {
                write!(f, "TPM at {tpm} did not answer within {}", seconds(*after))?;
                match tpm {
                    Tcti::Device(_) => f.write_str(
                        ": it is busy or hung; raise TPM_TIMEOUT or power the machine off and on",
                    ),
                    // swtpm accepts a second client but answers it only
                    // once the first has gone.
                    Tcti::SwtpmTcp { .. } | Tcti::SwtpmUnix(_) => f.write_str(
                        ": is swtpm running, and no other client connected to it (it serves one \
                         at a time)?",
                    ),
                    Tcti::Mssim { .. } => f.write_str(running_hint(tpm)),
                }
            }
            TransportError::BadSize { tpm, size } => write!(
                f,
                "TPM at {tpm} announced a {size}-byte response; a TPM response is {HEADER} to \
                 {MAX_MESSAGE} bytes, refusing it{}",
                if *size == 0 && matches!(tpm, Tcti::Mssim { .. }) {
                    " (an empty response: the simulator is not powered on)"
                } else {
                    ""
                }
            ),
            TransportError::Closed { tpm } => write!(
                f,
                "TPM at {tpm} closed the connection without answering{}",
                running_hint(tpm)
            ),
            TransportError::Truncated { tpm, got, expected } => write!(
                f,
                "TPM at {tpm} stopped after {got} of {expected} response bytes"
            ),
            TransportError::Mismatch {
                tpm,
                framed,
                header,
            } => write!(
                f,
                "TPM at {tpm} delivered {framed} response bytes but the response header says \
                 {header}, refusing it"
            ),
            TransportError::BadAck { tpm, ack } => write!(
                f,
                "TPM at {tpm} ended a response with {ack:#x} where the mssim protocol has 0"
            ),
            TransportError::Platform {
                tpm,
                command,
                answer,
            } => {
                write!(f, "TPM simulator at {tpm} ")?;
                match answer {
                    Some(answer) => {
                        write!(f, "refused platform command {command} (answer {answer:#x})")?
                    }
                    None => write!(f, "did not answer platform command {command}")?,
                }
                f.write_str(
                    ": is it an mssim simulator? swtpm's control channel speaks another \
                     protocol, use swtpm:host=H,port=P for swtpm",
                )
            }
            TransportError::BadCommand { tpm, len, size } => {
                write!(
                    f,
                    "refusing to send a malformed command to the TPM at {tpm}: {len} bytes"
                )?;
                if let Some(size) = size {
                    write!(f, ", header says {size}")?;
                }
                f.write_str(" (a bug in integrity-loader)")
            }
            TransportError::Broken { tpm } => write!(
                f,
                "TPM at {tpm}: not sending more commands after one failed half-way"
            ),
        }
    }
}

impl std::error::Error for TransportError {}

/// "connection refused (ECONNREFUSED)".
fn words(errno: Errno) -> String {
    let desc = errno.desc();
    let mut chars = desc.chars();
    let lower: String = match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    };
    format!("{lower} ({errno:?})")
}

fn running_hint(tpm: &Tcti) -> &'static str {
    match tpm {
        Tcti::Device(_) => "",
        Tcti::SwtpmTcp { .. } | Tcti::SwtpmUnix(_) => ": is swtpm running?",
        Tcti::Mssim { .. } => ": is the TPM simulator running?",
    }
}

/// "1s", "1.5s", "30s".
fn seconds(d: Duration) -> String {
    crate::logging::Secs(d).to_string()
}

fn errno_of(e: &io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(0))
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

/// Waits until `fd` is ready for `events`; false when the deadline passed.
fn wait_fd(fd: BorrowedFd<'_>, events: PollFlags, deadline: Instant) -> Result<bool, Errno> {
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
enum Io {
    Device(File),
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// A non-blocking fd to one TPM, with the deadline-bound reads and writes
/// all transports share.
#[derive(Debug)]
struct Channel {
    io: Io,
    tpm: Tcti,
    timeout: Duration,
    /// No transaction waits past this ([`Transport::cap`]).
    cap: Option<Instant>,
    /// Set while a transaction is in flight, and left set when it fails.
    broken: bool,
}

impl Channel {
    fn new(io: Io, tpm: Tcti, timeout: Duration) -> Channel {
        Channel {
            io,
            tpm,
            timeout,
            cap: None,
            broken: false,
        }
    }

    fn fd(&self) -> BorrowedFd<'_> {
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

    fn timed_out(&self) -> TransportError {
        TransportError::Timeout {
            tpm: self.tpm.clone(),
            after: self.timeout,
        }
    }

    fn io_error(&self, what: &'static str, errno: Errno) -> TransportError {
        TransportError::Io {
            tpm: self.tpm.clone(),
            what,
            errno,
        }
    }

    /// The connection ended after `got` of `expected` bytes.
    fn ended(&self, got: usize, expected: usize) -> TransportError {
        let tpm = self.tpm.clone();
        if got == 0 {
            TransportError::Closed { tpm }
        } else {
            TransportError::Truncated { tpm, got, expected }
        }
    }

    fn wait(&self, events: PollFlags, deadline: Instant) -> Result<(), TransportError> {
        match wait_fd(self.fd(), events, deadline) {
            Ok(true) => Ok(()),
            Ok(false) => Err(self.timed_out()),
            Err(e) => Err(self.io_error("wait for the TPM", e)),
        }
    }

    fn send_some(&self, data: &[u8]) -> Result<usize, Errno> {
        match &self.io {
            Io::Device(f) => nix::unistd::write(f, data),
            // send(2) with MSG_NOSIGNAL: a closed peer is EPIPE, not SIGPIPE.
            Io::Tcp(s) => socket::send(s.as_raw_fd(), data, MsgFlags::MSG_NOSIGNAL),
            Io::Unix(s) => socket::send(s.as_raw_fd(), data, MsgFlags::MSG_NOSIGNAL),
        }
    }

    fn write_all(&self, mut data: &[u8], deadline: Instant) -> Result<(), TransportError> {
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
    fn read_some(&self, buf: &mut [u8], deadline: Instant) -> Result<usize, TransportError> {
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
    fn read_exact(
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
    fn check_size(&self, size: u32) -> Result<usize, TransportError> {
        match usize::try_from(size) {
            Ok(n) if (HEADER..=MAX_MESSAGE).contains(&n) => Ok(n),
            _ => Err(TransportError::BadSize {
                tpm: self.tpm.clone(),
                size,
            }),
        }
    }

    /// Reads a raw response: the header, then as many bytes as it announces.
    fn read_response(&self, deadline: Instant) -> Result<Vec<u8>, TransportError> {
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

/// A kernel TPM device. The kernel takes one whole command per write(2) and
/// hands out the response once the TPM is done; with O_NONBLOCK the write
/// returns at once and poll(2) reports the response (kernels without
/// non-blocking TPM support wait in the write, under their own timeouts).
#[derive(Debug)]
pub struct DeviceTransport {
    ch: Channel,
}

impl DeviceTransport {
    /// Opens `path` read-write when it is a TPM character device: checked
    /// before the open, so nothing else (a file, a disk, a watchdog whose
    /// open arms it) is ever opened, and again on the opened fd.
    pub fn open(path: &Path, timeout: Duration) -> Result<DeviceTransport, TransportError> {
        DeviceTransport::open_in(path, timeout, Path::new(SYS_DEV_CHAR))
    }

    /// [`DeviceTransport::open`] with the classes looked up under `sys_dev_char`.
    fn open_in(
        path: &Path,
        timeout: Duration,
        sys_dev_char: &Path,
    ) -> Result<DeviceTransport, TransportError> {
        let tpm = Tcti::Device(path.to_path_buf());
        let rdev = check_device(path, sys_dev_char)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
            .open(path)
            .map_err(|e| TransportError::Open {
                tpm: tpm.clone(),
                errno: errno_of(&e),
            })?;
        // The path may have been replaced between the check and the open.
        let opened = file.metadata().map_err(|e| TransportError::Io {
            tpm: tpm.clone(),
            what: "fstat the opened device",
            errno: errno_of(&e),
        })?;
        if !opened.file_type().is_char_device() || opened.rdev() != rdev {
            let (major, minor) = dev_numbers(rdev);
            return Err(TransportError::NotTpm {
                tpm,
                what: format!(
                    "{} changed while it was opened (checked as the TPM {major}:{minor}, opened \
                     {}); closed it unused",
                    path.display(),
                    kind(&opened)
                ),
            });
        }
        Ok(DeviceTransport {
            ch: Channel::new(Io::Device(file), tpm, timeout),
        })
    }

    /// A transport over an fd the test opened itself (a FIFO that echoes).
    #[cfg(test)]
    fn from_file(file: File, path: &Path, timeout: Duration) -> DeviceTransport {
        DeviceTransport {
            ch: Channel::new(Io::Device(file), Tcti::Device(path.to_path_buf()), timeout),
        }
    }

    /// Opens `path`; when it is a resource-manager device (`tpmrmN`) that
    /// does not exist (kernels before 4.12), opens the raw `tpmN` beside it
    /// and returns a warning for the caller to log.
    pub fn open_with_fallback(
        path: &Path,
        timeout: Duration,
    ) -> Result<(DeviceTransport, Option<String>), TransportError> {
        DeviceTransport::open_with_fallback_in(path, timeout, Path::new(SYS_DEV_CHAR))
    }

    fn open_with_fallback_in(
        path: &Path,
        timeout: Duration,
        sys_dev_char: &Path,
    ) -> Result<(DeviceTransport, Option<String>), TransportError> {
        match DeviceTransport::open_in(path, timeout, sys_dev_char) {
            Err(TransportError::Open {
                errno: Errno::ENOENT,
                ..
            }) if raw_device(path).is_some() => {
                let raw = raw_device(path).unwrap_or_default();
                let transport = match DeviceTransport::open_in(&raw, timeout, sys_dev_char) {
                    Ok(transport) => transport,
                    // Neither exists: report the one that was asked for.
                    Err(TransportError::Open {
                        errno: Errno::ENOENT,
                        ..
                    }) => {
                        return Err(TransportError::Open {
                            tpm: Tcti::Device(path.to_path_buf()),
                            errno: Errno::ENOENT,
                        });
                    }
                    Err(e) => return Err(e),
                };
                let warning = format!(
                    "{} does not exist (kernel older than 4.12?): falling back to {}, which \
                     only one process can open at a time",
                    path.display(),
                    raw.display()
                );
                Ok((transport, Some(warning)))
            }
            other => other.map(|t| (t, None)),
        }
    }

    /// /dev/tpmrm0, or /dev/tpm0 with a warning to log.
    pub fn open_default(
        timeout: Duration,
    ) -> Result<(DeviceTransport, Option<String>), TransportError> {
        DeviceTransport::open_with_fallback(Path::new(tcti::DEFAULT_DEVICE), timeout)
    }

    fn exchange(&mut self, command: &[u8], deadline: Instant) -> Result<Vec<u8>, TransportError> {
        let ch = &self.ch;
        loop {
            match ch.send_some(command) {
                Ok(n) if n == command.len() => break,
                Ok(_) => return Err(ch.io_error("send the command in one write", Errno::EIO)),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(ch.io_error("send the command", e)),
            }
        }
        // Read into a full-size buffer: older kernels drop what a short
        // read(2) leaves of a response.
        let mut buf = [0u8; MAX_MESSAGE];
        let mut got = 0;
        let mut expected = HEADER;
        while got < expected {
            let rest = buf.get_mut(got..).unwrap_or_default();
            match ch.read_some(rest, deadline)? {
                0 => return Err(ch.ended(got, expected)),
                n => got += n,
            }
            if let Some(size) = buf.get(..got).and_then(size_field) {
                expected = ch.check_size(size)?;
            }
        }
        if got != expected {
            return Err(TransportError::Mismatch {
                tpm: ch.tpm.clone(),
                framed: got,
                header: size_field(&buf).unwrap_or(0),
            });
        }
        Ok(buf.get(..got).unwrap_or_default().to_vec())
    }
}

fn dev_numbers(rdev: u64) -> (u64, u64) {
    (nix::sys::stat::major(rdev), nix::sys::stat::minor(rdev))
}

/// What a stat shows, for errors: "a regular file", "a block device (7:0)".
fn kind(meta: &std::fs::Metadata) -> String {
    let t = meta.file_type();
    let (major, minor) = dev_numbers(meta.rdev());
    if t.is_file() {
        "a regular file".to_string()
    } else if t.is_dir() {
        "a directory".to_string()
    } else if t.is_block_device() {
        format!("a block device ({major}:{minor})")
    } else if t.is_char_device() {
        format!("a character device ({major}:{minor})")
    } else if t.is_fifo() {
        "a FIFO".to_string()
    } else if t.is_socket() {
        "a unix socket".to_string()
    } else {
        "not a device".to_string()
    }
}

/// Checks, without opening it, that `path` is a character device whose
/// sysfs class is tpm or tpmrm; returns its device number. A missing path
/// is `Open` with ENOENT, as an open would say (the tpmrm fallback needs it).
fn check_device(path: &Path, sys_dev_char: &Path) -> Result<u64, TransportError> {
    let tpm = Tcti::Device(path.to_path_buf());
    let meta = std::fs::metadata(path).map_err(|e| TransportError::Open {
        tpm: tpm.clone(),
        errno: errno_of(&e),
    })?;
    let mut shown = path.display().to_string();
    if let Ok(target) = std::fs::read_link(path) {
        shown = format!("{shown} (a symlink to {})", target.display());
    }
    let not_tpm = |what: String| TransportError::NotTpm {
        tpm: tpm.clone(),
        what: format!("{shown} is {what}"),
    };
    if !meta.file_type().is_char_device() {
        return Err(not_tpm(kind(&meta)));
    }
    let rdev = meta.rdev();
    let (major, minor) = dev_numbers(rdev);
    let link = sys_dev_char.join(format!("{major}:{minor}/subsystem"));
    let class = match std::fs::read_link(&link) {
        Ok(target) => target
            .file_name()
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_default(),
        Err(e) => {
            return Err(not_tpm(format!(
                "{}, and {} cannot tell its class ({}; is sysfs mounted on /sys?)",
                kind(&meta),
                link.display(),
                words(errno_of(&e))
            )));
        }
    };
    if TPM_CLASSES.contains(&class.as_str()) {
        Ok(rdev)
    } else {
        Err(not_tpm(format!("{} of class {class}", kind(&meta))))
    }
}

/// `/x/tpmrm0` -> `/x/tpm0`.
fn raw_device(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let n = name.strip_prefix("tpmrm")?;
    Some(path.with_file_name(format!("tpm{n}")))
}

impl Transport for DeviceTransport {
    fn transact(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let deadline = self.ch.begin(command)?;
        let response = self.exchange(command, deadline)?;
        self.ch.broken = false;
        Ok(response)
    }

    fn cap(&mut self, until: Option<Instant>) {
        self.ch.cap = until;
    }
}

/// swtpm's data channel, which takes raw TPM commands and answers raw
/// responses. The connection is kept for the transport's life; swtpm serves
/// one client at a time, so others wait (tpm2-tss instead connects for each
/// command).
#[derive(Debug)]
pub struct SocketTransport {
    ch: Channel,
}

impl SocketTransport {
    pub fn connect_tcp(
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<SocketTransport, TransportError> {
        let tpm = Tcti::SwtpmTcp {
            host: host.to_string(),
            port,
        };
        let stream = connect_tcp(&tpm, host, port, None, deadline(timeout), timeout)?;
        Ok(SocketTransport {
            ch: Channel::new(Io::Tcp(stream), tpm, timeout),
        })
    }

    pub fn connect_unix(path: &Path, timeout: Duration) -> Result<SocketTransport, TransportError> {
        let tpm = Tcti::SwtpmUnix(path.to_path_buf());
        let stream = connect_unix(&tpm, path, deadline(timeout), timeout)?;
        Ok(SocketTransport {
            ch: Channel::new(Io::Unix(stream), tpm, timeout),
        })
    }
}

impl Transport for SocketTransport {
    fn transact(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let deadline = self.ch.begin(command)?;
        self.ch.write_all(command, deadline)?;
        let response = self.ch.read_response(deadline)?;
        self.ch.broken = false;
        Ok(response)
    }

    fn cap(&mut self, until: Option<Instant>) {
        self.ch.cap = until;
    }
}

/// The Microsoft/IBM simulator protocol: each command goes as
/// `u32 TPM_SEND_COMMAND (8) | u8 locality | u32 length | command`, each
/// response comes as `u32 length | response | u32 0`. At connect the
/// platform port (port + 1) gets POWER_ON and NV_ON; the caller then sends
/// TPM2_Startup. swtpm's data channel also speaks this framing, its control
/// channel does not.
#[derive(Debug)]
pub struct MssimTransport {
    ch: Channel,
}

impl MssimTransport {
    pub fn connect(
        host: &str,
        port: u16,
        timeout: Duration,
    ) -> Result<MssimTransport, TransportError> {
        let tpm = Tcti::Mssim {
            host: host.to_string(),
            port,
        };
        let deadline = deadline(timeout);
        let data = connect_tcp(&tpm, host, port, None, deadline, timeout)?;
        let platform_port = port.checked_add(1).ok_or_else(|| TransportError::Connect {
            tpm: tpm.clone(),
            port: None,
            errno: Errno::EINVAL,
        })?;
        let platform = connect_tcp(
            &tpm,
            host,
            platform_port,
            Some(platform_port),
            deadline,
            timeout,
        )?;
        let platform = Channel::new(Io::Tcp(platform), tpm.clone(), timeout);
        for (code, command) in [(MS_SIM_POWER_ON, "POWER_ON"), (MS_SIM_NV_ON, "NV_ON")] {
            platform.write_all(&code.to_be_bytes(), deadline)?;
            let mut answer = [0u8; 4];
            let answer = match platform.read_exact(&mut answer, deadline, 0, 4) {
                Ok(()) => Some(u32::from_be_bytes(answer)),
                Err(TransportError::Closed { .. } | TransportError::Truncated { .. }) => None,
                Err(e) => return Err(e),
            };
            if answer != Some(0) {
                return Err(TransportError::Platform {
                    tpm,
                    command,
                    answer,
                });
            }
        }
        // The simulator serves one platform client at a time: say goodbye.
        let _ = platform.send_some(&MS_SIM_SESSION_END.to_be_bytes());
        Ok(MssimTransport {
            ch: Channel::new(Io::Tcp(data), tpm, timeout),
        })
    }

    fn exchange(&mut self, command: &[u8], deadline: Instant) -> Result<Vec<u8>, TransportError> {
        let ch = &self.ch;
        let mut framed = Vec::with_capacity(9 + command.len());
        framed.extend_from_slice(&MS_SIM_TPM_SEND_COMMAND.to_be_bytes());
        framed.push(0); // locality
        framed.extend_from_slice(&(command.len() as u32).to_be_bytes());
        framed.extend_from_slice(command);
        ch.write_all(&framed, deadline)?;

        let mut length = [0u8; 4];
        ch.read_exact(&mut length, deadline, 0, 4)?;
        let size = ch.check_size(u32::from_be_bytes(length))?;
        let mut response = vec![0u8; size];
        ch.read_exact(&mut response, deadline, 0, size)?;
        let header = size_field(&response).unwrap_or(0);
        if header as usize != size {
            return Err(TransportError::Mismatch {
                tpm: ch.tpm.clone(),
                framed: size,
                header,
            });
        }
        let mut ack = [0u8; 4];
        ch.read_exact(&mut ack, deadline, size, size + 4)?;
        match u32::from_be_bytes(ack) {
            0 => Ok(response),
            ack => Err(TransportError::BadAck {
                tpm: ch.tpm.clone(),
                ack,
            }),
        }
    }
}

impl Transport for MssimTransport {
    fn transact(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let deadline = self.ch.begin(command)?;
        let response = self.exchange(command, deadline)?;
        self.ch.broken = false;
        Ok(response)
    }

    fn cap(&mut self, until: Option<Instant>) {
        self.ch.cap = until;
    }
}

impl Drop for MssimTransport {
    fn drop(&mut self) {
        // Between commands, end the session the way the protocol asks; in
        // the middle of one the simulator would take it as command bytes.
        if !self.ch.broken {
            let _ = self.ch.send_some(&MS_SIM_SESSION_END.to_be_bytes());
        }
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

/// Numeric addresses as they are; "localhost" without a resolver (the
/// initramfs has no /etc/hosts); anything else through getaddrinfo.
fn resolve(host: &str, port: u16) -> Vec<SocketAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return vec![SocketAddr::new(ip, port)];
    }
    if host == "localhost" {
        return vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
        ];
    }
    (host, port)
        .to_socket_addrs()
        .map(|a| a.collect())
        .unwrap_or_default()
}

fn connect_tcp(
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

fn connect_unix(
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

/// A transport that appends every command it sends and every response it
/// receives, in order, to a shared buffer: what an observer of the bus would
/// see (TPM bytes, without the mssim framing).
#[derive(Debug)]
pub struct Recording<T> {
    inner: T,
    record: Arc<Mutex<Vec<u8>>>,
}

impl<T> Recording<T> {
    pub fn new(inner: T, record: Arc<Mutex<Vec<u8>>>) -> Recording<T> {
        Recording { inner, record }
    }

    pub fn record(&self) -> Arc<Mutex<Vec<u8>>> {
        Arc::clone(&self.record)
    }

    pub fn into_inner(self) -> T {
        self.inner
    }

    fn append(&self, bytes: &[u8]) {
        self.record
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
    }
}

impl<T: Transport> Transport for Recording<T> {
    fn transact(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.append(command);
        let response = self.inner.transact(command)?;
        self.append(&response);
        Ok(response)
    }

    fn cap(&mut self, until: Option<Instant>) {
        self.inner.cap(until)
    }
}

/// The swtpm harness of the integration tests, the one copy.
#[cfg(test)]
#[path = "../../tests/common/swtpm.rs"]
mod swtpm;

/// Test helpers, also for other modules' tests: fake TPMs that misbehave, a
/// command with a known answer. A real swtpm comes from [`swtpm`].
#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
pub mod testing {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::mpsc;

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

    /// A fresh absolute directory under the temp dir, unique per process and call.
    pub fn temp_dir(tag: &str) -> PathBuf {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("integrity-loader-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir.canonicalize().unwrap()
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
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::swtpm::{Listen, Swtpm, free_port_pair};
    use super::testing::*;
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    const SHORT: Duration = Duration::from_secs(1);

    fn open_err(tcti: &Tcti) -> TransportError {
        match open(tcti, SHORT) {
            Ok(_) => panic!("{tcti} opened"),
            Err(e) => e,
        }
    }

    /// The swtpm's TCTI, parsed.
    fn tcti_of(swtpm: &Swtpm) -> Tcti {
        tcti::parse(&swtpm.tcti()).unwrap()
    }

    /// A transport to the swtpm with a 5 s timeout.
    fn open_swtpm(swtpm: &Swtpm) -> Box<dyn Transport> {
        open(&tcti_of(swtpm), Duration::from_secs(5)).unwrap()
    }

    fn tcp(port: u16) -> SocketTransport {
        SocketTransport::connect_tcp("127.0.0.1", port, SHORT).unwrap()
    }

    #[test]
    fn swtpm_over_tcp() {
        let swtpm = Swtpm::start("transport-tcp");
        let tcti = tcti::parse(&swtpm.tcti()).unwrap();
        let mut tpm = open(&tcti, SHORT).unwrap();
        // One connection carries several commands.
        for _ in 0..3 {
            assert_random_16(&tpm.transact(&GET_RANDOM_16).unwrap());
        }
    }

    #[test]
    fn swtpm_over_unix_socket() {
        let swtpm = Swtpm::start_listening("transport-unix", Listen::Unix);
        assert!(matches!(tcti_of(&swtpm), Tcti::SwtpmUnix(_)));
        let mut tpm = open_swtpm(&swtpm);
        assert_random_16(&tpm.transact(&GET_RANDOM_16).unwrap());
        assert_random_16(&tpm.transact(&GET_RANDOM_16).unwrap());
    }

    /// swtpm's data channel also takes the mssim framing; the platform port
    /// is a fake, since swtpm's control channel speaks its own protocol.
    #[test]
    fn mssim_framing() {
        let (swtpm, platform) = loop {
            let port = free_port_pair();
            let Ok(listener) = TcpListener::bind(("127.0.0.1", port + 1)) else {
                continue;
            };
            if let Ok(swtpm) = Swtpm::try_start_on("transport-mssim", Listen::TcpCtrlOnUnix, port) {
                break (swtpm, fake_platform(listener, 0));
            }
        };
        let Tcti::SwtpmTcp { port, .. } = tcti_of(&swtpm) else {
            panic!()
        };
        let tcti = Tcti::Mssim {
            host: "localhost".into(),
            port,
        };
        let mut tpm = open(&tcti, SHORT).unwrap();
        assert_random_16(&tpm.transact(&GET_RANDOM_16).unwrap());
        assert_random_16(&tpm.transact(&GET_RANDOM_16).unwrap());
        let codes: Vec<u32> = platform.iter().take(3).collect();
        assert_eq!(codes, [MS_SIM_POWER_ON, MS_SIM_NV_ON, MS_SIM_SESSION_END]);
    }

    #[test]
    fn mssim_platform_refusal() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let Ok(platform) = TcpListener::bind(("127.0.0.1", port + 1)) else {
            return mssim_platform_refusal();
        };
        let _data = fake_tpm_on(listener, |_| {});
        let _codes = fake_platform(platform, 7);
        let err = MssimTransport::connect("127.0.0.1", port, SHORT).unwrap_err();
        assert!(
            matches!(
                err,
                TransportError::Platform {
                    command: "POWER_ON",
                    answer: Some(7),
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn silent_tpm_times_out() {
        let fake = fake_tpm(|_| {});
        let mut tpm = tcp(fake.port);
        let start = Instant::now();
        let err = tpm.transact(&GET_RANDOM_16).unwrap_err();
        let took = start.elapsed();
        assert!(matches!(err, TransportError::Timeout { .. }), "{err:?}");
        assert!(took >= SHORT && took < SHORT * 2, "{took:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "TPM at swtpm:host=127.0.0.1,port={} did not answer within 1s: is swtpm running, \
                 and no other client connected to it (it serves one at a time)?",
                fake.port
            )
        );
        // A late answer must not be taken for the next command's.
        let err = tpm.transact(&GET_RANDOM_16).unwrap_err();
        assert!(matches!(err, TransportError::Broken { .. }), "{err:?}");
    }

    /// A cap earlier than the timeout given at open ends the wait there;
    /// a later one changes nothing.
    #[test]
    fn cap_shortens_the_wait() {
        let fake = fake_tpm(|_| {});
        let mut tpm = SocketTransport::connect_tcp("127.0.0.1", fake.port, SHORT * 10).unwrap();
        let start = Instant::now();
        tpm.cap(Some(start + SHORT / 4));
        let err = tpm.transact(&GET_RANDOM_16).unwrap_err();
        let took = start.elapsed();
        assert!(matches!(err, TransportError::Timeout { .. }), "{err:?}");
        assert!(took >= SHORT / 4 && took < SHORT, "{took:?}");

        let fake = fake_tpm(|_| {});
        let mut tpm = tcp(fake.port);
        let start = Instant::now();
        tpm.cap(Some(start + SHORT * 10));
        let err = tpm.transact(&GET_RANDOM_16).unwrap_err();
        let took = start.elapsed();
        assert!(matches!(err, TransportError::Timeout { .. }), "{err:?}");
        assert!(took >= SHORT && took < SHORT * 2, "{took:?}");
    }

    fn answer(bytes: &'static [u8]) -> FakeTpm {
        fake_tpm(move |s| s.write_all(bytes).unwrap())
    }

    #[test]
    fn response_sizes_out_of_bounds() {
        let cases: &[(&[u8], u32)] = &[
            (&[0x80, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0], u32::MAX),
            (&[0x80, 0x01, 0, 0, 0x10, 0x01, 0, 0, 0, 0], 4097),
            (&[0x80, 0x01, 0, 0, 0, 9, 0, 0, 0, 0], 9),
            (&[0x80, 0x01, 0, 0, 0, 0, 0, 0, 0, 0], 0),
        ];
        for (header, want) in cases {
            let fake = answer(header);
            let err = tcp(fake.port).transact(&GET_RANDOM_16).unwrap_err();
            assert!(
                matches!(err, TransportError::BadSize { size, .. } if size == *want),
                "{err:?}"
            );
        }
    }

    #[test]
    fn connection_closed_mid_response() {
        let fake = fake_tpm(|s| {
            s.write_all(&[0x80, 0x01, 0, 0, 0, 30, 0, 0, 0, 0, 1, 2, 3, 4, 5])
                .unwrap();
            s.shutdown(std::net::Shutdown::Both).unwrap();
        });
        let err = tcp(fake.port).transact(&GET_RANDOM_16).unwrap_err();
        assert!(
            matches!(
                err,
                TransportError::Truncated {
                    got: 15,
                    expected: 30,
                    ..
                }
            ),
            "{err:?}"
        );

        let fake = fake_tpm(|s| s.shutdown(std::net::Shutdown::Both).unwrap());
        let err = tcp(fake.port).transact(&GET_RANDOM_16).unwrap_err();
        assert!(matches!(err, TransportError::Closed { .. }), "{err:?}");
    }

    #[test]
    fn mssim_hostile_length() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let Ok(platform) = TcpListener::bind(("127.0.0.1", port + 1)) else {
            return mssim_hostile_length();
        };
        let _data = fake_tpm_on(listener, |s| s.write_all(&[0xFF; 8]).unwrap());
        let _codes = fake_platform(platform, 0);
        let mut tpm = MssimTransport::connect("127.0.0.1", port, SHORT).unwrap();
        let err = tpm.transact(&GET_RANDOM_16).unwrap_err();
        assert!(
            matches!(err, TransportError::BadSize { size: u32::MAX, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn malformed_commands_are_not_sent() {
        let fake = fake_tpm(|_| {});
        let mut tpm = tcp(fake.port);
        let mut wrong_size = GET_RANDOM_16;
        wrong_size[5] = 13;
        for command in [&wrong_size[..], &GET_RANDOM_16[..6], &[0u8; 4097][..]] {
            let err = tpm.transact(command).unwrap_err();
            assert!(matches!(err, TransportError::BadCommand { .. }), "{err:?}");
        }
        // Nothing was sent, so the transport is still usable.
        let err = tpm.transact(&GET_RANDOM_16).unwrap_err();
        assert!(matches!(err, TransportError::Timeout { .. }), "{err:?}");
    }

    #[test]
    fn refused_connection() {
        let port = free_port_pair();
        let err = open_err(&tcti::parse(&format!("swtpm:port={port}")).unwrap());
        assert!(
            matches!(
                err,
                TransportError::Connect {
                    errno: Errno::ECONNREFUSED,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "connect to the TPM at swtpm:host=localhost,port={port}: connection refused \
                 (ECONNREFUSED): is swtpm running?"
            )
        );
    }

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

    fn fifo(dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        let status = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        path
    }

    /// A FIFO stands in for the device's fd: what is written comes back, so
    /// the "response" is the command itself.
    #[test]
    fn device_write_then_read() {
        let dir = temp_dir("device");
        let path = fifo(&dir, "tpm0");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        let mut tpm = DeviceTransport::from_file(file, &path, SHORT);
        assert_eq!(tpm.transact(&GET_RANDOM_16).unwrap(), GET_RANDOM_16);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A character device node with /dev/null's numbers (1:3), and a fake
    /// /sys/dev/char that gives 1:3 `class`.
    fn fake_tpm_node(dir: &Path, name: &str, class: &str) -> (PathBuf, PathBuf) {
        use nix::sys::stat::{Mode, SFlag, makedev, mknod};
        let node = dir.join(name);
        mknod(
            &node,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o600),
            makedev(1, 3),
        )
        .unwrap();
        let sys = dir.join("sys-dev-char");
        std::fs::create_dir_all(sys.join("1:3")).unwrap();
        let link = sys.join("1:3/subsystem");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(format!("../../../class/{class}"), link).unwrap();
        (node, sys)
    }

    /// The class check accepts tpm and tpmrm devices, and a device of
    /// another class with the same numbers is refused.
    #[test]
    fn device_of_class_tpm_is_opened() {
        let dir = temp_dir("class");
        for class in ["tpmrm", "tpm"] {
            let (node, sys) = fake_tpm_node(&dir, class, class);
            let mut tpm = DeviceTransport::open_in(&node, SHORT, &sys).unwrap();
            // /dev/null's driver behind it: the write goes, the read ends.
            let err = tpm.transact(&GET_RANDOM_16).unwrap_err();
            assert!(matches!(err, TransportError::Closed { .. }), "{err:?}");
        }
        let (node, sys) = fake_tpm_node(&dir, "mem", "mem");
        let err = DeviceTransport::open_in(&node, SHORT, &sys).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "refusing device:{} as the TPM: {} is a character device (1:3) of class mem, not \
                 a TPM character device (sysfs class tpm or tpmrm); nothing was written to it: \
                 name the TPM's device, device:/dev/tpmrm0 or device:/dev/tpm0",
                node.display(),
                node.display()
            )
        );
        // No sysfs entry for the numbers: refused, saying where it looked.
        std::fs::remove_dir_all(dir.join("sys-dev-char")).unwrap();
        let err = DeviceTransport::open_in(&node, SHORT, &dir.join("sys-dev-char")).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, TransportError::NotTpm { .. }), "{err:?}");
        assert!(
            text.contains("cannot tell its class") && text.contains("is sysfs mounted on /sys?"),
            "{text}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Anything but a TPM character device is refused before it is opened;
    /// the file's bytes and times stay as they were.
    #[test]
    fn device_that_is_not_a_tpm_is_refused_unopened() {
        use nix::sys::stat::{Mode, SFlag, makedev, mknod};
        let dir = temp_dir("not-tpm");
        let file = dir.join("file");
        std::fs::write(&file, b"not a TPM, keep me").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let disk = dir.join("disk");
        mknod(
            &disk,
            SFlag::S_IFBLK,
            Mode::from_bits_truncate(0o600),
            makedev(7, 0),
        )
        .unwrap();
        let pipe = fifo(&dir, "pipe");
        let before = std::fs::metadata(&file).unwrap();
        let cases: &[(&Path, String)] = &[
            (&file, format!("{} is a regular file", file.display())),
            (
                &link,
                format!(
                    "{} (a symlink to {}) is a regular file",
                    link.display(),
                    file.display()
                ),
            ),
            (&dir, format!("{} is a directory", dir.display())),
            (&disk, format!("{} is a block device (7:0)", disk.display())),
            (&pipe, format!("{} is a FIFO", pipe.display())),
            (
                Path::new("/dev/null"),
                "/dev/null is a character device (1:3) of class mem".to_string(),
            ),
        ];
        for (path, what) in cases {
            let err = open_err(&Tcti::Device(path.to_path_buf()));
            match &err {
                TransportError::NotTpm { tpm, what: got } => {
                    assert_eq!(tpm, &Tcti::Device(path.to_path_buf()));
                    assert_eq!(got, what);
                }
                other => panic!("{path:?}: {other:?}"),
            }
        }
        let after = std::fs::metadata(&file).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"not a TPM, keep me");
        assert_eq!(after.modified().unwrap(), before.modified().unwrap());
        assert_eq!(after.accessed().unwrap(), before.accessed().unwrap());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn device_falls_back_to_raw() {
        let dir = temp_dir("fallback");
        let (_, sys) = fake_tpm_node(&dir, "tpm0", "tpm");
        let rm = dir.join("tpmrm0");
        let (_tpm, warning) = DeviceTransport::open_with_fallback_in(&rm, SHORT, &sys).unwrap();
        let warning = warning.unwrap();
        assert!(
            warning.contains(&format!("falling back to {}/tpm0", dir.display())),
            "{warning}"
        );

        // No fallback for a path that is not tpmrmN, nor when both are missing.
        std::fs::remove_file(dir.join("tpm0")).unwrap();
        let err = DeviceTransport::open_with_fallback_in(&rm, SHORT, &sys).unwrap_err();
        assert!(
            err.to_string().starts_with(&format!(
                "open the TPM at device:{}/tpmrm0: no such file or directory (ENOENT): is the \
                 TPM enabled",
                dir.display()
            )),
            "{err}"
        );
        let err = open_err(&Tcti::Device(dir.join("tpmX")));
        assert!(matches!(
            err,
            TransportError::Open {
                errno: Errno::ENOENT,
                ..
            }
        ));
        // The raw device beside a missing tpmrm0 is checked like any other.
        std::fs::write(dir.join("tpm0"), b"").unwrap();
        let err = DeviceTransport::open_with_fallback_in(&rm, SHORT, &sys).unwrap_err();
        assert!(matches!(err, TransportError::NotTpm { .. }), "{err:?}");
        assert_eq!(std::fs::read(dir.join("tpm0")).unwrap(), b"");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn recording_sees_both_directions() {
        let swtpm = Swtpm::start("transport-recording");
        let record = Arc::new(Mutex::new(Vec::new()));
        let mut tpm = Recording::new(open_swtpm(&swtpm), Arc::clone(&record));
        let response = tpm.transact(&GET_RANDOM_16).unwrap();
        let mut want = GET_RANDOM_16.to_vec();
        want.extend_from_slice(&response);
        assert_eq!(*record.lock().unwrap(), want);
    }

    #[test]
    fn durations_in_messages() {
        assert_eq!(seconds(Duration::from_secs(30)), "30s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5s");
        assert_eq!(words(Errno::ENOENT), "no such file or directory (ENOENT)");
    }
}
