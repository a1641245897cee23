//! The files `seal` writes inside the root. All are checked before the TPM
//! is touched, then written to temp files beside their places, and only
//! when every one is written are they renamed into place: a failure leaves
//! the old set whole (an old evm-key is useless without its old kmk). The
//! renames themselves go one after another: one failing after another
//! succeeded (a full disk cannot, a rename allocates nothing) is reported
//! with what is in place.

use crate::rootfs::Root;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

/// A file's path as configured (absolute, inside the root) split into its
/// directory and name; refuses what cannot name a file.
fn split(path: &str) -> Result<(&str, &str), String> {
    let p = Path::new(path);
    if !p.is_absolute() || p.components().any(|c| c == Component::ParentDir) {
        return Err(format!(
            "{path}: must be an absolute path without '..' (it is taken inside the root)"
        ));
    }
    // Path::file_name would take "/etc/keys/" for "keys".
    match path.rsplit_once('/') {
        Some((dir, name)) if !name.is_empty() && name != "." => {
            Ok((if dir.is_empty() { "/" } else { dir }, name))
        }
        _ => Err(format!("{path}: names a directory, not a file")),
    }
}

/// Checks the files about to be written, before anything else happens:
/// each an absolute path to a regular file (not a symlink: seal replaces
/// files, it does not write through links), not there yet unless `force`,
/// no two the same. Returns where each will go.
pub fn check(root: &Root, paths: &[&str], force: bool) -> Result<Vec<PathBuf>, String> {
    let mut places: Vec<PathBuf> = Vec::new();
    for path in paths {
        let (dir, name) = split(path)?;
        // Where `stage` will put it, directories it will make included.
        let place = match root.resolve_planned(dir) {
            Ok(d) if d.exists() && !d.is_dir() => {
                return Err(format!("{path}: {} is not a directory", d.display()));
            }
            Ok(d) => d.join(name),
            Err(e) => return Err(format!("{path}: {e}")),
        };
        match fs::symlink_metadata(&place) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = fs::read_link(&place)
                    .map(|t| t.display().to_string())
                    .unwrap_or_default();
                return Err(format!(
                    "{} is a symlink (to {to}); seal replaces files, not links: name the file itself",
                    place.display()
                ));
            }
            Ok(m) if m.is_dir() => {
                return Err(format!("{} is a directory", place.display()));
            }
            Ok(_) if !force => {
                return Err(format!(
                    "{} exists; not replacing it without --force",
                    place.display()
                ));
            }
            _ => {}
        }
        if places.contains(&place) {
            return Err(format!(
                "{path}: {} is also another of seal's outputs",
                place.display()
            ));
        }
        places.push(place);
    }
    Ok(places)
}

/// A file written to a temp file beside its place, not yet renamed there.
/// Dropped uncommitted, the temp file goes.
#[derive(Debug)]
pub struct Staged {
    temp: PathBuf,
    place: PathBuf,
    committed: bool,
}

/// Writes `bytes` with `mode` to a temp file in `path`'s directory, made
/// inside the root where missing.
pub fn stage(
    root: &Root,
    path: &str,
    bytes: &[u8],
    mode: u32,
    force: bool,
) -> Result<Staged, String> {
    let (dir, name) = split(path)?;
    let dir = root
        .make_dirs(dir)
        .map_err(|e| format!("create the directory of {path}: {e}"))?;
    stage_in(&dir, std::ffi::OsStr::new(name), bytes, mode, force)
}

/// `stage` into directory `dir` (made already): `.NAME.tmpPID`, created
/// exclusively (never through a file or link already there) with `mode`.
fn stage_in(
    dir: &Path,
    name: &OsStr,
    bytes: &[u8],
    mode: u32,
    force: bool,
) -> Result<Staged, String> {
    let place = dir.join(name);
    if !force && fs::symlink_metadata(&place).is_ok() {
        return Err(format!(
            "{} exists; not replacing it without --force",
            place.display()
        ));
    }
    let temp = dir.join(temp_name(name, std::process::id()));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temp)
        .map_err(|e| format!("create {}: {e}", temp.display()))?;
    // From here the temp file is ours: Drop removes it on any failure.
    let staged = Staged {
        temp,
        place,
        committed: false,
    };
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("write {}: {e}", staged.temp.display()))?;
    Ok(staged)
}

