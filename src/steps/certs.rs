//! Steps 3 and 4: X.509 certificates into the EVM and IMA keyrings: the
//! kernel's trusted `.evm`/`.ima` when it has them, else `_evm`/`_ima`
//! found or created under the target keyring, as dracut does.

use super::{Context, Facts, Outcome, keyring_errno_words, missing};
use crate::keyring::{self, KeySerial};
use crate::plan::StepId;
use crate::x509::{self, Certificate};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Certificates are a few KiB; the bound keeps a hostile file from costing memory.
const CERT_FILE_LIMIT: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Evm,
    Ima,
}

impl Target {
    fn system_keyring(self) -> &'static str {
        match self {
            Target::Evm => ".evm",
            Target::Ima => ".ima",
        }
    }
    fn fallback_keyring(self) -> &'static str {
        match self {
            Target::Evm => "_evm",
            Target::Ima => "_ima",
        }
    }
    fn step(self) -> StepId {
        match self {
            Target::Evm => StepId::EvmCerts,
            Target::Ima => StepId::ImaCerts,
        }
    }
    fn label(self) -> &'static str {
        match self {
            Target::Evm => "EVM",
            Target::Ima => "IMA",
        }
    }
}

/// A configured certificate file, read and checked.
struct Candidate {
    shown: String,
    cert: Certificate,
}

/// The files to load: for EVM, EVMX509 then EVMKEYSDIR/*; for IMA,
/// IMAKEYSDIR/*. Missing files, directories and symlinks to nothing are
/// skipped as dracut skips them; a path named twice is read once. Names
/// from a directory stay bytes: they need not be UTF-8.
pub(crate) fn configured_paths(ctx: &Context, target: Target) -> Result<Vec<PathBuf>, String> {
    let s = ctx.settings;
    // Each path with where it resolves (walked once: the walk is a chain
    // of lstat calls), to skip directories and read a file named twice once.
    let mut found: Vec<(PathBuf, Option<PathBuf>)> = Vec::new();
    let dir = match target {
        Target::Evm => {
            match ctx.root.resolve(&s.evm_x509.value) {
                Ok(real) => found.push((PathBuf::from(&s.evm_x509.value), Some(real))),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.to_string()),
            }
            &s.evm_keys_dir.value
        }
        Target::Ima => &s.ima_keys_dir.value,
    };
    let names = ctx.root.list_dir(dir).map_err(|e| format!("list {e}"))?;
    for name in names.unwrap_or_default() {
        if name.as_bytes().starts_with(b".") {
            continue; // a shell glob skips dot files
        }
        let p = Path::new(dir).join(name);
        match ctx.root.resolve(&p) {
            Ok(real) if real.is_dir() => continue,
            Err(e) if e.is_not_found() => {
                log::warn!(
                    "{} certificate {}: skipped, a symlink to a file the root does not have",
                    target.label(),
                    ctx.root.display_path(&p)
                );
                continue;
            }
            Ok(real) => found.push((p, Some(real))),
            // Reading it says what is wrong.
            Err(_) => found.push((p, None)),
        }
    }
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut paths = Vec::new();
    for (p, real) in found {
        if let Some(real) = real {
            if seen.contains(&real) {
                continue;
            }
            seen.push(real);
        }
        paths.push(p);
    }
    Ok(paths)
}

