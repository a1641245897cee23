//! The kernel's securityfs files we write: `evm` and `ima/policy`. Reached
//! through a directory the caller chooses, so tests use plain files.

use nix::errno::Errno;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

pub const DEFAULT_DIR: &str = "/sys/kernel/security";
const SECURITYFS_MAGIC: i64 = 0x7363_6673;

#[derive(Debug, Clone)]
pub struct SecurityFs {
    dir: PathBuf,
}

fn errno(e: &std::io::Error) -> Errno {
    crate::rootfs::io_errno(e)
}

impl SecurityFs {
    pub fn new(dir: impl Into<PathBuf>) -> SecurityFs {
        SecurityFs { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Mounts securityfs on the default directory when nothing is mounted
    /// there yet (dracut's securityfs module does the same).
    pub fn mount_default_if_needed(&self) -> Result<bool, Errno> {
        let stat = nix::sys::statfs::statfs(&self.dir)?;
        if stat.filesystem_type().0 as i64 == SECURITYFS_MAGIC {
            return Ok(false);
        }
        nix::mount::mount(
            Some("securityfs"),
            &self.dir,
            Some("securityfs"),
            nix::mount::MsFlags::MS_NOSUID
                | nix::mount::MsFlags::MS_NODEV
                | nix::mount::MsFlags::MS_NOEXEC,
            None::<&str>,
        )?;
        Ok(true)
    }

    /// Takes an exclusive flock on the securityfs directory, waiting at most
    /// `timeout`: one loader at a time, so a second one finds the work done
    /// instead of racing the first (double EVM write, double policy).
    pub fn lock(&self, timeout: std::time::Duration) -> Result<RunLock, Errno> {
        use nix::fcntl::{Flock, FlockArg};
        let mut dir = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_CLOEXEC)
            .open(&self.dir)
            .map_err(|e| errno(&e))?;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            match Flock::lock(dir, FlockArg::LockExclusiveNonblock) {
                Ok(locked) => return Ok(RunLock(locked)),
                Err((back, Errno::EWOULDBLOCK)) if std::time::Instant::now() < deadline => {
                    dir = back;
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                Err((_, e)) => return Err(e),
            }
        }
    }

    pub fn evm_path(&self) -> PathBuf {
        self.dir.join("evm")
    }

    /// `/sys/kernel/rcu_expedited` beside `/sys/kernel/security` (see
    /// [`crate::rcu`]); a stand-in securityfs has its own sibling.
    pub fn rcu_knob(&self) -> PathBuf {
        self.dir
            .parent()
            .unwrap_or(Path::new("/"))
            .join(crate::rcu::KNOB)
    }

    pub fn policy_path(&self) -> PathBuf {
        self.dir.join("ima").join("policy")
    }

    /// Whether the kernel has EVM (the `evm` file exists).
    pub fn has_evm(&self) -> bool {
        self.evm_path().exists()
    }

    /// Whether the kernel has IMA (the `ima` directory exists).
    pub fn has_ima(&self) -> bool {
        self.dir.join("ima").is_dir()
    }

    /// The current EVM state (the lock bit is never visible). An empty file
    /// reads as 0, for test trees.
    pub fn read_evm(&self) -> Result<u32, Errno> {
        let bytes = File::open(self.evm_path())
            .and_then(|f| crate::rootfs::read_sizeless(f, 64))
            .map_err(|e| errno(&e))?;
        // Bytes that are not text fail as read_to_string failed on them.
        let t = std::str::from_utf8(&bytes).map_err(|_| Errno::EIO)?.trim();
        if t.is_empty() {
            return Ok(0);
        }
        crate::config::parse_shell_number(t).ok_or(Errno::EINVAL)
    }

    /// Writes the activation value in one write, as dracut's `echo` does:
    /// the first write with the HMAC bit locks the file (pitfall 1).
    pub fn write_evm(&self, value: u32) -> Result<(), Errno> {
        let text = format!("{value}\n");
        let mut f = OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_CLOEXEC)
            .open(self.evm_path())
            .map_err(|e| errno(&e))?;
        let n = f.write(text.as_bytes()).map_err(|e| errno(&e))?;
        if n != text.len() {
            return Err(Errno::EIO);
        }
        Ok(())
    }

    /// Opens the policy file for writing: exactly O_WRONLY (O_RDWR is refused
    /// by the kernel), never creating it.
    pub fn open_policy(&self) -> Result<PolicyWriter, Errno> {
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_CLOEXEC)
            .open(self.policy_path())
            .map_err(|e| errno(&e))?;
        Ok(PolicyWriter {
            file,
            rcu_knob: self.rcu_knob(),
        })
    }

    /// Whether the policy file still has a write bit. A kernel with
    /// CONFIG_IMA_READ_POLICY but not CONFIG_IMA_WRITE_POLICY clears it once
    /// a policy is loaded and answers EBUSY to root's later opens.
    pub fn policy_writable(&self) -> bool {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(self.policy_path()).map_or(true, |m| m.permissions().mode() & 0o222 != 0)
    }

    /// What the policy file reads back, when it can be read (the kernel only
    /// allows it with CONFIG_IMA_READ_POLICY); bounded.
    pub fn read_policy(&self, limit: u64) -> Option<Vec<u8>> {
        let mut buf = Vec::new();
        File::open(self.policy_path())
            .ok()?
            .take(limit)
            .read_to_end(&mut buf)
            .ok()?;
        Some(buf)
    }
}

/// Held for a whole `load`; the kernel drops the lock when the process ends.
pub struct RunLock(#[allow(dead_code)] nix::fcntl::Flock<File>);

/// An open policy file: one rule (or one path) per `write()`.
pub struct PolicyWriter {
    file: File,
    rcu_knob: PathBuf,
}

/// How the kernel took the rules in when the policy file was closed.
pub struct Published {
    pub took: std::time::Duration,
    /// The grace period the kernel waits for was expedited ([`crate::rcu`]).
    pub expedited: bool,
}

impl PolicyWriter {
    /// Writes one unit ending in a newline. The kernel answers with the
    /// length of the line it parsed, which can be one more than written when
    /// the newline is missing (pitfall 3): anything else is a partial write.
    pub fn write_unit(&mut self, unit: &[u8]) -> Result<(), Errno> {
        loop {
            match self.file.write(unit) {
                Ok(n) if n == unit.len() || n == unit.len() + 1 => return Ok(()),
                Ok(_) => return Err(Errno::EIO),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(errno(&e)),
            }
        }
    }

    /// Closes the file; the kernel applies the rules on close, after an RCU
    /// grace period, which is expedited for it. No fsync: securityfs has
    /// none (EINVAL), the kernel answers each rule's write() itself, and on
    /// a stand-in file it only cost milliseconds.
    pub fn finish(self) -> Result<Published, Errno> {
        use std::os::fd::IntoRawFd;
        let start = std::time::Instant::now();
        let fd = self.file.into_raw_fd();
        let (closed, expedited) = crate::rcu::expedited(&self.rcu_knob, || nix::unistd::close(fd));
        closed?;
        Ok(Published {
            took: start.elapsed(),
            expedited,
        })
    }
}
