//! Where the dynamic loader looks for a library, inside a root: the
//! needing object's DT_RUNPATH (or DT_RPATH), the directories of the root's
//! /etc/ld.so.conf and the files it includes, then the default directories,
//! each with glibc's glibc-hwcaps subdirectories.
//! The root's files are hostile: what is read of them is bounded.

use super::boot::resolve;
use super::elf::{self, Class};
use std::io::Read;
use std::path::Path;

/// The loader's default directories, after ld.so.conf's.
pub const LIB_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];
const LD_SO_CONF: &str = "/etc/ld.so.conf";
/// Bytes read of one configuration file at most.
const MAX_CONF_SIZE: u64 = 64 * 1024;
/// Configuration files read at most, and how deep includes nest.
const MAX_CONF_FILES: usize = 64;
const MAX_INCLUDE_DEPTH: usize = 8;
/// Directories taken at most, from the configuration and from one
/// RUNPATH or RPATH.
const MAX_DIRS: usize = 256;
/// Entries of a directory an include pattern looks at.
const MAX_GLOB_ENTRIES: usize = 4096;

/// The directories of ROOT/etc/ld.so.conf, `include`s followed, in order
/// and without duplicates. Nothing when it is missing.
pub fn conf_dirs(root: &Path) -> Vec<String> {
    let mut c = Conf {
        root,
        files: 0,
        dirs: Vec::new(),
    };
    c.read(LD_SO_CONF, 0);
    c.dirs
}

struct Conf<'a> {
    root: &'a Path,
    files: usize,
    dirs: Vec<String>,
}

impl Conf<'_> {
    fn read(&mut self, path: &str, depth: usize) {
        if depth > MAX_INCLUDE_DEPTH || self.files >= MAX_CONF_FILES {
            return;
        }
        self.files += 1;
        let Ok(real) = resolve(self.root, path) else {
            return;
        };
        let mut bytes = Vec::new();
        let Ok(f) = super::walk::open_regular(&self.root.join(real.trim_start_matches('/'))) else {
            return;
        };
        if f.take(MAX_CONF_SIZE).read_to_end(&mut bytes).is_err() {
            return;
        }
        let here = path.rsplit_once('/').map_or("", |(d, _)| d);
        for line in String::from_utf8_lossy(&bytes).lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            let mut words = line.split_whitespace();
            match words.next() {
                Some("include") => {
                    for pattern in words {
                        let pattern = if pattern.starts_with('/') {
                            pattern.to_string()
                        } else {
                            format!("{here}/{pattern}")
                        };
                        for file in glob(self.root, &pattern) {
                            self.read(&file, depth + 1);
                        }
                    }
                }
                Some("hwcap") | None => {}
                Some(_) => {
                    // ldconfig's old `DIR=TYPE` form names DIR.
                    let dir = line.split('=').next().unwrap_or("").trim_end();
                    let dir = dir.trim_end_matches('/');
                    if dir.starts_with('/')
                        && self.dirs.len() < MAX_DIRS
                        && !self.dirs.iter().any(|d| d == dir)
                    {
                        self.dirs.push(dir.to_string());
                    }
                }
            }
        }
    }
}

/// The files an include pattern names, sorted as glob(3) sorts them.
/// Wildcards (`*`, `?`) are taken in the last component only, the form
/// distributions use (`/etc/ld.so.conf.d/*.conf`).
fn glob(root: &Path, pattern: &str) -> Vec<String> {
    let Some((dir, name)) = pattern.rsplit_once('/') else {
        return Vec::new();
    };
    if !name.contains(['*', '?']) {
        return vec![pattern.to_string()];
    }
    if dir.contains(['*', '?']) {
        return Vec::new();
    }
    let Some(real) = resolve_path(root, if dir.is_empty() { "/" } else { dir }) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(root.join(real.trim_start_matches('/'))) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .take(MAX_GLOB_ENTRIES)
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && matches(name.as_bytes(), n.as_bytes()))
        .collect();
    names.sort();
    names.into_iter().map(|n| format!("{dir}/{n}")).collect()
}

