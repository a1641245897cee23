//! A terminal for the recovery prompt: the loader opens the pty's slave
//! (INTEGRITY_LOADER_RECOVERY_TTY) and the test types the answers on the
//! master, each once the loader has asked.

#![allow(dead_code)] // each test binary uses part of it

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Command, Stdio};

const PROMPT: &str = "Enter the recovery key";

pub struct Answered {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// What the loader wrote on the terminal (an echo would be here).
    pub transcript: String,
    pub seconds: f64,
}

impl Answered {
    pub fn output(&self) -> String {
        format!(
            "{}{}",
            String::from_utf8_lossy(&self.stdout),
            String::from_utf8_lossy(&self.stderr)
        )
    }
}

fn cloexec(fd: &OwnedFd) {
    nix::fcntl::fcntl(
        fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .unwrap();
}

/// Runs `cmd` with a pty as its recovery terminal, typing `answers` one
/// per prompt; no more answers leaves the prompt waiting.
pub fn run_answering(mut cmd: Command, answers: &[&str]) -> Answered {
    let pty = nix::pty::openpty(None, None).unwrap();
    cloexec(&pty.master);
    cloexec(&pty.slave);
    // Through /proc: this pty's devpts need not be the one at /dev/pts.
    let path = format!("/proc/{}/fd/{}", std::process::id(), pty.slave.as_raw_fd());
    let start = std::time::Instant::now();
    let child = cmd
        .env("INTEGRITY_LOADER_RECOVERY_TTY", &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The child opens the slave through our fd: kept until the child is
    // gone, then dropped so that the master reads EIO and the typist ends.
    let slave = pty.slave;
    let answers: Vec<String> = answers.iter().map(|a| format!("{a}\n")).collect();
    let master = pty.master;
    let typist = std::thread::spawn(move || {
        let mut file = std::fs::File::from(master);
        let mut transcript = String::new();
        let mut given = 0;
        let mut buf = [0u8; 256];
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            transcript.push_str(&String::from_utf8_lossy(&buf[..n]));
            let asked = transcript.matches(PROMPT).count();
            while given < asked && given < answers.len() {
                use std::io::Write;
                file.write_all(answers[given].as_bytes()).unwrap();
                given += 1;
            }
        }
        transcript
    });
    let out = child.wait_with_output().unwrap();
    let seconds = start.elapsed().as_secs_f64();
    drop(slave);
    Answered {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: out.stderr,
        transcript: typist.join().unwrap(),
        seconds,
    }
}
