//! swtpm's data channel over TCP or a unix socket: raw TPM commands and
//! responses.

use super::channel::{Channel, Io};
use super::tcp::connect_tcp;
use super::unix::connect_unix;
use super::{Transport, TransportError, deadline};
use crate::tpm::tcti::Tcti;
use std::path::Path;
use std::time::{Duration, Instant};

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
        self.ch.transact(command, |ch, deadline| {
            ch.write_all(command, deadline)?;
            ch.read_response(deadline)
        })
    }

    fn cap(&mut self, until: Option<Instant>) {
        self.ch.cap = until;
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::tpm::tcti;
    use crate::tpm::transport::open;
    use crate::tpm::transport::swtpm::{Listen, Swtpm, free_port_pair};
    use nix::errno::Errno;
    use std::io::Write;

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
}
