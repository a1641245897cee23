//! Which TPM to talk to, written the way tpm2-tools takes it in
//! `TPM2TOOLS_TCTI` / `--tcti`: `device:/dev/tpmrm0`, `swtpm:host=H,port=P`,
//! `swtpm:path=SOCKET`, `mssim:host=H,port=P`.
//!
//! The syntax and defaults follow tpm2-tss (`doc/tcti.md`, `tcti-device.c`,
//! `tcti-swtpm.c`, `tcti-mssim.c`): a bare name takes the defaults, the
//! library names tctildr also accepts (`libtss2-tcti-swtpm.so.0`) mean the
//! same, the simulators listen on localhost:2321 with their control channel
//! on port+1. Stricter than tpm2-tss where it guesses: an option given twice,
//! `path=` together with `host=`/`port=`, or a port that leaves no room for
//! the control channel are errors rather than "last one wins".

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// The device `device` (with no path) means. `transport::open` falls back to
/// [`FALLBACK_DEVICE`] when this one does not exist (kernels before 4.12).
pub const DEFAULT_DEVICE: &str = "/dev/tpmrm0";
/// The raw, exclusive device of kernels without the resource manager.
pub const FALLBACK_DEVICE: &str = "/dev/tpm0";
/// Host and command port of swtpm and mssim when none is given.
pub const DEFAULT_HOST: &str = "localhost";
pub const DEFAULT_PORT: u16 = 2321;

const USAGE: &str =
    "use device:PATH, swtpm:host=H,port=P, swtpm:path=SOCKET or mssim:host=H,port=P";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Tcti {
    /// A kernel TPM character device, /dev/tpmrm0 or /dev/tpm0.
    Device(PathBuf),
    /// swtpm's data channel over TCP (raw TPM commands).
    SwtpmTcp { host: String, port: u16 },
    /// swtpm's data channel on a unix socket (`--server type=unixio,path=`).
    SwtpmUnix(PathBuf),
    /// The Microsoft/IBM simulator protocol: commands on `port`, platform
    /// commands (power on, NV on) on `port + 1`.
    Mssim { host: String, port: u16 },
}

impl Tcti {
    /// The simulator's control (swtpm) or platform (mssim) port: the command
    /// port + 1. None for devices and unix sockets.
    pub fn control_port(&self) -> Option<u16> {
        match self {
            Tcti::SwtpmTcp { port, .. } | Tcti::Mssim { port, .. } => port.checked_add(1),
            Tcti::Device(_) | Tcti::SwtpmUnix(_) => None,
        }
    }
}

/// Prints the TCTI string that parses back to the same value.
impl fmt::Display for Tcti {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tcti::Device(path) => write!(f, "device:{}", path.display()),
            Tcti::SwtpmTcp { host, port } => write!(f, "swtpm:host={host},port={port}"),
            Tcti::SwtpmUnix(path) => write!(f, "swtpm:path={}", path.display()),
            Tcti::Mssim { host, port } => write!(f, "mssim:host={host},port={port}"),
        }
    }
}

