//! What the boot-file audit reads of an ELF object: the interpreter it
//! names (PT_INTERP) and, from its dynamic section, the libraries it needs
//! (DT_NEEDED), its DT_SONAME and where it says to look for them
//! (DT_RUNPATH, DT_RPATH). The files are hostile: every offset and count is
//! checked, and what one file may make us read is bounded.

use std::fmt;
use std::os::unix::fs::FileExt;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_STRSZ: u64 = 10;
const DT_SONAME: u64 = 14;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;
const EM_X86_64: u16 = 62;
const EHDR_SIZE: usize = 64;
const PHDR_SIZE: usize = 56;
const DYN_SIZE: usize = 16;

/// Program headers read at most (a real object has about a dozen).
const MAX_PHNUM: usize = 1024;
/// Dynamic entries read at most (a real object has under a hundred).
const MAX_DYN: usize = 4096;
/// DT_NEEDED entries taken at most.
const MAX_NEEDED: usize = 256;
/// The longest string taken (PATH_MAX).
const MAX_STR: usize = 4096;
/// Bytes read from one file at most, all reads together.
const MAX_READ: usize = 512 * 1024;

/// Whether a file can be a library the x86-64 dynamic loader maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Not ELF at all (or too short to say).
    NotElf,
    /// ELF for another class, byte order or machine: the loader skips it
    /// and looks further.
    Foreign,
    /// 64-bit little-endian x86-64.
    X86_64,
}

/// The class of a file from its first bytes.
pub fn class(head: &[u8]) -> Class {
    match (head.get(..4), head.get(4), head.get(5), le16(head, 18)) {
        (Some(b"\x7fELF"), Some(2), Some(1), Some(EM_X86_64)) => Class::X86_64,
        (Some(b"\x7fELF"), ..) => Class::Foreign,
        _ => Class::NotElf,
    }
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(*b.get(at..)?.first_chunk::<2>()?))
}
fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(*b.get(at..)?.first_chunk::<4>()?))
}
fn le64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(*b.get(at..)?.first_chunk::<8>()?))
}

/// The PT_INTERP of an ELF file's start (`head`): its dynamic loader.
pub fn interp(head: &[u8]) -> Option<String> {
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

/// What can be read at an offset: a file, or bytes (tests, fuzzing).
pub trait ReadAt {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize>;
}

impl ReadAt for std::fs::File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        FileExt::read_at(self, buf, offset)
    }
}

impl ReadAt for [u8] {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let src = self.get(start..).unwrap_or_default();
        let n = src.len().min(buf.len());
        buf.get_mut(..n)
            .unwrap_or_default()
            .copy_from_slice(src.get(..n).unwrap_or_default());
        Ok(n)
    }
}

/// Why a dynamic section could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElfError {
    Io(String),
    /// The file ends inside this part.
    Truncated(&'static str),
    /// This part lies outside the file's loaded segments or its table.
    OutOfRange(&'static str),
    /// More of these than any real object has.
    TooMany(&'static str),
    /// A string with no end within PATH_MAX or its table.
    Unterminated,
    /// Reading it would take more than `MAX_READ` bytes.
    TooLarge,
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElfError::Io(e) => write!(f, "{e}"),
            ElfError::Truncated(what) => write!(f, "truncated in its {what}"),
            ElfError::OutOfRange(what) => write!(f, "its {what} lies outside the file"),
            ElfError::TooMany(what) => write!(f, "too many {what}"),
            ElfError::Unterminated => write!(
                f,
                "a string of its string table has no end within {MAX_STR} bytes or the table"
            ),
            ElfError::TooLarge => write!(f, "its dynamic section needs over {MAX_READ} bytes read"),
        }
    }
}

/// The dynamic section's entries the loader's library search reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dynamic {
    pub needed: Vec<String>,
    pub soname: Option<String>,
    pub runpath: Option<String>,
    pub rpath: Option<String>,
}

/// Reads at offsets within a budget shared by all reads of one file.
struct Reader<'a, R: ReadAt + ?Sized> {
    src: &'a R,
    left: usize,
}

