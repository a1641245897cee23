//! A fault-injecting transport between our client and a real swtpm: altered,
//! truncated, mis-tagged, replayed and refused answers. Each must end in a
//! clear error (never a panic, never a kmk taken from a forged answer), and
//! retries asked for by the TPM are bounded, in number and, for the whole
//! kmk step, in time (a slow proxy in front of swtpm). `device:PATH` naming
//! anything but a TPM character device is refused without opening it.

mod common;
#[path = "common/swtpm.rs"]
mod swtpm;

use common::Fixture;

use integrity_loader::tpm::client::Tpm;
use integrity_loader::tpm::constants::CommandCode;
use integrity_loader::tpm::keyfile::{self, SealedBlob};
use integrity_loader::tpm::pcr::PcrSelection;
use integrity_loader::tpm::tcti;
use integrity_loader::tpm::transport::{self, Transport, TransportError};
use integrity_loader::tpm::unseal::{self, Parent, UnsealError};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use swtpm::Swtpm;

const KMK: &[u8; 32] = b"fault-injection kmk of 32 bytes!";
const CC_LOAD: u32 = CommandCode::Load.code();
const CC_UNSEAL: u32 = CommandCode::Unseal.code();

/// What to do to the answer of one command code.
type Fault = Box<dyn FnMut(&[u8]) -> Option<Vec<u8>>>;

struct Faulty {
    inner: Box<dyn Transport>,
    target: u32,
    fault: Fault,
    /// The last answer to a Load, for replay.
    last_load: Vec<u8>,
    replay_load: bool,
}

impl Transport for Faulty {
    fn transact(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
        let cc = u32::from_be_bytes(command[6..10].try_into().unwrap());
        if cc == self.target
            && let Some(answer) = (self.fault)(command)
        {
            // Keep the real TPM in step when the fault replaces its answer.
            let _ = self.inner.transact(command);
            return Ok(answer);
        }
        let mut answer = self.inner.transact(command)?;
        if cc == CC_LOAD {
            self.last_load = answer.clone();
        }
        if cc == self.target && self.replay_load {
            answer = self.last_load.clone();
        }
        Ok(answer)
    }
}

struct Setup {
    tpm: Swtpm,
    blob: SealedBlob,
}

fn setup(name: &str) -> Setup {
    let tpm = Swtpm::start(name);
    tpm.provision_srk();
    let blob = keyfile::parse_tss2(&tpm.seal_with_tools(KMK, "sha256:7")).unwrap();
    Setup { tpm, blob }
}

fn run(s: &Setup, target: u32, replay_load: bool, fault: Fault) -> Result<Vec<u8>, UnsealError> {
    let t = tcti::parse(&s.tpm.tcti()).unwrap();
    let inner = transport::open(&t, Duration::from_secs(5)).unwrap();
    let faulty = Faulty {
        inner,
        target,
        fault,
        last_load: Vec::new(),
        replay_load,
    };
    let mut c = Tpm::new(Box::new(faulty));
    unseal::unseal(
        &mut c,
        &s.blob,
        Parent::unpinned(0x8100_0001),
        &PcrSelection::parse("sha256:7").unwrap(),
    )
    .map(|k| k.expose().to_vec())
}

/// Calls `f` on the real answer of the target command.
fn alter(
    s: &Setup,
    target: u32,
    mut f: impl FnMut(&mut Vec<u8>) + 'static,
) -> Result<Vec<u8>, UnsealError> {
    // Get the real answer by running the command once through a probe.
    let t = tcti::parse(&s.tpm.tcti()).unwrap();
    let inner = transport::open(&t, Duration::from_secs(5)).unwrap();
    struct Alter<F> {
        inner: Box<dyn Transport>,
        target: u32,
        f: F,
    }
    impl<F: FnMut(&mut Vec<u8>)> Transport for Alter<F> {
        fn transact(&mut self, command: &[u8]) -> Result<Vec<u8>, TransportError> {
            let cc = u32::from_be_bytes(command[6..10].try_into().unwrap());
            let mut answer = self.inner.transact(command)?;
            if cc == self.target {
                (self.f)(&mut answer);
            }
            Ok(answer)
        }
    }
    let mut c = Tpm::new(Box::new(Alter {
        inner,
        target,
        f: move |a: &mut Vec<u8>| f(a),
    }));
    unseal::unseal(
        &mut c,
        &s.blob,
        Parent::unpinned(0x8100_0001),
        &PcrSelection::parse("sha256:7").unwrap(),
    )
    .map(|k| k.expose().to_vec())
}

