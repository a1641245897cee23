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

/// Runs `integrity-audit ARGS...` as a child and waits for it; its output
/// goes where this process's goes. The exit code, or why it could not run.
pub fn run_audit(args: &[String]) -> Result<u8, String> {
    let path = sibling_path(AUDIT_BIN)
        .map_err(|e| format!("cannot find the running binary's directory (/proc/self/exe: {e})"))?;
    if !path.is_file() {
        return Err(format!(
            "{} not found: the audit is in the separate {AUDIT_BIN} binary, looked for \
             beside integrity-loader; install it there (scripts/install does, from \
             target/.../release/{AUDIT_BIN})",
            path.display()
        ));
    }
    let argv: Result<Vec<CString>, _> = std::iter::once(path.as_os_str().as_bytes())
        .chain(args.iter().map(|a| a.as_bytes()))
        .map(|a| CString::new(a.to_vec()))
        .collect::<Result<Vec<_>, _>>();
    let (Ok(exe), Ok(argv)) = (CString::new(path.as_os_str().as_bytes()), argv) else {
        return Err("a NUL byte in the path or arguments".into());
    };
    // What this process printed must come first.
    let _ = std::io::Write::flush(&mut std::io::stdout());
    // SAFETY: this process is single-threaded here (check runs no threads),
    // and the child only calls execv and _exit, with memory made before.
    match unsafe { nix::unistd::fork() } {
        Ok(nix::unistd::ForkResult::Child) => {
            let _ = nix::unistd::execv(&exe, &argv);
            // SAFETY: _exit ends the child without running this process's
            // atexit handlers or flushing its buffers twice.
            unsafe { nix::libc::_exit(127) }
        }
        Ok(nix::unistd::ForkResult::Parent { child }) => loop {
            match nix::sys::wait::waitpid(child, None) {
                Ok(nix::sys::wait::WaitStatus::Exited(_, 127)) => {
                    return Err(format!("cannot run {}", path.display()));
                }
                Ok(nix::sys::wait::WaitStatus::Exited(_, code)) => {
                    return Ok(u8::try_from(code).unwrap_or(u8::MAX));
                }
                Ok(nix::sys::wait::WaitStatus::Signaled(_, sig, _)) => {
                    return Err(format!("{} was killed by {sig:?}", path.display()));
                }
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(format!("wait for {}: {e}", path.display())),
            }
        },
        Err(e) => Err(format!("fork for {}: {e}", path.display())),
    }
}