impl<R: ReadAt + ?Sized> Reader<'_, R> {
    /// `len` bytes at `offset`, or fewer when the file ends first.
    fn some(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, ElfError> {
        self.left = self.left.checked_sub(len).ok_or(ElfError::TooLarge)?;
        let mut buf = vec![0u8; len];
        let mut got = 0;
        while let Some(rest) = buf.get_mut(got..).filter(|r| !r.is_empty()) {
            let at = offset
                .checked_add(got as u64)
                .ok_or(ElfError::OutOfRange("offsets"))?;
            match self.src.read_at(rest, at) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ElfError::Io(e.to_string().to_lowercase())),
            }
        }
        buf.truncate(got);
        Ok(buf)
    }

    fn exact(&mut self, offset: u64, len: usize, what: &'static str) -> Result<Vec<u8>, ElfError> {
        let b = self.some(offset, len)?;
        if b.len() < len {
            return Err(ElfError::Truncated(what));
        }
        Ok(b)
    }

    /// The NUL-terminated string at `offset`, at most `limit` bytes away.
    fn string(&mut self, offset: u64, limit: u64, what: &'static str) -> Result<String, ElfError> {
        let mut out = Vec::new();
        let limit = usize::try_from(limit).unwrap_or(usize::MAX).min(MAX_STR);
        while out.len() < limit {
            let want = (limit - out.len()).min(256);
            let chunk = self.some(offset.saturating_add(out.len() as u64), want)?;
            if let Some(end) = chunk.iter().position(|b| *b == 0) {
                out.extend_from_slice(chunk.get(..end).unwrap_or_default());
                return Ok(String::from_utf8_lossy(&out).into_owned());
            }
            if chunk.len() < want {
                return Err(ElfError::Truncated(what));
            }
            out.extend_from_slice(&chunk);
        }
        Err(ElfError::Unterminated)
    }
}

/// A PT_LOAD: where its bytes are in the file and in memory.
struct Load {
    vaddr: u64,
    offset: u64,
    filesz: u64,
}

/// The file offset of address `addr`, and how many of the segment's file
/// bytes follow it, as the loader maps them.
fn file_offset(loads: &[Load], addr: u64) -> Option<(u64, u64)> {
    loads.iter().find_map(|l| {
        let into = addr.checked_sub(l.vaddr).filter(|d| *d < l.filesz)?;
        Some((l.offset.checked_add(into)?, l.filesz - into))
    })
}

