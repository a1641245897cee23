//! The boot binary's process start, in place of std's.
//!
//! The boot binary is built `no_main` (see main.rs): std's runtime start
//! installs a stack-overflow handler (an alternate signal stack: mmap,
//! mprotect, sigaltstack and four sigactions) and a clean-up run at exit:
//! some 530 instructions of ours and 700 of the kernel's that a boot runs
//! once and an emulator translates once (BENCHMARKS.md). What of it a boot
//! needs is here.

use std::ffi::{CStr, c_char, c_int};

/// What std's start does that matters to the loader: SIGPIPE ignored, so a
/// write to a closed pipe or TPM socket fails with EPIPE instead of killing
/// the process between two steps; and fds 0-2 open, so that no file the
/// loader opens becomes its stdout (its last line goes there).
pub fn prepare_process() {
    // SAFETY: installs SIG_IGN, no handler code runs.
    unsafe { nix::libc::signal(nix::libc::SIGPIPE, nix::libc::SIG_IGN) };
    for fd in 0..3 {
        // SAFETY: F_GETFD only reads the descriptor's flags.
        if unsafe { nix::libc::fcntl(fd, nix::libc::F_GETFD) } == -1 {
            // The lowest free descriptor: this one. Left open on purpose.
            // SAFETY: a NUL-terminated path.
            unsafe { nix::libc::open(c"/dev/null".as_ptr(), nix::libc::O_RDWR) };
        }
    }
}

/// The arguments after the program's name; `Err(n)` when the n-th (from 1)
/// is not UTF-8, which no option of the loader takes.
///
/// # Safety
/// `argv` holds `argc` pointers to NUL-terminated strings, as the C
/// runtime passes them to `main`.
pub unsafe fn arguments(argc: c_int, argv: *const *const c_char) -> Result<Vec<String>, usize> {
    let count = usize::try_from(argc).unwrap_or(0);
    let mut args = Vec::with_capacity(count.saturating_sub(1));
    for n in 1..count {
        // SAFETY: n < argc, and each pointer is a C string (the caller's
        // contract).
        let arg = unsafe { CStr::from_ptr(*argv.add(n)) };
        args.push(arg.to_str().map_err(|_| n)?.to_owned());
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::arguments;
    use std::ffi::{CString, c_char};

    fn argv(words: &[&[u8]]) -> (Vec<CString>, Vec<*const c_char>) {
        let owned: Vec<CString> = words.iter().map(|w| CString::new(*w).unwrap()).collect();
        let ptrs = owned
            .iter()
            .map(|c| c.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        (owned, ptrs)
    }

    #[test]
    fn arguments_skip_the_program_name_and_refuse_what_is_not_utf8() {
        let (_keep, ptrs) = argv(&[b"integrity-loader", b"load", b"--root", b"/sysroot"]);
        // SAFETY: four C strings behind four pointers.
        let args = unsafe { arguments(4, ptrs.as_ptr()) };
        assert_eq!(args.unwrap(), ["load", "--root", "/sysroot"]);
        let (_keep, ptrs) = argv(&[b"integrity-loader"]);
        // SAFETY: one C string.
        assert_eq!(unsafe { arguments(1, ptrs.as_ptr()) }, Ok(vec![]));
        let (_keep, ptrs) = argv(&[b"integrity-loader", b"load", b"--root", b"/caf\xe9"]);
        // SAFETY: as above.
        assert_eq!(unsafe { arguments(4, ptrs.as_ptr()) }, Err(3));
    }
}
