//! Files of the real root, read without trusting them: every configured path
//! is resolved inside the root (symlinks included, as if chrooted), must name
//! a regular file, and is read with a size bound.

use crate::secret::Secret;
use nix::errno::Errno;
use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

/// Symlinks followed while resolving one path, as the kernel's MAXSYMLINKS.
const MAX_SYMLINKS: usize = 40;
/// Entries read from one key directory; more is a broken or hostile root.
pub const MAX_DIR_ENTRIES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileErrorKind {
    NotAbsolute,
    DotDot,
    EscapesRoot,
    SymlinkLoop,
    NotFound,
    NotRegular(&'static str),
    NotDirectory,
    TooLarge {
        size: u64,
        limit: usize,
    },
    /// A file without a reported size that held more than the limit.
    LongerThan {
        limit: usize,
    },
    TooManyEntries {
        limit: usize,
    },
    Changed,
    Io(Errno),
}

/// A file problem, naming the file as found on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub path: PathBuf,
    pub kind: FileErrorKind,
}

impl FileError {
    pub fn is_not_found(&self) -> bool {
        self.kind == FileErrorKind::NotFound
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.kind)
    }
}

impl fmt::Display for FileErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileErrorKind::NotAbsolute => {
                write!(
                    f,
                    "path must be absolute (it is taken inside the real root)"
                )
            }
            FileErrorKind::DotDot => write!(f, "path must not contain '..'"),
            FileErrorKind::EscapesRoot => {
                write!(f, "a symlink on this path leads out of the real root")
            }
            FileErrorKind::SymlinkLoop => {
                write!(f, "too many symlinks (a symlink loop?)")
            }
            FileErrorKind::NotFound => write!(f, "no such file"),
            FileErrorKind::NotRegular(what) => write!(f, "is {what}, not a regular file"),
            FileErrorKind::NotDirectory => write!(f, "is not a directory"),
            FileErrorKind::TooLarge { size, limit } => {
                write!(
                    f,
                    "file is {size} bytes, more than the {limit} bytes allowed"
                )
            }
            FileErrorKind::LongerThan { limit } => {
                write!(f, "file holds more than the {limit} bytes allowed")
            }
            FileErrorKind::TooManyEntries { limit } => {
                write!(f, "directory holds more than {limit} entries")
            }
            FileErrorKind::Changed => write!(f, "file changed while it was read"),
            FileErrorKind::Io(e) => write!(f, "{}", e.desc()),
        }
    }
}

impl std::error::Error for FileError {}

/// What `resolve_with` does about a component that does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Missing {
    Fail,
    /// Go on as if it were a directory (nothing below it exists either).
    Plan,
    MakeDirectory,
}

/// The real root the configuration, blobs, certificates and policy live in.
#[derive(Debug, Clone)]
pub struct Root {
    dir: PathBuf,
}