fn expect_err(result: Result<Vec<u8>, UnsealError>, want: &str) {
    match result {
        Ok(k) => panic!("unsealed {} bytes from a faulty answer", k.len()),
        Err(e) => assert!(e.to_string().contains(want), "expected {want:?}, got: {e}"),
    }
}

fn set_size(answer: &mut [u8]) {
    let n = answer.len() as u32;
    answer[2..6].copy_from_slice(&n.to_be_bytes());
}

#[test]
fn forged_or_altered_answers_are_refused() {
    let s = setup("faults");
    // Sanity: the clean path works through the same wrapper.
    assert_eq!(alter(&s, CC_UNSEAL, |_| {}).unwrap(), KMK);

    // A bit flipped in the encrypted kmk: the response HMAC catches it.
    expect_err(
        alter(&s, CC_UNSEAL, |a| a[20] ^= 1),
        "the response HMAC does not verify",
    );
    // A bit flipped in the response HMAC itself.
    expect_err(
        alter(&s, CC_UNSEAL, |a| {
            let n = a.len();
            a[n - 1] ^= 0x80;
        }),
        "the response HMAC does not verify",
    );
    // Truncated by one byte (size field adjusted, so only parsing can tell).
    expect_err(
        alter(&s, CC_UNSEAL, |a| {
            a.pop();
            set_size(a);
        }),
        "malformed response",
    );
    // Size field not matching the bytes.
    expect_err(alter(&s, CC_UNSEAL, |a| a[5] ^= 1), "");
    // A tag saying no sessions on an answer to a command with sessions.
    expect_err(alter(&s, CC_UNSEAL, |a| a[1] = 0x01), "malformed response");
    // Trailing garbage after the session area.
    expect_err(
        alter(&s, CC_UNSEAL, |a| {
            a.extend_from_slice(&[0; 4]);
            set_size(a);
        }),
        "malformed response",
    );
    // The answer of another command (the Load) replayed for the Unseal.
    expect_err(run(&s, CC_UNSEAL, true, Box::new(|_| None)), "TPM2_Unseal");
    // A forged Load answer naming another object.
    expect_err(
        alter(&s, CC_LOAD, |a| {
            let n = a.len();
            a[n - 10] ^= 1;
        }),
        "TPM2_Load",
    );
    // Nothing is left loaded on the TPM after any of these.
    let left = s.tpm.tool(&["tpm2_getcap", "handles-transient"]);
    assert!(left.trim().is_empty(), "transient handles left: {left}");
}

fn rc_answer(rc: u32) -> Vec<u8> {
    let mut a = vec![0x80, 0x01, 0, 0, 0, 10];
    a.extend_from_slice(&rc.to_be_bytes());
    a
}

#[test]
fn retries_are_bounded_and_lockout_is_named() {
    let s = setup("retry");
    // RETRY twice on a stateless command, then the real answer: succeeds.
    let mut n = 0;
    let r = run(
        &s,
        0x173,
        false,
        Box::new(move |_| {
            n += 1;
            (n <= 2).then(|| rc_answer(0x922))
        }),
    );
    assert_eq!(r.unwrap(), KMK);
    // Always RETRY / YIELDED / TESTING: gives up.
    for rc in [0x922, 0x908, 0x90A] {
        expect_err(
            run(&s, CC_UNSEAL, false, Box::new(move |_| Some(rc_answer(rc)))),
            "the TPM asked to retry",
        );
    }
    // Lockout says so.
    expect_err(
        run(&s, CC_UNSEAL, false, Box::new(|_| Some(rc_answer(0x921)))),
        "dictionary-attack lockout",
    );
}

#[test]
fn hostile_answers_never_panic() {
    let s = setup("hostile");
    let cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x80],
        vec![0x80, 0x02, 0, 0, 0, 6],
        vec![0x80, 0x02, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0],
        vec![0x80, 0x02, 0, 0, 0, 14, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff],
        vec![0x80, 0x02, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 2, 0xff, 0xff],
        rc_answer(0x9A2),
    ];
    for (i, case) in cases.into_iter().enumerate() {
        for target in [
            CommandCode::ReadPublic.code(),
            CommandCode::StartAuthSession.code(),
            CommandCode::PolicyPcr.code(),
            CC_LOAD,
            CC_UNSEAL,
        ] {
            let answer = case.clone();
            let r = run(&s, target, false, Box::new(move |_| Some(answer.clone())));
            assert!(r.is_err(), "case {i} for {target:#x} unsealed");
        }
    }
}

