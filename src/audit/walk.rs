//! The walk: one thread lists directories, `--jobs` threads stat, decide,
//! read and hash each regular file once. Memory stays bounded: the queue
//! between them is bounded and each list kept for the report is cut to
//! `--limit`.

use super::rules::{self, Access, Coverage, Subject};
use super::verdict::{self, Facts, Verdict};
use super::{AuditOptions, Inputs, sig};
use crate::ima_policy::Func;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{IsTerminal, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// Virtual filesystems (statfs f_type) that hold no files to appraise.
const VIRTUAL_FS: &[(u64, &str)] = &[
    (0x9fa0, "proc"),
    (0x6265_6572, "sysfs"),
    (0x7363_6673, "securityfs"),
    (0x6462_6720, "debugfs"),
    (0x7472_6163, "tracefs"),
    (0x0027_e0eb, "cgroup"),
    (0x6367_7270, "cgroup2"),
    (0x1cd1, "devpts"),
    (0xcafe_4a11, "bpf"),
    (0xde5e_81e4, "efivarfs"),
    (0x6165_676c, "pstore"),
    (0x6265_6570, "configfs"),
    (0xf97c_ff8c, "selinuxfs"),
    (0x4249_4e4d, "binfmt_misc"),
    (0x1980_0202, "mqueue"),
    (0x6573_5543, "fusectl"),
    (0x0187, "autofs"),
    (0x6e73_6673, "nsfs"),
];

/// Largest xattr value read; RSA-4096 signatures are 521 bytes.
const XATTR_MAX: usize = 8192;
const CHUNK: usize = 64 * 1024;
/// Files handed to a worker at a time, and batches queued: one wake-up
/// per batch rather than per file (a file at a time, the walker and a
/// worker woke each other for every file), at most 4,096 paths waiting.
const BATCH: usize = 64;
const QUEUED_BATCHES: usize = 64;

#[derive(Debug, Default)]
pub struct FsInfo {
    pub magic: u64,
    pub uuid: Option<String>,
    pub name: Option<String>,
}

/// One file in a report list.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listed {
    pub path: String,
    pub verdict: Verdict,
    /// The rule's line in the policy.
    pub line: Option<usize>,
    pub detail: Option<String>,
}

#[derive(Debug, Default)]
pub struct RuleCount {
    pub appraised: u64,
    pub denied: u64,
    pub undecided: u64,
}

#[derive(Debug, Default)]
pub struct Tally {
    pub files: u64,
    pub verdicts: BTreeMap<Verdict, u64>,
    /// By index into `Inputs::rules`.
    pub by_rule: BTreeMap<usize, RuleCount>,
    /// Undecided files by the condition that could not be evaluated.
    pub undecided: BTreeMap<String, u64>,
    /// Denied and unreadable files, sorted, at most `limit` of each.
    pub denied: Vec<Listed>,
    pub unreadable: Vec<Listed>,
    /// relabel: files to sign or label by hand, sorted, at most `limit`.
    pub to_label: Vec<Listed>,
    /// With --all: every file, sorted, at most `limit`.
    pub all: Vec<Listed>,
    list_all: bool,
    /// Mount points not walked, with their filesystem.
    pub skipped_mounts: Vec<(String, &'static str)>,
    limit: Option<usize>,
}

impl Tally {
    pub fn count(&self, v: &Verdict) -> u64 {
        self.verdicts.get(v).copied().unwrap_or(0)
    }

    pub fn left_to_label(&self) -> u64 {
        self.verdicts
            .iter()
            .filter(|(v, _)| v.to_label())
            .map(|(_, n)| n)
            .sum()
    }

    pub fn denied_total(&self) -> u64 {
        self.verdicts
            .iter()
            .filter(|(v, _)| v.denied())
            .map(|(_, n)| n)
            .sum()
    }