pub fn run(ctx: &Context, facts: &mut Facts, target: Target) -> Outcome {
    let has_feature = match target {
        Target::Evm => ctx.securityfs.has_evm(),
        Target::Ima => ctx.securityfs.has_ima(),
    };
    // `check` validates the files even where this kernel lacks the feature
    // (it may run at initramfs build time on another kernel).
    if !has_feature && !ctx.dry_run {
        return Outcome::not_configured(format!("the kernel has no {}", target.label()));
    }
    let paths = match configured_paths(ctx, target) {
        Ok(p) => p,
        Err(m) => return Outcome::failed(m),
    };
    if paths.is_empty() {
        let where_ = match target {
            Target::Evm => format!(
                "{} or {}",
                ctx.settings.evm_x509.value, ctx.settings.evm_keys_dir.value
            ),
            Target::Ima => ctx.settings.ima_keys_dir.value.clone(),
        };
        return missing(
            ctx,
            target.step(),
            format!("no {} certificates in {where_}", target.label()),
        );
    }

    // Read and check every file before touching the kernel.
    let mut failures: Vec<String> = Vec::new();
    let mut candidates: Vec<Candidate> = Vec::new();
    for p in &paths {
        let shown = ctx.root.display_path(p);
        let bytes = match ctx.root.read_path(p, CERT_FILE_LIMIT) {
            Ok(b) => b,
            Err(e) => {
                failures.push(format!("read {} certificate {e}", target.label()));
                continue;
            }
        };
        match x509::intake(&bytes) {
            Ok(cert) => {
                for w in cert.warnings() {
                    log::warn!("{} certificate {}: {w}", target.label(), shown);
                }
                if let Some(first) = candidates.iter().find(|c| c.cert.der() == cert.der()) {
                    log::info!(target: crate::logging::DETAIL,
                        "{} certificate {} is the same as {}; loading it once",
                        target.label(),
                        shown,
                        first.shown
                    );
                    continue;
                }
                if let Some(first) = candidates.iter().find(|c| {
                    c.cert.subject() == cert.subject() && c.cert.key_id() == cert.key_id()
                }) {
                    log::warn!(
                        "{} certificate {} has the subject and key id of {}; the kernel would keep only one of them, so loading {} only",
                        target.label(),
                        shown,
                        first.shown,
                        first.shown
                    );
                    continue;
                }
                candidates.push(Candidate { shown, cert });
            }
            Err(e) => failures.push(format!("{} certificate {}: {e}", target.label(), shown)),
        }
    }

    let system = keyring::find_system_keyring(target.system_keyring());
    let ring_name = if system.is_some() {
        target.system_keyring()
    } else {
        target.fallback_keyring()
    };

    if ctx.dry_run {
        for c in &candidates {
            log::info!(target: crate::logging::DETAIL,
                "would load {} certificate {}: subject \"{}\", key id {} ({})",
                target.label(),
                c.shown,
                c.cert.subject(),
                c.cert.key_id(),
                c.cert.key_type()
            );
        }
        count_into(facts, target, candidates.len());
        return finish(target, candidates.len(), 0, ring_name, failures, true);
    }

    let mut created = false;
    let ring = if candidates.is_empty() {
        None
    } else {
        match system {
            Some(id) => Some(id),
            None => match find_or_create(ctx, target.fallback_keyring()) {
                Ok((id, new)) => {
                    created = new;
                    Some(id)
                }
                Err(m) => {
                    failures.push(m);
                    None
                }
            },
        }
    };
    let mut loaded = 0;
    let mut present = 0;
    if let Some(ring) = ring {
        // A keyring this run created is neither locked nor holding keys:
        // no need to ask the kernel (two keyctl calls and a describe each).
        let locked = !created && system.is_none() && is_locked(ring);
        let existing = if created {
            Vec::new()
        } else {
            existing_key_ids(ring)
        };
        for c in &candidates {
            let desc = format!(
                "{} certificate {}: subject \"{}\", key id {}",
                target.label(),
                c.shown,
                c.cert.subject(),
                c.cert.key_id()
            );
            if existing
                .iter()
                .any(|d| d.ends_with(&format!(": {}", c.cert.key_id())))
            {
                log::info!(target: crate::logging::DETAIL, "{desc}: already on {ring_name}");
                present += 1;
                continue;
            }
            if locked {
                failures.push(format!(
                    "load {desc}: {ring_name} was locked by an earlier load (LOCK_KEYRINGS=yes), so nothing can be added to it until the next boot"
                ));
                continue;
            }
            match keyring::add_key("asymmetric", None, c.cert.der(), ring) {
                Ok(id) => {
                    // The console gets the file, the subject and the short
                    // key id the kernel names the key by; -v the rest.
                    log::info!(target: crate::logging::DETAIL,
                        "loaded {} certificate {} (\"{}\", {}) into {ring_name}",
                        target.label(),
                        c.shown,
                        c.cert.subject(),
                        x509::short_key_id(c.cert.key_id())
                    );
                    log::debug!("{desc}: key {id} on {ring_name}");
                    loaded += 1;
                }
                Err(e) => failures.push(format!(
                    "load {desc}: kernel refused it ({e}): {}",
                    x509::describe_kernel_refusal(e as i32, ring_name)
                )),
            }
        }
    }
    let mut locked_now = false;
    // A keyring this run created and nothing went into is undone.
    if let (Some(ring), true, 0) = (ring, created, loaded) {
        let _ = keyring::unlink(ring, ctx.keyring);
    } else if let (Some(ring), None, true) = (ring, system, ctx.settings.lock_keyrings) {
        // The kernel's .ima/.evm only take keys its own keys vouch for; the
        // userspace _ima/_evm take anything root adds, so once loaded they
        // are closed to later additions (a root process of the booted
        // system adding its own certificate, say).
        if loaded + present > 0 {
            match lock(ring, ring_name, created) {
                Ok(newly) => locked_now = newly,
                Err(m) => failures.push(m),
            }
        }
    }
    count_into(facts, target, loaded + present);
    let mut outcome = finish(target, loaded, present, ring_name, failures, false);
    if locked_now {
        outcome.message.push_str(&format!(
            ", then locked {ring_name}: no key can be added until the next boot"
        ));
    }
    outcome
}

