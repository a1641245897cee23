//! A rule reduced to what the kernel keeps of it, so that our rules can be
//! recognised in what `<securityfs>/ima/policy` reads back
//! (CONFIG_IMA_READ_POLICY). 6.1's `ima_policy_show()` prints each rule
//! from its parsed entry, not from the text written: in its own order, with
//! `func=` aliases resolved, `fsmagic=0x<lowercase hex>`, a lowercase UUID,
//! ids as signed ints, a template by name, hash algorithms in the kernel's
//! order, the last of a repeated `fsname=`/`pcr=`, one `appraise_type=`
//! summing up the signature flags, and a space after every token. Both the
//! file's rules and the kernel's lines go through `canonical()`, and a line
//! the kernel prints that we cannot read never equals one of ours.

use super::values::{is_id, kernel_int, kernel_unsigned, template_name};
use super::{FUNCS, HASH_ALGOS, lookup};
use std::collections::BTreeMap;

/// `fsname` goes through a 64-byte buffer in `ima_policy_show()`.
const SHOWN_FSNAME: usize = 63;

/// The rule's tokens in normal form, in a fixed order. Only meant for
/// comparison; tokens unknown to us are kept as written.
pub(super) fn canonical(rule: &str) -> Vec<String> {
    // One entry per field of the kernel's rule entry: a later token for the
    // same field replaces an earlier one, as in the kernel.
    let mut fields: BTreeMap<&str, String> = BTreeMap::new();
    let (mut digsig, mut modsig, mut verity) = (false, false, false);
    for tok in rule.split([' ', '\t']).filter(|t| !t.is_empty()) {
        let Some(pos) = tok.find(['=', '<', '>']) else {
            // An action or permit_directio.
            fields.insert(tok, tok.to_owned());
            continue;
        };
        let (name, rest) = tok.split_at_checked(pos).unwrap_or((tok, ""));
        let (op, value) = rest.split_at_checked(1).unwrap_or((rest, ""));
        let normal = match name {
            "func" => lookup(FUNCS, value).map(|f| f.name().to_owned()),
            "fsmagic" => kernel_unsigned(value, 16).map(|n| format!("0x{n:x}")),
            "fsuuid" => Some(value.to_ascii_lowercase()),
            "fsname" => Some(shown_fsname(value).to_owned()),
            "pcr" => kernel_int(value).map(|n| n.to_string()),
            "template" => template_name(value).map(str::to_owned),
            "appraise_algos" => Some(algos(value)),
            _ if is_id(name) => id(value).map(|n| n.to_string()),
            "appraise_type" if matches!(value, "imasig" | "sigv3" | "imasig|modsig") => {
                digsig = true;
                modsig |= value == "imasig|modsig";
                continue;
            }
            "digest_type" if value == "verity" => {
                verity = true;
                continue;
            }
            "appraise_flag" if value.contains("blacklist") => Some("check_blacklist".to_owned()),
            _ => None,
        };
        let normal = normal.unwrap_or_else(|| value.to_owned());
        // uid and euid share one field of the entry, as do gid and egid.
        let field = match name {
            "euid" => "uid",
            "egid" => "gid",
            n => n,
        };
        fields.insert(field, format!("{name}{op}{normal}"));
    }
    if digsig {
        let t = match (verity, modsig) {
            (true, _) => "sigv3",
            (false, true) => "imasig|modsig",
            (false, false) => "imasig",
        };
        fields.insert("appraise_type", format!("appraise_type={t}"));
    }
    if verity {
        fields.insert("digest_type", "digest_type=verity".to_owned());
    }
    fields.into_values().collect()
}

/// Whether the rule has an LSM condition: the kernel does not print a rule
/// whose LSM label is inactive (an LSM that is not loaded, or a label its
/// policy lacks), so such a rule may be missing from the read-back.
pub(super) fn may_be_hidden(canonical: &[String]) -> bool {
    canonical
        .iter()
        .any(|t| t.starts_with("subj_") || t.starts_with("obj_"))
}

/// Whether `ours`, in order, stand one after the other in `shown` (the
/// kernel appends one update as a block), rules that may be hidden being
/// allowed to be missing; at least one rule must be seen.
pub(super) fn shown_as_block(ours: &[Vec<String>], shown: &[Option<Vec<String>>]) -> bool {
    (0..shown.len()).any(|start| {
        let mut at = start;
        let mut matched = 0;
        for rule in ours {
            if shown.get(at).and_then(Option::as_ref) == Some(rule) {
                at += 1;
                matched += 1;
            } else if !may_be_hidden(rule) {
                return false;
            }
        }
        matched > 0
    })
}

fn shown_fsname(value: &str) -> &str {
    let mut end = value.len().min(SHOWN_FSNAME);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value.get(..end).unwrap_or(value)
}

/// `%d` of the id: 4294967294 reads back as -2.
fn id(value: &str) -> Option<u32> {
    match value.strip_prefix('-') {
        Some(rest) => rest.parse::<u32>().ok().map(u32::wrapping_neg),
        None => u32::try_from(kernel_unsigned(value, 10)?).ok(),
    }
}

/// The set of algorithms, in the kernel's `hash_algo_name[]` order.
fn algos(value: &str) -> String {
    let given: Vec<&str> = value.split(',').collect();
    let names = HASH_ALGOS.split_whitespace();
    if !given.iter().all(|g| names.clone().any(|a| a == *g)) {
        return value.to_owned();
    }
    names
        .filter(|a| given.contains(a))
        .collect::<Vec<_>>()
        .join(",")
}
