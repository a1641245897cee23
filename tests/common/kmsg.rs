//! The host's kernel log (/dev/kmsg, needs root) as the loader writes to it:
//! the records written from a point on, with their priority.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;

/// /dev/kmsg from the current end: the records written from now on.
pub struct Kmsg(File);

impl Kmsg {
    pub fn from_now() -> Kmsg {
        let mut f = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC)
            .open("/dev/kmsg")
            .expect("read /dev/kmsg (needs root)");
        f.seek(SeekFrom::End(0)).unwrap();
        Kmsg(f)
    }

    /// Every record since `from_now` (or the last call), raw:
    /// "PRIORITY,SEQ,USEC,FLAGS;TEXT\n".
    pub fn records(&mut self) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match self.0.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => out.push(buf[..n].to_vec()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                // EPIPE: records were overwritten while we read; go on.
                Err(e) if e.raw_os_error() == Some(nix::libc::EPIPE) => continue,
                Err(e) => panic!("read /dev/kmsg: {e}"),
            }
        }
        out
    }
}

/// Process `pid`'s records among `records`, as (log level 0-7, text after
/// the "integrity-loader[PID]: " tag).
pub fn own_records(records: &[Vec<u8>], pid: u32) -> Vec<(u8, String)> {
    let tag = format!("integrity-loader[{pid}]: ");
    records
        .iter()
        .map(|r| String::from_utf8_lossy(r).into_owned())
        .filter_map(|r| {
            let (head, text) = r.split_once(';')?;
            let priority: u32 = head.split(',').next()?.parse().ok()?;
            let (_, message) = text.split_once(&tag)?;
            Some(((priority & 7) as u8, message.trim_end().to_string()))
        })
        .collect()
}