impl Root {
    pub fn new(dir: impl Into<PathBuf>) -> Root {
        Root { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where `path` (absolute, as written in the configuration) is on this
    /// machine, without following anything: for messages. Text, not a
    /// `Path`: a name that is not UTF-8 shows U+FFFD as `Path::display`
    /// shows it, without `display`'s padding support, whose code a boot's
    /// every message would otherwise run (see BENCHMARKS.md).
    pub fn display_path(&self, path: impl AsRef<Path>) -> String {
        let path = path.as_ref().as_os_str().to_string_lossy();
        let path = path.trim_start_matches('/');
        let mut shown = self.dir.as_os_str().to_string_lossy().into_owned();
        if !shown.ends_with('/') && !path.is_empty() {
            shown.push('/');
        }
        shown.push_str(path);
        shown
    }

    fn error(&self, path: &Path, kind: FileErrorKind) -> FileError {
        FileError {
            path: self.display_path(path).into(),
            kind,
        }
    }

    /// Resolves `path` inside the root: absolute symlink targets start again
    /// at the root, `..` may not climb above it.
    /// Paths are bytes: a name that is not UTF-8 is taken as it is.
    pub fn resolve(&self, path: impl AsRef<Path>) -> Result<PathBuf, FileError> {
        self.resolve_with(path.as_ref(), Missing::Fail)
    }

    /// The directory `path` inside the root, made where missing as `mkdir
    /// -p` would inside a chroot: a symlink on the way (dangling ones
    /// included) is followed inside the root, never out of it.
    pub fn make_dirs(&self, path: &str) -> Result<PathBuf, FileError> {
        let path = Path::new(path);
        let dir = self.resolve_with(path, Missing::MakeDirectory)?;
        match fs::metadata(&dir) {
            Ok(m) if m.is_dir() => Ok(dir),
            Ok(_) => Err(self.error(path, FileErrorKind::NotDirectory)),
            Err(e) => Err(self.error(path, FileErrorKind::Io(io_errno(&e)))),
        }
    }

    /// Where `make_dirs` would put `path`, without making anything: missing
    /// components are taken for the directories it would make.
    pub fn resolve_planned(&self, path: &str) -> Result<PathBuf, FileError> {
        self.resolve_with(Path::new(path), Missing::Plan)
    }

    fn resolve_with(&self, path: &Path, missing: Missing) -> Result<PathBuf, FileError> {
        self.resolve_meta(path, missing).map(|(p, _)| p)
    }

    /// `resolve_with`, and what the last lstat of the walk saw at the
    /// result (`None` for the root itself or a planned path), so a reader
    /// need not look again.
    fn resolve_meta(
        &self,
        path: &Path,
        missing: Missing,
    ) -> Result<(PathBuf, Option<fs::Metadata>), FileError> {
        if !path.has_root() {
            return Err(self.error(path, FileErrorKind::NotAbsolute));
        }
        let mut pending: Vec<OsString> = Vec::new();
        for c in path.components() {
            match c {
                Component::Normal(n) => pending.push(n.to_os_string()),
                Component::ParentDir => return Err(self.error(path, FileErrorKind::DotDot)),
                _ => {}
            }
        }
        pending.reverse();
        let mut resolved: Vec<OsString> = Vec::new();
        let mut links = 0;
        let mut last = None;
        while let Some(name) = pending.pop() {
            last = None;
            if name.as_bytes() == b".." {
                if resolved.pop().is_none() {
                    return Err(self.error(path, FileErrorKind::EscapesRoot));
                }
                continue;
            }
            resolved.push(name);
            let here = self.join(&resolved);
            let meta = match fs::symlink_metadata(&here) {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    match missing {
                        Missing::Fail => return Err(self.error(path, FileErrorKind::NotFound)),
                        Missing::Plan => {}
                        Missing::MakeDirectory => fs::create_dir(&here)
                            .map_err(|e| self.error(path, FileErrorKind::Io(io_errno(&e))))?,
                    }
                    continue;
                }
                Err(e) => return Err(self.error(path, FileErrorKind::Io(io_errno(&e)))),
            };
            if !meta.file_type().is_symlink() {
                last = Some(meta);
                continue;
            }
            links += 1;
            if links > MAX_SYMLINKS {
                return Err(self.error(path, FileErrorKind::SymlinkLoop));
            }
            let target = fs::read_link(&here)
                .map_err(|e| self.error(path, FileErrorKind::Io(io_errno(&e))))?;
            resolved.pop();
            if target.is_absolute() {
                resolved.clear();
            }
            let mut parts: Vec<OsString> = Vec::new();
            for c in target.components() {
                match c {
                    Component::Normal(n) => parts.push(n.to_os_string()),
                    Component::ParentDir => parts.push(OsString::from("..")),
                    _ => {}
                }
            }
            pending.extend(parts.into_iter().rev());
        }
        Ok((self.join(&resolved), last))
    }

    fn join(&self, parts: &[OsString]) -> PathBuf {
        let mut p = self.dir.clone();
        for part in parts {
            p.push(part);
        }
        p
    }

    /// Whether `path` resolves to an existing file system object.
    pub fn exists(&self, path: &str) -> bool {
        self.resolve(path).is_ok()
    }

    fn open_regular(&self, path: &Path, limit: usize) -> Result<(File, usize), FileError> {
        self.open_regular_at(path, limit)
            .map(|(f, size, _)| (f, size))
    }

    /// `open_regular`, and the real path it opened.
    fn open_regular_at(
        &self,
        path: &Path,
        limit: usize,
    ) -> Result<(File, usize, PathBuf), FileError> {
        let (real, seen) = self.resolve_meta(path, Missing::Fail)?;
        // Look before opening: opening a device node reaches its driver
        // (a watchdog starts, a tape rewinds) before fstat could refuse it.
        // The walk's lstat of the last component is that look.
        let seen = match seen {
            Some(m) => m,
            None => fs::symlink_metadata(&real)
                .map_err(|e| self.error(path, FileErrorKind::Io(io_errno(&e))))?,
        };
        if !seen.file_type().is_file() {
            return Err(self.error(path, not_regular(seen.file_type())));
        }
        // O_NONBLOCK: opening a FIFO must not wait for a writer.
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc_flags())
            .open(&real)
            .map_err(|e| self.error(path, FileErrorKind::Io(io_errno(&e))))?;
        let meta = file
            .metadata()
            .map_err(|e| self.error(path, FileErrorKind::Io(io_errno(&e))))?;
        // Swapped between the look and the open.
        if (meta.dev(), meta.ino()) != (seen.dev(), seen.ino()) {
            return Err(self.error(path, FileErrorKind::Changed));
        }
        let ft = meta.file_type();
        if !ft.is_file() {
            return Err(self.error(path, not_regular(ft)));
        }
        if meta.len() > limit as u64 {
            return Err(self.error(
                path,
                FileErrorKind::TooLarge {
                    size: meta.len(),
                    limit,
                },
            ));
        }
        Ok((file, meta.len() as usize, real))
    }