/// The dynamic section of a 64-bit x86-64 ELF object; `None` when it has
/// none (a static executable) or is not such an object.
pub fn dynamic<R: ReadAt + ?Sized>(src: &R) -> Result<Option<Dynamic>, ElfError> {
    let mut r = Reader {
        src,
        left: MAX_READ,
    };
    let ehdr = r.some(0, EHDR_SIZE)?;
    if class(&ehdr) != Class::X86_64 {
        return Ok(None);
    }
    if ehdr.len() < EHDR_SIZE {
        return Err(ElfError::Truncated("elf header"));
    }
    let field = |v: Option<u64>| v.ok_or(ElfError::Truncated("elf header"));
    let phoff = field(le64(&ehdr, 0x20))?;
    let phentsize = field(le16(&ehdr, 0x36).map(u64::from))?;
    let phnum = usize::from(le16(&ehdr, 0x38).unwrap_or(0));
    if phnum == 0 {
        return Ok(None);
    }
    // The loader refuses other sizes; 0xffff (PN_XNUM) is over the bound.
    if phentsize != PHDR_SIZE as u64 {
        return Err(ElfError::OutOfRange("program header size"));
    }
    if phnum > MAX_PHNUM {
        return Err(ElfError::TooMany("program headers"));
    }
    let table = r.exact(phoff, phnum * PHDR_SIZE, "program headers")?;
    let mut loads = Vec::new();
    let mut dyn_at = None;
    for ph in table.chunks_exact(PHDR_SIZE) {
        let get = |at| le64(ph, at).unwrap_or(0);
        match le32(ph, 0).unwrap_or(0) {
            PT_LOAD => loads.push(Load {
                vaddr: get(16),
                offset: get(8),
                filesz: get(32),
            }),
            PT_DYNAMIC if dyn_at.is_none() => dyn_at = Some(get(16)),
            _ => {}
        }
    }
    let Some(dyn_addr) = dyn_at else {
        return Ok(None);
    };
    // The loader finds the section by its address, not p_offset.
    let (dyn_off, dyn_left) =
        file_offset(&loads, dyn_addr).ok_or(ElfError::OutOfRange("dynamic section"))?;
    let most = usize::try_from(dyn_left)
        .unwrap_or(usize::MAX)
        .min(MAX_DYN * DYN_SIZE);
    let section = r.some(dyn_off, most - most % DYN_SIZE)?;
    let (mut strtab, mut strsz) = (None, None);
    let (mut needed, mut soname, mut runpath, mut rpath) = (Vec::new(), None, None, None);
    let mut ended = false;
    for d in section.chunks_exact(DYN_SIZE) {
        let (tag, val) = (le64(d, 0).unwrap_or(0), le64(d, 8).unwrap_or(0));
        match tag {
            DT_NULL => {
                ended = true;
                break;
            }
            DT_NEEDED if needed.len() >= MAX_NEEDED => return Err(ElfError::TooMany("DT_NEEDED")),
            DT_NEEDED => needed.push(val),
            DT_STRTAB => strtab = Some(val),
            DT_STRSZ => strsz = Some(val),
            DT_SONAME => soname = Some(val),
            DT_RPATH => rpath = Some(val),
            DT_RUNPATH => runpath = Some(val),
            _ => {}
        }
    }
    if !ended {
        return Err(if section.len() == MAX_DYN * DYN_SIZE {
            ElfError::TooMany("dynamic entries")
        } else {
            ElfError::Truncated("dynamic section")
        });
    }
    let mut out = Dynamic::default();
    if needed.is_empty() && soname.is_none() && runpath.is_none() && rpath.is_none() {
        return Ok(Some(out));
    }
    let strtab = strtab.ok_or(ElfError::OutOfRange("string table (no DT_STRTAB)"))?;
    let (str_off, str_left) =
        file_offset(&loads, strtab).ok_or(ElfError::OutOfRange("string table"))?;
    let size = strsz.map_or(str_left, |s| s.min(str_left));
    let mut text = |at: u64| -> Result<String, ElfError> {
        let left = size
            .checked_sub(at)
            .filter(|l| *l > 0)
            .ok_or(ElfError::OutOfRange("string table entries"))?;
        r.string(str_off.saturating_add(at), left, "string table")
    };
    for at in needed {
        out.needed.push(text(at)?);
    }
    out.soname = soname.map(&mut text).transpose()?;
    out.runpath = runpath.map(&mut text).transpose()?;
    out.rpath = rpath.map(&mut text).transpose()?;
    Ok(Some(out))
}

/// A small x86-64 object for tests: one PT_LOAD over the whole file at
/// 0x400000, a PT_DYNAMIC (and a PT_INTERP when asked for), the dynamic
/// entries and their strings.
#[cfg(test)]
#[derive(Default)]
pub struct Synthetic<'a> {
    pub interp: Option<&'a str>,
    pub needed: &'a [&'a str],
    pub soname: Option<&'a str>,
    pub runpath: Option<&'a str>,
    pub rpath: Option<&'a str>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
