//! systemd's userspace TPM measurement log (/run/log/systemd/tpm2-measure.log):
//! every PCR extension the loader makes is recorded there as systemd
//! records its own, so that systemd-pcrlock and remote verifiers can replay
//! the PCR. The format is systemd's subset of TCG's CEL-JSON: one JSON
//! object per record in RFC 7464 form (0x1E, the object, a newline), with
//! `content_type` "systemd" and the event's text in `content.string`, whose
//! hash is the digest extended. The locking is systemd's too: an exclusive
//! BSD flock taken *before* the extend and held until the record is
//! written, and the sticky bit set while a record is being appended (a
//! writer that finds it set knows an earlier one died midway, and leaves the
//! log alone). Logging is a courtesy: its failures are warnings.

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const DEFAULT_PATH: &str = "/run/log/systemd/tpm2-measure.log";

/// How long to wait for another writer's lock: a stuck one must not hold
/// the boot.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// The log's path: $SYSTEMD_MEASURE_LOG_USERSPACE as systemd takes it, else
/// the default.
pub fn path() -> PathBuf {
    std::env::var_os("SYSTEMD_MEASURE_LOG_USERSPACE")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from(DEFAULT_PATH), PathBuf::from)
}

/// The log, locked and marked as being written: what `open` returns and
/// `append` consumes.
pub struct Open {
    file: Flock<File>,
    path: PathBuf,
}

fn err(path: &Path, what: &str, e: impl std::fmt::Display) -> String {
    format!("{what} {}: {e}", path.display())
}

/// Opens and locks the log (creating it and its directory), before the
/// extend it will record, so nobody comes between the extend and its record.
pub fn open(path: &Path) -> Result<Open, String> {
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(|e| err(dir, "create the directory", e))?;
    }
    // 0600: whoever can open it can flock it, and hold every writer up.
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC | nix::libc::O_NOCTTY)
        .open(path)
        .map_err(|e| err(path, "open", e))?;
    let deadline = Instant::now() + LOCK_WAIT;
    let locked = loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(l) => break l,
            Err((back, Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                file = back;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err((_, e)) => return Err(err(path, "lock", e.desc())),
        }
    };
    let meta = locked.metadata().map_err(|e| err(path, "stat", e))?;
    if !meta.file_type().is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    if meta.permissions().mode() & 0o1000 != 0 {
        return Err(format!(
            "{} has its sticky bit set: an earlier writer died while appending, so the log is incomplete and left alone",
            path.display()
        ));
    }
    locked
        .set_permissions(std::fs::Permissions::from_mode(0o1600))
        .map_err(|e| err(path, "mark (chmod 1600)", e))?;
    Ok(Open {
        file: locked,
        path: path.to_path_buf(),
    })
}

impl Open {
    /// Appends the record of a sha256 extend of `pcr` with SHA-256 of
    /// `event`, and clears the mark; the lock goes with `self`.
    pub fn append(mut self, pcr: u8, digest: &[u8; 32], event: &str) -> Result<(), String> {
        let boot_id = boot_id().map_err(|e| format!("read the boot id: {e}"))?;
        let record = record_json(pcr, digest, event, &boot_id, boottime_us());
        let path = self.path.clone();
        let mut bytes = vec![0x1e];
        bytes.extend_from_slice(record.as_bytes());
        bytes.push(b'\n');
        self.file
            .seek(SeekFrom::End(0))
            .and_then(|_| self.file.write_all(&bytes))
            .and_then(|()| self.file.sync_all())
            .map_err(|e| err(&path, "append to", e))?;
        self.file
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .and_then(|()| self.file.sync_all())
            .map_err(|e| err(&path, "unmark (chmod 600)", e))
    }
}

/// The kernel's boot id as systemd writes it: 32 hex digits, no dashes.
fn boot_id() -> std::io::Result<String> {
    let text = std::fs::read_to_string("/proc/sys/kernel/random/boot_id")?;
    let id: String = text.trim().chars().filter(|c| *c != '-').collect();
    if id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(id.to_ascii_lowercase())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a boot id",
        ))
    }
}

/// CLOCK_BOOTTIME in microseconds, systemd's `timestamp`.
fn boottime_us() -> u64 {
    let mut ts = nix::libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration.
    let rc = unsafe { nix::libc::clock_gettime(nix::libc::CLOCK_BOOTTIME, &mut ts) };
    if rc != 0 {
        return 0;
    }
    u64::try_from(ts.tv_sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000)
        .saturating_add(u64::try_from(ts.tv_nsec).unwrap_or(0) / 1000)
}

/// One record, the fields in systemd's order.
pub fn record_json(
    pcr: u8,
    digest: &[u8; 32],
    event: &str,
    boot_id: &str,
    timestamp: u64,
) -> String {
    format!(
        "{{\"pcr\":{pcr},\"digests\":[{{\"hashAlg\":\"sha256\",\"digest\":\"{}\"}}],\"content_type\":\"systemd\",\"content\":{{\"string\":{},\"bootId\":{},\"timestamp\":{timestamp}}}}}",
        crate::hex::encode(digest),
        json_string(event),
        json_string(boot_id)
    )
}

/// A JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn records_are_systemds_json_seq() {
        let r = record_json(15, &[0xab; 32], "a \"b\"\n", "00ff", 7);
        assert_eq!(
            r,
            format!(
                "{{\"pcr\":15,\"digests\":[{{\"hashAlg\":\"sha256\",\"digest\":\"{}\"}}],\"content_type\":\"systemd\",\"content\":{{\"string\":\"a \\\"b\\\"\\u000a\",\"bootId\":\"00ff\",\"timestamp\":7}}}}",
                "ab".repeat(32)
            )
        );
    }

    #[test]
    fn appends_under_the_lock_and_refuses_a_log_left_half_written() {
        let dir = std::env::temp_dir().join(format!("il-measure-log-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("log/systemd/tpm2-measure.log");
        // The directory is made; the log is created 0600, marked while open.
        let open1 = open(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o1600);
        // A second writer waits for the lock, then gives up.
        let t = Instant::now();
        let e = open(&path).err().unwrap();
        assert!(t.elapsed() >= LOCK_WAIT, "{e}");
        open1.append(15, &[1; 32], "one").unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o600);
        open(&path).unwrap().append(11, &[2; 32], "two").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let records: Vec<&str> = text.split('\x1e').collect();
        assert_eq!(records.len(), 3, "{text:?}");
        assert!(records[0].is_empty());
        assert!(records[1].starts_with("{\"pcr\":15,") && records[1].ends_with("}\n"));
        assert!(records[2].contains("\"string\":\"two\""), "{}", records[2]);
        // A writer that died midway leaves the sticky bit: not touched.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o1600)).unwrap();
        let e = open(&path).err().unwrap();
        assert!(e.contains("sticky bit"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