fn count_into(facts: &mut Facts, target: Target, n: usize) {
    match target {
        Target::Evm => facts.evm_certs = n,
        Target::Ima => facts.ima_certs = n,
    }
}

fn finish(
    target: Target,
    loaded: usize,
    present: usize,
    ring: &str,
    failures: Vec<String>,
    dry_run: bool,
) -> Outcome {
    let verb = if dry_run { "would load" } else { "loaded" };
    let mut summary = format!(
        "{verb} {loaded} {} certificate(s) into {ring}",
        target.label()
    );
    if present > 0 {
        summary.push_str(&format!(", {present} already there"));
    }
    if !failures.is_empty() {
        return Outcome::failed(format!("{}; {summary}", failures.join("; ")));
    }
    if loaded == 0 && present > 0 {
        return Outcome::already(summary);
    }
    Outcome::done(summary)
}

/// A keyring whose writes are locked (by an earlier run's `lock`).
fn is_locked(ring: KeySerial) -> bool {
    keyring::describe(ring).is_ok_and(|k| k.is_write_locked())
}

/// Refuses every later link into `ring` and takes away the write and
/// setattr permissions, so that neither can be undone; view, read and search
/// stay (the kernel searches the keyring when it appraises). `Ok(true)`
/// when this call locked it, `Ok(false)` when it was locked already (never
/// so when this run `created` it).
fn lock(ring: KeySerial, ring_name: &str, created: bool) -> Result<bool, String> {
    use keyring::{PERM_LINK, PERM_POS_SHIFT, PERM_READ, PERM_SEARCH, PERM_USR_SHIFT, PERM_VIEW};
    if !created && is_locked(ring) {
        return Ok(false);
    }
    match keyring::restrict_all_links(ring) {
        // EEXIST: restricted already (by an earlier run that could not set
        // the permissions, or by the admin).
        Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
        Err(e) => {
            return Err(format!(
                "lock {ring_name} (LOCK_KEYRINGS=yes): the kernel refused to restrict it: {}",
                keyring_errno_words(e)
            ));
        }
    }
    let keep = PERM_VIEW | PERM_READ | PERM_SEARCH;
    let perm = (keep | PERM_LINK) << PERM_POS_SHIFT | keep << PERM_USR_SHIFT;
    keyring::set_perm(ring, perm).map_err(|e| {
        format!(
            "lock {ring_name} (LOCK_KEYRINGS=yes): it refuses new links, but its permissions could not be set: {}",
            keyring_errno_words(e)
        )
    })?;
    Ok(true)
}