/// `.NAME.tmp`, to which the PID is added: the one name of a temp file
/// beside NAME, which `remove_stale_temps` knows.
fn temp_prefix(name: &OsStr) -> Vec<u8> {
    [b".", name.as_bytes(), b".tmp"].concat()
}

fn temp_name(name: &OsStr, pid: u32) -> OsString {
    let mut temp = temp_prefix(name);
    temp.extend(pid.to_string().bytes());
    OsString::from_vec(temp)
}

/// Replaces the file at `path`, a path of this system rather than one
/// inside a root (sign-policy's --output), as a commit replaces its files:
/// stale temps of it removed, a temp file beside it, renamed over it.
/// Returns the place.
pub fn replace_file(path: &Path, bytes: &[u8], mode: u32) -> Result<PathBuf, String> {
    let name = path
        .file_name()
        .filter(|_| !path.as_os_str().as_bytes().ends_with(b"/"))
        .ok_or_else(|| format!("{}: names a directory, not a file", path.display()))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    remove_stale_temps_in(dir, name);
    stage_in(dir, name, bytes, mode, true)?.commit()
}

impl Staged {
    /// Renames the file into place (replacing what is there, a symlink
    /// itself rather than its target) and syncs the directory so the
    /// rename survives a crash. Returns the place.
    pub fn commit(mut self) -> Result<PathBuf, String> {
        fs::rename(&self.temp, &self.place)
            .map_err(|e| format!("rename to {}: {e}", self.place.display()))?;
        self.committed = true;
        if let Some(dir) = self.place.parent() {
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        crash_point();
        Ok(self.place.clone())
    }
}

/// Debug builds (the tests' binary) only: `INTEGRITY_LOADER_CRASH_AFTER_RENAME=N`
/// aborts the process right after its Nth rename into place, as a power
/// cut there would, so a test can check every state a crash leaves. Not
/// `cfg(test)`: the integration tests run the binary, which is not built
/// with it; not a cargo feature: a plain `cargo test` would skip the test.
/// Release builds have no such variable.
#[cfg(debug_assertions)]
pub(super) fn crash_point() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static RENAMES: AtomicUsize = AtomicUsize::new(0);
    let n = RENAMES.fetch_add(1, Ordering::SeqCst) + 1;
    let at = std::env::var("INTEGRITY_LOADER_CRASH_AFTER_RENAME").ok();
    if at.and_then(|v| v.parse::<usize>().ok()) == Some(n) {
        std::process::abort();
    }
}
#[cfg(not(debug_assertions))]
pub(super) fn crash_point() {}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Removes the temp files (`.NAME.tmpPID`, as `stage` names them) that
/// runs a crash cut short left beside `paths`: regular files only (a
/// symlink by that name is not one of ours), of processes gone. This run
/// has staged nothing yet, so its own PID's are an earlier process's.
pub fn remove_stale_temps(root: &Root, paths: &[&str]) {
    for path in paths {
        let Ok((dir, name)) = split(path) else {
            continue;
        };
        let Ok(dir) = root.resolve_planned(dir) else {
            continue;
        };
        remove_stale_temps_in(&dir, OsStr::new(name));
    }
}