    fn add(&mut self, entry: Listed, rule: Option<usize>) {
        self.files += 1;
        *self.verdicts.entry(entry.verdict.clone()).or_default() += 1;
        if let Some(r) = rule {
            let c = self.by_rule.entry(r).or_default();
            match &entry.verdict {
                Verdict::Undecided => c.undecided += 1,
                v if v.denied() => {
                    c.appraised += 1;
                    c.denied += 1;
                }
                _ => c.appraised += 1,
            }
        }
        if entry.verdict == Verdict::Undecided {
            let cond = entry.detail.clone().unwrap_or_default();
            *self.undecided.entry(cond).or_default() += 1;
        }
        let limit = self.limit;
        let list = if self.list_all {
            &mut self.all
        } else if entry.verdict.denied() {
            &mut self.denied
        } else if entry.verdict == Verdict::Unreadable {
            &mut self.unreadable
        } else if entry.verdict.to_label() {
            &mut self.to_label
        } else {
            return;
        };
        list.push(entry);
        if let Some(n) = limit
            && list.len() > n.saturating_mul(2).max(64)
        {
            list.sort();
            list.truncate(n);
        }
    }

    fn merge(&mut self, other: Tally) {
        self.files += other.files;
        for (v, n) in other.verdicts {
            *self.verdicts.entry(v).or_default() += n;
        }
        for (r, c) in other.by_rule {
            let e = self.by_rule.entry(r).or_default();
            e.appraised += c.appraised;
            e.denied += c.denied;
            e.undecided += c.undecided;
        }
        for (k, n) in other.undecided {
            *self.undecided.entry(k).or_default() += n;
        }
        self.denied.extend(other.denied);
        self.unreadable.extend(other.unreadable);
        self.to_label.extend(other.to_label);
        self.all.extend(other.all);
    }

    fn finish(&mut self) {
        if self.list_all {
            for l in &self.all {
                if l.verdict.denied() {
                    self.denied.push(l.clone());
                } else if l.verdict == Verdict::Unreadable {
                    self.unreadable.push(l.clone());
                }
            }
        }
        for list in [
            &mut self.denied,
            &mut self.unreadable,
            &mut self.to_label,
            &mut self.all,
        ] {
            list.sort();
            if let Some(n) = self.limit {
                list.truncate(n);
            }
        }
    }
}

/// Filesystem facts of a device: statfs, mountinfo, /dev/disk/by-uuid.
struct FsTable {
    names: HashMap<(u64, u64), String>,
    uuids: HashMap<u64, String>,
    cache: HashMap<u64, Arc<FsInfo>>,
}

fn dev_split(dev: u64) -> (u64, u64) {
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0xff);
    (major, minor)
}

impl FsTable {
    fn new() -> FsTable {
        let mut names = HashMap::new();
        if let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") {
            for line in text.lines() {
                let mut fields = line.split(' ');
                let dev = fields.nth(2).and_then(|d| d.split_once(':'));
                let fstype = line.split(" - ").nth(1).and_then(|r| r.split(' ').next());
                if let (Some((ma, mi)), Some(t)) = (dev, fstype)
                    && let (Ok(ma), Ok(mi)) = (ma.parse(), mi.parse())
                {
                    names.insert((ma, mi), t.to_owned());
                }
            }
        }
        let mut uuids = HashMap::new();
        if let Ok(dir) = std::fs::read_dir("/dev/disk/by-uuid") {
            for e in dir.flatten() {
                if let Ok(md) = std::fs::metadata(e.path()) {
                    uuids.insert(
                        md.rdev(),
                        e.file_name().to_string_lossy().to_ascii_lowercase(),
                    );
                }
            }
        }
        FsTable {
            names,
            uuids,
            cache: HashMap::new(),
        }
    }

    fn info(&mut self, dev: u64, dir: &Path) -> Arc<FsInfo> {
        if let Some(i) = self.cache.get(&dev) {
            return i.clone();
        }
        let magic = nix::sys::statfs::statfs(dir)
            .map(|s| s.filesystem_type().0 as u64)
            .unwrap_or(0);
        let info = Arc::new(FsInfo {
            magic,
            uuid: self.uuids.get(&dev).cloned(),
            name: self.names.get(&dev_split(dev)).cloned(),
        });
        self.cache.insert(dev, info.clone());
        info
    }
}

