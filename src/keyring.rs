//! Kernel key retention service by direct syscalls (`add_key`, `keyctl`):
//! libkeyutils has no static musl build here, and the few calls we need are
//! simple. Every function returns the kernel's errno untouched; turning it
//! into words for the user is the caller's job (it knows what was being done).

use crate::secret::Secret;
use nix::errno::Errno;
use nix::libc::{self, c_long};
use std::ffi::CString;
use std::fmt;

pub type KeySerial = i32;

// Special keyring ids (include/uapi/linux/keyctl.h).
pub const THREAD_KEYRING: KeySerial = -1;
pub const PROCESS_KEYRING: KeySerial = -2;
pub const SESSION_KEYRING: KeySerial = -3;
pub const USER_KEYRING: KeySerial = -4;
pub const USER_SESSION_KEYRING: KeySerial = -5;

const KEYCTL_GET_KEYRING_ID: c_long = 0;
const KEYCTL_JOIN_SESSION_KEYRING: c_long = 1;
const KEYCTL_SETPERM: c_long = 5;
const KEYCTL_DESCRIBE: c_long = 6;
const KEYCTL_LINK: c_long = 8;
const KEYCTL_UNLINK: c_long = 9;
const KEYCTL_SEARCH: c_long = 10;
const KEYCTL_READ: c_long = 11;
const KEYCTL_RESTRICT_KEYRING: c_long = 29;

/// Permission bits (`KEY_POS_*` and `KEY_USR_*`, keyctl.h): possessor in the
/// top byte, owner in the next.
pub const PERM_POS_SHIFT: u32 = 24;
pub const PERM_USR_SHIFT: u32 = 16;
pub const PERM_VIEW: u32 = 0x01;
pub const PERM_READ: u32 = 0x02;
pub const PERM_WRITE: u32 = 0x04;
pub const PERM_SEARCH: u32 = 0x08;
pub const PERM_LINK: u32 = 0x10;
pub const PERM_SETATTR: u32 = 0x20;

/// Where keys go, as `--keyring` spells it: `@u`, `@s`, `@us`, `@p`, `@t`,
/// or a key serial number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyringSpec(pub KeySerial);

impl KeyringSpec {
    pub fn parse(text: &str) -> Option<KeyringSpec> {
        let id = match text {
            "@t" => THREAD_KEYRING,
            "@p" => PROCESS_KEYRING,
            "@s" => SESSION_KEYRING,
            "@u" => USER_KEYRING,
            "@us" => USER_SESSION_KEYRING,
            _ => match text.parse::<KeySerial>() {
                Ok(n) if n > 0 => n,
                _ => return None,
            },
        };
        Some(KeyringSpec(id))
    }
}

impl fmt::Display for KeyringSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            THREAD_KEYRING => write!(f, "@t"),
            PROCESS_KEYRING => write!(f, "@p"),
            SESSION_KEYRING => write!(f, "@s"),
            USER_KEYRING => write!(f, "@u"),
            USER_SESSION_KEYRING => write!(f, "@us"),
            n => write!(f, "{n}"),
        }
    }
}

fn cstr(s: &str) -> Result<CString, Errno> {
    CString::new(s).map_err(|_| Errno::EINVAL)
}

fn check(ret: c_long) -> Result<c_long, Errno> {
    if ret < 0 { Err(Errno::last()) } else { Ok(ret) }
}

/// `add_key(2)`. If a key of the same type and description is already in
/// `keyring`, the kernel updates it instead (see kernel-interfaces pitfall 8).
pub fn add_key(
    key_type: &str,
    description: Option<&str>,
    payload: &[u8],
    keyring: KeySerial,
) -> Result<KeySerial, Errno> {
    let t = cstr(key_type)?;
    let d = description.map(cstr).transpose()?;
    let d_ptr = d.as_ref().map_or(std::ptr::null(), |d| d.as_ptr());
    let (p_ptr, p_len) = if payload.is_empty() {
        (std::ptr::null(), 0)
    } else {
        (payload.as_ptr(), payload.len())
    };
    // SAFETY: pointers are valid NUL-terminated strings / a slice for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_add_key,
            t.as_ptr(),
            d_ptr,
            p_ptr,
            p_len,
            keyring as c_long,
        )
    };
    check(ret).map(|id| id as KeySerial)
}

/// A new keyring named `name` linked into `parent`.
pub fn new_keyring(name: &str, parent: KeySerial) -> Result<KeySerial, Errno> {
    add_key("keyring", Some(name), &[], parent)
}

/// Resolves a special id (`@u`...) to the serial of the keyring.
pub fn keyring_id(spec: KeyringSpec, create: bool) -> Result<KeySerial, Errno> {
    // SAFETY: plain integer arguments.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_GET_KEYRING_ID,
            spec.0 as c_long,
            create as c_long,
        )
    };
    check(ret).map(|id| id as KeySerial)
}