/// Whether `name` matches `pattern` (`*`: any run, `?`: any byte), in
/// time linear in their lengths' product at worst.
fn matches(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(c) if *c == b'?' || Some(c) == name.get(n) => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .unwrap_or_default()
        .iter()
        .all(|c| *c == b'*')
}

/// `path` (absolute) resolved inside the root as the kernel would inside
/// a chroot: each `..` goes up from the directory reached so far, symlinks
/// followed. The result as seen on the root.
pub fn resolve_path(root: &Path, path: &str) -> Option<String> {
    let mut base = String::new();
    let mut rest = String::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if !rest.is_empty() {
                    base = resolve(root, &format!("{base}{rest}")).ok()?;
                    rest.clear();
                }
                base = base.rsplit_once('/').map_or("", |(d, _)| d).to_string();
            }
            c => {
                rest.push('/');
                rest.push_str(c);
            }
        }
    }
    if rest.is_empty() {
        return Some(if base.is_empty() { "/".into() } else { base });
    }
    resolve(root, &format!("{base}{rest}")).ok()
}

/// The directories of a DT_RUNPATH or DT_RPATH value, `$ORIGIN` replaced
/// with `origin` (the object's directory on the root). Entries the boot
/// cannot be said to search are left out: relative ones (from the
/// process's directory) and those with another token (`$LIB`, `$PLATFORM`).
pub fn search_path(value: &str, origin: &str) -> Vec<String> {
    value
        .split(':')
        .take(MAX_DIRS)
        .map(|d| d.replace("${ORIGIN}", origin).replace("$ORIGIN", origin))
        .filter(|d| d.starts_with('/') && !d.contains('$'))
        .collect()
}

/// glibc's loader (2.33 and later) looks in these subdirectories of each
/// search directory first, those the CPU supports, best first.
const HWCAPS: &[&str] = &[
    "glibc-hwcaps/x86-64-v4",
    "glibc-hwcaps/x86-64-v3",
    "glibc-hwcaps/x86-64-v2",
];

/// A library as the loader finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The path as the loader opens it, and the path it resolves to.
    pub candidate: String,
    pub real: String,
    /// The glibc-hwcaps builds of it the loader takes instead on a CPU of
    /// that level (in the directory where it was found, or before), as
    /// (candidate, real). Which one a boot takes depends on its CPU, so
    /// all of them matter.
    pub hwcaps: Vec<(String, String)>,
}

/// Where the loader finds `name` in `dirs`: the first candidate that is a
/// regular file and not ELF of another class or machine (which the loader
/// skips); one that is not ELF at all ends the search, as it does the
/// loader's. `real_dir`: a directory resolved inside the root
/// (`resolve_path`, which the caller may cache). With glibc (`hwcaps`),
/// the glibc-hwcaps builds met on the way too; alone they are found only
/// on a CPU of their level, so the first of them stands for the library
/// when there is no plain build.
pub fn find<'a>(
    root: &Path,
    name: &str,
    dirs: impl IntoIterator<Item = &'a str>,
    mut real_dir: impl FnMut(&str) -> Option<String>,
    hwcaps: bool,
) -> Option<Found> {
    if name.is_empty() || name == "." || name == ".." {
        return None;
    }
    let mut variants: Vec<(String, String)> = Vec::new();
    for dir in dirs {
        let Some(real_dir) = real_dir(dir) else {
            continue;
        };
        let (dir, real_dir) = (dir.trim_end_matches('/'), real_dir.trim_end_matches('/'));
        for sub in HWCAPS.iter().filter(|_| hwcaps) {
            if let Some(real) = candidate(root, &format!("{real_dir}/{sub}/{name}")) {
                variants.push((format!("{dir}/{sub}/{name}"), real));
            }
        }
        if let Some(real) = candidate(root, &format!("{real_dir}/{name}")) {
            return Some(Found {
                candidate: format!("{dir}/{name}"),
                real,
                hwcaps: variants,
            });
        }
    }
    let mut variants = variants.into_iter();
    let (candidate, real) = variants.next()?;
    Some(Found {
        candidate,
        real,
        hwcaps: variants.collect(),
    })
}