impl FromStr for Tcti {
    type Err = TctiError;
    fn from_str(s: &str) -> Result<Tcti, TctiError> {
        parse(s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TctiError {
    Empty,
    Unknown {
        name: String,
    },
    /// A TCTI tpm2-tss has but integrity-loader does not speak.
    Unsupported {
        name: String,
    },
    NotKeyValue {
        tcti: &'static str,
        option: String,
    },
    UnknownKey {
        tcti: &'static str,
        key: String,
    },
    EmptyValue {
        tcti: &'static str,
        key: String,
    },
    Repeated {
        tcti: &'static str,
        key: String,
    },
    BadPort {
        tcti: &'static str,
        value: String,
    },
    BadHost {
        tcti: &'static str,
        host: String,
    },
    /// `swtpm:path=` together with `host=` or `port=`.
    PathWithHost,
}

impl fmt::Display for TctiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TctiError::Empty => write!(f, "the TPM (TCTI) is empty: {USAGE}"),
            TctiError::Unknown { name } => write!(f, "unknown TCTI \"{name}\": {USAGE}"),
            TctiError::Unsupported { name } => write!(
                f,
                "TCTI \"{name}\" is not available to integrity-loader (it talks to the TPM \
                 directly, without tpm2-tss): {USAGE}"
            ),
            TctiError::NotKeyValue { tcti, option } => write!(
                f,
                "{tcti} option \"{option}\" is not KEY=VALUE: {}",
                usage(tcti)
            ),
            TctiError::UnknownKey { tcti, key } => {
                write!(f, "unknown {tcti} option \"{key}\": {}", usage(tcti))
            }
            TctiError::EmptyValue { tcti, key } => {
                write!(f, "{tcti} option \"{key}\" has no value: {}", usage(tcti))
            }
            TctiError::Repeated { tcti, key } => {
                write!(f, "{tcti} option \"{key}\" is given twice")
            }
            TctiError::BadPort { tcti, value } => write!(
                f,
                "{tcti} port \"{value}\" is not a number from 1 to 65534 (the control channel \
                 listens on port+1)"
            ),
            TctiError::BadHost { tcti, host } => {
                write!(f, "{tcti} host \"{host}\" is not a host name or IP address")
            }
            TctiError::PathWithHost => f.write_str(
                "swtpm:path= names a unix socket and cannot be combined with host= or port=: \
                 use swtpm:path=SOCKET or swtpm:host=H,port=P",
            ),
        }
    }
}

impl std::error::Error for TctiError {}

fn usage(tcti: &str) -> &'static str {
    match tcti {
        "swtpm" => "use swtpm:host=H,port=P or swtpm:path=SOCKET",
        _ => "use mssim:host=H,port=P",
    }
}

/// TCTIs of tpm2-tss that exist but cannot be used here, to tell them apart
/// from typos.
const UNSUPPORTED: &[&str] = &[
    "tabrmd",
    "libtpms",
    "cmd",
    "pcap",
    "tbs",
    "spidev",
    "spi-helper",
    "spi-ftdi",
    "spi-ltt2go",
    "spi-lt2go",
    "i2c-helper",
    "i2c-ftdi",
    "start-sim",
    "network",
    "py",
    "null",
    "default",
];

/// Parses a TCTI string: `NAME` or `NAME:CONF`, NAME being `device`, `swtpm`
/// or `mssim` (or their tpm2-tss library names). Surrounding whitespace is
/// ignored.
pub fn parse(s: &str) -> Result<Tcti, TctiError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(TctiError::Empty);
    }
    let (name, conf) = match s.split_once(':') {
        Some((name, conf)) => (name, conf),
        None => (s, ""),
    };
    match short_name(name) {
        "device" if conf.is_empty() => Ok(Tcti::Device(PathBuf::from(DEFAULT_DEVICE))),
        "device" => Ok(Tcti::Device(PathBuf::from(conf))),
        "swtpm" => {
            let o = options("swtpm", conf, &["host", "port", "path"])?;
            match o.path {
                Some(_) if o.host.is_some() || o.port.is_some() => Err(TctiError::PathWithHost),
                Some(path) => Ok(Tcti::SwtpmUnix(PathBuf::from(path))),
                None => Ok(Tcti::SwtpmTcp {
                    host: o.host.unwrap_or(DEFAULT_HOST).to_string(),
                    port: o.port.unwrap_or(DEFAULT_PORT),
                }),
            }
        }
        "mssim" => {
            let o = options("mssim", conf, &["host", "port"])?;
            Ok(Tcti::Mssim {
                host: o.host.unwrap_or(DEFAULT_HOST).to_string(),
                port: o.port.unwrap_or(DEFAULT_PORT),
            })
        }
        short if UNSUPPORTED.contains(&short) => Err(TctiError::Unsupported {
            name: name.to_string(),
        }),
        _ => Err(TctiError::Unknown {
            name: name.to_string(),
        }),
    }
}

/// `libtss2-tcti-swtpm.so.0` -> `swtpm`, as tctildr resolves names.
fn short_name(name: &str) -> &str {
    let base = name
        .strip_suffix(".so.0")
        .or_else(|| name.strip_suffix(".so"))
        .unwrap_or(name);
    base.strip_prefix("libtss2-tcti-")
        .or_else(|| base.strip_prefix("libtss2-"))
        .or_else(|| base.strip_prefix("tcti-"))
        .unwrap_or(base)
}

