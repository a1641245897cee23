//! `integrity-audit --boot-files` (run by `integrity-loader check
//! --audit-boot`, which host-only initramfs builds use): the audit of the
//! files the next boot cannot do without (the init the command line names,
//! /bin/sh, systemd, the interpreters and dynamic loader they name, and
//! every shared library these need, transitively, found as the loader finds
//! it), so that a build refuses an initramfs whose boot would lock the
//! machine out. The whole tree stays `integrity-audit`'s: it can take long.

use super::elf::{self, Dynamic, ElfError};
use super::ldso::{self, LIB_DIRS};
use super::verdict::Verdict;
use super::{AuditOptions, Inputs, walk};
use crate::cmdline::Cmdline;
use crate::commands::CommandError;
use crate::rootfs::Root;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The start of a file read for its `#!` line or program headers.
const ELF_HEAD: u64 = 64 * 1024;
/// Files listed at most: a real boot needs well under a hundred.
const MAX_FILES: usize = 256;
const LIBC_NAMES: &[&str] = &["libc.so.6", "libc.musl-x86_64.so.1", "libc.so"];
const SYSTEMD: &[&str] = &["/usr/lib/systemd/systemd", "/lib/systemd/systemd"];
/// The roles of files the kernel executes: each starts a process whose
/// loader maps the libraries it needs.
const EXECUTED: &[&str] = &["init", "shell", "systemd", "interpreter"];

/// `path` (absolute, as seen on the root) resolved inside `root` as `load`
/// resolves configured paths (symlinks followed inside the root, as if
/// chrooted); the result as seen on the root.
pub fn resolve(root: &Path, path: &str) -> Result<String, String> {
    let r = Root::new(root);
    let real = r.resolve(path).map_err(|e| e.to_string())?;
    let rel = real.strip_prefix(root).unwrap_or(&real);
    Ok(format!("/{}", rel.display()))
}

/// The interpreter a `#!` line names.
pub fn script_interp(head: &[u8]) -> Option<String> {
    let line = head.strip_prefix(b"#!")?.split(|b| *b == b'\n').next()?;
    let text = String::from_utf8_lossy(line);
    let word = text.split_whitespace().next()?;
    word.starts_with('/').then(|| word.to_string())
}

fn read_head(path: &Path) -> Vec<u8> {
    let mut head = Vec::new();
    if let Ok(f) = super::walk::open_regular(path) {
        let _ = f.take(ELF_HEAD).read_to_end(&mut head);
    }
    head
}

/// One file the boot needs: why, the name it goes by, where it resolved
/// (or why it cannot be used, which fails the audit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFile {
    pub role: &'static str,
    pub name: String,
    pub resolved: Result<String, String>,
}

/// The files the boot needs, resolved inside `root`, without duplicates.
/// `init`: the init the command line names. systemd is left out when
/// absent.
pub fn boot_files(root: &Path, init: &str) -> Vec<BootFile> {
    let mut w = Walk {
        root,
        out: Vec::new(),
        conf: ldso::conf_dirs(root),
        dynamics: HashMap::new(),
        real_dirs: HashMap::new(),
        unreadable: HashSet::new(),
        missing: HashSet::new(),
        full: false,
    };
    w.add("init", init, false);
    w.add("shell", "/bin/sh", false);
    for name in SYSTEMD {
        w.add("systemd", name, true);
    }
    // What each executable names (interpreter, loader, libraries), and
    // the same for the interpreters as the list grows.
    let mut next = 0;
    while let Some(b) = w.out.get(next) {
        next += 1;
        let (role, Ok(path)) = (b.role, b.resolved.clone()) else {
            continue;
        };
        if !EXECUTED.contains(&role) {
            continue;
        }
        let head = read_head(&root.join(path.trim_start_matches('/')));
        if let Some(interp) = script_interp(&head) {
            w.add("interpreter", &interp, false);
        } else if let Some(interp) = elf::interp(&head) {
            w.add("dynamic loader", &interp, false);
            w.libraries(&path, role, &interp);
        }
    }
    if w.full {
        w.out.push(BootFile {
            role: "boot files",
            name: format!("more than {MAX_FILES}"),
            resolved: Err(format!(
                "the rest are not audited; no boot is expected to need that many \
                 (the libraries of {init} and /bin/sh, transitively)"
            )),
        });
    }
    w.out
}

