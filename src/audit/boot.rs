//! `integrity-audit --boot-files` (run by `integrity-loader check
//! --audit-boot`, which host-only initramfs builds use): the audit of the
//! few files the next boot cannot do without (the init the command line
//! names, /bin/sh, their dynamic loader, libc, systemd), so that a build
//! refuses an initramfs whose boot would lock the machine out. The whole
//! tree stays `integrity-audit`'s: it can take long.

use super::verdict::Verdict;
use super::{AuditOptions, Inputs, walk};
use crate::cmdline::Cmdline;
use crate::commands::CommandError;
use crate::rootfs::Root;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The start of an ELF file read for its program headers.
const ELF_HEAD: u64 = 64 * 1024;
const PT_INTERP: u32 = 3;

/// Where libc is looked for after the loader's own directory.
const LIB_DIRS: &[&str] = &[
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];
const LIBC_NAMES: &[&str] = &["libc.so.6", "libc.musl-x86_64.so.1", "libc.so"];
const SYSTEMD: &[&str] = &["/usr/lib/systemd/systemd", "/lib/systemd/systemd"];

/// `path` (absolute, as seen on the root) resolved inside `root` as `load`
/// resolves configured paths (symlinks followed inside the root, as if
/// chrooted); the result as seen on the root.
pub fn resolve(root: &Path, path: &str) -> Result<String, String> {
    let r = Root::new(root);
    let real = r.resolve(path).map_err(|e| e.to_string())?;
    let rel = real.strip_prefix(root).unwrap_or(&real);
    Ok(format!("/{}", rel.display()))
}

/// The PT_INTERP of an ELF file's start (`head`): its dynamic loader.
pub fn elf_interp(head: &[u8]) -> Option<String> {
    let ident = head.get(..6)?;
    if ident.get(..4)? != b"\x7fELF" {
        return None;
    }
    let wide = *ident.get(4)? == 2;
    let le = *ident.get(5)? == 1;
    let num = |at: usize, n: usize| -> Option<u64> {
        let b = head.get(at..at.checked_add(n)?)?;
        let mut v = 0u64;
        for i in 0..n {
            let byte = u64::from(*b.get(if le { n - 1 - i } else { i })?);
            v = (v << 8) | byte;
        }
        Some(v)
    };
    let (phoff, phentsize, phnum) = if wide {
        (num(0x20, 8)?, num(0x36, 2)?, num(0x38, 2)?)
    } else {
        (num(0x1c, 4)?, num(0x2a, 2)?, num(0x2c, 2)?)
    };
    for i in 0..phnum {
        let at = usize::try_from(phoff.checked_add(i.checked_mul(phentsize)?)?).ok()?;
        if num(at, 4)? != u64::from(PT_INTERP) {
            continue;
        }
        let (off, size) = if wide {
            (num(at + 8, 8)?, num(at + 32, 8)?)
        } else {
            (num(at + 4, 4)?, num(at + 16, 4)?)
        };
        let start = usize::try_from(off).ok()?;
        let bytes = head.get(start..start.checked_add(usize::try_from(size).ok()?)?)?;
        let name = bytes.split(|b| *b == 0).next()?;
        return Some(String::from_utf8_lossy(name).into_owned());
    }
    None
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
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(ELF_HEAD).read_to_end(&mut head);
    }
    head
}

/// One file the boot needs: why, the name it goes by, where it resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFile {
    pub role: &'static str,
    pub name: String,
    pub resolved: Result<String, String>,
}