impl Synthetic<'_> {
    pub fn bytes(&self) -> Vec<u8> {
        const BASE: u64 = 0x40_0000;
        let mut strings = vec![0u8];
        let mut add = |s: &str| {
            let at = strings.len() as u64;
            strings.extend_from_slice(s.as_bytes());
            strings.push(0);
            at
        };
        let mut dyns: Vec<(u64, u64)> = self.needed.iter().map(|n| (DT_NEEDED, add(n))).collect();
        for (tag, value) in [
            (DT_SONAME, self.soname),
            (DT_RUNPATH, self.runpath),
            (DT_RPATH, self.rpath),
        ] {
            if let Some(v) = value {
                dyns.push((tag, add(v)));
            }
        }
        let interp = self.interp.map(|i| format!("{i}\0"));
        let phnum = 2 + u64::from(interp.is_some());
        let interp_off = EHDR_SIZE as u64 + phnum * PHDR_SIZE as u64;
        let dyn_off = interp_off + interp.as_ref().map_or(0, |i| i.len() as u64);
        let str_off = dyn_off + (dyns.len() as u64 + 3) * DYN_SIZE as u64;
        dyns.push((DT_STRTAB, BASE + str_off));
        dyns.push((DT_STRSZ, strings.len() as u64));
        dyns.push((DT_NULL, 0));
        let total = str_off + strings.len() as u64;
        let mut f = Vec::new();
        f.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
        f.extend_from_slice(&3u16.to_le_bytes()); // ET_DYN
        f.extend_from_slice(&EM_X86_64.to_le_bytes());
        f.extend_from_slice(&1u32.to_le_bytes());
        f.extend_from_slice(&0u64.to_le_bytes()); // entry
        f.extend_from_slice(&(EHDR_SIZE as u64).to_le_bytes()); // phoff
        f.extend_from_slice(&0u64.to_le_bytes()); // shoff
        f.extend_from_slice(&0u32.to_le_bytes());
        for v in [EHDR_SIZE as u64, PHDR_SIZE as u64, phnum, 64, 0, 0] {
            f.extend_from_slice(&(v as u16).to_le_bytes());
        }
        let phdr = |f: &mut Vec<u8>, ty: u32, off: u64, size: u64| {
            f.extend_from_slice(&ty.to_le_bytes());
            f.extend_from_slice(&4u32.to_le_bytes());
            for v in [off, BASE + off, BASE + off, size, size, 8] {
                f.extend_from_slice(&v.to_le_bytes());
            }
        };
        phdr(&mut f, PT_LOAD, 0, total);
        phdr(
            &mut f,
            PT_DYNAMIC,
            dyn_off,
            dyns.len() as u64 * DYN_SIZE as u64,
        );
        if let Some(i) = &interp {
            phdr(&mut f, PT_INTERP, interp_off, i.len() as u64);
            f.extend_from_slice(i.as_bytes());
        }
        for (t, v) in dyns {
            f.extend_from_slice(&t.to_le_bytes());
            f.extend_from_slice(&v.to_le_bytes());
        }
        f.extend_from_slice(&strings);
        assert_eq!(f.len() as u64, total);
        f
    }
}

