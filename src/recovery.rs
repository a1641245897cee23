//! The recovery key of a tpm2 kmk: 200 random bits a person writes down
//! (40 characters in 8 groups), and a file beside the sealed kmk holding
//! the kmk wrapped under a key derived from it with Argon2id (memory-hard:
//! each guess costs RECOVERY_KDF memory and time). AES-256-CFB then
//! HMAC-SHA256 over the whole file (encrypt-then-MAC), so a wrong key or
//! a changed file is found before anything is decrypted. At boot, when the
//! TPM does not unseal the kmk, the key is asked for through systemd's
//! password agent in a systemd initramfs, on the console otherwise.

use crate::secret::Secret;
use aes::Aes256;
use cfb_mode::cipher::KeyIvInit;
use hmac::{Hmac, KeyInit, Mac};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use sha2::Sha256;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

/// The file beside the sealed kmk: MASTERKEY + this.
pub const SUFFIX: &str = ".recovery";
/// Crockford's base32: no I, L, O or U to misread.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const KEY_BYTES: usize = 25;
const KEY_CHARS: usize = 40;
const GROUP: usize = 5;
const MAGIC: &str = "integrity-loader recovery 1";
const SALT_LEN: usize = 16;
const IV_LEN: usize = 16;
/// A kmk is a `user` key payload of at most 32767 bytes; ours are 32.
const KMK_MAX: usize = 4096;
/// The file is small; anything bigger is not ours.
pub const FILE_LIMIT: usize = 16 * 1024;
/// Tries at the prompt before FAILURE_ACTION applies.
pub const TRIES: u32 = 3;

/// Argon2id cost, as recorded in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

/// 64 MiB, 3 passes, 1 lane: about a second on a small machine, and an
/// initramfs has the memory.
pub const DEFAULT_KDF: KdfParams = KdfParams {
    m_kib: 64 * 1024,
    t: 3,
    p: 1,
};

/// What a file may ask for: a hostile file must not exhaust the memory
/// or the time of a boot.
const M_KIB_MAX: u32 = 512 * 1024;
const T_MAX: u32 = 10;
const P_MAX: u32 = 4;

/// A new recovery key from the kernel's generator.
pub fn new_key() -> Result<Secret, String> {
    let mut key = Secret::zeroed(KEY_BYTES);
    crate::random::fill(key.expose_mut())
        .map_err(|e| format!("read the kernel's random generator: {}", e.desc()))?;
    Ok(key)
}

/// The key as a person types it: `XXXXX-XXXXX-...`, 8 groups of 5.
pub fn format_key(key: &Secret) -> Secret {
    let mut out = Secret::zeroed(KEY_CHARS + KEY_CHARS / GROUP - 1);
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut n = 0;
    let mut pos = 0;
    for byte in key.expose() {
        acc = (acc << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            let c = ALPHABET
                .get(((acc >> bits) & 31) as usize)
                .copied()
                .unwrap_or(b'0');
            if n > 0 && n % GROUP == 0 {
                if let Some(o) = out.expose_mut().get_mut(pos) {
                    *o = b'-';
                }
                pos += 1;
            }
            if let Some(o) = out.expose_mut().get_mut(pos) {
                *o = c;
            }
            pos += 1;
            n += 1;
        }
        acc &= 0xff;
    }
    zeroize::Zeroize::zeroize(&mut acc);
    out
}

/// The key from what was typed: case, spaces and dashes do not matter,
/// and O, I and L are read as 0, 1 and 1. `None` unless 40 characters of
/// the alphabet.
pub fn parse_key(typed: &[u8]) -> Option<Secret> {
    let mut key = Secret::zeroed(KEY_BYTES);
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut chars = 0;
    let mut pos = 0;
    for c in typed {
        let c = match c.to_ascii_uppercase() {
            b' ' | b'-' | b'\t' => continue,
            b'O' => b'0',
            b'I' | b'L' => b'1',
            c => c,
        };
        let v = ALPHABET.iter().position(|a| *a == c)? as u32;
        chars += 1;
        if chars > KEY_CHARS {
            return None;
        }
        acc = ((acc << 5) | v) & 0xffff;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            *key.expose_mut().get_mut(pos)? = (acc >> bits) as u8;
            pos += 1;
        }
    }
    zeroize::Zeroize::zeroize(&mut acc);
    (chars == KEY_CHARS).then_some(key)
}

