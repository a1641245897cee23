//! `load` more than once: run twice, run again after a failed run, and two
//! runs started at once on the same session keyring and the same fake
//! securityfs. Each must end in the kernel state of one clean run (same
//! keys, same certificates, the policy written once, the same EVM value),
//! and the run that finds the work done must say so.
//!
//! Who writes the fake securityfs files is observed with fanotify, which
//! names the writing process (the files' contents alone cannot show a second
//! writer that wrote the same bytes at the same offsets; on a real
//! securityfs a second policy write appends rules and a second EVM write
//! fails with EPERM). For the concurrent start, fanotify also makes the two
//! processes open `evm` and `ima/policy` in lockstep (the n-th open of one
//! waits for the n-th open of the other, at most `GATE_TIMEOUT`): the
//! interleaving in which both look before either writes, which plain timing
//! reaches only now and then, happens on every run. A loader that
//! serialises its runs passes, only slower by the timeouts.

mod common;
use common::*;
use nix::libc;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const GATE_TIMEOUT: Duration = Duration::from_secs(1);

// ------------------------------------------------------------ fanotify

/// One fanotify event on a watched file.
#[derive(Debug, Clone)]
struct Event {
    file: PathBuf,
    pid: i32,
    mask: u64,
}

/// Watches files: records every open, write and close-after-write with the
/// process that did it, and, when `gate` is set, makes processes open each
/// file in lockstep (see `serve`).
struct Watch {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<Event>>>,
}