/// One object of a process as the loader has it: where it is, where it
/// looks for what it needs, and which object needed it.
struct Loaded {
    path: String,
    runpath: Option<Vec<String>>,
    rpath: Vec<String>,
    loader: Option<usize>,
}

struct Walk<'a> {
    root: &'a Path,
    out: Vec<BootFile>,
    /// ld.so.conf's directories.
    conf: Vec<String>,
    /// Search directories resolved inside the root, each once: a hostile
    /// RUNPATH may hold many `..`.
    real_dirs: HashMap<String, Option<String>>,
    /// Dynamic sections read, by path on the root.
    dynamics: HashMap<String, Result<Option<Dynamic>, ElfError>>,
    /// Unreadable objects and missing names already listed.
    unreadable: HashSet<String>,
    missing: HashSet<String>,
    full: bool,
}

impl Walk<'_> {
    fn push(&mut self, b: BootFile) {
        if self.out.len() >= MAX_FILES {
            self.full = true;
        } else {
            self.out.push(b);
        }
    }

    /// `name` resolved and listed unless already listed; an optional file
    /// is left out when it cannot be resolved.
    fn add(&mut self, role: &'static str, name: &str, optional: bool) {
        let resolved = resolve(self.root, name).map_err(|e| format!("cannot be found: {e}"));
        if optional && resolved.is_err() {
            return;
        }
        self.list(role, name, resolved);
    }

    /// `name`, resolved to `resolved`, listed unless already listed.
    fn list(&mut self, role: &'static str, name: &str, resolved: Result<String, String>) {
        if self
            .out
            .iter()
            .any(|b| b.resolved.is_ok() && b.resolved == resolved)
        {
            return;
        }
        self.push(BootFile {
            role,
            name: name.to_string(),
            resolved,
        });
    }

    /// The dynamic section of `path` (on the root), read once.
    fn dynamic(&mut self, path: &str) -> Result<Option<Dynamic>, ElfError> {
        if let Some(d) = self.dynamics.get(path) {
            return d.clone();
        }
        let d = match super::walk::open_regular(&self.root.join(path.trim_start_matches('/'))) {
            Ok(f) => elf::dynamic(&f),
            Err(e) => Err(ElfError::Io(e.to_string().to_lowercase())),
        };
        self.dynamics.insert(path.to_string(), d.clone());
        d
    }

    /// `path`'s place in a process, what it needs and its DT_SONAME: its
    /// dynamic section read (an error listed once, naming it), `$ORIGIN`
    /// its directory.
    fn load(
        &mut self,
        path: &str,
        role: &'static str,
        loader: Option<usize>,
    ) -> (Loaded, Vec<String>, Option<String>) {
        let dynamic = match self.dynamic(path) {
            Ok(d) => d.unwrap_or_default(),
            Err(e) => {
                if self.unreadable.insert(path.to_string()) {
                    self.push(BootFile {
                        role,
                        name: path.to_string(),
                        resolved: Err(format!(
                            "its dynamic section cannot be read: {e}; the libraries it \
                             needs are not audited"
                        )),
                    });
                }
                Dynamic::default()
            }
        };
        let origin = path.rsplit_once('/').map_or("", |(d, _)| d);
        let origin = if origin.is_empty() { "/" } else { origin };
        let loaded = Loaded {
            path: path.to_string(),
            runpath: dynamic
                .runpath
                .as_deref()
                .map(|v| ldso::search_path(v, origin)),
            rpath: dynamic
                .rpath
                .as_deref()
                .map(|v| ldso::search_path(v, origin))
                .unwrap_or_default(),
            loader,
        };
        (loaded, dynamic.needed, dynamic.soname)
    }

    /// The libraries the process `exe` starts needs, transitively, as its
    /// loader `interp` finds them: breadth first, a name already loaded
    /// (as asked for or by its DT_SONAME) taken as it is.
    fn libraries(&mut self, exe: &str, role: &'static str, interp: &str) {
        let mut known: HashSet<String> = HashSet::new();
        let mut paths: HashSet<String> = HashSet::new();
        // The loader is loaded under its own name (libc needs it so).
        known.extend(interp.rsplit('/').next().map(str::to_string));
        if let Ok(r) = resolve(self.root, interp) {
            known.extend(r.rsplit('/').next().map(str::to_string));
            paths.insert(r);
        }
        let musl = interp
            .rsplit('/')
            .next()
            .is_some_and(|n| n.starts_with("ld-musl-"));
        let mut objs: Vec<Loaded> = Vec::new();
        let mut queue: Vec<Vec<String>> = Vec::new();
        let (first, needed, soname) = self.load(exe, role, None);
        paths.insert(exe.to_string());
        known.extend(soname);
        objs.push(first);
        queue.push(needed);
        let mut i = 0;
        while let Some(names) = queue.get_mut(i).map(std::mem::take) {
            for name in &names {
                if !known.insert(name.clone()) || (musl && ldso::musl_reserved(name)) {
                    continue;
                }
                if self.full {
                    return;
                }
                let role = if LIBC_NAMES.contains(&name.as_str()) {
                    "libc"
                } else {
                    "library"
                };
                let dirs = self.search_dirs(&objs, i);
                let found = if name.contains('/') {
                    // A path: taken as it is, from the root (the boot's
                    // working directory).
                    ldso::resolve_path(self.root, &format!("/{name}")).map(|real| ldso::Found {
                        candidate: name.clone(),
                        real,
                        hwcaps: Vec::new(),
                    })
                } else {
                    let (root, cache) = (self.root, &mut self.real_dirs);
                    let real_dir = |d: &str| {
                        cache
                            .entry(d.to_string())
                            .or_insert_with(|| ldso::resolve_path(root, d))
                            .clone()
                    };
                    // musl's loader has no glibc-hwcaps.
                    ldso::find(root, name, dirs.iter().map(String::as_str), real_dir, !musl)
                };
                let Some(found) = found else {
                    let who = objs.get(i).map_or(exe, |o| o.path.as_str());
                    if self.missing.insert(name.clone()) {
                        self.push(BootFile {
                            role,
                            name: name.clone(),
                            resolved: Err(format!(
                                "cannot be found: needed by {who}, not in {}",
                                first_of(&dirs, 12, "")
                            )),
                        });
                    }
                    continue;
                };
                let builds = std::iter::once((found.candidate, found.real)).chain(found.hwcaps);
                for (candidate, real) in builds {
                    // Found resolved: not walked again.
                    self.list(role, &candidate, Ok(real.clone()));
                    if paths.insert(real.clone()) {
                        let (obj, needed, soname) = self.load(&real, role, Some(i));
                        known.extend(soname);
                        objs.push(obj);
                        queue.push(needed);
                    }
                }
            }
            i += 1;
        }
    }

    /// Where the loader looks for what object `i` needs: its DT_RUNPATH;
    /// without one, its DT_RPATH and those of the objects that loaded it
    /// (each that has no DT_RUNPATH) up to the executable; then ld.so.conf's
    /// directories and the default ones.
    fn search_dirs(&self, objs: &[Loaded], i: usize) -> Vec<String> {
        let mut dirs: Vec<String> = Vec::new();
        match objs.get(i).and_then(|o| o.runpath.as_ref()) {
            Some(runpath) => dirs.extend(runpath.iter().cloned()),
            None => {
                let mut at = Some(i);
                while let Some(o) = at.and_then(|k| objs.get(k)) {
                    if o.runpath.is_none() {
                        dirs.extend(o.rpath.iter().cloned());
                    }
                    // Loaders come before what they load: this ends.
                    at = o.loader.filter(|l| Some(*l) < at);
                }
            }
        }
        dirs.extend(self.conf.iter().cloned());
        dirs.extend(LIB_DIRS.iter().map(|d| d.to_string()));
        let mut seen = HashSet::new();
        dirs.retain(|d| seen.insert(d.clone()));
        dirs
    }
}