/// Argon2id(key, salt) split into the AES key and the HMAC key.
fn derive(key: &Secret, salt: &[u8], kdf: KdfParams) -> Result<Secret, String> {
    if !(8 * kdf.p..=M_KIB_MAX).contains(&kdf.m_kib)
        || !(1..=T_MAX).contains(&kdf.t)
        || !(1..=P_MAX).contains(&kdf.p)
    {
        return Err(format!(
            "argon2id m={} t={} p={} is outside what the loader allows (m up to {M_KIB_MAX} KiB, t 1..{T_MAX}, p 1..{P_MAX})",
            kdf.m_kib, kdf.t, kdf.p
        ));
    }
    let params = argon2::Params::new(kdf.m_kib, kdf.t, kdf.p, Some(64))
        .map_err(|e| format!("argon2id parameters: {e}"))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Secret::zeroed(64);
    argon
        .hash_password_into(key.expose(), salt, out.expose_mut())
        .map_err(|e| format!("argon2id: {e}"))?;
    Ok(out)
}

fn mac(keys: &Secret, text: &[u8]) -> Result<Hmac<Sha256>, String> {
    let mac_key = keys.expose().get(32..).unwrap_or_default();
    let mut h =
        <Hmac<Sha256> as KeyInit>::new_from_slice(mac_key).map_err(|_| "hmac key".to_string())?;
    h.update(text);
    Ok(h)
}

fn cfb(keys: &Secret, iv: &[u8], data: &mut [u8], encrypt: bool) -> Result<(), String> {
    let aes_key = keys.expose().get(..32).unwrap_or_default();
    if encrypt {
        cfb_mode::Encryptor::<Aes256>::new_from_slices(aes_key, iv)
            .map_err(|_| "aes key".to_string())?
            .encrypt(data);
    } else {
        cfb_mode::Decryptor::<Aes256>::new_from_slices(aes_key, iv)
            .map_err(|_| "aes key".to_string())?
            .decrypt(data);
    }
    Ok(())
}

/// The recovery file's text: `kmk` wrapped under `key`.
pub fn wrap(kmk: &Secret, key: &Secret, kdf: KdfParams) -> Result<String, String> {
    let mut salt = [0u8; SALT_LEN];
    let mut iv = [0u8; IV_LEN];
    crate::random::fill(&mut salt)
        .and_then(|()| crate::random::fill(&mut iv))
        .map_err(|e| format!("read the kernel's random generator: {}", e.desc()))?;
    let keys = derive(key, &salt, kdf)?;
    let mut data = kmk.expose().to_vec();
    cfb(&keys, &iv, &mut data, true)?;
    let mut text = format!(
        "{MAGIC}\nkdf argon2id m={} t={} p={}\nsalt {}\niv {}\nkmk {}\n",
        kdf.m_kib,
        kdf.t,
        kdf.p,
        crate::hex::encode(&salt),
        crate::hex::encode(&iv),
        crate::hex::encode(&data)
    );
    let tag = mac(&keys, text.as_bytes())?.finalize().into_bytes();
    text.push_str(&format!("mac {}\n", crate::hex::encode(&tag)));
    Ok(text)
}

#[derive(Debug, PartialEq, Eq)]
pub enum UnwrapError {
    /// The MAC does not verify: another key (or a changed file).
    WrongKey,
    /// Not a recovery file the loader can read.
    Malformed(String),
}

/// A recovery file read, before any key is tried.
pub struct Wrapped {
    kdf: KdfParams,
    salt: Vec<u8>,
    iv: Vec<u8>,
    data: Vec<u8>,
    tag: Vec<u8>,
    /// The text the MAC covers.
    signed: Vec<u8>,
}

