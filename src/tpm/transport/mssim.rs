//! The Microsoft/IBM TPM simulator protocol: framed commands on the data
//! port, power and NV on the platform port.

use super::channel::{Channel, Io};
use super::tcp::connect_tcp;
use super::{Transport, TransportError, deadline, size_field};
use crate::tpm::tcti::Tcti;
use nix::errno::Errno;
use std::time::{Duration, Instant};

// tpm2-tss `tss2_tcti_mssim.h`, ms-tpm-20-ref `TcpServer.c`.
pub(super) const MS_SIM_POWER_ON: u32 = 1;
pub(super) const MS_SIM_NV_ON: u32 = 11;
pub(super) const MS_SIM_TPM_SEND_COMMAND: u32 = 8;
pub(super) const MS_SIM_SESSION_END: u32 = 20;

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

    fn exchange(
        ch: &Channel,
        command: &[u8],
        deadline: Instant,
    ) -> Result<Vec<u8>, TransportError> {
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
        self.ch.transact(command, |ch, deadline| {
            MssimTransport::exchange(ch, command, deadline)
        })
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

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::tpm::transport::open;
    use crate::tpm::transport::swtpm::{Listen, Swtpm, free_port_pair};
    use std::io::Write;
    use std::net::TcpListener;

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
}