/// A list for a message: its first `shown` items, then how many more
/// (and `more_note` after that count).
fn first_of(items: &[String], shown: usize, more_note: &str) -> String {
    match items.len().checked_sub(shown) {
        Some(more) if more > 0 => format!(
            "{} and {more} more{more_note}",
            items.get(..shown).unwrap_or_default().join(", ")
        ),
        _ => items.join(", "),
    }
}

/// Why the next boot's kernel would not deny anything, when it would not:
/// `ima_appraise=fix|log|off` on its command line (honoured only without
/// Secure Boot, which the caller checks).
pub fn not_enforcing(cmdline: &Cmdline) -> Option<String> {
    match cmdline.value("ima_appraise") {
        Some(mode @ ("fix" | "log" | "off")) => Some(format!(
            "ima_appraise={mode} on the kernel command line: the kernel does not deny"
        )),
        _ => None,
    }
}

/// `--boot-files`: fails (reported) when a file the boot needs would be
/// refused.
pub fn run(
    o: &AuditOptions,
    inputs: &Inputs,
    cmdline_path: &Path,
    secure_boot: bool,
) -> Result<(), CommandError> {
    let text = std::fs::read(cmdline_path).map_err(|e| {
        CommandError::usage(format!(
            "boot files: read {}: {}; pass the kernel command line with --cmdline FILE",
            cmdline_path.display(),
            e.to_string().to_ascii_lowercase()
        ))
    })?;
    let cmdline = Cmdline::parse_bytes(&text);
    let root = o.root.display();
    if !inputs.rules.iter().any(|r| r.appraise) {
        println!(
            "boot files of {root}: not audited, no rule of the IMA policy {} appraises",
            inputs.policy_path
        );
        return Ok(());
    }
    if let Some(why) = not_enforcing(&cmdline).filter(|_| !secure_boot) {
        println!(
            "boot files of {root}: not audited, {why} ({})",
            cmdline_path.display()
        );
        return Ok(());
    }
    let init = match cmdline.value("init") {
        Some(i) if i.starts_with('/') => i.to_string(),
        _ => "/sbin/init".to_string(),
    };
    let files = boot_files(&o.root, &init);
    let paths: Vec<PathBuf> = files
        .iter()
        .filter_map(|b| b.resolved.as_ref().ok())
        .map(|r| o.root.join(r.trim_start_matches('/')))
        .collect();
    let listed = walk::check_paths(o, inputs, &paths);
    println!(
        "boot files of {root} (init={init}, EVM {}):",
        if inputs.evm_on { "on" } else { "off" }
    );
    let (mut bad, mut unusable) = (Vec::new(), Vec::new());
    for b in &files {
        let shown = match &b.resolved {
            Ok(r) if *r != b.name => format!("{} -> {r}", b.name),
            Ok(r) => r.clone(),
            Err(e) => {
                println!("  {:<15} {}: {e}", b.role, b.name);
                unusable.push(b.name.clone());
                continue;
            }
        };
        let entry = b
            .resolved
            .as_ref()
            .ok()
            .and_then(|r| listed.iter().find(|l| l.path == *r));
        let Some(l) = entry else {
            println!("  {:<15} {shown}: not a regular file", b.role);
            unusable.push(b.name.clone());
            continue;
        };
        let mut line = format!("  {:<15} {shown}: {}", b.role, l.verdict.words());
        if let Some(d) = &l.detail {
            line.push_str(&format!(" ({d})"));
        }
        if let Some(n) = l.line {
            line.push_str(&format!(" [policy line {n}]"));
        }
        println!("{line}");
        if l.verdict.denied() || l.verdict == Verdict::Unreadable {
            bad.push(shown);
        }
    }
    if bad.is_empty() && unusable.is_empty() {
        println!("boot files: none would be denied");
        return Ok(());
    }
    if !unusable.is_empty() {
        println!(
            "boot files: {} cannot be found or read: the next boot would fail; install \
             or repair them in the root",
            first_few(&unusable)
        );
    }
    if !bad.is_empty() {
        println!(
            "boot files: the kernel would refuse {}: the next boot would fail; label them \
             (evmctl ima_sign, or boot once with ima_appraise=fix evm=fix and run \
             integrity-loader relabel) before enforcing",
            first_few(&bad)
        );
    }
    Err(CommandError::reported())
}