struct Shared<'a> {
    o: &'a AuditOptions,
    inputs: &'a Inputs,
    root: PathBuf,
    mmap_rules: bool,
}

/// Walks `o.root` and returns what every regular file would get.
pub fn walk(o: &AuditOptions, inputs: &Inputs) -> Tally {
    let shared = Shared {
        o,
        inputs,
        root: o.root.clone(),
        mmap_rules: rules::uses_mmap(&inputs.rules),
    };
    let (tx, rx) = mpsc::sync_channel::<(Vec<PathBuf>, Arc<FsInfo>)>(QUEUED_BATCHES);
    let rx = Mutex::new(rx);
    let done = AtomicU64::new(0);
    let progress = !o.quiet && !o.json && std::io::stderr().is_terminal();
    let mut total = Tally {
        limit: o.limit,
        list_all: o.all,
        ..Tally::default()
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..o.jobs)
            .map(|_| {
                scope.spawn(|| {
                    let mut t = Tally {
                        limit: o.limit,
                        list_all: o.all,
                        ..Tally::default()
                    };
                    loop {
                        let next = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => break,
                        };
                        let Ok((paths, fs)) = next else { break };
                        for path in paths {
                            if let Some((entry, rule)) = check_file(&shared, &path, &fs) {
                                t.add(entry, rule);
                            }
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    t
                })
            })
            .collect();
        let mut walked = 0u64;
        let mut last = Instant::now();
        let mut fs = FsTable::new();
        let root_dev = std::fs::symlink_metadata(&o.root).map(|m| m.dev()).ok();
        let mut stack = vec![o.root.clone()];
        while let Some(dir) = stack.pop() {
            let info = match std::fs::symlink_metadata(&dir) {
                Ok(md) if !o.all_filesystems && root_dev.is_some_and(|d| d != md.dev()) => {
                    total
                        .skipped_mounts
                        .push((shown(&shared, &dir), "another filesystem"));
                    continue;
                }
                Ok(md) => fs.info(md.dev(), &dir),
                Err(e) => {
                    total.add(unreadable(&shared, &dir, &e), None);
                    continue;
                }
            };
            if let Some(&(_, name)) = VIRTUAL_FS.iter().find(|(m, _)| *m == info.magic) {
                total.skipped_mounts.push((shown(&shared, &dir), name));
                continue;
            }
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) => {
                    total.add(unreadable(&shared, &dir, &e), None);
                    continue;
                }
            };
            let mut batch = Vec::with_capacity(BATCH);
            for entry in entries {
                let entry = match entry {
                    Ok(e) => e,
                    Err(e) => {
                        total.add(unreadable(&shared, &dir, &e), None);
                        break;
                    }
                };
                match entry.file_type() {
                    Ok(t) if t.is_dir() => stack.push(entry.path()),
                    Ok(t) if t.is_file() => {
                        walked += 1;
                        batch.push(entry.path());
                        if batch.len() == BATCH {
                            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                            if tx.send((full, info.clone())).is_err() {
                                break;
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(e) => total.add(unreadable(&shared, &entry.path(), &e), None),
                }
                if progress && last.elapsed() > Duration::from_millis(500) {
                    last = Instant::now();
                    eprint!(
                        "\rintegrity-audit: {walked} files found, {} {} ",
                        done.load(Ordering::Relaxed),
                        if o.relabel { "done" } else { "checked" }
                    );
                }
            }
            // The directory's last files; an error means no worker is left.
            if !batch.is_empty() && tx.send((batch, info.clone())).is_err() {
                break;
            }
        }
        drop(tx);
        for w in workers {
            if let Ok(t) = w.join() {
                total.merge(t);
            }
        }
        if progress {
            eprint!("\r{:60}\r", "");
        }
    });
    total.skipped_mounts.sort();
    total.finish();
    total
}