pub fn parse(file: &[u8]) -> Result<Wrapped, String> {
    let text = std::str::from_utf8(file).map_err(|_| "not text".to_string())?;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let field = |i: usize, name: &str| -> Result<&str, String> {
        let line = lines
            .get(i)
            .ok_or_else(|| format!("ends before its {name} line"))?;
        line.strip_suffix('\n')
            .and_then(|l| l.strip_prefix(name))
            .and_then(|l| l.strip_prefix(' '))
            .ok_or_else(|| format!("expected a {name} line, found {:?}", line.trim_end()))
    };
    if lines.first() != Some(&"integrity-loader recovery 1\n") {
        return Err(format!(
            "not an integrity-loader recovery file (its first line is not {MAGIC:?})"
        ));
    }
    if lines.len() != 6 {
        return Err(format!("has {} lines, not 6", lines.len()));
    }
    let kdf_line = field(1, "kdf")?;
    let kdf = parse_kdf(kdf_line)
        .ok_or_else(|| format!("kdf {kdf_line:?}: expected \"argon2id m=KIB t=N p=N\""))?;
    let hex = |i: usize, name: &str| -> Result<Vec<u8>, String> {
        decode_hex(field(i, name)?).ok_or_else(|| format!("{name}: not hex"))
    };
    let (salt, iv, data, tag) = (
        hex(2, "salt")?,
        hex(3, "iv")?,
        hex(4, "kmk")?,
        hex(5, "mac")?,
    );
    if salt.len() < 8
        || iv.len() != IV_LEN
        || tag.len() != 32
        || data.is_empty()
        || data.len() > KMK_MAX
    {
        return Err("a salt, iv, kmk or mac of the wrong length".into());
    }
    let signed: usize = lines.iter().take(5).map(|l| l.len()).sum();
    Ok(Wrapped {
        kdf,
        salt,
        iv,
        data,
        tag,
        signed: text.as_bytes().get(..signed).unwrap_or_default().to_vec(),
    })
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect()
}

fn parse_kdf(line: &str) -> Option<KdfParams> {
    let mut words = line.split(' ');
    if words.next()? != "argon2id" {
        return None;
    }
    let mut num = |name: &str| -> Option<u32> { words.next()?.strip_prefix(name)?.parse().ok() };
    let kdf = KdfParams {
        m_kib: num("m=")?,
        t: num("t=")?,
        p: num("p=")?,
    };
    words.next().is_none().then_some(kdf)
}

impl Wrapped {
    /// The kmk, when `key` is the recovery key.
    pub fn unwrap(&self, key: &Secret) -> Result<Secret, UnwrapError> {
        let keys = derive(key, &self.salt, self.kdf).map_err(UnwrapError::Malformed)?;
        mac(&keys, &self.signed)
            .map_err(UnwrapError::Malformed)?
            .verify_slice(&self.tag)
            .map_err(|_| UnwrapError::WrongKey)?;
        let mut kmk = Secret::new(self.data.clone());
        cfb(&keys, &self.iv, kmk.expose_mut(), false).map_err(UnwrapError::Malformed)?;
        Ok(kmk)
    }
}

/// What came of asking for the key.
#[derive(Debug)]
pub enum Asked {
    Key(Secret),
    Wrong(u32),
    TimedOut,
    NoAnswer,
}

