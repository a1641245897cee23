//! A fault-injecting transport between our client and a real swtpm: altered,
//! truncated, mis-tagged, replayed and refused answers. Each must end in a
//! clear error (never a panic, never a kmk taken from a forged answer), and
//! retries asked for by the TPM are bounded.

#[path = "common/swtpm.rs"]
mod swtpm;

use integrity_loader::tpm::client::Tpm;
use integrity_loader::tpm::keyfile::{self, SealedBlob};
use integrity_loader::tpm::pcr::PcrSelection;
use integrity_loader::tpm::tcti;
use integrity_loader::tpm::transport::{self, Transport, TransportError};
use integrity_loader::tpm::unseal::{self, Parent, UnsealError};
use std::time::Duration;
use swtpm::Swtpm;

const KMK: &[u8; 32] = b"fault-injection kmk of 32 bytes!";
const CC_LOAD: u32 = 0x157;
const CC_UNSEAL: u32 = 0x15E;

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
        for target in [0x173u32, 0x176, 0x17F, CC_LOAD, CC_UNSEAL] {
            let answer = case.clone();
            let r = run(&s, target, false, Box::new(move |_| Some(answer.clone())));
            assert!(r.is_err(), "case {i} for {target:#x} unsealed");
        }
    }
}