/// The verdicts of a few named files (regular files, under `o.root`), in
/// their order; a file that is not a regular file is left out.
pub fn check_paths(o: &AuditOptions, inputs: &Inputs, paths: &[PathBuf]) -> Vec<Listed> {
    let shared = Shared {
        o,
        inputs,
        root: o.root.clone(),
        mmap_rules: rules::uses_mmap(&inputs.rules),
    };
    let mut fs = FsTable::new();
    let mut out = Vec::new();
    for path in paths {
        let info = match std::fs::symlink_metadata(path) {
            Ok(md) => fs.info(md.dev(), path.parent().unwrap_or(path)),
            Err(e) => {
                out.push(unreadable(&shared, path, &e));
                continue;
            }
        };
        if let Some((entry, _)) = check_file(&shared, path, &info) {
            out.push(entry);
        }
    }
    out
}

/// The path as the admin sees it on the audited root.
fn shown(s: &Shared, path: &Path) -> String {
    let rel = path.strip_prefix(&s.root).unwrap_or(path);
    format!("/{}", rel.display())
}

fn unreadable(s: &Shared, path: &Path, e: &std::io::Error) -> Listed {
    Listed {
        path: shown(s, path),
        verdict: Verdict::Unreadable,
        line: None,
        detail: Some(e.to_string().to_lowercase()),
    }
}

/// The hooks a file meets, by where it is and its mode; `MmapExec` is added
/// by the caller once the file is known to be ELF.
fn accesses(rel: &str, mode: u32, policy_path: &str) -> Vec<Access> {
    let mut a = vec![Access::Read];
    if mode & 0o111 != 0 {
        a.push(Access::Exec);
    }
    let under = |dir: &str| {
        rel.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
            || rel
                .strip_prefix("/usr")
                .and_then(|r| r.strip_prefix(dir))
                .is_some_and(|r| r.starts_with('/'))
    };
    let name = rel.rsplit('/').next().unwrap_or(rel);
    if under("/lib/modules") && name.contains(".ko") {
        a.push(Access::Kernel(Func::Module));
    }
    if under("/lib/firmware") {
        a.push(Access::Kernel(Func::Firmware));
    }
    if rel.starts_with("/boot/") {
        if name.starts_with("vmlinu") || name.starts_with("bzImage") {
            a.push(Access::Kernel(Func::KexecKernel));
        }
        if name.starts_with("initr") {
            a.push(Access::Kernel(Func::KexecInitramfs));
        }
    }
    if rel == policy_path {
        a.push(Access::Kernel(Func::Policy));
    }
    a
}

/// ELF executables and shared objects (e_type ET_EXEC or ET_DYN).
fn is_elf(head: &[u8]) -> bool {
    let Some(&[m0, m1, m2, m3, _, data]) = head.first_chunk::<6>() else {
        return false;
    };
    let e_type = match (data, head.get(16..18)) {
        (1, Some(&[a, b])) => u16::from_le_bytes([a, b]),
        (2, Some(&[a, b])) => u16::from_be_bytes([a, b]),
        _ => return false,
    };
    [m0, m1, m2, m3] == *b"\x7fELF" && (e_type == 2 || e_type == 3)
}

