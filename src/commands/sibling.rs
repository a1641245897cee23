//! Commands that live in sibling binaries, so the initramfs's
//! `integrity-loader` carries only what a boot runs (`load`): `audit` and
//! `relabel` are in `integrity-audit`; the installed system's `check`,
//! `status`, `seal`, `reseal` and `sign-policy` are in `integrity-admin`.
//! These commands run the sibling from the directory the running binary is
//! in.

use super::EXIT_USAGE;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

pub const AUDIT_BIN: &str = "integrity-audit";
pub const ADMIN_BIN: &str = "integrity-admin";

/// The commands that run `integrity-audit`: they must come first, as its
/// options are its own.
pub fn is_sibling_command(word: &str) -> bool {
    matches!(word, "audit" | "relabel")
}

/// Where a sibling is looked for: beside /proc/self/exe.
pub fn sibling_path(name: &str) -> std::io::Result<PathBuf> {
    let exe = std::fs::read_link("/proc/self/exe")?;
    let dir = exe
        .parent()
        .ok_or_else(|| std::io::Error::other("the running binary has no directory"))?;
    Ok(dir.join(name))
}

/// Replaces this process with `integrity-audit ARGS...` (ARGS start with the
/// command); returns the exit code only when that fails.
pub fn exec_audit(args: &[String]) -> u8 {
    let command = args.first().map_or("audit", String::as_str);
    exec(AUDIT_BIN, command, args)
}

/// Replaces this process with `integrity-admin ARGS...` (ARGS as given to
/// integrity-loader, the command anywhere among them); returns the exit
/// code only when that fails.
pub fn exec_admin(command: &str, args: &[String]) -> u8 {
    exec(ADMIN_BIN, command, args)
}

fn exec(bin: &str, command: &str, args: &[String]) -> u8 {
    let path = match sibling_path(bin) {
        Ok(p) => p,
        Err(e) => {
            eprintln!(
                "integrity-loader: {command}: cannot find the running binary's directory \
                 (/proc/self/exe: {e}); run {bin} {command} directly"
            );
            return EXIT_USAGE;
        }
    };
    // execv, not std::process::Command: the initramfs binary stays small.
    let argv: Result<Vec<CString>, _> = std::iter::once(path.as_os_str().as_bytes())
        .chain(args.iter().map(|a| a.as_bytes()))
        .map(|a| CString::new(a.to_vec()))
        .collect();
    let e = match (CString::new(path.as_os_str().as_bytes()), argv) {
        (Ok(p), Ok(argv)) => match nix::unistd::execv(&p, &argv) {
            Err(errno) => std::io::Error::from(errno),
        },
        _ => std::io::Error::other("a NUL byte in the path or arguments"),
    };
    if e.kind() == std::io::ErrorKind::NotFound {
        eprintln!(
            "integrity-loader: {command}: {} not found: {command} is in the separate \
             {bin} binary, looked for beside integrity-loader; install it there \
             (scripts/install does, from target/.../release/{bin}) or run it \
             from where it is",
            path.display()
        );
    } else {
        eprintln!(
            "integrity-loader: {command}: cannot run {}: {}",
            path.display(),
            e.to_string().to_ascii_lowercase()
        );
    }
    EXIT_USAGE
}