#[derive(Default)]
struct Options<'a> {
    host: Option<&'a str>,
    port: Option<u16>,
    path: Option<&'a str>,
}

/// Reads `key=value,key=value`; empty items (a trailing comma) are skipped.
fn options<'a>(
    tcti: &'static str,
    conf: &'a str,
    allowed: &[&str],
) -> Result<Options<'a>, TctiError> {
    let mut o = Options::default();
    for item in conf.split(',').filter(|i| !i.is_empty()) {
        let Some((key, value)) = item.split_once('=') else {
            return Err(TctiError::NotKeyValue {
                tcti,
                option: item.to_string(),
            });
        };
        if !allowed.contains(&key) {
            return Err(TctiError::UnknownKey {
                tcti,
                key: key.to_string(),
            });
        }
        if value.is_empty() {
            return Err(TctiError::EmptyValue {
                tcti,
                key: key.to_string(),
            });
        }
        let repeated = match key {
            "host" => o.host.replace(host(tcti, value)?).is_some(),
            "port" => o.port.replace(port(tcti, value)?).is_some(),
            _ => o.path.replace(value).is_some(),
        };
        if repeated {
            return Err(TctiError::Repeated {
                tcti,
                key: key.to_string(),
            });
        }
    }
    Ok(o)
}

fn port(tcti: &'static str, value: &str) -> Result<u16, TctiError> {
    match value.parse::<u16>() {
        Ok(p) if p != 0 && p != u16::MAX => Ok(p),
        _ => Err(TctiError::BadPort {
            tcti,
            value: value.to_string(),
        }),
    }
}