/// `remove_stale_temps` for the file `name` in directory `dir`.
fn remove_stale_temps_in(dir: &Path, name: &OsStr) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let prefix = temp_prefix(name);
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .as_bytes()
            .strip_prefix(prefix.as_slice())
            .and_then(|p| std::str::from_utf8(p).ok())
            .and_then(|p| p.parse::<i32>().ok().filter(|n| n.to_string() == p))
        else {
            continue;
        };
        // The DirEntry's type is the lstat's: a symlink is not followed.
        if !entry.file_type().is_ok_and(|t| t.is_file()) || !gone(pid) {
            continue;
        }
        let temp = entry.path();
        match fs::remove_file(&temp) {
            Ok(()) => log::info!(
                "removed {}: a temp file of a run cut short (process {pid})",
                temp.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => log::warn!(
                "cannot remove {} ({e}), a temp file of a run cut short (process {pid}); remove it",
                temp.display()
            ),
        }
    }
}

/// Whether process `pid`, which named a temp file, is gone (or is this
/// one, which has none yet).
fn gone(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    if u32::try_from(pid).is_ok_and(|p| p == std::process::id()) {
        return true;
    }
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) == Err(nix::errno::Errno::ESRCH)
}

/// Stages every file, then renames them into place in order, and returns
/// where they went. A failure while staging leaves the old files whole;
/// one between renames is reported with what is in place.
pub fn replace_all(
    root: &Root,
    files: &[(&str, Vec<u8>, u32)],
    force: bool,
) -> Result<Vec<PathBuf>, String> {
    let mut staged = Vec::new();
    for (path, bytes, mode) in files {
        match stage(root, path, bytes, *mode, force) {
            Ok(f) => staged.push(f),
            Err(m) => return Err(format!("{m}; nothing was written")),
        }
    }
    let mut places = Vec::new();
    for f in staged {
        match f.commit() {
            Ok(p) => places.push(p),
            Err(m) => {
                let done: Vec<String> = places.iter().map(|p| p.display().to_string()).collect();
                return Err(format!(
                    "{m}; already in place: {}",
                    if done.is_empty() {
                        "nothing".to_string()
                    } else {
                        done.join(", ")
                    }
                ));
            }
        }
    }
    Ok(places)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root(name: &str) -> (PathBuf, Root) {
        let dir = std::env::temp_dir().join(format!("il-seal-out-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("etc/keys")).unwrap();
        (dir.clone(), Root::new(dir))
    }

    #[test]
    fn check_refuses_before_anything_is_written() {
        let (dir, r) = root("check");
        fs::write(dir.join("etc/keys/old.pem"), "old").unwrap();
        symlink("/etc/keys/old.pem", dir.join("etc/keys/link.pem")).unwrap();
        symlink("/nowhere", dir.join("etc/keys/dangling.pem")).unwrap();
        let cases: &[(&[&str], bool, &str)] = &[
            (&["keys/k.pem"], false, "must be an absolute path"),
            (&["/etc/../k.pem"], false, "must be an absolute path"),
            (&["/etc/keys/"], true, "names a directory, not a file"),
            (&["/etc/keys/."], true, "names a directory, not a file"),
            (&["/etc/keys"], true, "etc/keys is a directory"),
            (
                &["/etc/keys/old.pem"],
                false,
                "exists; not replacing it without --force",
            ),
            (
                &["/etc/keys/link.pem"],
                true,
                "is a symlink (to /etc/keys/old.pem)",
            ),
            (
                &["/etc/keys/dangling.pem"],
                true,
                "is a symlink (to /nowhere)",
            ),
            (&["/etc/keys/old.pem/x"], true, "is not a directory"),
            (
                &["/etc/keys/a.pem", "/etc/keys/b", "/etc/keys/a.pem"],
                false,
                "is also another of seal's outputs",
            ),
        ];
        for (paths, force, want) in cases {
            let e = check(&r, paths, *force).unwrap_err();
            assert!(e.contains(want), "{paths:?}: {e}");
        }
        let places = check(&r, &["/etc/keys/old.pem", "/etc/new/dir/k.pem"], true).unwrap();
        assert_eq!(places[0], dir.join("etc/keys/old.pem"));
        assert_eq!(places[1], dir.join("etc/new/dir/k.pem"));
        assert!(
            !dir.join("etc/new").exists(),
            "check must not create anything"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stale_temp_files_of_the_files_written_are_removed_and_nothing_else() {
        let (dir, r) = root("temps");
        let keys = dir.join("etc/keys");
        // A process that is gone: a child already reaped.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let alive = std::os::unix::process::parent_id();
        let own = std::process::id();
        let stale = [
            format!(".k.pem.tmp{dead}"),
            format!(".k.pem.next.tmp{dead}"),
            format!(".k.pem.tmp{own}"),
        ];
        let kept = [
            format!(".k.pem.tmp{alive}"),
            format!(".k.pem.tmp0{dead}"),
            format!(".k.pem.tmp{dead}x"),
            format!(".other.tmp{dead}"),
            format!("k.pem.tmp{dead}"),
            ".k.pem.tmp".to_string(),
        ];
        for name in stale.iter().chain(&kept) {
            fs::write(keys.join(name), "x").unwrap();
        }
        // A symlink by the name, and a directory: neither followed nor removed.
        fs::write(dir.join("target"), "t").unwrap();
        let link = format!(".e.tmp{dead}");
        symlink(dir.join("target"), keys.join(&link)).unwrap();
        fs::create_dir(keys.join(format!(".d.tmp{dead}"))).unwrap();
        fs::write(keys.join(format!(".d.tmp{dead}/f")), "f").unwrap();
        remove_stale_temps(
            &r,
            &[
                "/etc/keys/k.pem",
                "/etc/keys/k.pem.next",
                "/etc/keys/e",
                "/etc/keys/d",
                "/etc/none/x",
            ],
        );
        for name in &stale {
            assert!(!keys.join(name).exists(), "{name} stays");
        }
        for name in &kept {
            assert!(keys.join(name).exists(), "{name} went");
        }
        assert!(fs::symlink_metadata(keys.join(&link)).is_ok());
        assert_eq!(fs::read(dir.join("target")).unwrap(), b"t");
        assert!(keys.join(format!(".d.tmp{dead}/f")).exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_outside_a_root_is_replaced_as_a_commit_replaces_one() {
        let (dir, _) = root("host");
        let keys = dir.join("etc/keys");
        fs::write(dir.join("target"), "t").unwrap();
        symlink(dir.join("target"), keys.join("s.pcrsig")).unwrap();
        let place = replace_file(&keys.join("s.pcrsig"), b"new", 0o644).unwrap();
        assert_eq!(place, keys.join("s.pcrsig"));
        // The link itself is replaced, its target left alone.
        assert!(fs::symlink_metadata(&place).unwrap().is_file());
        assert_eq!(fs::read(&place).unwrap(), b"new");
        assert_eq!(fs::read(dir.join("target")).unwrap(), b"t");
        assert_eq!(fs::read_dir(&keys).unwrap().count(), 1);
        let e = replace_file(&keys.join(".."), b"x", 0o644).unwrap_err();
        assert!(e.contains("names a directory"), "{e}");
        let e = replace_file(Path::new("/"), b"x", 0o644).unwrap_err();
        assert!(e.contains("names a directory"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn staged_files_appear_only_when_committed() {
        let (dir, r) = root("stage");
        fs::write(dir.join("etc/keys/k.pem"), "old").unwrap();
        let a = stage(&r, "/etc/keys/k.pem", b"new", 0o600, true).unwrap();
        let b = stage(&r, "/etc/other/e.blob", b"evm", 0o600, false).unwrap();
        assert_eq!(fs::read(dir.join("etc/keys/k.pem")).unwrap(), b"old");
        assert!(!dir.join("etc/other/e.blob").exists());
        // One fails: dropping the others leaves no temp file.
        drop(b);
        assert_eq!(fs::read_dir(dir.join("etc/other")).unwrap().count(), 0);
        let place = a.commit().unwrap();
        assert_eq!(fs::read(&place).unwrap(), b"new");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&place).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read_dir(dir.join("etc/keys")).unwrap().count(), 1);
        // Without --force an existing file stays.
        assert!(stage(&r, "/etc/keys/k.pem", b"x", 0o600, false).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