/// The summary's list: a whole system's libraries unsigned would make a
/// line of thousands of characters, in the build's error output too; each
/// file has its own line above.
fn first_few(names: &[String]) -> String {
    first_of(names, 5, " (listed above)")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::test_support::{put, temp_dir};
    use std::os::unix::fs::symlink;

    #[test]
    fn the_summary_names_the_first_five() {
        let names: Vec<String> = (1..=7).map(|i| format!("/lib/l{i}.so")).collect();
        assert_eq!(
            first_few(&names),
            "/lib/l1.so, /lib/l2.so, /lib/l3.so, /lib/l4.so, /lib/l5.so and 2 more (listed above)"
        );
        assert_eq!(first_few(&names[..5]), names[..5].join(", "));
        assert_eq!(first_few(&names[..1]), "/lib/l1.so");
    }

    #[test]
    fn resolves_inside_the_root() {
        let dir = temp_dir("boot-resolve");
        std::fs::create_dir_all(dir.join("usr/lib/systemd")).unwrap();
        std::fs::create_dir_all(dir.join("sbin")).unwrap();
        std::fs::write(dir.join("usr/lib/systemd/systemd"), b"x").unwrap();
        // Absolute: from the root, not from the host's /.
        symlink("/usr/lib/systemd/systemd", dir.join("sbin/init")).unwrap();
        symlink("usr/lib", dir.join("lib")).unwrap();
        symlink("loop2", dir.join("sbin/loop1")).unwrap();
        symlink("loop1", dir.join("sbin/loop2")).unwrap();
        assert_eq!(
            resolve(&dir, "/sbin/init").unwrap(),
            "/usr/lib/systemd/systemd"
        );
        assert_eq!(
            resolve(&dir, "/lib/systemd/systemd").unwrap(),
            "/usr/lib/systemd/systemd"
        );
        assert!(resolve(&dir, "/sbin/loop1").is_err());
        let e = resolve(&dir, "/sbin/none").unwrap_err();
        assert!(e.contains("sbin/none") && e.contains("no such file"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn reads_the_script_interpreter() {
        assert_eq!(script_interp(b"#! /bin/bash -e\nx").unwrap(), "/bin/bash");
        assert_eq!(script_interp(b"#!bash\n"), None);
        assert_eq!(script_interp(b"\x7fELF"), None);
    }

    #[test]
    fn a_script_init_brings_its_interpreter_and_that_one_its_loader() {
        let dir = temp_dir("boot-files");
        for d in ["sbin", "bin", "lib64", "lib/x86_64-linux-gnu"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::write(dir.join("sbin/init"), b"#!/bin/bash -e\n").unwrap();
        std::fs::copy("/bin/sh", dir.join("bin/bash")).unwrap();
        let interp = elf::interp(&std::fs::read("/bin/sh").unwrap()).unwrap();
        let loader = dir.join(interp.trim_start_matches('/'));
        std::fs::create_dir_all(loader.parent().unwrap()).unwrap();
        std::fs::write(&loader, b"ld").unwrap();
        std::fs::write(dir.join("lib/x86_64-linux-gnu/libc.so.6"), b"c").unwrap();
        let files = boot_files(&dir, "/sbin/init");
        let roles: Vec<(&str, &str)> = files.iter().map(|b| (b.role, b.name.as_str())).collect();
        assert_eq!(
            roles,
            [
                ("init", "/sbin/init"),
                ("shell", "/bin/sh"),
                ("interpreter", "/bin/bash"),
                ("dynamic loader", interp.as_str()),
                ("libc", "/lib/x86_64-linux-gnu/libc.so.6"),
            ]
        );
        // No /bin/sh in that root: named, not skipped.
        assert!(files[1].resolved.is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn lib(needed: &[&str], soname: Option<&str>, runpath: Option<&str>) -> Vec<u8> {
        elf::Synthetic {
            needed,
            soname,
            runpath,
            ..elf::Synthetic::default()
        }
        .bytes()
    }

    fn exe(needed: &[&str], runpath: Option<&str>, rpath: Option<&str>) -> Vec<u8> {
        elf::Synthetic {
            interp: Some("/lib64/ld-linux-x86-64.so.2"),
            needed,
            runpath,
            rpath,
            ..elf::Synthetic::default()
        }
        .bytes()
    }

    /// A merged-/usr root with its loader and libc (which needs the
    /// loader by its soname, as glibc's does).
    fn usr_merged_root(name: &str) -> PathBuf {
        let root = temp_dir(&format!("boot-{name}"));
        std::fs::create_dir_all(root.join("usr/lib/x86_64-linux-gnu")).unwrap();
        symlink("usr/lib", root.join("lib")).unwrap();
        std::fs::create_dir_all(root.join("lib64")).unwrap();
        symlink(
            "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            root.join("lib64/ld-linux-x86-64.so.2"),
        )
        .unwrap();
        put(
            &root,
            "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            &lib(&[], Some("ld-linux-x86-64.so.2"), None),
        );
        put(
            &root,
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            &lib(&["ld-linux-x86-64.so.2"], Some("libc.so.6"), None),
        );
        root
    }

    fn listed(files: &[BootFile]) -> Vec<(&str, &str, Result<&str, &str>)> {
        files
            .iter()
            .map(|b| {
                let r = b.resolved.as_ref();
                (
                    b.role,
                    b.name.as_str(),
                    r.map(String::as_str).map_err(String::as_str),
                )
            })
            .collect()
    }

    /// A glibc-hwcaps build of a library is what a CPU of its level loads:
    /// it is audited beside the plain one.
    #[test]
    fn glibc_hwcaps_builds_are_boot_files_too() {
        let root = usr_merged_root("hwcaps");
        put(
            &root,
            "/sbin/init",
            &exe(&["libfoo.so.1", "libc.so.6"], None, None),
        );
        put(&root, "/bin/sh", &exe(&["libc.so.6"], None, None));
        let foo = lib(&["libc.so.6"], Some("libfoo.so.1"), None);
        put(&root, "/usr/lib/x86_64-linux-gnu/libfoo.so.1", &foo);
        put(
            &root,
            "/usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libfoo.so.1",
            &foo,
        );
        let files = boot_files(&root, "/sbin/init");
        let libraries: Vec<&str> = files
            .iter()
            .filter(|b| b.role == "library")
            .filter_map(|b| b.resolved.as_deref().ok())
            .collect();
        assert_eq!(
            libraries,
            [
                "/usr/lib/x86_64-linux-gnu/libfoo.so.1",
                "/usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libfoo.so.1"
            ],
            "{files:#?}"
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    /// A FIFO where the boot's shell, a library or ld.so.conf should be is
    /// listed, not opened and waited on: a host-only build must not hang
    /// on what the root holds.
    #[test]
    fn fifos_on_the_root_are_not_waited_on() {
        let root = usr_merged_root("fifo");
        put(
            &root,
            "/sbin/init",
            &exe(&["libfifo.so.1", "libc.so.6"], None, None),
        );
        let fifo = |path: &str| {
            let p = root.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        };
        fifo("/bin/sh");
        fifo("/usr/lib/x86_64-linux-gnu/libfifo.so.1");
        fifo("/etc/ld.so.conf");
        let (tx, rx) = std::sync::mpsc::channel();
        let walked = root.clone();
        std::thread::spawn(move || tx.send(boot_files(&walked, "/sbin/init")).unwrap());
        let files = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("boot_files waited on a FIFO");
        let shell = files.iter().find(|b| b.role == "shell").unwrap();
        assert_eq!(shell.resolved.as_deref(), Ok("/bin/sh"));
        let fifo_lib = files.iter().find(|b| b.name == "libfifo.so.1").unwrap();
        assert!(
            fifo_lib
                .resolved
                .as_ref()
                .is_err_and(|e| e.contains("cannot be found")),
            "{fifo_lib:?}"
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    /// The libraries the executables need, transitively: through RUNPATH
    /// with $ORIGIN, ld.so.conf.d and the default directories; a name a
    /// process already loaded is not looked for again; a missing one and a
    /// corrupt dynamic section are listed as errors naming the file.
    #[test]
    fn libraries_are_found_as_the_loader_finds_them() {
        let root = usr_merged_root("libs");
        symlink("/usr/lib/systemd/systemd", {
            std::fs::create_dir_all(root.join("sbin")).unwrap();
            root.join("sbin/init")
        })
        .unwrap();
        // systemd's private libraries, beside it through $ORIGIN/..;
        // libsystemd-core has no RUNPATH: it gets libsystemd-shared as
        // the one systemd already loaded.
        put(
            &root,
            "/usr/lib/systemd/systemd",
            &exe(
                &["libsystemd-core.so", "libsystemd-shared.so", "libc.so.6"],
                Some("$ORIGIN/../x86_64-linux-gnu/systemd"),
                None,
            ),
        );
        put(
            &root,
            "/usr/lib/x86_64-linux-gnu/systemd/libsystemd-core.so",
            &lib(&["libsystemd-shared.so", "libconf.so.1"], None, None),
        );
        put(
            &root,
            "/usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared.so",
            &lib(&["libdef.so.2", "libbad.so.1", "libc.so.6"], None, None),
        );
        // ld.so.conf.d: a 32-bit libconf first, which the loader skips.
        put(
            &root,
            "/etc/ld.so.conf",
            b"include /etc/ld.so.conf.d/*.conf\n",
        );
        put(
            &root,
            "/etc/ld.so.conf.d/opt.conf",
            b"/opt/lib32\n/opt/lib\n",
        );
        let mut foreign = lib(&[], None, None);
        foreign[4] = 1;
        put(&root, "/opt/lib32/libconf.so.1", &foreign);
        put(
            &root,
            "/opt/lib/libconf.so.1",
            &lib(&["libconf.so.1"], None, None),
        );
        // The default directories; libdef needs back what loaded it.
        put(
            &root,
            "/usr/lib/x86_64-linux-gnu/libdef.so.2",
            &lib(&["libsystemd-shared.so"], None, None),
        );
        // A dynamic section cut short.
        let bad = lib(&["libother.so"], None, None);
        put(
            &root,
            "/usr/lib/x86_64-linux-gnu/libbad.so.1",
            &bad[..bad.len() - 20],
        );
        put(
            &root,
            "/bin/sh",
            &exe(&["libc.so.6", "libtinfo.so.6"], None, None),
        );

        let files = boot_files(&root, "/sbin/init");
        let core = "/usr/lib/systemd/../x86_64-linux-gnu/systemd/libsystemd-core.so";
        let shared = "/usr/lib/systemd/../x86_64-linux-gnu/systemd/libsystemd-shared.so";
        let not_in = "/opt/lib32, /opt/lib, /lib/x86_64-linux-gnu, /usr/lib/x86_64-linux-gnu, \
                      /lib64, /usr/lib64, /lib, /usr/lib";
        let missing = format!("cannot be found: needed by /bin/sh, not in {not_in}");
        let unreadable = "its dynamic section cannot be read: truncated in its dynamic section; \
                          the libraries it needs are not audited";
        assert_eq!(
            listed(&files),
            [
                ("init", "/sbin/init", Ok("/usr/lib/systemd/systemd")),
                ("shell", "/bin/sh", Ok("/bin/sh")),
                (
                    "dynamic loader",
                    "/lib64/ld-linux-x86-64.so.2",
                    Ok("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
                ),
                (
                    "library",
                    core,
                    Ok("/usr/lib/x86_64-linux-gnu/systemd/libsystemd-core.so")
                ),
                (
                    "library",
                    shared,
                    Ok("/usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared.so")
                ),
                (
                    "libc",
                    "/lib/x86_64-linux-gnu/libc.so.6",
                    Ok("/usr/lib/x86_64-linux-gnu/libc.so.6")
                ),
                (
                    "library",
                    "/opt/lib/libconf.so.1",
                    Ok("/opt/lib/libconf.so.1")
                ),
                (
                    "library",
                    "/lib/x86_64-linux-gnu/libdef.so.2",
                    Ok("/usr/lib/x86_64-linux-gnu/libdef.so.2")
                ),
                (
                    "library",
                    "/lib/x86_64-linux-gnu/libbad.so.1",
                    Ok("/usr/lib/x86_64-linux-gnu/libbad.so.1")
                ),
                (
                    "library",
                    "/usr/lib/x86_64-linux-gnu/libbad.so.1",
                    Err(unreadable)
                ),
                ("library", "libtinfo.so.6", Err(missing.as_str())),
            ]
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    /// Without a RUNPATH, the RPATHs of the objects that loaded a library
    /// are searched too; an object with a RUNPATH searches only its own.
    #[test]
    fn rpath_is_inherited_runpath_is_not() {
        let root = usr_merged_root("rpath");
        put(&root, "/bin/sh", &exe(&["liba.so"], None, Some("/opt/r")));
        put(&root, "/opt/r/liba.so", &lib(&["libb.so"], None, None));
        put(&root, "/opt/r/libb.so", &lib(&[], None, None));
        let names = |files: &[BootFile]| -> Vec<String> {
            files
                .iter()
                .map(|b| format!("{} {:?}", b.name, b.resolved.as_ref().map(|_| ())))
                .collect()
        };
        let files = boot_files(&root, "/bin/sh");
        assert_eq!(
            names(&files),
            [
                "/bin/sh Ok(())",
                "/lib64/ld-linux-x86-64.so.2 Ok(())",
                "/opt/r/liba.so Ok(())",
                "/opt/r/libb.so Ok(())"
            ]
        );
        put(
            &root,
            "/opt/r/liba.so",
            &lib(&["libb.so"], None, Some("/opt/x")),
        );
        let files = boot_files(&root, "/bin/sh");
        let last = files.last().unwrap();
        assert_eq!(last.name, "libb.so");
        let e = last.resolved.as_ref().unwrap_err();
        assert!(
            e.starts_with(
                "cannot be found: needed by /opt/r/liba.so, not in /opt/x, /lib/x86_64-linux-gnu"
            ),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&root);
    }

    /// A root whose boot would need more files than any real one is cut
    /// at the bound, saying so.
    #[test]
    fn the_list_is_bounded() {
        let root = usr_merged_root("many");
        let names: Vec<String> = (0..200).map(|i| format!("l{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        put(&root, "/bin/sh", &exe(&refs, Some("/opt"), None));
        for n in &names {
            let next = format!("m{n}");
            put(
                &root,
                &format!("/opt/{n}"),
                &lib(&[&next], None, Some("/opt")),
            );
            put(&root, &format!("/opt/{next}"), &lib(&[], None, None));
        }
        let files = boot_files(&root, "/bin/sh");
        assert_eq!(files.len(), MAX_FILES + 1);
        let last = files.last().unwrap();
        assert_eq!(last.role, "boot files");
        assert!(last.resolved.as_ref().unwrap_err().contains("not audited"));
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn fix_log_and_off_do_not_deny() {
        for (line, skip) in [
            ("root=/dev/vda", false),
            ("ima_appraise=enforce", false),
            ("ima_appraise=fix evm=fix", true),
            ("ima_appraise=log", true),
            ("ima_appraise=off", true),
            ("ima_appraise=fix ima_appraise=enforce", false),
        ] {
            assert_eq!(
                not_enforcing(&Cmdline::parse(line)).is_some(),
                skip,
                "{line}"
            );
        }
    }
}