fn host<'a>(tcti: &'static str, value: &'a str) -> Result<&'a str, TctiError> {
    let ok = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%'));
    if ok {
        Ok(value)
    } else {
        Err(TctiError::BadHost {
            tcti,
            host: value.to_string(),
        })
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
    use super::*;

    fn tcp(host: &str, port: u16) -> Tcti {
        Tcti::SwtpmTcp {
            host: host.to_string(),
            port,
        }
    }

    fn mssim(host: &str, port: u16) -> Tcti {
        Tcti::Mssim {
            host: host.to_string(),
            port,
        }
    }

    #[test]
    fn parses() {
        let dev = |p: &str| Tcti::Device(PathBuf::from(p));
        let cases: &[(&str, Tcti)] = &[
            ("device", dev("/dev/tpmrm0")),
            ("device:", dev("/dev/tpmrm0")),
            ("device:/dev/tpmrm0", dev("/dev/tpmrm0")),
            ("device:/dev/tpm0", dev("/dev/tpm0")),
            ("  device:/dev/tpm0\n", dev("/dev/tpm0")),
            ("libtss2-tcti-device.so.0:/dev/tpm0", dev("/dev/tpm0")),
            ("swtpm", tcp("localhost", 2321)),
            ("swtpm:", tcp("localhost", 2321)),
            ("swtpm:host=127.0.0.1,port=2321", tcp("127.0.0.1", 2321)),
            ("swtpm:port=4000", tcp("localhost", 4000)),
            ("swtpm:host=10.0.0.2", tcp("10.0.0.2", 2321)),
            ("swtpm:port=4000,host=::1", tcp("::1", 4000)),
            ("swtpm:host=tpm-sim.example", tcp("tpm-sim.example", 2321)),
            ("swtpm:host=127.0.0.1,port=2321,", tcp("127.0.0.1", 2321)),
            ("libtss2-tcti-swtpm.so:port=5", tcp("localhost", 5)),
            (
                "swtpm:path=/run/swtpm.sock",
                Tcti::SwtpmUnix(PathBuf::from("/run/swtpm.sock")),
            ),
            ("mssim", mssim("localhost", 2321)),
            ("mssim:host=localhost,port=2321", mssim("localhost", 2321)),
            ("mssim:port=65534", mssim("localhost", 65534)),
            ("tcti-mssim:host=192.168.1.5", mssim("192.168.1.5", 2321)),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).as_ref(), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn refuses() {
        let cases: &[(&str, TctiError)] = &[
            ("", TctiError::Empty),
            ("   ", TctiError::Empty),
            ("foo", TctiError::Unknown { name: "foo".into() }),
            (
                "Device:/dev/tpm0",
                TctiError::Unknown {
                    name: "Device".into(),
                },
            ),
            (
                "/dev/tpmrm0",
                TctiError::Unknown {
                    name: "/dev/tpmrm0".into(),
                },
            ),
            (
                "tabrmd:bus_type=system",
                TctiError::Unsupported {
                    name: "tabrmd".into(),
                },
            ),
            (
                "swtpm:2321",
                TctiError::NotKeyValue {
                    tcti: "swtpm",
                    option: "2321".into(),
                },
            ),
            (
                "swtpm:hots=localhost",
                TctiError::UnknownKey {
                    tcti: "swtpm",
                    key: "hots".into(),
                },
            ),
            (
                "mssim:path=/run/sim.sock",
                TctiError::UnknownKey {
                    tcti: "mssim",
                    key: "path".into(),
                },
            ),
            (
                "swtpm:host=",
                TctiError::EmptyValue {
                    tcti: "swtpm",
                    key: "host".into(),
                },
            ),
            (
                "swtpm:port=1,port=2",
                TctiError::Repeated {
                    tcti: "swtpm",
                    key: "port".into(),
                },
            ),
            (
                "swtpm:port=0",
                TctiError::BadPort {
                    tcti: "swtpm",
                    value: "0".into(),
                },
            ),
            (
                "mssim:port=65535",
                TctiError::BadPort {
                    tcti: "mssim",
                    value: "65535".into(),
                },
            ),
            (
                "swtpm:port=70000",
                TctiError::BadPort {
                    tcti: "swtpm",
                    value: "70000".into(),
                },
            ),
            (
                "mssim:port=-1",
                TctiError::BadPort {
                    tcti: "mssim",
                    value: "-1".into(),
                },
            ),
            (
                "swtpm:host=a b",
                TctiError::BadHost {
                    tcti: "swtpm",
                    host: "a b".into(),
                },
            ),
            ("swtpm:path=/s,port=1", TctiError::PathWithHost),
            ("swtpm:host=h,path=/s", TctiError::PathWithHost),
        ];
        for (text, want) in cases {
            assert_eq!(parse(text).as_ref(), Err(want), "{text:?}");
        }
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "device:/dev/tpmrm0",
            "device:/dev/tpm0",
            "swtpm:host=127.0.0.1,port=2321",
            "swtpm:host=::1,port=9",
            "swtpm:path=/run/swtpm.sock",
            "mssim:host=localhost,port=2321",
        ] {
            let tcti = parse(text).unwrap();
            assert_eq!(tcti.to_string(), text);
            assert_eq!(parse(&tcti.to_string()).unwrap(), tcti);
        }
        // Defaults are spelled out, and the result parses to the same value.
        for text in ["device", "swtpm", "mssim:port=7", "libtss2-tcti-swtpm.so.0"] {
            let tcti = parse(text).unwrap();
            assert_eq!(parse(&tcti.to_string()).unwrap(), tcti, "{text}");
        }
        assert_eq!(
            parse("swtpm").unwrap().to_string(),
            "swtpm:host=localhost,port=2321"
        );
    }

    #[test]
    fn control_port_is_next() {
        assert_eq!(parse("swtpm").unwrap().control_port(), Some(2322));
        assert_eq!(parse("mssim:port=4000").unwrap().control_port(), Some(4001));
        assert_eq!(parse("device").unwrap().control_port(), None);
        assert_eq!(parse("swtpm:path=/s").unwrap().control_port(), None);
    }

    #[test]
    fn messages() {
        assert_eq!(
            parse("foo").unwrap_err().to_string(),
            "unknown TCTI \"foo\": use device:PATH, swtpm:host=H,port=P, swtpm:path=SOCKET or \
             mssim:host=H,port=P"
        );
        assert_eq!(
            parse("swtpm:port=x").unwrap_err().to_string(),
            "swtpm port \"x\" is not a number from 1 to 65534 (the control channel listens on \
             port+1)"
        );
        assert_eq!(
            parse("mssim:path=/s").unwrap_err().to_string(),
            "unknown mssim option \"path\": use mssim:host=H,port=P"
        );
        assert!(
            parse("tabrmd")
                .unwrap_err()
                .to_string()
                .starts_with("TCTI \"tabrmd\" is not available to integrity-loader")
        );
    }
}