/// Joins a new anonymous session keyring (tests use this to get a private
/// keyring per test thread; the boot path never calls it).
pub fn join_new_session() -> Result<KeySerial, Errno> {
    // SAFETY: NULL name means a new anonymous keyring.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_JOIN_SESSION_KEYRING,
            std::ptr::null::<u8>(),
        )
    };
    check(ret).map(|id| id as KeySerial)
}

/// Searches `keyring` and the keyrings linked from it for a key.
pub fn search(
    keyring: KeySerial,
    key_type: &str,
    description: &str,
) -> Result<Option<KeySerial>, Errno> {
    let t = cstr(key_type)?;
    let d = cstr(description)?;
    // SAFETY: valid strings; destination 0 means do not link.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_SEARCH,
            keyring as c_long,
            t.as_ptr(),
            d.as_ptr(),
            0 as c_long,
        )
    };
    match check(ret) {
        Ok(id) => Ok(Some(id as KeySerial)),
        Err(Errno::ENOKEY) | Err(Errno::EKEYREVOKED) | Err(Errno::EKEYEXPIRED) => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn link(key: KeySerial, keyring: KeySerial) -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_LINK,
            key as c_long,
            keyring as c_long,
        )
    };
    check(ret).map(|_| ())
}

pub fn unlink(key: KeySerial, keyring: KeySerial) -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_UNLINK,
            key as c_long,
            keyring as c_long,
        )
    };
    check(ret).map(|_| ())
}

/// `KEYCTL_RESTRICT_KEYRING` with no type and no restriction: the kernel
/// refuses every later link into `keyring` (EPERM), `add_key` included.
/// Once set it cannot be lifted (a second call is EEXIST).
pub fn restrict_all_links(keyring: KeySerial) -> Result<(), Errno> {
    // SAFETY: plain integers; NULL type and restriction are the documented
    // "no more links" form.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_RESTRICT_KEYRING,
            keyring as c_long,
            std::ptr::null::<u8>(),
            std::ptr::null::<u8>(),
        )
    };
    check(ret).map(|_| ())
}

/// `KEYCTL_SETPERM`.
pub fn set_perm(key: KeySerial, perm: u32) -> Result<(), Errno> {
    // SAFETY: plain integer arguments.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_SETPERM,
            key as c_long,
            perm as c_long,
        )
    };
    check(ret).map(|_| ())
}

/// What `KEYCTL_DESCRIBE` says of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub id: KeySerial,
    pub key_type: String,
    pub uid: u32,
    pub gid: u32,
    pub perm: u32,
    pub description: String,
}

/// Calls a keyctl that fills a buffer and returns the full size, growing the
/// buffer until the answer fits (bounded: a key changing under us repeatedly
/// is an error, not a loop).
fn keyctl_buffer(op: c_long, id: KeySerial, buf: &mut Vec<u8>) -> Result<usize, Errno> {
    for _ in 0..4 {
        // SAFETY: buf is valid for buf.len() bytes.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                op,
                id as c_long,
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        let size = check(ret)? as usize;
        if size <= buf.len() {
            return Ok(size);
        }
        buf.resize(size, 0);
    }
    Err(Errno::EAGAIN)
}

pub fn describe(id: KeySerial) -> Result<KeyInfo, Errno> {
    let mut buf = vec![0u8; 256];
    let size = keyctl_buffer(KEYCTL_DESCRIBE, id, &mut buf)?;
    buf.truncate(size);
    // "type;uid;gid;perm;description\0"
    if buf.last() == Some(&0) {
        buf.pop();
    }
    let text = String::from_utf8_lossy(&buf);
    let mut parts = text.splitn(5, ';');
    let key_type = parts.next().unwrap_or_default().to_string();
    let uid = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u32::MAX);
    let gid = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(u32::MAX);
    let perm = parts
        .next()
        .and_then(|s| u32::from_str_radix(s, 16).ok())
        .unwrap_or(0);
    let description = parts.next().unwrap_or_default().to_string();
    Ok(KeyInfo {
        id,
        key_type,
        uid,
        gid,
        perm,
        description,
    })
}

impl KeyInfo {
    /// Neither the possessor nor the owner may write to (add to, clear,
    /// unlink from) this key or change its permissions back.
    pub fn is_write_locked(&self) -> bool {
        let mask = (PERM_WRITE | PERM_SETATTR) << PERM_POS_SHIFT
            | (PERM_WRITE | PERM_SETATTR) << PERM_USR_SHIFT;
        self.perm & mask == 0
    }
}

/// The keys linked in a keyring.
pub fn list(keyring: KeySerial) -> Result<Vec<KeySerial>, Errno> {
    let mut buf = vec![0u8; 4 * 64];
    let size = keyctl_buffer(KEYCTL_READ, keyring, &mut buf)?;
    buf.truncate(size);
    Ok(buf
        .chunks_exact(4)
        .filter_map(|c| c.try_into().ok().map(KeySerial::from_ne_bytes))
        .collect())
}

