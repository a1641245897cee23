//! One option of a rule (`key=value`, `key<value`, `key>value` or
//! `permit_directio`): its name, its operator and its value, checked as
//! `ima_parse_rule()` checks them, with the order rules between options.

use super::{AppraiseType, FUNCS, PolicyErrorKind, Seen, in_list, lookup};

/// Highest `pcr=`. The kernel takes up to 63 (bits of `measured_pcrs`), but a
/// TPM 2.0 has PCRs 0..=23: a higher one only fails later, at each extend.
const MAX_PCR: i64 = 23;

/// Every option of the kernel's `policy_tokens` (`fs_subtype`: v6.19 ABI).
const KEYS: &str = "func mask fsmagic fsuuid fsname fs_subtype uid euid gid egid fowner fgroup \
    subj_user subj_role subj_type obj_user obj_role obj_type appraise_type appraise_flag \
    appraise_algos digest_type template pcr permit_directio keyrings label";

/// `hash_algo_name[]`; whether the crypto API has one is only known on the target.
pub(super) const HASH_ALGOS: &str = "md4 md5 sha1 rmd160 sha256 sha384 sha512 sha224 rmd128 rmd256 rmd320 \
    wp256 wp384 wp512 tgr128 tgr160 tgr192 sm3 streebog256 streebog512 sha3-256 sha3-384 sha3-512";

/// Built-in templates (`ima_template.c`): `lookup_template_desc()` matches a
/// name or a format string.
const TEMPLATES: &[(&str, &str)] = &[
    ("ima", "d|n"),
    ("ima-ng", "d-ng|n-ng"),
    ("ima-sig", "d-ng|n-ng|sig"),
    ("ima-ngv2", "d-ngv2|n-ng"),
    ("ima-sigv2", "d-ngv2|n-ng|sig"),
    ("ima-buf", "d-ng|n-ng|buf"),
    ("ima-modsig", "d-ng|n-ng|sig|d-modsig|modsig"),
    (
        "evm-sig",
        "d-ng|n-ng|evmsig|xattrnames|xattrlengths|xattrvalues|iuid|igid|imode",
    ),
];

pub(super) fn is_id(key: &str) -> bool {
    matches!(key, "uid" | "euid" | "gid" | "egid" | "fowner" | "fgroup")
}

/// The kernel keeps uid/euid in one field and gid/egid in another, so the
/// second of a pair fails like a repeat.
fn slot_mate(key: &str) -> Option<&'static str> {
    match key {
        "uid" => Some("euid"),
        "euid" => Some("uid"),
        "gid" => Some("egid"),
        "egid" => Some("gid"),
        _ => None,
    }
}

/// `key=value`, `key<value`, `key>value` or `permit_directio`.
pub(super) fn split_token(tok: &str) -> Result<(&'static str, &str), PolicyErrorKind> {
    use PolicyErrorKind as K;
    let Some(pos) = tok.find(['=', '<', '>']) else {
        return match in_list(KEYS, tok) {
            Some("permit_directio") => Ok(("permit_directio", "")),
            Some(key) => Err(K::MissingValue(key)),
            None => Err(K::UnknownCondition(tok.to_owned())),
        };
    };
    let (name, rest) = tok.split_at_checked(pos).unwrap_or((tok, ""));
    let mut chars = rest.chars();
    let op = chars.next().unwrap_or('=');
    let value = chars.as_str();
    let key = in_list(KEYS, name).ok_or_else(|| K::UnknownCondition(tok.to_owned()))?;
    if key == "permit_directio" {
        return Err(K::UnexpectedValue(key));
    }
    if op != '=' && !is_id(key) {
        return Err(K::WrongOperator(key, op));
    }
    // The kernel's "%s" pattern does not match an empty value.
    if value.is_empty() {
        return Err(K::MissingValue(key));
    }
    Ok((key, value))
}

