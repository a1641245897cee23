//! The ordered commit of a set of files the boot reads together: a kmk
//! blob, the files beside it (recovery file, `.pcrpkey`, `.pcrsig`), an
//! evm-key sealed by that kmk, and the configuration that names them.
//! `seal` and `reseal` (and the boot's AUTO_RESEAL) all replace them here.
//!
//! When the old configuration cannot load the new files, or the new
//! configuration the old ones, or the new kmk would meet the old evm-key,
//! no order of renames over the old files keeps a set that loads at every
//! point. Then the new files go beside the old (`.next`), the configuration
//! switches to them in one rename, they are copied to their places (the
//! old ones are no longer read) and the configuration switches to the
//! places. A crash at any point leaves the old set or the new in force.

use super::CONFIG_PATH;
use super::output;
use crate::rootfs::Root;
use std::path::PathBuf;

/// Where a file of the new set waits while the configuration names it:
/// the blob at MASTERKEY + one of these (its companions after it), the
/// evm-key at EVMKEY + one. The second is for a run after one interrupted
/// past its switch, whose configuration still names files at the first:
/// writing over those would leave, at a crash before the next switch, a
/// blob the configuration in force does not match.
pub const SIDES: [&str; 2] = [".next", ".next2"];

/// The largest file of a set (a blob, an evm-key, a configuration), read
/// back to see whether it changes.
const FILE_LIMIT: usize = 1024 * 1024;

/// A file of the new set.
pub struct File {
    /// Where it goes, inside the root.
    pub path: String,
    /// Where it waits while the configuration names the new set beside
    /// the old.
    pub side: String,
    pub bytes: Vec<u8>,
    pub mode: u32,
}

/// A file of the old set the new one has none of, and why it goes.
pub struct Stale {
    pub path: String,
    pub why: String,
}

/// How the configuration changes.
pub enum Order {
    /// Renames over the old files one after another, the configuration
    /// (when it changes) last: each step leaves a set that loads.
    InPlace { config: Option<Vec<u8>> },
    /// Beside the old files, the switch to `side_config` (naming them
    /// there), then in place and `config` (`None`: there was none, and
    /// there is none after).
    Switch {
        side_config: Vec<u8>,
        config: Option<Vec<u8>>,
    },
}

/// Why a commit stopped, and which set is in force.
#[derive(Debug)]
pub enum CommitError {
    /// The old set: the configuration still names it.
    Old(String),
    /// The new set, beside the places: the configuration names it there.
    Switched(String),
}

/// A set of files to put in place.
pub struct Set {
    pub files: Vec<File>,
    pub stale: Vec<Stale>,
    pub order: Order,
    /// Side files an earlier interrupted run may have left, removed once
    /// the configuration names the places (besides the files' own).
    pub leftovers: Vec<String>,
}