    /// Reads a whole regular file of at most `limit` bytes.
    pub fn read(&self, path: &str, limit: usize) -> Result<Vec<u8>, FileError> {
        self.read_path(Path::new(path), limit)
    }

    /// `read` of a path that need not be UTF-8 (a name from a directory).
    pub fn read_path(&self, path: &Path, limit: usize) -> Result<Vec<u8>, FileError> {
        self.read_at(path, limit).map(|(bytes, _)| bytes)
    }

    /// `read`, and the real path it read (resolved once, for a caller that
    /// also names the file to the kernel).
    pub fn read_at(&self, path: &Path, limit: usize) -> Result<(Vec<u8>, PathBuf), FileError> {
        let (file, size, real) = self.open_regular_at(path, limit)?;
        let bytes = self.read_open(path, file, size, limit)?;
        Ok((bytes, real))
    }

    fn read_open(
        &self,
        path: &Path,
        file: File,
        size: usize,
        limit: usize,
    ) -> Result<Vec<u8>, FileError> {
        if size == 0 {
            // procfs and sysfs report size 0 for files that have content
            // (/proc/cmdline): read those to EOF, still within the limit.
            return read_unsized(file, limit).map_err(|e| self.error(path, e));
        }
        let mut buf = vec![0u8; size + 1];
        let n = read_full(file, &mut buf).map_err(|e| self.error(path, e))?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Reads key material into a buffer allocated once (no copies left behind
    /// by reallocation) and zeroized on drop.
    pub fn read_secret(&self, path: &str, limit: usize) -> Result<Secret, FileError> {
        let path = Path::new(path);
        let (file, size) = self.open_regular(path, limit)?;
        let mut buf = Secret::zeroed(size + 1);
        let n = read_full(file, buf.expose_mut()).map_err(|e| self.error(path, e))?;
        buf.truncate(n);
        Ok(buf)
    }

    /// The start of extended attribute `name` of the resolved `real` path (as
    /// [`Root::resolve`] gives it), at most `N` bytes; `None` when it has none
    /// or it cannot be read. A link at the end is followed, as `resolve` did.
    pub fn xattr<const N: usize>(real: &Path, name: &std::ffi::CStr) -> Option<Vec<u8>> {
        let path = std::ffi::CString::new(real.as_os_str().as_bytes()).ok()?;
        let mut buf = [0u8; N];
        // SAFETY: two valid NUL-terminated strings and a buffer of buf.len()
        // writable bytes; the kernel writes at most that many.
        let n = unsafe {
            nix::libc::getxattr(
                path.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        let n = usize::try_from(n).ok().filter(|&n| n > 0)?;
        buf.get(..n).map(<[u8]>::to_vec)
    }

    /// The names in directory `path`, as bytes, sorted as a shell glob
    /// sorts them; `Ok(None)` when the directory does not exist.
    pub fn list_dir(&self, path: &str) -> Result<Option<Vec<OsString>>, FileError> {
        let path = Path::new(path);
        let real = match self.resolve(path) {
            Ok(p) => p,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut names = match crate::dir::names(&real, MAX_DIR_ENTRIES) {
            Ok(names) => names,
            Err(e) if e.raw_os_error() == Some(libc_enotdir()) => {
                return Err(self.error(path, FileErrorKind::NotDirectory));
            }
            Err(e) => return Err(self.error(path, FileErrorKind::Io(io_errno(&e)))),
        };
        if names.len() > MAX_DIR_ENTRIES {
            return Err(self.error(
                path,
                FileErrorKind::TooManyEntries {
                    limit: MAX_DIR_ENTRIES,
                },
            ));
        }
        names.sort();
        Ok(Some(names))
    }
}

fn not_regular(ft: fs::FileType) -> FileErrorKind {
    FileErrorKind::NotRegular(if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "not a file"
    })
}

/// Reads until EOF into `buf`, whose last byte must stay unused: filling it
/// means the file grew after it was measured.
fn read_full(mut file: File, buf: &mut [u8]) -> Result<usize, FileErrorKind> {
    let mut filled = 0;
    loop {
        let Some(space) = buf.get_mut(filled..) else {
            return Err(FileErrorKind::Changed);
        };
        if space.is_empty() {
            return Err(FileErrorKind::Changed);
        }
        match file.read(space) {
            Ok(0) => return Ok(filled),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FileErrorKind::Io(io_errno(&e))),
        }
    }
}

/// Reads a file whose size the kernel does not report, refusing more than
/// `limit` bytes.
fn read_unsized(file: File, limit: usize) -> Result<Vec<u8>, FileErrorKind> {
    let bound = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let buf = read_sizeless(file, bound).map_err(|e| FileErrorKind::Io(io_errno(&e)))?;
    if buf.len() > limit {
        return Err(FileErrorKind::LongerThan { limit });
    }
    Ok(buf)
}

/// Reads a file that reports no size (procfs, sysfs, securityfs) to its
/// end, at most `bound` bytes. The buffer starts at 16 KiB (or the bound)
/// and doubles: each read of a seq_file (/proc/keys, /proc/cmdline) walks
/// the kernel's list again, and `read_to_end` into an empty buffer starts
/// with a 32-byte read (its code, besides, is a boot's only use of it).
pub fn read_sizeless(mut file: File, bound: u64) -> std::io::Result<Vec<u8>> {
    let bound = usize::try_from(bound).unwrap_or(usize::MAX);
    let mut buf = vec![0u8; bound.min(16 * 1024)];
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            if filled == bound {
                break;
            }
            buf.resize(filled.saturating_mul(2).clamp(1, bound), 0);
        }
        match file.read(buf.get_mut(filled..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    // A short file (most are) does not keep the 16 KiB.
    buf.shrink_to_fit();
    Ok(buf)
}

fn libc_flags() -> i32 {
    nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC
}

fn libc_enotdir() -> i32 {
    nix::libc::ENOTDIR
}

pub fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(nix::libc::EIO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> (tempdir::TempDir, Root) {
        let t = tempdir::TempDir::new();
        fs::create_dir_all(t.path().join("etc/keys")).unwrap();
        fs::write(t.path().join("etc/keys/a"), b"hello").unwrap();
        let root = Root::new(t.path());
        (t, root)
    }

    #[test]
    fn read_at_gives_the_file_it_read_through_links_inside_the_root() {
        let (t, root) = tree();
        symlink("/etc/keys/a", t.path().join("etc/link")).unwrap();
        symlink("keys", t.path().join("etc/dir")).unwrap();
        for path in ["/etc/link", "/etc/dir/a", "/etc/keys/a"] {
            let (bytes, real) = root.read_at(Path::new(path), 64).unwrap();
            assert_eq!(bytes, b"hello", "{path}");
            assert_eq!(real, t.path().join("etc/keys/a"), "{path}");
        }
        // The walk's look still refuses what is not a regular file.
        let e = root.read_at(Path::new("/etc/dir"), 64).unwrap_err();
        assert!(matches!(e.kind, FileErrorKind::NotRegular(_)), "{e}");
        assert!(
            root.read_at(Path::new("/etc/none"), 64)
                .unwrap_err()
                .is_not_found()
        );
    }

    #[test]
    fn reads_and_bounds() {
        let (_t, root) = tree();
        assert_eq!(root.read("/etc/keys/a", 10).unwrap(), b"hello");
        let e = root.read("/etc/keys/a", 4).unwrap_err();
        assert_eq!(e.kind, FileErrorKind::TooLarge { size: 5, limit: 4 });
        assert!(root.read("/etc/keys/none", 10).unwrap_err().is_not_found());
        assert_eq!(
            root.read("etc/keys/a", 10).unwrap_err().kind,
            FileErrorKind::NotAbsolute
        );
        assert_eq!(
            root.read("/etc/../etc/keys/a", 10).unwrap_err().kind,
            FileErrorKind::DotDot
        );
        assert_eq!(
            root.read("/etc/keys", 10).unwrap_err().kind,
            FileErrorKind::NotRegular("a directory")
        );
    }

    #[test]
    fn reads_procfs_files_that_report_size_zero() {
        // /proc files stat as 0 bytes yet have content: /proc/cmdline is one.
        let root = Root::new("/");
        assert_eq!(fs::metadata("/proc/version").unwrap().len(), 0);
        let text = root.read("/proc/version", 4096).unwrap();
        assert!(text.starts_with(b"Linux version"), "{text:?}");
        assert_eq!(text, fs::read("/proc/version").unwrap());
        assert_eq!(
            root.read("/proc/version", 5).unwrap_err().kind,
            FileErrorKind::LongerThan { limit: 5 }
        );
    }

    #[test]
    fn symlinks_stay_inside() {
        let (t, root) = tree();
        symlink("/etc/keys/a", t.path().join("etc/abs")).unwrap();
        symlink("keys/a", t.path().join("etc/rel")).unwrap();
        symlink("../../../../../../etc/passwd", t.path().join("etc/out")).unwrap();
        symlink("loop2", t.path().join("etc/loop1")).unwrap();
        symlink("loop1", t.path().join("etc/loop2")).unwrap();
        assert_eq!(root.read("/etc/abs", 10).unwrap(), b"hello");
        assert_eq!(root.read("/etc/rel", 10).unwrap(), b"hello");
        assert_eq!(
            root.read("/etc/out", 10).unwrap_err().kind,
            FileErrorKind::EscapesRoot
        );
        assert_eq!(
            root.read("/etc/loop1", 10).unwrap_err().kind,
            FileErrorKind::SymlinkLoop
        );
    }

    #[test]
    fn make_dirs_stays_inside() {
        let (t, root) = tree();
        // A dangling absolute symlink: made inside the root, not on the host.
        symlink("/persist/il-test-keys", t.path().join("etc/pkeys")).unwrap();
        let made = root.make_dirs("/etc/pkeys/sub").unwrap();
        assert_eq!(made, t.path().join("persist/il-test-keys/sub"));
        assert!(made.is_dir());
        assert!(!Path::new("/persist/il-test-keys").exists());
        // Existing directories are taken as they are.
        assert_eq!(
            root.make_dirs("/etc/keys").unwrap(),
            t.path().join("etc/keys")
        );
        symlink("../../../../../../../tmp", t.path().join("etc/up")).unwrap();
        assert_eq!(
            root.make_dirs("/etc/up/x").unwrap_err().kind,
            FileErrorKind::EscapesRoot
        );
        // A file where a directory should be.
        assert!(root.make_dirs("/etc/keys/a").is_err());
        assert!(root.make_dirs("/etc/keys/a/b").is_err());
        // Planning gives the same places and refusals, and makes nothing.
        symlink("/planned/keys", t.path().join("etc/qkeys")).unwrap();
        assert_eq!(
            root.resolve_planned("/etc/qkeys/sub").unwrap(),
            t.path().join("planned/keys/sub")
        );
        assert!(!t.path().join("planned").exists());
        symlink("/missing/../../../../../../x", t.path().join("etc/far")).unwrap();
        assert_eq!(
            root.resolve_planned("/etc/far/y").unwrap_err().kind,
            FileErrorKind::EscapesRoot
        );
        assert!(!t.path().join("missing").exists());
    }

    #[test]
    fn fifo_is_refused_without_blocking() {
        let (t, root) = tree();
        nix::unistd::mkfifo(
            &t.path().join("etc/fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        assert_eq!(
            root.read("/etc/fifo", 10).unwrap_err().kind,
            FileErrorKind::NotRegular("a FIFO")
        );
    }

    #[test]
    fn lists_sorted() {
        let (t, root) = tree();
        fs::write(t.path().join("etc/keys/0"), b"").unwrap();
        assert_eq!(root.list_dir("/etc/keys").unwrap().unwrap(), vec!["0", "a"]);
        assert_eq!(root.list_dir("/etc/nope").unwrap(), None);
    }

    #[test]
    fn names_that_are_not_utf8_stay_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let (t, root) = tree();
        let name = std::ffi::OsStr::from_bytes(b"caf\xe9.der");
        fs::write(t.path().join("etc/keys").join(name), b"cert").unwrap();
        let names = root.list_dir("/etc/keys").unwrap().unwrap();
        assert_eq!(names, vec![OsString::from("a"), name.to_os_string()]);
        let path = Path::new("/etc/keys").join(name);
        assert_eq!(root.read_path(&path, 10).unwrap(), b"cert");
        assert!(root.resolve(&path).is_ok());
        // Messages show it as Path::display shows it.
        let shown = root.display_path(&path);
        assert_eq!(
            shown,
            t.path().join("etc/keys").join(name).display().to_string()
        );
        assert!(shown.ends_with("/etc/keys/caf\u{fffd}.der"), "{shown}");
    }

    #[test]
    fn sizeless_reads_stop_at_the_end_or_the_bound() {
        let (t, _) = tree();
        let big: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let path = t.path().join("big");
        fs::write(&path, &big).unwrap();
        let read = |bound| read_sizeless(File::open(&path).unwrap(), bound).unwrap();
        // Past the first 16 KiB buffer, to the end.
        assert_eq!(read(1 << 20), big);
        // Cut at the bound, below and above the first buffer.
        assert_eq!(read(20_000), big[..20_000]);
        assert_eq!(read(100), big[..100]);
        assert_eq!(read(0), b"");
        // procfs reports no size and is read all the same.
        let cmdline = read_sizeless(File::open("/proc/self/cmdline").unwrap(), 4096).unwrap();
        assert!(!cmdline.is_empty());
    }

    #[test]
    fn xattr_reads_the_start_of_a_value_or_nothing() {
        let (t, root) = tree();
        let real = root.resolve("/etc/keys/a").unwrap();
        let name = c"user.integrity-loader-test";
        assert_eq!(Root::xattr::<16>(&real, name), None);
        let path = std::ffi::CString::new(real.as_os_str().as_bytes()).unwrap();
        let value = [0x03u8, 2, 0, 0x0b, 0xaa];
        // SAFETY: valid NUL-terminated strings and a value of value.len() bytes.
        let r = unsafe {
            nix::libc::setxattr(
                path.as_ptr(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        assert_eq!(r, 0, "setxattr: {}", Errno::last());
        assert_eq!(Root::xattr::<16>(&real, name), Some(value.to_vec()));
        // Longer than the buffer: as good as none (ERANGE).
        assert_eq!(Root::xattr::<4>(&real, name), None);
        drop(t);
    }

    /// A temp dir removed on drop; std has none and a crate is not worth it.
    mod tempdir {
        use std::path::{Path, PathBuf};
        pub struct TempDir(PathBuf);
        impl TempDir {
            pub fn new() -> TempDir {
                static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let p = std::env::temp_dir().join(format!("il-rootfs-{}-{n}", std::process::id()));
                let _ = std::fs::remove_dir_all(&p);
                std::fs::create_dir_all(&p).unwrap();
                TempDir(p)
            }
            pub fn path(&self) -> &Path {
                &self.0
            }
        }
        impl Drop for TempDir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}