// ---- The whole kmk step's bound (TPM_STEP_TIMEOUT), through the binary ----

/// What the slow proxy does with one command.
enum Act {
    /// Answers TPM_RC_RETRY itself after the delay.
    Retry(Duration),
    /// Passes the command to swtpm and its answer back, after the delay.
    Forward(Duration),
    /// Never answers.
    Silent,
}

/// A TPM in front of swtpm that answers as `act` says, per command code;
/// serves one connection, then stops (or after 60 s without one).
fn slow_proxy(swtpm_port: u16, mut act: impl FnMut(u32) -> Act + Send + 'static) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let until = Instant::now() + Duration::from_secs(60);
        let mut client = loop {
            match listener.accept() {
                Ok((c, _)) => break c,
                Err(_) if Instant::now() < until => std::thread::sleep(Duration::from_millis(10)),
                Err(_) => return,
            }
        };
        client.set_nonblocking(false).unwrap();
        let mut tpm = TcpStream::connect(("127.0.0.1", swtpm_port)).unwrap();
        loop {
            let Some(command) = read_message(&mut client) else {
                return;
            };
            let cc = u32::from_be_bytes(command[6..10].try_into().unwrap());
            match act(cc) {
                Act::Retry(delay) => {
                    std::thread::sleep(delay);
                    let _ = client.write_all(&rc_answer(0x922));
                }
                Act::Forward(delay) => {
                    std::thread::sleep(delay);
                    tpm.write_all(&command).unwrap();
                    let answer = read_message(&mut tpm).unwrap();
                    let _ = client.write_all(&answer);
                }
                Act::Silent => {
                    // Until the client hangs up.
                    let _ = client.read(&mut [0u8; 1]);
                    return;
                }
            }
        }
    });
    port
}

/// One TPM command or response, framed by its size field; None at the end.
fn read_message(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut header = [0u8; 10];
    s.read_exact(&mut header).ok()?;
    let size = u32::from_be_bytes(header[2..6].try_into().unwrap()) as usize;
    let mut message = header.to_vec();
    message.resize(size.max(10), 0);
    s.read_exact(&mut message[10..]).ok()?;
    Some(message)
}

/// Each command answered RETRY `retries` times, then for real, every answer
/// `delay` late.
fn retrying(retries: u32, delay: Duration) -> impl FnMut(u32) -> Act + Send + 'static {
    let mut last = 0;
    let mut n = 0;
    move |cc| {
        n = if cc == last { n + 1 } else { 1 };
        last = cc;
        if n <= retries {
            Act::Retry(delay)
        } else {
            Act::Forward(delay)
        }
    }
}

/// `load` with a tpm2 kmk sealed in `s` and the TPM at 127.0.0.1:`port`.
fn load_through(s: &Setup, name: &str, port: u16, extra: &str) -> (common::Run, Duration) {
    let f = Fixture::new(name);
    f.write(
        "/etc/integrity-loader.conf",
        format!(
            "MASTERKEYTYPE=tpm2\nMASTERKEY=/etc/keys/kmk.pem\nTPM=swtpm:host=127.0.0.1,port={port}\n\
             TPM2_PCRS=sha256:7\nTPM2_PCRLOCK=no\n{extra}"
        ),
    );
    f.write(
        "/etc/keys/kmk.pem",
        keyfile::encode_tss2_pem(&s.blob, keyfile::Fields::Kernel),
    );
    let start = Instant::now();
    let r = f.run(&["load", "-v"]);
    (r, start.elapsed())
}

/// A TPM that answers every command just inside TPM_TIMEOUT and asks to
/// retry it: each command alone stays in its bound (6 tries of 0.8 s), but
/// the step as a whole ends at TPM_STEP_TIMEOUT, not some 40 s later.
#[test]
fn a_slow_retrying_tpm_ends_at_the_step_bound() {
    let s = setup("slow-retry");
    // The proxy passes the real answers: a little slowness and a few
    // retries still unseal.
    let port = slow_proxy(s.tpm.port, retrying(2, Duration::from_millis(20)));
    let (r, _) = load_through(&s, "slow-ok", port, "");
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("loaded user key kmk");

    let port = slow_proxy(s.tpm.port, retrying(5, Duration::from_millis(800)));
    let (r, took) = load_through(
        &s,
        "slow-retry",
        port,
        "TPM_TIMEOUT=1\nTPM_STEP_TIMEOUT=3\n",
    );
    assert_eq!(r.code, 1, "{}", r.output());
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_millis(4500),
        "took {took:?}: {}",
        r.output()
    );
    r.assert_contains("the TPM used up TPM_STEP_TIMEOUT, the 3s its whole step may take");
    r.assert_contains("(it asked to retry this command ");
    r.assert_contains("raise TPM_STEP_TIMEOUT (seconds, 1..600) for a TPM this slow");
}