/// The `_evm`/`_ima` keyring under the target keyring, created if absent
/// (then `true`).
fn find_or_create(ctx: &Context, name: &str) -> Result<(KeySerial, bool), String> {
    match keyring::search(ctx.keyring, "keyring", name) {
        Ok(Some(id)) => Ok((id, false)),
        Ok(None) => keyring::new_keyring(name, ctx.keyring)
            .map(|id| (id, true))
            .map_err(|e| {
                format!(
                    "create keyring {name} in {}: {}",
                    ctx.keyring_spec,
                    keyring_errno_words(e)
                )
            }),
        Err(e) => Err(format!(
            "search keyring {}: {}",
            ctx.keyring_spec,
            keyring_errno_words(e)
        )),
    }
}

/// Descriptions of the asymmetric keys on a keyring ("CN: key id").
fn existing_key_ids(ring: KeySerial) -> Vec<String> {
    keyring::list(ring)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|id| keyring::describe(id).ok())
        .filter(|k| k.key_type == "asymmetric")
        .map(|k| k.description)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::KeyringSpec;
    use crate::rootfs::Root;
    use crate::securityfs::SecurityFs;
    use std::ffi::OsStr;
    use std::fs;
    use std::os::unix::fs::symlink;

    /// The IMA certificate paths of a root whose /etc/keys/ima holds
    /// `entries`: (name as bytes, what it is).
    fn ima_paths(entries: &[(&[u8], Entry)]) -> Result<Vec<PathBuf>, String> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("il-certs-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let keys = dir.join("etc/keys/ima");
        fs::create_dir_all(&keys).unwrap();
        fs::create_dir_all(dir.join("etc/keys/other")).unwrap();
        fs::write(dir.join("etc/keys/other/c.der"), b"c").unwrap();
        for (name, entry) in entries {
            let p = keys.join(OsStr::from_bytes(name));
            match entry {
                Entry::File => fs::write(&p, b"x").unwrap(),
                Entry::Dir => fs::create_dir(&p).unwrap(),
                Entry::Link(target) => symlink(target, &p).unwrap(),
            }
        }
        let root = Root::new(&dir);
        let settings = crate::steps::default_settings(&root);
        let securityfs = SecurityFs::new(dir.join("sfs"));
        let ctx = Context {
            settings: &settings,
            root: &root,
            securityfs: &securityfs,
            keyring_spec: KeyringSpec::parse("@u").unwrap(),
            keyring: 0,
            run_dir: &dir,
            dry_run: true,
            plan: &crate::plan::PLAN,
            failed: Default::default(),
            skipped_after_failure: Default::default(),
        };
        let paths = configured_paths(&ctx, Target::Ima);
        let _ = fs::remove_dir_all(&dir);
        paths
    }

    enum Entry {
        File,
        Dir,
        Link(&'static str),
    }

    #[test]
    fn directory_entries_as_dracut_takes_them() {
        use Entry::*;
        // (directory entries, the paths taken)
        type Case<'a> = (&'a [(&'a [u8], Entry)], &'a [&'a [u8]]);
        let cases: &[Case] = &[
            (&[(b"a.der", File)], &[b"a.der"]),
            // dracut's `[ -f ]` skips a symlink to nothing.
            (
                &[(b"a.der", File), (b"gone.der", Link("/etc/keys/nothing"))],
                &[b"a.der"],
            ),
            (&[(b"gone.der", Link("nothing"))], &[]),
            // A symlink to a file is taken, once with its target.
            (&[(b"l.der", Link("/etc/keys/other/c.der"))], &[b"l.der"]),
            (&[(b"a.der", File), (b"l.der", Link("a.der"))], &[b"a.der"]),
            // Dot files and directories are not certificates.
            (
                &[(b".hidden", File), (b"sub", Dir), (b"d", Link("sub"))],
                &[],
            ),
            // A name that is not UTF-8 is kept as it is.
            (&[(b"caf\xe9.der", File)], &[b"caf\xe9.der"]),
            // A symlink that leaves the root is not skipped: it fails later.
            (
                &[(b"out.der", Link("../../../../../../../../etc/passwd"))],
                &[b"out.der"],
            ),
        ];
        for (entries, want) in cases {
            let want: Vec<PathBuf> = want
                .iter()
                .map(|n| Path::new("/etc/keys/ima").join(OsStr::from_bytes(n)))
                .collect();
            assert_eq!(ima_paths(entries).unwrap(), want);
        }
    }
}