/// `Synthetic` with only these entries.
#[cfg(test)]
pub fn synthetic(needed: &[&str], runpath: Option<&str>, rpath: Option<&str>) -> Vec<u8> {
    Synthetic {
        needed,
        runpath,
        rpath,
        ..Synthetic::default()
    }
    .bytes()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_interpreter() {
        let sh = std::fs::read("/bin/sh").unwrap();
        let found = interp(&sh).unwrap();
        assert!(found.starts_with('/') && found.contains("ld"), "{found}");
        assert_eq!(interp(b"#!/bin/sh\n"), None);
        // Truncated headers and offsets out of range are no interpreter.
        assert_eq!(interp(&sh[..0x30]), None);
        let mut bad = sh[..64].to_vec();
        bad[0x20..0x28].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(interp(&bad), None);
    }

    #[test]
    fn reads_needed_runpath_and_rpath() {
        let f = synthetic(
            &["libb.so.1", "libc.so.6"],
            Some("$ORIGIN/../lib"),
            Some("/r"),
        );
        let d = dynamic(f.as_slice()).unwrap().unwrap();
        assert_eq!(d.needed, ["libb.so.1", "libc.so.6"]);
        assert_eq!(d.runpath.as_deref(), Some("$ORIGIN/../lib"));
        assert_eq!(d.rpath.as_deref(), Some("/r"));
        assert_eq!(d.soname, None);
        assert_eq!(class(&f), Class::X86_64);
        let exe = Synthetic {
            interp: Some("/lib64/ld.so"),
            needed: &["liba.so"],
            soname: Some("exe"),
            ..Synthetic::default()
        }
        .bytes();
        assert_eq!(interp(&exe).unwrap(), "/lib64/ld.so");
        let d = dynamic(exe.as_slice()).unwrap().unwrap();
        assert_eq!(
            (d.needed, d.soname.unwrap()),
            (vec!["liba.so".to_string()], "exe".into())
        );
        // A real one, read through the file: its string table lies past
        // the first 64 KB for many libraries, not for all.
        let bash = std::fs::File::open("/bin/bash").unwrap();
        let d = dynamic(&bash).unwrap().unwrap();
        assert!(d.needed.iter().any(|n| n == "libc.so.6"), "{d:?}");
        let libc = std::fs::File::open("/lib/x86_64-linux-gnu/libc.so.6").unwrap();
        let d = dynamic(&libc).unwrap().unwrap();
        assert_eq!(d.soname.as_deref(), Some("libc.so.6"));
    }

    #[test]
    fn other_classes_and_non_elf() {
        let mut f = synthetic(&["x"], None, None);
        assert_eq!(class(b"#!/bin/sh\n"), Class::NotElf);
        assert_eq!(class(b"\x7fEL"), Class::NotElf);
        assert_eq!(dynamic(b"libc".as_slice()).unwrap(), None);
        f[18] = 3; // EM_386
        assert_eq!(class(&f), Class::Foreign);
        assert_eq!(dynamic(f.as_slice()).unwrap(), None);
        f[18] = 62;
        f[4] = 1; // ELFCLASS32
        assert_eq!(class(&f), Class::Foreign);
    }

    #[test]
    fn hostile_objects_are_errors_not_panics() {
        let good = synthetic(&["liba.so", "libb.so"], Some("/x"), None);
        // Cut at every length: an error or nothing, never a wrong list.
        for n in 0..good.len() {
            match dynamic(&good[..n]) {
                Ok(None) => assert!(n < 20, "{n}"),
                Ok(Some(d)) => panic!("{n}: {d:?}"),
                Err(_) => {}
            }
        }
        let set = |at: usize, v: u64| {
            let mut f = good.clone();
            f[at..at + 8].copy_from_slice(&v.to_le_bytes());
            f
        };
        let dyn0 = EHDR_SIZE + 2 * PHDR_SIZE;
        let ph1 = EHDR_SIZE + PHDR_SIZE;
        for (f, want) in [
            // Program headers far past the end.
            (
                set(0x20, u64::MAX - 8),
                ElfError::Truncated("program headers"),
            ),
            // PT_DYNAMIC at an address no PT_LOAD maps, wrapping.
            (
                set(ph1 + 16, u64::MAX),
                ElfError::OutOfRange("dynamic section"),
            ),
            // DT_NEEDED's name past the string table.
            (
                set(dyn0 + 8, 1 << 40),
                ElfError::OutOfRange("string table entries"),
            ),
            // DT_STRTAB unmapped.
            (
                set(dyn0 + 3 * 16 + 8, 7),
                ElfError::OutOfRange("string table"),
            ),
        ] {
            assert_eq!(dynamic(f.as_slice()), Err(want));
        }
        // A PT_LOAD claiming more than the file holds: the strings are cut.
        let mut f = set(EHDR_SIZE + 32, u64::MAX / 2);
        f.truncate(f.len() - 3);
        assert!(dynamic(f.as_slice()).is_err());
        // No DT_NULL: the section runs into the strings and off the end.
        let mut f = set(dyn0 + 5 * 16, 0x1234);
        f.truncate(dyn0 + 6 * 16);
        f[EHDR_SIZE + 32..EHDR_SIZE + 40].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
        assert!(dynamic(f.as_slice()).is_err());
        // Huge counts: phnum 0xffff, more DT_NEEDED than any object has.
        let mut f = good.clone();
        f[0x38..0x3a].copy_from_slice(&0xffffu16.to_le_bytes());
        assert_eq!(
            dynamic(f.as_slice()),
            Err(ElfError::TooMany("program headers"))
        );
        let many: Vec<String> = (0..MAX_NEEDED + 1).map(|i| format!("l{i}")).collect();
        let names: Vec<&str> = many.iter().map(String::as_str).collect();
        let f = synthetic(&names, None, None);
        assert_eq!(dynamic(f.as_slice()), Err(ElfError::TooMany("DT_NEEDED")));
        // Long strings: each is cut at PATH_MAX, all reads within budget.
        let long = "a".repeat(MAX_STR + 10);
        let f = synthetic(&[long.as_str()], None, None);
        assert_eq!(dynamic(f.as_slice()), Err(ElfError::Unterminated));
        let long = "a".repeat(MAX_STR - 1);
        let names = vec![long.as_str(); MAX_NEEDED];
        let f = synthetic(&names, None, None);
        assert_eq!(dynamic(f.as_slice()), Err(ElfError::TooLarge));
    }
}