/// `path` (on the root) resolved, if the loader would take it: a regular
/// file, not ELF of another class or machine.
fn candidate(root: &Path, path: &str) -> Option<String> {
    let real = resolve(root, path).ok()?;
    let mut f = super::walk::open_regular(&root.join(real.trim_start_matches('/'))).ok()?;
    let mut head = [0u8; 20];
    let n = read_some(&mut f, &mut head);
    (elf::class(head.get(..n).unwrap_or_default()) != Class::Foreign).then_some(real)
}

fn read_some(f: &mut std::fs::File, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while let Some(rest) = buf.get_mut(got..).filter(|r| !r.is_empty()) {
        match f.read(rest) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    got
}

/// Whether musl's loader takes `name` for itself (libc, libpthread, libm,
/// libdl... are all in its one file) instead of looking for it.
pub fn musl_reserved(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("lib") else {
        return false;
    };
    ["c", "pthread", "rt", "m", "dl", "util", "xnet"]
        .iter()
        .any(|r| rest.strip_prefix(r).is_some_and(|t| t.starts_with('.')))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::test_support::{put, temp_dir};
    use std::os::unix::fs::symlink;

    #[test]
    fn reads_ld_so_conf_and_its_includes() {
        let root = temp_dir("ldso-conf");
        put(
            &root,
            "/etc/ld.so.conf",
            b"# comment\ninclude /etc/ld.so.conf.d/*.conf\n/opt/a/lib/ # trailing\n\
              hwcap 1 x\n/opt/old=libc5\nrelative/dir\ninclude extra.conf\n/opt/a/lib\n",
        );
        put(&root, "/etc/ld.so.conf.d/b.conf", b"/opt/b\n");
        put(&root, "/etc/ld.so.conf.d/a.conf", b"/opt/a1\n\n/opt/a2\n");
        put(&root, "/etc/ld.so.conf.d/.hidden.conf", b"/opt/hidden\n");
        put(&root, "/etc/ld.so.conf.d/c.conf.bak", b"/opt/bak\n");
        // Relative to the including file; including itself ends.
        put(
            &root,
            "/etc/extra.conf",
            b"/opt/extra\ninclude extra.conf\n",
        );
        assert_eq!(
            conf_dirs(&root),
            [
                "/opt/a1",
                "/opt/a2",
                "/opt/b",
                "/opt/a/lib",
                "/opt/old",
                "/opt/extra"
            ]
        );
        // Missing: none. Binary junk and a huge file: bounded, no panic.
        assert!(conf_dirs(&temp_dir("ldso-none")).is_empty());
        let mut junk: Vec<u8> = (0..=255u8).cycle().take(200_000).collect();
        junk.extend_from_slice(b"\n/opt/late\n");
        put(&root, "/etc/ld.so.conf", &junk);
        assert!(!conf_dirs(&root).contains(&"/opt/late".to_string()));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn glob_patterns() {
        for (p, n, want) in [
            ("*.conf", "a.conf", true),
            ("*.conf", "a.conf.bak", false),
            ("a?c", "abc", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("*", "", true),
            ("", "a", false),
        ] {
            assert_eq!(matches(p.as_bytes(), n.as_bytes()), want, "{p} {n}");
        }
        // Many stars against a long name: quick, not exponential.
        let p = "*a".repeat(50) + "b";
        assert!(!matches(p.as_bytes(), "a".repeat(5000).as_bytes()));
    }

    #[test]
    fn runpath_entries_and_dot_dot() {
        assert_eq!(
            search_path("$ORIGIN/../lib:${ORIGIN}:rel:/x/$LIB:/abs:", "/usr/bin"),
            ["/usr/bin/../lib", "/usr/bin", "/abs"]
        );
        let root = temp_dir("ldso-dots");
        std::fs::create_dir_all(root.join("usr/lib64/sub")).unwrap();
        std::fs::create_dir_all(root.join("opt/real/bin")).unwrap();
        // `..` after a symlink goes up from where the link leads.
        symlink("/opt/real/bin", root.join("usr/lib64/link")).unwrap();
        assert_eq!(
            resolve_path(&root, "/usr/lib64/link/../bin").unwrap(),
            "/opt/real/bin"
        );
        assert_eq!(
            resolve_path(&root, "/usr/lib64/sub/..").unwrap(),
            "/usr/lib64"
        );
        // Never above the root.
        assert_eq!(
            resolve_path(&root, "/../../usr/./lib64").unwrap(),
            "/usr/lib64"
        );
        assert_eq!(resolve_path(&root, "/usr/../..").unwrap(), "/");
        assert_eq!(resolve_path(&root, "/nope/../usr"), None);
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn glibc_hwcaps_builds_met_on_the_way_are_found_too() {
        let root = temp_dir("ldso-hwcaps");
        let lib = elf::synthetic(&[], None, None);
        put(&root, "/a/glibc-hwcaps/x86-64-v2/libx.so", &lib);
        put(&root, "/b/glibc-hwcaps/x86-64-v4/libx.so", &lib);
        put(&root, "/b/libx.so", &lib);
        put(&root, "/c/glibc-hwcaps/x86-64-v3/libx.so", &lib);
        let mut foreign = lib.clone();
        foreign[4] = 1; // 32-bit: the loader skips it
        put(&root, "/b/glibc-hwcaps/x86-64-v3/libx.so", &foreign);
        let real = |d: &str| resolve_path(&root, d);
        let found = find(&root, "libx.so", ["/a", "/b", "/c"], real, true).unwrap();
        assert_eq!(found.candidate, "/b/libx.so");
        let hwcaps: Vec<&str> = found.hwcaps.iter().map(|(c, _)| c.as_str()).collect();
        // Those before the plain build, not those after it (/c).
        assert_eq!(
            hwcaps,
            [
                "/a/glibc-hwcaps/x86-64-v2/libx.so",
                "/b/glibc-hwcaps/x86-64-v4/libx.so"
            ]
        );
        // musl's loader has none.
        let plain = find(&root, "libx.so", ["/a", "/b"], real, false).unwrap();
        assert!(plain.hwcaps.is_empty() && plain.candidate == "/b/libx.so");
        // Only hwcaps builds: the first stands for the library.
        let only = find(&root, "libx.so", ["/c"], real, true).unwrap();
        assert_eq!(only.candidate, "/c/glibc-hwcaps/x86-64-v3/libx.so");
        assert!(only.hwcaps.is_empty());
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn finds_skipping_other_classes() {
        let root = temp_dir("ldso-find");
        let mut foreign = elf::synthetic(&[], None, None);
        foreign[4] = 1; // 32-bit
        put(&root, "/a/libx.so", &foreign);
        put(&root, "/b/libx.so", &elf::synthetic(&[], None, None));
        put(&root, "/c/libx.so", b"not elf");
        std::fs::create_dir_all(root.join("d/libx.so")).unwrap();
        let real = |d: &str| resolve_path(&root, d);
        let find_in = |dirs: &[&str]| find(&root, "libx.so", dirs.iter().copied(), real, true);
        assert_eq!(
            find_in(&["/none", "/a", "/b", "/c"]).unwrap().candidate,
            "/b/libx.so"
        );
        assert_eq!(
            find_in(&["/d", "/c", "/b"]).unwrap().candidate,
            "/c/libx.so"
        );
        assert_eq!(find_in(&["/a", "/d"]), None);
        assert_eq!(find(&root, "..", ["/a"], real, true), None);
        assert!(musl_reserved("libc.so") && musl_reserved("libc.musl-x86_64.so.1"));
        assert!(musl_reserved("libpthread.so.0") && !musl_reserved("libcrypt.so.1"));
        let _ = std::fs::remove_dir_all(&root);
    }
}