/// The wait for one command is cut at what is left of the step, however
/// long TPM_TIMEOUT is: the retry sent at 1.5 s waits 0.5 s, not 2 s.
#[test]
fn the_step_bound_caps_the_wait_for_a_command() {
    let s = setup("slow-silent");
    let mut first = true;
    let port = slow_proxy(s.tpm.port, move |_| {
        if std::mem::take(&mut first) {
            Act::Retry(Duration::from_millis(1500))
        } else {
            Act::Silent
        }
    });
    let (r, took) = load_through(
        &s,
        "slow-silent",
        port,
        "TPM_TIMEOUT=10\nTPM_STEP_TIMEOUT=2\n",
    );
    assert_eq!(r.code, 1, "{}", r.output());
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_millis(2800),
        "took {took:?}: {}",
        r.output()
    );
    r.assert_contains(
        "TPM2_ReadPublic: the TPM used up TPM_STEP_TIMEOUT, the 2s its whole step may take (it \
         asked to retry this command once)",
    );
}

#[test]
fn step_bound_setting_is_checked() {
    for bad in ["0", "601", "2s", "-1"] {
        let f = Fixture::new("step-bad");
        f.write(
            "/etc/integrity-loader.conf",
            format!("MASTERKEYTYPE=tpm2\nMASTERKEY=/etc/keys/kmk.pem\nTPM_STEP_TIMEOUT={bad}\n"),
        );
        let r = f.run(&["check"]);
        assert_eq!(r.code, 2, "{bad}: {}", r.output());
        r.assert_contains(&format!(
            "integrity-loader.conf:3: TPM_STEP_TIMEOUT=\"{bad}\": expected seconds, 1..600"
        ));
    }
}

// ---- device:PATH is a TPM character device or nothing ----

/// An inotify watch on one inode: reports whether anything opened it.
struct OpenWatch(std::os::fd::OwnedFd);

impl OpenWatch {
    fn new(path: &Path) -> OpenWatch {
        use nix::libc;
        use std::os::fd::FromRawFd;
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: plain syscalls on a fresh fd and a NUL-terminated path.
        unsafe {
            let fd = libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC);
            assert!(fd >= 0);
            let fd = std::os::fd::OwnedFd::from_raw_fd(fd);
            let mask = libc::IN_OPEN | libc::IN_MODIFY | libc::IN_ACCESS;
            assert!(
                libc::inotify_add_watch(std::os::fd::AsRawFd::as_raw_fd(&fd), c.as_ptr(), mask)
                    >= 0
            );
            OpenWatch(fd)
        }
    }

    fn touched(&self) -> bool {
        let mut buf = [0u8; 4096];
        match nix::unistd::read(&self.0, &mut buf) {
            Ok(n) => n > 0,
            Err(nix::errno::Errno::EAGAIN) => false,
            Err(e) => panic!("read inotify: {e}"),
        }
    }
}

/// Things at a path that are not a TPM, in a fresh directory: a file
/// holding [`NotTpm::KEPT`], a symlink to it named like a TPM, a FIFO, and
/// nodes of our own (so no other process's opens are seen): a character
/// device with /dev/null's numbers (1:3, class mem) and a block device with
/// the first loop device's (7:0; never opened, so no need for one).
struct NotTpm {
    dir: PathBuf,
    file: PathBuf,
    link: PathBuf,
    null: PathBuf,
    disk: PathBuf,
    pipe: PathBuf,
}

impl NotTpm {
    const KEPT: &[u8] = b"not a TPM, keep me";

