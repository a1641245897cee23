//! An ELF object as `integrity-audit --boot-files` reads the files the
//! next boot needs (`audit::elf`): its class, PT_INTERP and dynamic
//! section. The input is the whole file. Besides not panicking, what comes
//! out stays within the reader's bounds whatever the offsets and counts say.
#![no_main]

use integrity_loader::audit::elf;
use libfuzzer_sys::fuzz_target;

/// DT_NEEDED entries taken at most, and the longest string (PATH_MAX) as
/// lossy UTF-8 can grow it (each bad byte becomes a 3-byte U+FFFD).
const MAX_NEEDED: usize = 256;
const MAX_TEXT: usize = 4096 * 3;

fuzz_target!(|data: &[u8]| {
    let class = elf::class(data);
    if let Some(interp) = elf::interp(data) {
        assert!(interp.len() <= data.len() * 3);
    }
    match elf::dynamic(data) {
        Ok(Some(d)) => {
            assert_eq!(class, elf::Class::X86_64);
            assert!(d.needed.len() <= MAX_NEEDED);
            for s in d.needed.iter().chain(&d.soname).chain(&d.runpath).chain(&d.rpath) {
                assert!(s.len() <= MAX_TEXT && !s.contains('\0'));
            }
        }
        Ok(None) | Err(_) => {}
    }
});