/// The files the boot needs, resolved inside `root`, without duplicates.
/// `init`: the init the command line names. Optional ones (libc when no
/// loader needs it, systemd) are left out when absent.
pub fn boot_files(root: &Path, init: &str) -> Vec<BootFile> {
    let mut out: Vec<BootFile> = Vec::new();
    let add = |out: &mut Vec<BootFile>, role, name: &str, optional: bool| {
        let resolved = resolve(root, name);
        if optional && resolved.is_err() {
            return;
        }
        if out
            .iter()
            .any(|b| b.resolved.is_ok() && b.resolved == resolved)
        {
            return;
        }
        out.push(BootFile {
            role,
            name: name.to_string(),
            resolved,
        });
    };
    add(&mut out, "init", init, false);
    add(&mut out, "shell", "/bin/sh", false);
    for name in SYSTEMD {
        add(&mut out, "systemd", name, true);
    }
    // The interpreters and loaders the executables above name (and theirs,
    // as the list grows), then libc beside the loaders.
    let mut dirs: Vec<String> = Vec::new();
    let mut next = 0;
    while let Some(b) = out.get(next) {
        next += 1;
        let Ok(p) = b.resolved.clone() else { continue };
        let head = read_head(&root.join(p.trim_start_matches('/')));
        if let Some(interp) = script_interp(&head) {
            add(&mut out, "interpreter", &interp, false);
            continue;
        }
        if let Some(interp) = elf_interp(&head) {
            add(&mut out, "dynamic loader", &interp, false);
            if let Ok(r) = resolve(root, &interp)
                && let Some((dir, _)) = r.rsplit_once('/')
            {
                dirs.push(dir.to_string());
            }
        }
    }
    if !dirs.is_empty() {
        let candidates = dirs
            .iter()
            .map(String::as_str)
            .chain(LIB_DIRS.iter().copied());
        let mut found = None;
        'search: for dir in candidates {
            for name in LIBC_NAMES {
                let path = format!("{dir}/{name}");
                if resolve(root, &path).is_ok() {
                    found = Some(path);
                    break 'search;
                }
            }
        }
        match found {
            Some(path) => add(&mut out, "libc", &path, false),
            None => out.push(BootFile {
                role: "libc",
                name: "libc".into(),
                resolved: Err(format!("not found in {}", LIB_DIRS.join(", "))),
            }),
        }
    }
    out
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
    let mut bad = Vec::new();
    for b in &files {
        let shown = match &b.resolved {
            Ok(r) if *r != b.name => format!("{} -> {r}", b.name),
            Ok(r) => r.clone(),
            Err(e) => {
                println!("  {:<15} {}: cannot be found: {e}", b.role, b.name);
                bad.push(b.name.clone());
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
            bad.push(b.name.clone());
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
    if bad.is_empty() {
        println!("boot files: none would be denied");
        Ok(())
    } else {
        println!(
            "boot files: the kernel would refuse {}: the next boot would fail; label them \
             (evmctl ima_sign, or boot once with ima_appraise=fix evm=fix and run \
             integrity-loader relabel) before enforcing",
            bad.join(", ")
        );
        Err(CommandError::reported())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn resolves_inside_the_root() {
        let dir = std::env::temp_dir().join(format!("il-boot-resolve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
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
    fn reads_the_interpreter() {
        let sh = std::fs::read("/bin/sh").unwrap();
        let interp = elf_interp(&sh).unwrap();
        assert!(interp.starts_with('/') && interp.contains("ld"), "{interp}");
        assert_eq!(elf_interp(b"#!/bin/sh\n"), None);
        assert_eq!(script_interp(b"#! /bin/bash -e\nx").unwrap(), "/bin/bash");
        assert_eq!(script_interp(b"#!bash\n"), None);
        // Truncated headers and offsets out of range are no interpreter.
        assert_eq!(elf_interp(&sh[..0x30]), None);
        let mut bad = sh[..64].to_vec();
        bad[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(elf_interp(&bad), None);
    }

    #[test]
    fn a_script_init_brings_its_interpreter_and_that_one_its_loader() {
        let dir = std::env::temp_dir().join(format!("il-boot-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for d in ["sbin", "bin", "lib64", "lib/x86_64-linux-gnu"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        std::fs::write(dir.join("sbin/init"), b"#!/bin/bash -e\n").unwrap();
        std::fs::copy("/bin/sh", dir.join("bin/bash")).unwrap();
        let interp = elf_interp(&std::fs::read("/bin/sh").unwrap()).unwrap();
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
