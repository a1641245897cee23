//! What went wrong with a TPM transport, in words that name the TPM.

use super::{HEADER, MAX_MESSAGE};
use crate::tpm::tcti::Tcti;
use nix::errno::Errno;
use std::fmt;
use std::io;
use std::time::Duration;

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
pub(super) fn words(errno: Errno) -> String {
    let desc = errno.desc();
    let mut chars = desc.chars();
    let lower: String = match chars.next() {
        Some(first) => std::iter::once(first.to_ascii_lowercase())
            .chain(chars)
            .collect(),
        None => String::new(),
    };
    format!("{lower} ({errno:?})")
}

pub(super) fn running_hint(tpm: &Tcti) -> &'static str {
    match tpm {
        Tcti::Device(_) => "",
        Tcti::SwtpmTcp { .. } | Tcti::SwtpmUnix(_) => ": is swtpm running?",
        Tcti::Mssim { .. } => ": is the TPM simulator running?",
    }
}

/// "1s", "1.5s", "30s".
pub(super) fn seconds(d: Duration) -> String {
    crate::logging::Secs(d).to_string()
}

pub(super) fn errno_of(e: &io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_messages() {
        assert_eq!(seconds(Duration::from_secs(30)), "30s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5s");
        assert_eq!(words(Errno::ENOENT), "no such file or directory (ENOENT)");
    }
}
