//! The kernel TPM device (/dev/tpmrmN, /dev/tpmN), opened only when sysfs
//! says it is one.

use super::channel::{Channel, Io};
use super::error::{errno_of, words};
use super::{HEADER, MAX_MESSAGE, Transport, TransportError, size_field};
use crate::tpm::tcti::{self, Tcti};
use nix::errno::Errno;
use std::fs::OpenOptions;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where sysfs names the class of each character device (`MAJ:MIN/subsystem`).
const SYS_DEV_CHAR: &str = "/sys/dev/char";
/// The sysfs classes of TPM character devices (`/dev/tpmN`, `/dev/tpmrmN`).
const TPM_CLASSES: &[&str] = &["tpm", "tpmrm"];

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
    fn from_file(file: std::fs::File, path: &Path, timeout: Duration) -> DeviceTransport {
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

    fn exchange(
        ch: &Channel,
        command: &[u8],
        deadline: Instant,
    ) -> Result<Vec<u8>, TransportError> {
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
        self.ch.transact(command, |ch, deadline| {
            DeviceTransport::exchange(ch, command, deadline)
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
    use crate::test_support::temp_dir;

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
}