impl Watch {
    fn start(files: &[PathBuf], gate: bool) -> Watch {
        // SAFETY: plain syscalls on values we own.
        let fd = unsafe {
            libc::fanotify_init(
                libc::FAN_CLASS_CONTENT | libc::FAN_CLOEXEC | libc::FAN_NONBLOCK,
                (libc::O_RDONLY | libc::O_LARGEFILE | libc::O_CLOEXEC) as u32,
            )
        };
        assert!(
            fd >= 0,
            "fanotify_init: {}",
            std::io::Error::last_os_error()
        );
        for f in files {
            let c = CString::new(f.as_os_str().as_bytes()).unwrap();
            let r = unsafe {
                libc::fanotify_mark(
                    fd,
                    libc::FAN_MARK_ADD,
                    libc::FAN_OPEN_PERM | libc::FAN_MODIFY | libc::FAN_CLOSE_WRITE,
                    libc::AT_FDCWD,
                    c.as_ptr(),
                )
            };
            assert_eq!(
                r,
                0,
                "fanotify_mark {}: {}",
                f.display(),
                std::io::Error::last_os_error()
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || serve(fd, gate, &stop2));
        Watch {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops watching (releasing anything held) and returns the events.
    fn finish(mut self) -> Vec<Event> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn respond(fanotify: i32, fd: i32) {
    let r = libc::fanotify_response {
        fd,
        response: libc::FAN_ALLOW,
    };
    // SAFETY: writes a fanotify_response from a local.
    unsafe {
        libc::write(
            fanotify,
            (&r as *const libc::fanotify_response).cast(),
            std::mem::size_of::<libc::fanotify_response>(),
        );
        libc::close(fd);
    }
}

/// The gate works in lockstep: the n-th open of a file by one process waits
/// until another process makes its n-th open of that file; then both go on.
/// A wait that times out means the other process is not coming (a loader
/// that serialises its runs): that file's gate then stays open.
fn serve(fanotify: i32, gate: bool, stop: &AtomicBool) -> Vec<Event> {
    let me = std::process::id() as i32;
    let mut events = Vec::new();
    // Held opens: (file, n, event fd, pid, since).
    let mut held: Vec<(PathBuf, usize, i32, i32, Instant)> = Vec::new();
    let mut opens: BTreeMap<(PathBuf, i32), usize> = BTreeMap::new();
    let mut open_gates: BTreeSet<PathBuf> = BTreeSet::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        // Release waits whose time is up, and everything when stopping.
        held.retain(|(file, _, fd, _, since)| {
            if stopping || since.elapsed() >= GATE_TIMEOUT {
                respond(fanotify, *fd);
                open_gates.insert(file.clone());
                false
            } else {
                true
            }
        });
        if stopping {
            // Drain what is queued, allowing every permission event.
            gate_off_drain(fanotify, &mut buf, &mut events);
            unsafe { libc::close(fanotify) };
            return events;
        }
        let mut pfd = libc::pollfd {
            fd: fanotify,
            events: libc::POLLIN,
            revents: 0,
        };
        unsafe { libc::poll(&mut pfd, 1, 20) };
        for raw in read_events(fanotify, &mut buf) {
            let (file, pid, fd) = match raw {
                Raw::Note(ev) => {
                    events.push(ev);
                    continue;
                }
                Raw::Open { file, pid, fd } => (file, pid, fd),
            };
            events.push(Event {
                file: file.clone(),
                pid,
                mask: libc::FAN_OPEN_PERM,
            });
            if !gate || pid == me || open_gates.contains(&file) {
                respond(fanotify, fd);
                continue;
            }
            let n = opens.entry((file.clone(), pid)).or_insert(0);
            *n += 1;
            let n = *n;
            match held
                .iter()
                .position(|(f, m, _, p, _)| *f == file && *m == n && *p != pid)
            {
                Some(i) => {
                    let (_, _, other, _, _) = held.remove(i);
                    respond(fanotify, other);
                    respond(fanotify, fd);
                }
                None => held.push((file, n, fd, pid, Instant::now())),
            }
        }
    }
}

fn gate_off_drain(fanotify: i32, buf: &mut [u8], events: &mut Vec<Event>) {
    for _ in 0..50 {
        let batch = read_events(fanotify, buf);
        if batch.is_empty() {
            return;
        }
        for raw in batch {
            match raw {
                Raw::Open { fd, .. } => respond(fanotify, fd),
                Raw::Note(ev) => events.push(ev),
            }
        }
    }
}

/// One event as read: an open waiting for our answer (its event fd stays
/// open until `respond`), or a notification (its fd already closed).
enum Raw {
    Open { file: PathBuf, pid: i32, fd: i32 },
    Note(Event),
}

/// Reads what is queued.
fn read_events(fanotify: i32, buf: &mut [u8]) -> Vec<Raw> {
    // SAFETY: reads into a buffer we own, of its length.
    let n = unsafe { libc::read(fanotify, buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut at = 0usize;
    let size = std::mem::size_of::<libc::fanotify_event_metadata>();
    while at + size <= n as usize {
        // SAFETY: the kernel wrote whole records; read_unaligned copies one.
        let m: libc::fanotify_event_metadata =
            unsafe { std::ptr::read_unaligned(buf[at..].as_ptr().cast()) };
        if m.event_len == 0 {
            break;
        }
        at += m.event_len as usize;
        if m.fd < 0 {
            continue;
        }
        let file = std::fs::read_link(format!("/proc/self/fd/{}", m.fd)).unwrap_or_default();
        if m.mask & libc::FAN_OPEN_PERM != 0 {
            out.push(Raw::Open {
                file,
                pid: m.pid,
                fd: m.fd,
            });
        } else {
            // SAFETY: the event's fd is ours to close.
            unsafe { libc::close(m.fd) };
            out.push(Raw::Note(Event {
                file,
                pid: m.pid,
                mask: m.mask,
            }));
        }
    }
    out
}

/// The processes that wrote to `file`.
fn writers(events: &[Event], file: &Path) -> BTreeSet<i32> {
    events
        .iter()
        .filter(|e| e.file == file && e.mask & libc::FAN_MODIFY != 0)
        .map(|e| e.pid)
        .collect()
}

// ------------------------------------------------------------- fixtures

fn sfs_files(f: &Fixture) -> [PathBuf; 2] {
    [f.dir.join("sfs/evm"), f.dir.join("sfs/ima/policy")]
}

/// The state one clean `load` of the dracut setup leaves.
fn clean_state() -> Snapshot {
    let f = Fixture::new("clean");
    dracut_setup(&f);
    let r = f.run(&["load"]);
    assert_eq!(r.code, 0, "{}", r.output());
    let s = f.snapshot();
    // What "clean" is, so a change in it shows here first.
    assert_eq!(String::from_utf8_lossy(&s.evm), "3\n");
    assert_eq!(String::from_utf8_lossy(&s.policy), POLICY_RULES);
    assert_eq!(
        s.keys.iter().filter(|k| k.contains("asymmetric:")).count(),
        3,
        "{:?}",
        s.keys
    );
    assert!(s.keys.iter().any(|k| k.starts_with("user:kmk-user:32")));
    assert!(!s.keys.iter().any(|k| k.contains("evm-key")));
    s
}

/// What a run logged for `step`, after "step: " ("done: ...",
/// "already done: ...", "FAILED: ..."); empty when it logged nothing. The
/// step's outcome is its last line: warnings it logs come before it.
fn step_line<'a>(r: &'a Run, step: &str) -> &'a str {
    let head = format!("{step}: ");
    r.stderr
        .lines()
        .filter_map(|l| l.strip_prefix("integrity-loader: "))
        .map(|l| {
            l.strip_prefix("error: ")
                .or_else(|| l.strip_prefix("warning: "))
                .unwrap_or(l)
        })
        .filter_map(|l| l.strip_prefix(head.as_str()))
        .next_back()
        .unwrap_or("")
}

fn expect_step(r: &Run, step: &str, starts: &str) {
    assert!(
        step_line(r, step).starts_with(starts),
        "{step}: want {starts:?}, got {:?}\n{}",
        step_line(r, step),
        r.output()
    );
}

// ---------------------------------------------------------------- tests

#[test]
fn load_twice_ends_like_one_run_and_the_second_writes_nothing() {
    let clean = clean_state();
    let f = Fixture::new("twice");
    dracut_setup(&f);
    let first = f.run(&["load"]);
    assert_eq!(first.code, 0, "{}", first.output());
    let watch = Watch::start(&sfs_files(&f), false);
    let mut cmd = f.command(&["load"]);
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let second = finished(child.wait_with_output().unwrap());
    let events = watch.finish();
    assert_eq!(second.code, 0, "{}", second.output());
    assert_eq!(f.snapshot(), clean);
    for file in sfs_files(&f) {
        assert!(
            !writers(&events, &file).contains(&pid),
            "the second run wrote {}",
            file.display()
        );
    }
    for step in [
        "kmk",
        "evm-key",
        "evm-certs",
        "ima-certs",
        "ima-policy",
        "evm",
    ] {
        assert!(
            step_line(&second, step).starts_with("already done"),
            "{step}: {:?}\n{}",
            step_line(&second, step),
            second.output()
        );
    }
}

#[test]
fn load_after_a_run_with_a_broken_ima_cert_ends_like_one_run() {
    let clean = clean_state();
    let f = Fixture::new("broken-ima");
    dracut_setup(&f);
    f.copy_cert("ca.pem", "/etc/keys/ima/zz-ca.pem"); // refused: a CA
    let first = f.run(&["load"]);
    assert_eq!(first.code, 1, "{}", first.output());
    first.assert_contains("zz-ca.pem");
    first.assert_contains("ima-policy: skipped");
    assert_eq!(f.sfs_text("ima/policy"), "");
    std::fs::remove_file(f.root().join("etc/keys/ima/zz-ca.pem")).unwrap();
    let second = f.run(&["load"]);
    assert_eq!(second.code, 0, "{}", second.output());
    assert_eq!(f.snapshot(), clean);
    expect_step(&second, "kmk", "already done");
    expect_step(&second, "ima-certs", "already done");
    expect_step(&second, "ima-policy", "done: wrote IMA policy");
    expect_step(&second, "evm", "already done");
}

#[test]
fn load_after_a_run_with_a_broken_evm_cert_ends_like_one_run() {
    let clean = clean_state();
    let f = Fixture::new("broken-evm");
    dracut_setup(&f);
    f.copy_cert("ca.der", "/etc/keys/x509_evm.der"); // refused: a CA
    let first = f.run(&["load"]);
    assert_eq!(first.code, 1, "{}", first.output());
    first.assert_contains("evm: skipped: step evm-certs failed");
    let policy_after_first = f.sfs_text("ima/policy");
    // The evm-key loaded for an EVM that was not enabled is not left behind.
    assert_eq!(f.find("encrypted", "evm-key"), None);
    assert_eq!(f.sfs_text("evm"), "");
    f.copy_cert("rsa2048.der", "/etc/keys/x509_evm.der");
    let second = f.run(&["load"]);
    assert_eq!(second.code, 0, "{}", second.output());
    assert_eq!(f.snapshot(), clean);
    expect_step(&second, "kmk", "already done");
    expect_step(&second, "evm-key", "done: loaded evm-key");
    expect_step(&second, "evm", "done: enabled EVM: wrote 3");
    // Whether the first run wrote the policy (its appraise rules want EVM).
    expect_step(
        &second,
        "ima-policy",
        if policy_after_first.is_empty() {
            "done: wrote IMA policy"
        } else {
            "already done"
        },
    );
}

#[test]
fn two_loads_started_at_once_end_like_one_run() {
    let clean = clean_state();
    let f = Fixture::new("at-once");
    dracut_setup(&f);
    let files = sfs_files(&f);
    let watch = Watch::start(&files, true);
    // Both children inherit this thread's session keyring.
    let spawn = || {
        f.command(&["load"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let pids = [a.id() as i32, b.id() as i32];
    let runs = [
        finished(a.wait_with_output().unwrap()),
        finished(b.wait_with_output().unwrap()),
    ];
    let events = watch.finish();
    let both = format!(
        "--- first ---\n{}\n--- second ---\n{}",
        runs[0].output(),
        runs[1].output()
    );

    let mut problems = Vec::new();
    for (i, r) in runs.iter().enumerate() {
        if r.code != 0 {
            problems.push(format!("run {} (pid {}) exited {}", i + 1, pids[i], r.code));
        }
    }
    for file in &files {
        let w = writers(&events, file);
        if w.len() != 1 {
            problems.push(format!(
                "{} written by {} processes {w:?} (want exactly one)",
                file.display(),
                w.len()
            ));
        }
    }
    let after = f.snapshot();
    if after != clean {
        problems.push(format!(
            "state differs from one clean run:\n  clean {clean:?}\n  now   {after:?}"
        ));
    }
    // One run did each step, the other found it done and said so.
    for step in ["kmk", "evm-key", "ima-policy", "evm"] {
        let words: Vec<&str> = runs.iter().map(|r| step_line(r, step)).collect();
        let done = words.iter().filter(|w| w.starts_with("done")).count();
        let already = words
            .iter()
            .filter(|w| w.starts_with("already done"))
            .count();
        if (done, already) != (1, 1) {
            problems.push(format!(
                "{step}: {words:?} (want one done, one already done)"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "two concurrent loads did not end like one:\n{}\n\n{both}",
        problems.join("\n")
    );
}
