//! A directory's names, read with getdents64(2) straight from the kernel.
//!
//! `std::fs::read_dir` goes through the C library's `opendir`, which
//! allocates with musl's malloc: the one caller that would still run it in
//! a boot, where the boot binary's own allocator is the arena (see
//! `arena`).

use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// Offsets in a `struct linux_dirent64`: d_ino (8 bytes), d_off (8),
/// d_reclen (2), d_type (1), then the NUL-terminated name.
const RECLEN_AT: usize = 16;
const NAME_AT: usize = 19;

/// The names in directory `path`, without "." and "..", in the order the
/// file system keeps them, reading no further than `max + 1` names (a
/// caller that takes at most `max` says so when there are more). Errors as
/// `read_dir`'s: ENOTDIR for a file.
pub fn names(path: &Path, max: usize) -> io::Result<Vec<OsString>> {
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY)
        .open(path)?;
    let mut names = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: an open descriptor and a buffer of buf.len() writable
        // bytes; the kernel writes at most that many.
        let n = unsafe {
            nix::libc::syscall(
                nix::libc::SYS_getdents64,
                dir.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
        if n == 0 {
            return Ok(names);
        }
        let mut records = buf.get(..n).unwrap_or_default();
        while let Some(len) = records.get(RECLEN_AT..RECLEN_AT + 2) {
            let len: [u8; 2] = len.try_into().map_err(|_| bad_record())?;
            let reclen = usize::from(u16::from_ne_bytes(len));
            if reclen <= NAME_AT {
                return Err(bad_record());
            }
            let (record, rest) = records.split_at_checked(reclen).ok_or_else(bad_record)?;
            let name = record.get(NAME_AT..).unwrap_or_default();
            let name = name.split(|&b| b == 0).next().unwrap_or_default();
            if name != b"." && name != b".." {
                names.push(OsString::from_vec(name.to_vec()));
                if names.len() > max {
                    return Ok(names);
                }
            }
            records = rest;
        }
    }
}

fn bad_record() -> io::Error {
    io::Error::from_raw_os_error(nix::libc::EIO)
}

#[cfg(test)]
mod tests {
    use super::names;
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn lists_what_read_dir_lists() {
        let dir = crate::test_support::temp_dir("dir-names");
        let mut want: Vec<OsString> = Vec::new();
        // Enough long names to take several getdents64 calls.
        for i in 0..300 {
            let name = format!("{i:03}-{}", "n".repeat(40));
            std::fs::write(dir.join(&name), b"").unwrap();
            want.push(name.into());
        }
        std::fs::create_dir(dir.join("sub")).unwrap();
        want.push("sub".into());
        let odd = OsString::from_vec(b"caf\xe9".to_vec());
        std::fs::write(dir.join(&odd), b"").unwrap();
        want.push(odd);
        let mut got = names(&dir, usize::MAX).unwrap();
        assert_eq!(names(&dir, 10).unwrap().len(), 11, "stops at max + 1");
        got.sort();
        want.sort();
        assert_eq!(got, want);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn errors_are_read_dirs() {
        let dir = crate::test_support::temp_dir("dir-errors");
        std::fs::write(dir.join("f"), b"").unwrap();
        let e = names(&dir.join("f"), 10).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(nix::libc::ENOTDIR));
        let e = names(&dir.join("none"), 10).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        assert!(names(&dir, 10).unwrap().iter().any(|n| n == "f"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