/// Checks one option's value and its order against earlier ones.
pub(super) fn add_option(
    seen: &mut Seen,
    key: &'static str,
    value: &str,
    column: usize,
) -> Result<(), PolicyErrorKind> {
    use PolicyErrorKind as K;
    // What 6.1's ima_parse_rule() lets through twice: the options it stores
    // without looking at the field first (the last one wins, or a flag is set
    // again), and fsmagic/fsuuid after a zero one (it tests the field, not
    // whether the option was given).
    let repeat_ok = match key {
        "fsname" | "pcr" | "digest_type" | "appraise_type" | "appraise_flag"
        | "permit_directio" => true,
        "fsmagic" => seen.zero_fsmagic,
        "fsuuid" => seen.nil_fsuuid,
        _ => false,
    };
    if !repeat_ok && seen.column(key).is_some() {
        return Err(K::Repeated(key));
    }
    if let Some(mate) = slot_mate(key)
        && seen.column(mate).is_some()
    {
        return Err(K::Conflict(key, mate));
    }
    let invalid = |expected| K::InvalidValue {
        key,
        value: value.to_owned(),
        expected,
    };
    match key {
        "func" => {
            let func = lookup(FUNCS, value).ok_or_else(|| {
                invalid(
                    "BPRM_CHECK, MMAP_CHECK, MMAP_CHECK_REQPROT, CREDS_CHECK, FILE_CHECK, \
                     MODULE_CHECK, FIRMWARE_CHECK, KEXEC_KERNEL_CHECK, KEXEC_INITRAMFS_CHECK, \
                     KEXEC_CMDLINE, POLICY_CHECK, KEY_CHECK, CRITICAL_DATA or SETXATTR_CHECK",
                )
            })?;
            seen.func = Some((func, column));
        }
        "mask" => {
            let bit = value.strip_prefix('^').unwrap_or(value);
            if in_list("MAY_READ MAY_WRITE MAY_APPEND MAY_EXEC", bit).is_none() {
                return Err(invalid(
                    "MAY_READ, MAY_WRITE, MAY_APPEND or MAY_EXEC, optionally after ^",
                ));
            }
        }
        "fsmagic" => {
            let n = kernel_unsigned(value, 16)
                .ok_or_else(|| invalid("a hexadecimal filesystem magic such as 0x9fa0"))?;
            seen.zero_fsmagic = n == 0;
        }
        "fsuuid" => {
            if !is_uuid(value) {
                return Err(invalid(
                    "a UUID such as 8bcbe394-4f13-4144-be8e-5aa9ea2ce2f6",
                ));
            }
            seen.nil_fsuuid = value.bytes().all(|b| b == b'0' || b == b'-');
        }
        // (uid_t)-1 is INVALID_UID, which the kernel refuses.
        _ if is_id(key) && kernel_unsigned(value, 10).is_none_or(|n| n >= u64::from(u32::MAX)) => {
            return Err(invalid("a decimal id from 0 to 4294967294"));
        }
        "pcr" if kernel_int(value).is_none_or(|n| !(0..=MAX_PCR).contains(&n)) => {
            return Err(invalid("a decimal PCR index from 0 to 23"));
        }
        "appraise_type" => {
            let t = match value {
                "imasig" => AppraiseType::Imasig,
                "imasig|modsig" => AppraiseType::ImasigModsig,
                "sigv3" => AppraiseType::Sigv3,
                _ => return Err(invalid("imasig, imasig|modsig or sigv3")),
            };
            // The kernel's order rules: sigv3 only after digest_type=verity,
            // the other types never with it.
            match (t, seen.digest_type) {
                (AppraiseType::Sigv3, false) => {
                    let needs = "\"digest_type=verity\" earlier in the rule";
                    return Err(K::Requires(t.token(), needs));
                }
                (AppraiseType::Imasig | AppraiseType::ImasigModsig, true) => {
                    return Err(K::Conflict(t.token(), "digest_type=verity"));
                }
                // Given twice, the kernel keeps both flags: modsig stays allowed.
                _ if seen.appraise_type == Some(AppraiseType::ImasigModsig) => {}
                _ => seen.appraise_type = Some(t),
            }
        }
        // The kernel only looks for "blacklist" in the value (strstr).
        "appraise_flag" if !value.contains("blacklist") => {
            return Err(invalid("check_blacklist"));
        }
        "appraise_algos" => {
            if let Some(bad) = value.split(',').find(|a| in_list(HASH_ALGOS, a).is_none()) {
                let expected = "comma-separated kernel hash names such as sha256,sha384,sha512";
                return Err(K::InvalidValue {
                    key,
                    value: bad.to_owned(),
                    expected,
                });
            }
        }
        "digest_type" => {
            if value != "verity" {
                return Err(invalid("verity"));
            }
            if seen.appraise_type.is_some() {
                return Err(K::MustPrecede("digest_type=verity", "appraise_type="));
            }
            seen.digest_type = true;
        }
        // The kernel checks the action when it meets template=.
        "template" if seen.action.is_none() => {
            return Err(K::MustPrecede("measure", "template="));
        }
        "template" if template_name(value).is_none() => {
            return Err(invalid(
                "a built-in template: ima, ima-ng, ima-sig, ima-ngv2, ima-sigv2, ima-buf, ima-modsig or evm-sig",
            ));
        }
        "keyrings" | "label" if value.split('|').any(str::is_empty) => {
            return Err(invalid("names separated by |, none empty"));
        }
        // fsname, fs_subtype and LSM labels take any text; whether the LSM
        // knows a label is only known on the target.
        _ => {}
    }
    seen.keys.push((key, column));
    Ok(())
}

/// The name of a built-in template given by name or by format.
pub(super) fn template_name(value: &str) -> Option<&'static str> {
    TEMPLATES
        .iter()
        .find(|&&(n, fmt)| value == n || value == fmt)
        .map(|&(n, _)| n)
}

/// A number as the kernel's `kstrtoul()` reads it: one optional '+', then
/// for base 16 an optional "0x", then at least one digit, nothing after, no
/// overflow. (`u64::from_str_radix` alone would differ on "0x" and "+".)
pub(crate) fn kernel_unsigned(value: &str, radix: u32) -> Option<u64> {
    let v = value.strip_prefix('+').unwrap_or(value);
    let digits = match radix {
        16 => v
            .strip_prefix("0x")
            .or_else(|| v.strip_prefix("0X"))
            .unwrap_or(v),
        _ => v,
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// `kstrtoint(value, 10)`: a '-' (not followed by '+') or a '+', digits,
/// within i32.
pub(super) fn kernel_int(value: &str) -> Option<i64> {
    let n = match value.strip_prefix('-') {
        Some(rest) if !rest.starts_with('+') => {
            0i64.checked_sub_unsigned(kernel_unsigned(rest, 10)?)?
        }
        Some(_) => return None,
        None => i64::try_from(kernel_unsigned(value, 10)?).ok()?,
    };
    i32::try_from(n).is_ok().then_some(n)
}

/// 8-4-4-4-12 hex digits, as `uuid_parse()` reads them.
fn is_uuid(value: &str) -> bool {
    value.len() == 36
        && value.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}