    fn new(tag: &str) -> NotTpm {
        use nix::sys::stat::{Mode, SFlag, makedev, mknod};
        let dir = std::env::temp_dir().join(format!("il-not-tpm-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let dir = dir.canonicalize().unwrap();
        let file = dir.join("file");
        std::fs::write(&file, Self::KEPT).unwrap();
        let link = dir.join("tpmrm0");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let node = |name: &str, kind: SFlag, major: u64, minor: u64| {
            let path = dir.join(name);
            mknod(
                &path,
                kind,
                Mode::from_bits_truncate(0o600),
                makedev(major, minor),
            )
            .unwrap();
            path
        };
        let null = node("null", SFlag::S_IFCHR, 1, 3);
        let disk = node("loop0", SFlag::S_IFBLK, 7, 0);
        let pipe = dir.join("pipe");
        nix::unistd::mkfifo(&pipe, Mode::from_bits_truncate(0o600)).unwrap();
        NotTpm {
            dir,
            file,
            link,
            null,
            disk,
            pipe,
        }
    }

    /// The file still holds its bytes.
    fn assert_file_kept(&self) {
        assert_eq!(std::fs::read(&self.file).unwrap(), Self::KEPT);
    }
}

impl Drop for NotTpm {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Anything but a TPM character device is refused before it is opened;
/// the file's bytes and times stay as they were.
#[test]
fn device_that_is_not_a_tpm_is_refused_unopened() {
    let n = NotTpm::new("open");
    let before = std::fs::metadata(&n.file).unwrap();
    let cases: &[(&Path, String)] = &[
        (&n.file, format!("{} is a regular file", n.file.display())),
        (
            &n.link,
            format!(
                "{} (a symlink to {}) is a regular file",
                n.link.display(),
                n.file.display()
            ),
        ),
        (&n.dir, format!("{} is a directory", n.dir.display())),
        (
            &n.disk,
            format!("{} is a block device (7:0)", n.disk.display()),
        ),
        (&n.pipe, format!("{} is a FIFO", n.pipe.display())),
        (
            Path::new("/dev/null"),
            "/dev/null is a character device (1:3) of class mem".to_string(),
        ),
    ];
    for (path, what) in cases {
        let tcti = tcti::Tcti::Device(path.to_path_buf());
        match transport::open(&tcti, Duration::from_secs(1)).err() {
            Some(TransportError::NotTpm { tpm, what: got }) => {
                assert_eq!(tpm, tcti);
                assert_eq!(&got, what);
            }
            other => panic!("{path:?}: {other:?}"),
        }
    }
    let after = std::fs::metadata(&n.file).unwrap();
    n.assert_file_kept();
    assert_eq!(after.modified().unwrap(), before.modified().unwrap());
    assert_eq!(after.accessed().unwrap(), before.accessed().unwrap());
}

/// `load` with TPM=device:PATH for paths that are not a TPM: each is
/// refused by name and kind, and never opened, read or written.
#[test]
fn device_paths_that_are_not_a_tpm_are_never_opened() {
    let n = NotTpm::new("load");
    let (file, link, null, disk) = (&n.file, &n.link, &n.null, &n.disk);
    let shown = |p: &PathBuf| p.display().to_string();
    let cases: Vec<(PathBuf, PathBuf, String)> = vec![
        (
            file.clone(),
            file.clone(),
            format!("{} is a regular file", shown(file)),
        ),
        (
            link.clone(),
            file.clone(),
            format!(
                "{} (a symlink to {}) is a regular file",
                shown(link),
                shown(file)
            ),
        ),
        (
            null.clone(),
            null.clone(),
            format!("{} is a character device (1:3) of class mem", shown(null)),
        ),
        (
            disk.clone(),
            disk.clone(),
            format!("{} is a block device (7:0)", shown(disk)),
        ),
        (
            PathBuf::from("/dev/null"),
            null.clone(),
            "/dev/null is a character device (1:3) of class mem".to_string(),
        ),
    ];
    let before = std::fs::metadata(file).unwrap().modified().unwrap();
    for (path, watched, what) in cases {
        let f = Fixture::new("not-tpm");
        f.write(
            "/etc/integrity-loader.conf",
            format!(
                "MASTERKEYTYPE=tpm2\nMASTERKEY=/etc/keys/kmk.pem\nTPM=device:{}\n",
                path.display()
            ),
        );
        f.write(
            "/etc/keys/kmk.pem",
            std::fs::read(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/tpm/seal.tss2.pem"
            ))
            .unwrap(),
        );
        let watch = OpenWatch::new(&watched);
        let r = f.run(&["load"]);
        assert_eq!(r.code, 1, "{}", r.output());
        r.assert_contains(&format!(
            "refusing device:{} as the TPM: {what}, not a TPM character device (sysfs class tpm \
             or tpmrm); nothing was written to it: name the TPM's device, device:/dev/tpmrm0 or \
             device:/dev/tpm0 ({}/etc/integrity-loader.conf:3)",
            path.display(),
            f.root().display()
        ));
        assert!(!watch.touched(), "{} was opened", path.display());
        assert!(f.keys().is_empty());
    }
    n.assert_file_kept();
    assert_eq!(std::fs::metadata(file).unwrap().modified().unwrap(), before);
}