impl Set {
    /// Puts the set in place; returns where each file went, in order, then
    /// the configuration when it was written. A file whose place holds the
    /// same bytes already is not written again.
    pub fn commit(self, root: &Root, force: bool) -> Result<Vec<PathBuf>, CommitError> {
        let Set {
            files,
            stale,
            order,
            leftovers,
        } = self;
        // Temp files a crash cut short, of every file this commit may write
        // or removes as a leftover.
        let mut owned: Vec<&str> = vec![CONFIG_PATH];
        for f in &files {
            owned.extend([f.path.as_str(), f.side.as_str()]);
        }
        owned.extend(leftovers.iter().map(String::as_str));
        output::remove_stale_temps(root, &owned);
        let mut places = Vec::new();
        match order {
            Order::InPlace { config } => {
                places = in_place(root, &files, config, force).map_err(CommitError::Old)?;
                remove_stale(root, &stale);
            }
            Order::Switch {
                side_config,
                config,
            } => {
                let mut beside: Vec<(&str, Vec<u8>, u32)> = files
                    .iter()
                    .map(|f| (f.side.as_str(), f.bytes.clone(), f.mode))
                    .collect();
                beside.push((CONFIG_PATH, side_config, 0o644));
                output::replace_all(root, &beside, true).map_err(|m| {
                    CommitError::Old(format!("{m}; the configuration still names the old files"))
                })?;
                // Nothing reads the old set now.
                remove_stale(root, &stale);
                let sides = files
                    .iter()
                    .map(|f| f.side.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                let switched = |m: String| {
                    CommitError::Switched(format!(
                        "{m}; the configuration names the new files where they wait ({sides}), and the boot loads them from there"
                    ))
                };
                let written = in_place(root, &files, None, true).map_err(switched)?;
                places.extend(written);
                match config {
                    Some(text) => {
                        let at = output::replace_all(root, &[(CONFIG_PATH, text, 0o644)], true)
                            .map_err(switched)?;
                        places.extend(at);
                    }
                    None => {
                        let place = root
                            .resolve_planned(CONFIG_PATH)
                            .map_err(|e| switched(e.to_string()))?;
                        std::fs::remove_file(&place)
                            .map_err(|e| switched(format!("remove {}: {e}", place.display())))?;
                        output::crash_point();
                    }
                }
            }
        }
        let mut gone: Vec<String> = files.into_iter().map(|f| f.side).collect();
        gone.extend(leftovers);
        remove_side_files(root, &gone);
        Ok(places)
    }
}

/// Renames each changed file over its place, then the configuration;
/// returns the places (the configuration's when written).
fn in_place(
    root: &Root,
    files: &[File],
    config: Option<Vec<u8>>,
    force: bool,
) -> Result<Vec<PathBuf>, String> {
    let mut changed: Vec<(&str, Vec<u8>, u32)> = Vec::new();
    for f in files {
        let same = root.read(&f.path, FILE_LIMIT).is_ok_and(|b| b == f.bytes);
        if !same {
            changed.push((f.path.as_str(), f.bytes.clone(), f.mode));
        }
    }
    let with_config = config.is_some();
    if let Some(text) = config {
        changed.push((CONFIG_PATH, text, 0o644));
    }
    let mut written = output::replace_all(root, &changed, force)?.into_iter();
    let mut places = Vec::new();
    for f in files {
        let place = if changed.iter().any(|(p, _, _)| *p == f.path) {
            written.next()
        } else {
            root.resolve_planned(&f.path).ok()
        };
        places.push(place.unwrap_or_default());
    }
    if with_config {
        places.extend(written);
    }
    Ok(places)
}

fn remove_stale(root: &Root, stale: &[Stale]) {
    for s in stale {
        let Ok(place) = root.resolve_planned(&s.path) else {
            continue;
        };
        match std::fs::remove_file(&place) {
            Ok(()) => {
                log::info!("removed {}: {}", place.display(), s.why);
                output::crash_point();
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => log::warn!(
                "cannot remove {} ({e}): {}; remove it",
                place.display(),
                s.why
            ),
        }
    }
}

/// Side files the configuration no longer names.
fn remove_side_files(root: &Root, paths: &[String]) {
    for path in paths {
        let Ok(place) = root.resolve_planned(path) else {
            continue;
        };
        match std::fs::remove_file(&place) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => log::warn!(
                "cannot remove {} ({e}): nothing reads it any more; remove it",
                place.display()
            ),
        }
    }
}

/// `path` without the side suffix a run interrupted after its switch left
/// in the configuration.
pub fn place_of(path: &str) -> &str {
    SIDES
        .iter()
        .rev()
        .find_map(|s| path.strip_suffix(s))
        .unwrap_or(path)
}

/// Where the file for `place` waits: beside it, under a name the
/// configuration (which names `configured` now) does not read.
pub fn side_of(place: &str, configured: &str) -> String {
    let [first, second] = SIDES;
    let side = format!("{place}{first}");
    if side == configured {
        format!("{place}{second}")
    } else {
        side
    }
}

/// The side files of a kmk blob at `blob` and its companions, and of an
/// evm-key at `evm_key`, under either side name: what an interrupted run
/// may have left.
pub fn side_files(blob: &str, evm_key: Option<&str>) -> Vec<String> {
    let mut v = Vec::new();
    for s in SIDES {
        let side = format!("{blob}{s}");
        v.extend(COMPANIONS.iter().map(|c| format!("{side}{c}")));
        v.push(side);
        v.extend(evm_key.map(|e| format!("{e}{s}")));
    }
    v
}

/// The files named after a kmk blob, which follow it to its side path.
pub const COMPANIONS: [&str; 3] = [
    crate::recovery::SUFFIX,
    crate::tpm::policy_authorize::PCRPKEY_SUFFIX,
    crate::tpm::policy_authorize::PCRSIG_SUFFIX,
];

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn the_side_name_is_never_the_one_in_use() {
        assert_eq!(side_of("/k.pem", "/k.pem"), "/k.pem.next");
        assert_eq!(side_of("/k.pem", "/other.pem.next"), "/k.pem.next");
        assert_eq!(side_of("/k.pem", "/k.pem.next"), "/k.pem.next2");
        assert_eq!(side_of("/k.pem", "/k.pem.next2"), "/k.pem.next");
        for path in ["/k.pem", "/k.pem.next", "/k.pem.next2"] {
            assert_eq!(place_of(path), "/k.pem");
        }
        let sides = side_files("/k.pem", Some("/e"));
        for want in [
            "/k.pem.next",
            "/k.pem.next2.recovery",
            "/e.next",
            "/e.next2",
        ] {
            assert!(sides.iter().any(|s| s == want), "{want}: {sides:?}");
        }
    }
}