/// Asks on `tty` (echo off when it is a terminal) up to [`TRIES`] times
/// within `bound` in all; `check` turns a typed key into the kmk.
pub fn ask(
    tty: &str,
    why: &str,
    bound: Duration,
    check: impl FnMut(&Secret) -> Result<Secret, UnwrapError>,
) -> Result<Asked, String> {
    let fd = nix::fcntl::open(
        tty,
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("open {tty} to ask for the recovery key: {}", e.desc()))?;
    let saved = nix::sys::termios::tcgetattr(&fd).ok();
    if let Some(t) = &saved {
        let mut quiet = t.clone();
        quiet
            .local_flags
            .remove(nix::sys::termios::LocalFlags::ECHO);
        let _ = nix::sys::termios::tcsetattr(&fd, nix::sys::termios::SetArg::TCSANOW, &quiet);
    }
    let start = Instant::now();
    say(&fd, &format!("\nintegrity-loader: {why}\n"));
    let result = tries(
        start,
        bound,
        |attempt, left| {
            say(
                &fd,
                &format!(
                    "Enter the recovery key (try {attempt} of {TRIES}, {} s left): ",
                    left.as_secs()
                ),
            );
            let line = read_line(&fd, start, bound)?;
            if let Line::Text(_) = line {
                say(&fd, "\n");
            }
            Ok(line)
        },
        |text| say(&fd, text),
        check,
    );
    if let Some(t) = &saved {
        let _ = nix::sys::termios::tcsetattr(&fd, nix::sys::termios::SetArg::TCSANOW, t);
    }
    result
}

/// The tries, whoever asks: `read` gets one answer (try number, time
/// left), `tell` says how it went where the answer came from.
fn tries(
    start: Instant,
    bound: Duration,
    mut read: impl FnMut(u32, Duration) -> Result<Line, String>,
    mut tell: impl FnMut(&str),
    mut check: impl FnMut(&Secret) -> Result<Secret, UnwrapError>,
) -> Result<Asked, String> {
    let mut wrong = 0;
    while wrong < TRIES {
        let left = bound.saturating_sub(start.elapsed());
        if left.is_zero() {
            tell("\nno recovery key given in time\n");
            return Ok(Asked::TimedOut);
        }
        let line = match read(wrong + 1, left)? {
            Line::Text(l) => l,
            Line::TimedOut => {
                tell("\nno recovery key given in time\n");
                return Ok(Asked::TimedOut);
            }
            Line::Eof => return Ok(Asked::NoAnswer),
        };
        let outcome = match parse_key(line.expose()) {
            Some(key) => check(&key),
            None => Err(UnwrapError::WrongKey),
        };
        match outcome {
            Ok(kmk) => {
                tell("recovery key accepted\n");
                return Ok(Asked::Key(kmk));
            }
            Err(UnwrapError::WrongKey) => {
                wrong += 1;
                log::warn!("recovery key try {wrong} of {TRIES}: not the key");
                tell("not the recovery key\n");
            }
            Err(UnwrapError::Malformed(m)) => return Err(m),
        }
    }
    Ok(Asked::Wrong(wrong))
}

/// systemd's `systemd-ask-password`, when systemd is PID 1 of an initramfs
/// that has it: its agents (console, plymouth) own the console there.
/// $INTEGRITY_LOADER_RECOVERY_TTY set means the console; $INTEGRITY_LOADER_ASK_PASSWORD names
/// another program (a test harness's; empty: none).
pub fn password_agent() -> Option<std::path::PathBuf> {
    if std::env::var_os("INTEGRITY_LOADER_RECOVERY_TTY").is_some() {
        return None;
    }
    if let Some(p) = std::env::var_os("INTEGRITY_LOADER_ASK_PASSWORD") {
        return (!p.is_empty()).then(|| p.into());
    }
    let pid1 = std::fs::read_to_string("/proc/1/comm").ok()?;
    if pid1.trim_end() != "systemd" || !std::path::Path::new("/etc/initrd-release").exists() {
        return None;
    }
    ["/usr/bin/systemd-ask-password", "/bin/systemd-ask-password"]
        .into_iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.is_file())
}

/// Asks through `program` (systemd-ask-password's options), up to
/// [`TRIES`] times within `bound`. The key comes back through a pipe from
/// its stdout; nothing secret is on its command line or in its
/// environment. `Err` when the program cannot be run.
pub fn ask_agent(
    program: &std::path::Path,
    id: &str,
    bound: Duration,
    check: impl FnMut(&Secret) -> Result<Secret, UnwrapError>,
) -> Result<Asked, String> {
    let start = Instant::now();
    let mut last_wrong = false;
    tries(
        start,
        bound,
        |attempt, left| {
            let again = if last_wrong {
                " (the last was not the key)"
            } else {
                ""
            };
            last_wrong = true;
            agent_line(
                program,
                id,
                &format!("Recovery key of the kernel master key, try {attempt} of {TRIES}{again}:"),
                left,
            )
        },
        |_| {},
        check,
    )
}