/// `fgetxattr`: `Ok(None)` when the file has none (or the filesystem no
/// xattrs).
fn fgetxattr(file: &File, name: &std::ffi::CStr) -> std::io::Result<Option<Vec<u8>>> {
    // On the stack: an 8 KiB allocation per call made musl's malloc map
    // and unmap memory for a good share of the files.
    let mut buf = [0u8; XATTR_MAX];
    // SAFETY: an open descriptor, a NUL-terminated name and a buffer of
    // buf.len() writable bytes, of which the kernel writes at most that many.
    let n = unsafe {
        nix::libc::fgetxattr(
            file.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    match usize::try_from(n) {
        Ok(n) => Ok(Some(buf.get(..n).unwrap_or_default().to_vec())),
        Err(_) => {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(nix::libc::ENODATA | nix::libc::EOPNOTSUPP) => Ok(None),
                _ => Err(e),
            }
        }
    }
}

/// One file's verdict and the rule that decided it; `None` when it is no
/// longer a regular file.
fn check_file(s: &Shared, path: &Path, fs: &FsInfo) -> Option<(Listed, Option<usize>)> {
    let rel = shown(s, path);
    let fail = |e: std::io::Error| Some((unreadable(s, path, &e), None));
    let md = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    if !md.is_file() {
        return None;
    }
    let subject = Subject {
        owner: md.uid(),
        group: md.gid(),
        fsmagic: fs.magic,
        fsuuid: fs.uuid.clone(),
        fsname: fs.name.clone(),
        uid: s.o.uid,
        gid: s.o.gid,
    };
    let rules = &s.inputs.rules;
    let acc = accesses(&rel, md.mode(), &s.inputs.policy_path);
    let mut coverage = rules::decide(rules, &acc, &subject);
    let mut file = None;
    let mut head = Vec::new();
    if s.mmap_rules {
        let mut with_mmap = acc.clone();
        with_mmap.push(Access::MmapExec);
        let alt = rules::decide(rules, &with_mmap, &subject);
        if alt != coverage {
            let mut f = match open_regular(path) {
                Ok(f) => f,
                Err(e) => return fail(e),
            };
            head = vec![0u8; CHUNK];
            let n = match read_full(&mut f, &mut head) {
                Ok(n) => n,
                Err(e) => return fail(e),
            };
            head.truncate(n);
            if is_elf(&head) {
                coverage = alt;
            }
            file = Some(f);
        }
    }
    let entry = |verdict, line, detail| Listed {
        path: rel.clone(),
        verdict,
        line,
        detail,
    };
    let rule_index = match coverage {
        Coverage::NotCovered => return Some((entry(Verdict::NotCovered, None, None), None)),
        Coverage::Undecided { rule, condition } => {
            // relabel: the kernel knows what the audit cannot; opening lets
            // it label the file if the rule matches.
            if s.o.relabel
                && file.is_none()
                && let Err(e) = open_regular(path)
            {
                return fail(e);
            }
            let line = rules.get(rule).map(|r| r.line);
            let detail = Some(format!("line {}: {condition}", line.unwrap_or(0)));
            return Some((entry(Verdict::Undecided, line, detail), Some(rule)));
        }
        Coverage::Appraised(i) => i,
    };
    let rule = rules.get(rule_index)?;
    let mut f = match file {
        Some(f) => f,
        None => match open_regular(path) {
            Ok(f) => f,
            Err(e) => return fail(e),
        },
    };
    if s.o.relabel {
        // The open above is what makes the kernel label it (FILE_CHECK);
        // reading the start costs little and mirrors the chapter's head.
        if head.is_empty() {
            let mut buf = [0u8; 4096];
            if let Err(e) = read_full(&mut f, &mut buf) {
                return fail(e);
            }
        }
        let signed = match fgetxattr(&f, c"security.ima") {
            Ok(v) => v.and_then(|v| v.first().copied()) == Some(sig::EVM_IMA_XATTR_DIGSIG),
            Err(e) => return fail(e),
        };
        let on_open = matches!(
            rules::decide(rules, &[Access::Read], &subject),
            Coverage::Appraised(_)
        );
        let v = if rule.needs_signature && !signed {
            Verdict::NeedsSignature
        } else if on_open {
            Verdict::Opened
        } else {
            Verdict::NotByOpening
        };
        return Some((entry(v, Some(rule.line), None), Some(rule_index)));
    }
    let ima = match fgetxattr(&f, c"security.ima") {
        Ok(v) => v,
        Err(e) => return fail(e),
    };
    let digest = match ima.as_deref().and_then(verdict::hash_algo_needed) {
        Some(algo) => match hash_rest(&mut f, &head, algo) {
            Ok(d) => d,
            Err(e) => return fail(e),
        },
        None => None,
    };
    let facts = Facts {
        ima: ima.as_deref(),
        needs_signature: rule.needs_signature,
        allowed_algos: rule.allowed_algos.as_deref(),
    };
    let (mut v, mut detail) = verdict::ima_verdict(&facts, &s.inputs.ima_keys, digest.as_deref());
    if s.inputs.evm_on && matches!(v, Verdict::PassSignature | Verdict::PassHash) {
        let evm = match fgetxattr(&f, c"security.evm") {
            Ok(e) => e,
            Err(e) => return fail(e),
        };
        let protected = if verdict::is_portable(evm.as_deref()) {
            match read_protected(&f) {
                Ok(p) => Some(p),
                Err(e) => return fail(e),
            }
        } else {
            None
        };
        let owner = verdict::Owner {
            uid: md.uid(),
            gid: md.gid(),
            mode: md.mode(),
        };
        let protected = protected.as_ref().map(|(v, ima)| (v.as_slice(), *ima));
        if let Some((e, d)) =
            verdict::evm_verdict(evm.as_deref(), protected, owner, &s.inputs.evm_keys)
        {
            v = e;
            detail = d;
        }
    }
    Some((entry(v, Some(rule.line), detail), Some(rule_index)))
}

/// The values of the xattrs EVM protects that the file has, in the
/// kernel's order, and whether security.ima is one of them.
fn read_protected(f: &File) -> std::io::Result<(Vec<Vec<u8>>, bool)> {
    let mut values = Vec::new();
    let mut has_ima = false;
    for name in verdict::EVM_PROTECTED {
        if let Some(v) = fgetxattr(f, name)? {
            has_ima |= name == c"security.ima";
            values.push(v);
        }
    }
    Ok((values, has_ima))
}

/// `path` opened for reading if it is a regular file: O_NONBLOCK so that
/// a FIFO on the root does not wait for a writer, O_NOFOLLOW so that a
/// symlink put in its place is not followed out of the root.
pub(super) fn open_regular(path: &Path) -> std::io::Result<File> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(f)
}

fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while let Some(rest) = buf.get_mut(n..).filter(|r| !r.is_empty()) {
        match f.read(rest) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The content's digest: `head` (already read) then the rest of the file.
fn hash_rest(f: &mut File, head: &[u8], algo: u8) -> std::io::Result<Option<Vec<u8>>> {
    let Some(mut h) = sig::Hasher::new(algo) else {
        return Ok(None);
    };
    h.update(head);
    READ_BUF.with_borrow_mut(|buf| {
        buf.resize(CHUNK, 0);
        loop {
            match f.read(buf) {
                Ok(0) => break,
                Ok(n) => h.update(buf.get(..n).unwrap_or_default()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    })?;
    Ok(Some(h.finish()))
}

thread_local! {
    /// One read buffer per worker: a 64 KiB buffer allocated per file is
    /// mapped and unmapped by musl's malloc each time (a TLB flush a file).
    static READ_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn hooks_by_place() {
        let a = accesses(
            "/usr/lib/modules/6.1/kernel/x.ko.xz",
            0o644,
            "/etc/ima/ima-policy",
        );
        assert_eq!(a, [Access::Read, Access::Kernel(Func::Module)]);
        let a = accesses("/boot/vmlinuz-6.1", 0o600, "/etc/ima/ima-policy");
        assert_eq!(a, [Access::Read, Access::Kernel(Func::KexecKernel)]);
        let a = accesses("/etc/ima/ima-policy", 0o755, "/etc/ima/ima-policy");
        assert_eq!(
            a,
            [Access::Read, Access::Exec, Access::Kernel(Func::Policy)]
        );
        let a = accesses("/lib/firmwarex/a", 0o644, "/p");
        assert_eq!(a, [Access::Read]);
    }

    #[test]
    fn elf_types() {
        let mut h = b"\x7fELF\x02\x01".to_vec();
        h.resize(18, 0);
        h[16] = 3;
        assert!(is_elf(&h));
        h[16] = 1; // ET_REL: an object file, not mapped executable
        assert!(!is_elf(&h));
        assert!(!is_elf(b"\x7fELF"));
    }
}