/// The payload of a readable key (`user`) into a zeroized buffer. The size
/// is asked first so the buffer is allocated once, never grown with a copy.
pub fn read_secret(id: KeySerial) -> Result<Secret, Errno> {
    for _ in 0..4 {
        // SAFETY: NULL buffer with length 0 asks for the size only.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                KEYCTL_READ,
                id as c_long,
                std::ptr::null_mut::<u8>(),
                0usize,
            )
        };
        let size = check(ret)? as usize;
        let mut secret = Secret::zeroed(size);
        let buf = secret.expose_mut();
        // SAFETY: buf is valid for size bytes.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                KEYCTL_READ,
                id as c_long,
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        if check(ret)? as usize == size {
            return Ok(secret);
        }
    }
    Err(Errno::EAGAIN)
}

/// The payload of a key that is not secret (an exported encrypted-key blob).
pub fn read(id: KeySerial) -> Result<Vec<u8>, Errno> {
    let mut buf = vec![0u8; 512];
    let size = keyctl_buffer(KEYCTL_READ, id, &mut buf)?;
    buf.truncate(size);
    Ok(buf)
}

/// A keyring the kernel made itself (`.ima`, `.evm`), found by name. These
/// are in no process keyring, so as keyutils' `%keyring:` syntax does, we
/// look them up in /proc/keys (root sees them: they grant the owner view).
pub fn find_system_keyring(name: &str) -> Option<KeySerial> {
    let file = std::fs::File::open("/proc/keys").ok()?;
    let text = String::from_utf8(crate::rootfs::read_sizeless(file, u64::MAX).ok()?).ok()?;
    proc_keys_lookup(&text, name)
}

fn proc_keys_lookup(text: &str, name: &str) -> Option<KeySerial> {
    // "id flags usage timeout perm uid gid type description: summary"
    text.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (id, ktype, desc) = (fields.first()?, fields.get(7)?, fields.get(8)?);
        let desc = desc.strip_suffix(':').unwrap_or(desc);
        if *ktype == "keyring" && desc == name {
            i32::from_str_radix(id, 16).ok()
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_parse() {
        assert_eq!(KeyringSpec::parse("@u"), Some(KeyringSpec(USER_KEYRING)));
        assert_eq!(
            KeyringSpec::parse("@us"),
            Some(KeyringSpec(USER_SESSION_KEYRING))
        );
        assert_eq!(KeyringSpec::parse("123"), Some(KeyringSpec(123)));
        assert_eq!(KeyringSpec::parse("-3"), None);
        assert_eq!(KeyringSpec::parse("@x"), None);
        assert_eq!(KeyringSpec(SESSION_KEYRING).to_string(), "@s");
    }

    #[test]
    fn proc_keys() {
        let text = "\
0a6d3f2e I--Q---     1 perm 3f030000     0     0 keyring   _ses: 1
1bb8b1f0 I------     1 perm 1f0b0000     0     0 keyring   .ima: empty
2bb8b1f0 I------     1 perm 1f0b0000     0     0 user      .evm: 32
";
        assert_eq!(proc_keys_lookup(text, ".ima"), Some(0x1bb8b1f0));
        assert_eq!(proc_keys_lookup(text, ".evm"), None);
    }

    #[test]
    fn roundtrip_in_private_session() {
        // Real kernel keyrings, in a session keyring private to this thread.
        let session = join_new_session().unwrap();
        let id = add_key("user", Some("il-unit"), b"abc", session).unwrap();
        assert_eq!(search(session, "user", "il-unit").unwrap(), Some(id));
        let info = describe(id).unwrap();
        assert_eq!(
            (info.key_type.as_str(), info.description.as_str()),
            ("user", "il-unit")
        );
        assert_eq!(read_secret(id).unwrap().expose(), b"abc");
        assert_eq!(list(session).unwrap(), vec![id]);
        unlink(id, session).unwrap();
        assert_eq!(search(session, "user", "il-unit").unwrap(), None);
    }

    #[test]
    fn a_restricted_keyring_takes_no_more_keys_even_with_write_permission() {
        let session = join_new_session().unwrap();
        let ring = new_keyring("il-restrict", session).unwrap();
        add_key("user", Some("before"), b"x", ring).unwrap();
        restrict_all_links(ring).unwrap();
        // Permissions untouched: the restriction alone refuses the link.
        assert_eq!(
            add_key("user", Some("after"), b"y", ring),
            Err(Errno::EPERM)
        );
        assert_eq!(restrict_all_links(ring), Err(Errno::EEXIST));
        assert!(!describe(ring).unwrap().is_write_locked());
        assert_eq!(list(ring).unwrap().len(), 1);
    }
}