/// One answer from the agent: its stdout up to the first newline, within
/// `left` (then it is killed).
fn agent_line(
    program: &std::path::Path,
    id: &str,
    prompt: &str,
    left: Duration,
) -> Result<Line, String> {
    use std::os::fd::AsFd;
    // Its own --timeout ends it; the grace covers a slow exit.
    let deadline = Instant::now() + left + Duration::from_secs(2);
    let child = Agent::spawn(
        program,
        &[
            format!("--timeout={}", left.as_secs().max(1)),
            format!("--id={id}"),
            prompt.to_string(),
        ],
    )
    .map_err(|e| {
        format!(
            "run {} to ask for the recovery key: {}",
            program.display(),
            e.desc()
        )
    })?;
    let out = &child.stdout;
    let mut buf = Secret::zeroed(128);
    let mut len = 0;
    let mut ended = false;
    let mut timed_out = false;
    let mut chunk = zeroize::Zeroizing::new([0u8; 64]);
    while !ended {
        let wait = deadline.saturating_duration_since(Instant::now());
        if wait.is_zero() {
            timed_out = true;
            break;
        }
        let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [nix::poll::PollFd::new(
            out.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => {
                child.kill_and_wait();
                return Err(format!("wait for {}: {}", program.display(), e.desc()));
            }
        }
        let n = match nix::unistd::read(out, chunk.as_mut_slice()) {
            Ok(0) => break,
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
            Err(e) => {
                child.kill_and_wait();
                return Err(format!("read from {}: {}", program.display(), e.desc()));
            }
        };
        for c in chunk.get(..n).unwrap_or_default() {
            if *c == b'\n' {
                ended = true;
                break;
            }
            // A longer line is kept short, so it is no key.
            if let Some(b) = buf.expose_mut().get_mut(len) {
                *b = *c;
                len += 1;
            }
        }
    }
    let success = if timed_out {
        child.kill_and_wait();
        false
    } else {
        child
            .wait()
            .map_err(|e| format!("wait for {}: {}", program.display(), e.desc()))?
    };
    Ok(if timed_out {
        Line::TimedOut
    } else if success && (ended || len > 0) {
        Line::Text(cut(buf, len))
    } else if deadline.saturating_duration_since(Instant::now()) <= Duration::from_secs(2) {
        // It gave up at its --timeout.
        Line::TimedOut
    } else {
        Line::Eof
    })
}

/// The password agent as a child process: stdin /dev/null, stdout a pipe
/// to us, stderr ours, our environment. posix_spawn, not
/// std::process::Command, whose machinery would cost the initramfs binary
/// more than this whole prompt.
struct Agent {
    pid: nix::unistd::Pid,
    stdout: OwnedFd,
}

impl Agent {
    fn spawn(program: &std::path::Path, args: &[String]) -> Result<Agent, nix::errno::Errno> {
        use nix::fcntl::OFlag;
        use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, posix_spawn};
        use nix::sys::stat::Mode;
        use std::ffi::CString;
        use std::os::fd::AsRawFd;
        use std::os::unix::ffi::OsStrExt;
        let c = |b: &[u8]| CString::new(b).map_err(|_| nix::errno::Errno::EINVAL);
        let mut argv = vec![c(program.as_os_str().as_bytes())?];
        for a in args {
            argv.push(c(a.as_bytes())?);
        }
        let mut env = Vec::new();
        for (k, v) in std::env::vars_os() {
            env.push(c(&[k.as_bytes(), b"=", v.as_bytes()].concat())?);
        }
        // Close-on-exec: the child gets only the write end, as its stdout.
        let (read_end, write_end) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        let mut actions = PosixSpawnFileActions::init()?;
        actions.add_open(0, "/dev/null", OFlag::O_RDONLY, Mode::empty())?;
        actions.add_dup2(write_end.as_raw_fd(), 1)?;
        let pid = posix_spawn(program, &actions, &PosixSpawnAttr::init()?, &argv, &env)?;
        Ok(Agent {
            pid,
            stdout: read_end,
        })
    }

    /// Whether it exited with status 0.
    fn wait(&self) -> Result<bool, nix::errno::Errno> {
        use nix::sys::wait::{WaitStatus, waitpid};
        loop {
            match waitpid(self.pid, None) {
                Ok(WaitStatus::Exited(_, code)) => return Ok(code == 0),
                Ok(WaitStatus::Signaled(..)) => return Ok(false),
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn kill_and_wait(&self) {
        let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.wait();
    }
}

fn say(fd: &OwnedFd, text: &str) {
    let _ = nix::unistd::write(fd, text.as_bytes());
}

enum Line {
    Text(Secret),
    TimedOut,
    Eof,
}

/// One line, into a buffer allocated once (no copy left behind by a
/// reallocation); a longer line is read to its end and kept short, so it
/// is no key.
fn read_line(fd: &OwnedFd, start: Instant, bound: Duration) -> Result<Line, String> {
    let mut buf = Secret::zeroed(128);
    let mut len = 0;
    loop {
        let left = bound.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Ok(Line::TimedOut);
        }
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [nix::poll::PollFd::new(
            fd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        match nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("wait for the recovery key: {}", e.desc())),
        }
        let mut byte = zeroize::Zeroizing::new([0u8; 1]);
        match nix::unistd::read(fd, byte.as_mut_slice()) {
            Ok(0) | Err(nix::errno::Errno::EIO) => {
                return Ok(if len > 0 {
                    Line::Text(cut(buf, len))
                } else {
                    Line::Eof
                });
            }
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
            Err(e) => return Err(format!("read the recovery key: {}", e.desc())),
        }
        let [c] = *byte;
        if c == b'\n' || c == b'\r' {
            return Ok(Line::Text(cut(buf, len)));
        }
        if let Some(b) = buf.expose_mut().get_mut(len) {
            *b = c;
            len += 1;
        }
    }
}

fn cut(mut buf: Secret, len: usize) -> Secret {
    buf.truncate(len);
    buf
}

/// At boot, after the TPM did not unseal the kmk (`why`): when a recovery
/// file lies beside `blob_path`, ask for its key on the console. `None`
/// when there is no recovery file, so the unseal's failure stands.
pub fn at_boot(
    ctx: &crate::steps::Context,
    blob_path: &str,
    why: &str,
) -> Option<Result<Secret, String>> {
    let path = format!("{blob_path}{SUFFIX}");
    let shown = ctx.root.display_path(&path);
    let bytes = match ctx.root.read(&path, FILE_LIMIT) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return None,
        Err(e) => return Some(Err(format!("{why}; and read recovery file {e}"))),
    };
    if let Err(m) = crate::pins::check_recovery(ctx.settings, &shown, &bytes) {
        return Some(Err(format!("{why}; and {m}")));
    }
    let bound = ctx.settings.tpm.recovery_timeout;
    if bound.is_zero() {
        return Some(Err(format!(
            "{why}; a recovery key exists ({}), but RECOVERY_TIMEOUT=0 says never to ask for it",
            shown
        )));
    }
    let wrapped = match parse(&bytes) {
        Ok(w) => w,
        Err(m) => {
            return Some(Err(format!("{why}; and recovery file {}: {m}", shown)));
        }
    };
    let why_asked = "the TPM did not unseal the kernel master key (the PCR values changed, the storage key is gone, or there is no TPM)";
    let start = Instant::now();
    let mut asked = None;
    let mut via = String::new();
    if let Some(agent) = password_agent() {
        via = format!("through {}", agent.display());
        log::warn!(
            "{why}; asking for the recovery key of {} {via} ({TRIES} tries within {} s)",
            shown,
            bound.as_secs()
        );
        let id = format!("integrity-loader:{}", shown);
        match ask_agent(&agent, &id, bound, |key| wrapped.unwrap(key)) {
            Ok(a) => asked = Some(Ok(a)),
            Err(m) => log::warn!("{m}; asking on the console instead"),
        }
    }
    let asked = match asked {
        Some(a) => a,
        None => {
            let tty = // The test harness's terminal instead of /dev/console (a path,
            // never the key).
            std::env::var("INTEGRITY_LOADER_RECOVERY_TTY")
                .unwrap_or_else(|_| "/dev/console".to_string());
            let left = bound.saturating_sub(start.elapsed());
            log::warn!(
                "{why}; asking for the recovery key of {} on {tty} ({TRIES} tries within {} s)",
                shown,
                left.as_secs()
            );
            via = format!("on {tty}");
            ask(&tty, why_asked, left, |key| wrapped.unwrap(key))
        }
    };
    Some(match asked {
        Ok(Asked::Key(kmk)) => Ok(kmk),
        Ok(Asked::Wrong(n)) => Err(format!(
            "{why}; and {n} recovery keys given {via} did not open {}",
            shown
        )),
        Ok(Asked::TimedOut) => Err(format!(
            "{why}; and no recovery key was given {via} within RECOVERY_TIMEOUT ({} s)",
            bound.as_secs()
        )),
        Ok(Asked::NoAnswer) => Err(format!(
            "{why}; and no recovery key was given {via} (closed, or cancelled)"
        )),
        Err(m) => Err(format!("{why}; and recovery file {}: {m}", shown)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: KdfParams = KdfParams {
        m_kib: 64,
        t: 1,
        p: 1,
    };

    #[test]
    fn a_key_reads_back_as_typed_however_it_is_typed() {
        let key = new_key().unwrap();
        let shown = format_key(&key);
        let text = std::str::from_utf8(shown.expose()).unwrap();
        assert_eq!(text.len(), 47);
        assert_eq!(text.split('-').count(), 8);
        assert!(text.split('-').all(|g| g.len() == 5));
        assert!(
            parse_key(text.as_bytes())
                .unwrap()
                .constant_time_eq(key.expose())
        );
        let sloppy = text
            .to_lowercase()
            .replace('-', " ")
            .replace('0', "o")
            .replace('1', "l");
        assert!(
            parse_key(sloppy.as_bytes())
                .unwrap()
                .constant_time_eq(key.expose())
        );
        assert!(parse_key(&shown.expose()[..46]).is_none());
        assert!(parse_key(format!("{text}0").as_bytes()).is_none());
        assert!(parse_key(&[b'U'; 40]).is_none());
    }

    #[test]
    fn wraps_and_unwraps_only_with_the_key() {
        let kmk = Secret::new(vec![7u8; 32]);
        let key = new_key().unwrap();
        let text = wrap(&kmk, &key, CHEAP).unwrap();
        assert!(!text.contains(&crate::hex::encode(kmk.expose())));
        let w = parse(text.as_bytes()).unwrap();
        assert_eq!(w.unwrap(&key).unwrap().expose(), kmk.expose());
        let other = new_key().unwrap();
        assert_eq!(w.unwrap(&other).unwrap_err(), UnwrapError::WrongKey);
        // A raised cost is covered by the MAC.
        let changed = text.replace("t=1", "t=2");
        let w = parse(changed.as_bytes()).unwrap();
        assert_eq!(w.unwrap(&key).unwrap_err(), UnwrapError::WrongKey);
    }

    #[test]
    fn hostile_files_are_refused_before_any_work() {
        let key = new_key().unwrap();
        let text = wrap(&Secret::new(vec![1; 32]), &key, CHEAP).unwrap();
        let huge = text.replace("m=64 ", "m=4000000 ");
        let w = parse(huge.as_bytes()).unwrap();
        assert!(matches!(w.unwrap(&key), Err(UnwrapError::Malformed(_))));
        for bad in [
            "",
            "integrity-loader recovery 2\n",
            &text.replace("kdf argon2id", "kdf scrypt"),
            &format!("{text}extra\n"),
            &text.replace("\nmac ", "\nmac 00"),
            &text[..text.len() - 1],
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }
}
