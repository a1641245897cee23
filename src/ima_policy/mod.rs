//! IMA policy text: parsed and checked here before anything is written to
//! `<securityfs>/ima/policy`.
//!
//! The kernel drops a whole update on the first bad rule while `close()`
//! still returns 0 (kernel-interfaces.md pitfall 4), so every rule is checked
//! the way `ima_parse_rule()` and `ima_validate_rule()` check it, and the
//! admin gets a line and column instead of "policy update failed" in dmesg.
//! What depends on the running kernel is not checked here: LSM labels, hash
//! algorithms missing from its crypto API, CONFIG_IMA_APPRAISE_MODSIG,
//! CONFIG_IMA_MEASURE_ASYMMETRIC_KEYS, and tokens older kernels lack.

use std::fmt;

/// Longest line accepted, without its newline. The kernel takes at most
/// PAGE_SIZE-1 = 4095 bytes per write() and silently drops the rest; a rule
/// plus its newline must stay below that, with one byte to spare.
pub const MAX_LINE_LEN: usize = 4093;

/// Highest `pcr=`. The kernel takes up to 63 (bits of `measured_pcrs`), but a
/// TPM 2.0 has PCRs 0..=23: a higher one only fails later, at each extend.
const MAX_PCR: u64 = 23;

/// Every option of the kernel's `policy_tokens` (`fs_subtype`: v6.19 ABI).
const KEYS: &str = "func mask fsmagic fsuuid fsname fs_subtype uid euid gid egid fowner fgroup \
    subj_user subj_role subj_type obj_user obj_role obj_type appraise_type appraise_flag \
    appraise_algos digest_type template pcr permit_directio keyrings label";

/// `hash_algo_name[]`; whether the crypto API has one is only known on the target.
const HASH_ALGOS: &str = "md4 md5 sha1 rmd160 sha256 sha384 sha512 sha224 rmd128 rmd256 rmd320 \
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

/// What a rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Measure,
    DontMeasure,
    Appraise,
    DontAppraise,
    Audit,
    /// In the v6.19 ABI document (2025 series, with `fs_subtype=`); older
    /// kernels reject it, so check the target kernel before using it.
    DontAudit,
    Hash,
    DontHash,
}

const ACTIONS: &[(&str, Action)] = &[
    ("measure", Action::Measure),
    ("dont_measure", Action::DontMeasure),
    ("appraise", Action::Appraise),
    ("dont_appraise", Action::DontAppraise),
    ("audit", Action::Audit),
    ("dont_audit", Action::DontAudit),
    ("hash", Action::Hash),
    ("dont_hash", Action::DontHash),
];

impl Action {
    pub fn name(self) -> &'static str {
        name_of(ACTIONS, self)
    }
}

/// The hook of `func=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Bprm,
    Mmap,
    MmapReqprot,
    Creds,
    File,
    Module,
    Firmware,
    KexecKernel,
    KexecInitramfs,
    KexecCmdline,
    Policy,
    Key,
    CriticalData,
    Setxattr,
}

/// Canonical names first, the kernel's aliases last.
const FUNCS: &[(&str, Func)] = &[
    ("BPRM_CHECK", Func::Bprm),
    ("MMAP_CHECK", Func::Mmap),
    ("MMAP_CHECK_REQPROT", Func::MmapReqprot),
    ("CREDS_CHECK", Func::Creds),
    ("FILE_CHECK", Func::File),
    ("MODULE_CHECK", Func::Module),
    ("FIRMWARE_CHECK", Func::Firmware),
    ("KEXEC_KERNEL_CHECK", Func::KexecKernel),
    ("KEXEC_INITRAMFS_CHECK", Func::KexecInitramfs),
    ("KEXEC_CMDLINE", Func::KexecCmdline),
    ("POLICY_CHECK", Func::Policy), // missing from the ABI list, accepted
    ("KEY_CHECK", Func::Key),       // needs CONFIG_IMA_MEASURE_ASYMMETRIC_KEYS
    ("CRITICAL_DATA", Func::CriticalData),
    ("SETXATTR_CHECK", Func::Setxattr),
    ("FILE_MMAP", Func::Mmap),
    ("PATH_CHECK", Func::File),
];

/// Hooks grouped as the `switch (entry->func)` of `ima_validate_rule()`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Group {
    File,
    Module,
    Cmdline,
    Key,
    CriticalData,
    Setxattr,
}

impl Func {
    pub fn name(self) -> &'static str {
        name_of(FUNCS, self)
    }

    fn group(self) -> Group {
        match self {
            Func::Module | Func::KexecKernel | Func::KexecInitramfs => Group::Module,
            Func::KexecCmdline => Group::Cmdline,
            Func::Key => Group::Key,
            Func::CriticalData => Group::CriticalData,
            Func::Setxattr => Group::Setxattr,
            _ => Group::File,
        }
    }
}

/// `appraise_type=`: every value makes the kernel demand a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppraiseType {
    Imasig,
    ImasigModsig,
    Sigv3,
}

impl AppraiseType {
    fn token(self) -> &'static str {
        match self {
            AppraiseType::Imasig => "appraise_type=imasig",
            AppraiseType::ImasigModsig => "appraise_type=imasig|modsig",
            AppraiseType::Sigv3 => "appraise_type=sigv3",
        }
    }
}

fn lookup<T: Copy>(table: &[(&str, T)], name: &str) -> Option<T> {
    table.iter().find(|(n, _)| *n == name).map(|&(_, v)| v)
}

fn name_of<T: Copy + PartialEq>(table: &[(&'static str, T)], value: T) -> &'static str {
    table
        .iter()
        .find(|(_, v)| *v == value)
        .map_or("?", |&(n, _)| n)
}

fn in_list(list: &'static str, word: &str) -> Option<&'static str> {
    list.split_whitespace().find(|w| *w == word)
}

fn is_id(key: &str) -> bool {
    matches!(key, "uid" | "euid" | "gid" | "egid" | "fowner" | "fgroup")
}

fn is_lsm(key: &str) -> bool {
    key.starts_with("subj_") || key.starts_with("obj_")
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

/// Whether `ima_validate_rule()` lets this option meet the hook.
fn fits(key: &str, group: Group) -> bool {
    let among = |list| in_list(list, key).is_some();
    match group {
        Group::File => !among("keyrings label"),
        Group::Module => !among("keyrings label digest_type"),
        Group::Cmdline => {
            is_lsm(key)
                || among(
                    "func fsmagic fsuuid fsname fs_subtype uid euid gid egid fowner fgroup \
                     pcr template",
                )
        }
        Group::Key => among("func uid gid pcr template keyrings"),
        Group::CriticalData => among("func uid gid pcr template label"),
        // LSM conditions are not flags, so the kernel lets them through.
        Group::Setxattr => is_lsm(key) || among("func appraise_algos"),
    }
}

/// One rule, as it will be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// 1-based line in the source file.
    pub line: usize,
    /// Trimmed, without a trailing `#` comment or newline.
    pub text: String,
    pub action: Action,
    pub func: Option<Func>,
    pub appraise_type: Option<AppraiseType>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    rules: Vec<Rule>,
}

impl Policy {
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// True when an appraise rule has `appraise_type=`: matching files then
    /// need a signature checked against the .ima keyring, and without a key
    /// there the machine cannot boot. Appraise rules without it, also for
    /// MODULE_CHECK, FIRMWARE_CHECK, KEXEC_* and POLICY_CHECK, take a plain
    /// hash in security.ima and need no key. Signature rules from the kernel
    /// command line, Kconfig or the arch policy are not in this text.
    pub fn requires_signatures(&self) -> bool {
        self.rules
            .iter()
            .any(|r| r.action == Action::Appraise && r.appraise_type.is_some())
    }

    pub fn appraise_rule_count(&self) -> usize {
        self.rules
            .iter()
            .filter(|r| r.action == Action::Appraise)
            .count()
    }

    pub fn measure_rule_count(&self) -> usize {
        self.rules
            .iter()
            .filter(|r| r.action == Action::Measure)
            .count()
    }

    /// One buffer per write(): the kernel parses one line per write and
    /// answers `strlen(line) + 1`, so every rule carries its own newline.
    pub fn write_units(&self) -> impl Iterator<Item = Vec<u8>> + '_ {
        self.rules
            .iter()
            .map(|r| format!("{}\n", r.text).into_bytes())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// 1-based line.
    pub line: usize,
    /// 1-based byte column of the offending token or byte.
    pub column: usize,
    pub reason: PolicyErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyErrorKind {
    /// Reported at line 1, column 1.
    NoRules,
    ByteOrderMark,
    NotUtf8,
    Nul,
    CarriageReturn,
    ControlByte(u8),
    LineTooLong(usize),
    UnknownAction(String),
    ExtraAction(String),
    UnknownCondition(String),
    MissingValue(&'static str),
    UnexpectedValue(&'static str),
    /// Key and operator: only ids compare with `<` and `>`.
    WrongOperator(&'static str, char),
    InvalidValue {
        key: &'static str,
        value: String,
        expected: &'static str,
    },
    Repeated(&'static str),
    /// The option and the earlier one it cannot share a rule with.
    Conflict(&'static str, &'static str),
    /// The option that must come first, and the one it must precede.
    MustPrecede(&'static str, &'static str),
    /// The option and the only action it is valid on.
    OnlyOnAction(&'static str, Action),
    /// The hook and the actions it is limited to.
    FuncNeedsAction(Func, &'static str),
    /// The option and the only hook it is valid with.
    NeedsFunc(&'static str, Func),
    /// The option and the hook that refuses it.
    NotWithFunc(&'static str, Func),
    /// What has a requirement, and what it needs.
    Requires(&'static str, &'static str),
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.reason
        )
    }
}

impl std::error::Error for PolicyError {}

impl fmt::Display for PolicyErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use PolicyErrorKind as K;
        match self {
            K::NoRules => write!(
                f,
                "policy has no rules, only comments or blank lines (the kernel fails an empty update)"
            ),
            K::ByteOrderMark => write!(
                f,
                "file starts with a byte order mark; save it as plain UTF-8"
            ),
            K::NotUtf8 => write!(f, "invalid UTF-8"),
            K::Nul => write!(f, "NUL byte in a text file"),
            K::CarriageReturn => write!(
                f,
                "carriage return (DOS line ending): the kernel would reject the \"\\r\" token; \
                 convert the file with dos2unix"
            ),
            K::ControlByte(b) => write!(f, "control character 0x{b:02x}"),
            K::LineTooLong(n) => write!(
                f,
                "line is {n} bytes; the kernel cuts a rule write at 4095 bytes, \
                 so at most {MAX_LINE_LEN} are accepted"
            ),
            K::UnknownAction(t) if t.starts_with('/') => write!(
                f,
                "unknown action \"{t}\": this file must hold rules, not the path of a policy"
            ),
            K::UnknownAction(t) => write!(
                f,
                "unknown action \"{t}\": a rule starts with measure, dont_measure, appraise, \
                 dont_appraise, audit, dont_audit, hash or dont_hash"
            ),
            K::ExtraAction(t) => write!(f, "second action \"{t}\" in one rule"),
            K::UnknownCondition(t) => write!(f, "unknown condition \"{t}\""),
            K::MissingValue(k) => write!(f, "missing value for \"{k}\""),
            K::UnexpectedValue(k) => write!(f, "\"{k}\" takes no value"),
            K::WrongOperator(key, op) => write!(
                f,
                "\"{key}\" takes \"=\", not \"{op}\" (only uid, euid, gid, egid, fowner and fgroup compare)"
            ),
            K::InvalidValue {
                key,
                value,
                expected,
            } => {
                write!(f, "invalid {key} value \"{value}\": expected {expected}")
            }
            K::Repeated(k) => write!(f, "\"{k}\" given twice in one rule"),
            K::Conflict(key, other) => {
                write!(
                    f,
                    "\"{key}\" cannot be combined with \"{other}\" in one rule"
                )
            }
            K::MustPrecede(first, second) => {
                write!(f, "\"{first}\" must come before \"{second}\"")
            }
            K::OnlyOnAction(key, action) => {
                write!(f, "\"{key}\" is only valid on {} rules", action.name())
            }
            K::FuncNeedsAction(func, actions) => {
                write!(f, "func={} is only valid on {actions} rules", func.name())
            }
            K::NeedsFunc(key, func) => {
                write!(f, "\"{key}\" is only valid with func={}", func.name())
            }
            K::NotWithFunc(key, func) => {
                write!(f, "\"{key}\" cannot be used with func={}", func.name())
            }
            K::Requires(key, needs) => write!(f, "\"{key}\" requires {needs}"),
        }
    }
}

/// Parses and validates a whole policy file.
pub fn parse(text: &[u8]) -> Result<Policy, PolicyError> {
    let mut rules = Vec::new();
    for (index, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line = index + 1;
        let s = check_line(line, raw)?;
        if let Some(rule) = parse_rule(line, s)? {
            rules.push(rule);
        }
    }
    if rules.is_empty() {
        return Err(PolicyError {
            line: 1,
            column: 1,
            reason: PolicyErrorKind::NoRules,
        });
    }
    Ok(Policy { rules })
}

/// Byte-level checks, before the line is treated as text.
fn check_line(line: usize, raw: &[u8]) -> Result<&str, PolicyError> {
    let err = |column, reason| PolicyError {
        line,
        column,
        reason,
    };
    if raw.len() > MAX_LINE_LEN {
        return Err(err(
            MAX_LINE_LEN + 1,
            PolicyErrorKind::LineTooLong(raw.len()),
        ));
    }
    if line == 1 && raw.starts_with(b"\xef\xbb\xbf") {
        return Err(err(1, PolicyErrorKind::ByteOrderMark));
    }
    let utf8 = std::str::from_utf8(raw);
    let bad_at = utf8.as_ref().err().map(|e| e.valid_up_to());
    // Whichever problem comes first in the line is reported.
    for (i, &b) in raw.iter().enumerate() {
        let reason = match b {
            _ if bad_at == Some(i) => PolicyErrorKind::NotUtf8,
            0 => PolicyErrorKind::Nul,
            b'\r' => PolicyErrorKind::CarriageReturn,
            b'\t' => continue,
            0..0x20 | 0x7f => PolicyErrorKind::ControlByte(b),
            _ => continue,
        };
        return Err(err(i + 1, reason));
    }
    utf8.map_err(|e| err(e.valid_up_to() + 1, PolicyErrorKind::NotUtf8))
}

/// Tokens and their 1-based columns. The kernel splits on space and tab only
/// (`strsep(&rule, " \t")`), both one byte.
fn tokens(line: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut offset = 0;
    line.split([' ', '\t']).filter_map(move |tok| {
        let column = offset + 1;
        offset += tok.len() + 1;
        (!tok.is_empty()).then_some((column, tok))
    })
}

/// What one rule has seen so far: some kernel checks depend on order.
#[derive(Default)]
struct Seen {
    keys: Vec<(&'static str, usize)>,
    func: Option<(Func, usize)>,
    appraise_type: Option<AppraiseType>,
    digest_type: bool,
}

impl Seen {
    fn column(&self, key: &str) -> Option<usize> {
        self.keys.iter().find(|(k, _)| *k == key).map(|&(_, c)| c)
    }
}

/// One line; `None` for a blank or comment line, which is not written.
fn parse_rule(line: usize, s: &str) -> Result<Option<Rule>, PolicyError> {
    let err = |column, reason| PolicyError {
        line,
        column,
        reason,
    };
    let mut toks = tokens(s);
    let Some((start, first)) = toks.next().filter(|(_, t)| !t.starts_with('#')) else {
        return Ok(None);
    };
    let action = lookup(ACTIONS, first)
        .ok_or_else(|| err(start, PolicyErrorKind::UnknownAction(first.to_owned())))?;
    let mut end = start - 1 + first.len();
    let mut seen = Seen::default();
    for (column, tok) in toks {
        // The kernel ignores the rest of a line from a token starting with
        // '#'; old kernels may not, so the comment is not written.
        if tok.starts_with('#') {
            break;
        }
        end = column - 1 + tok.len();
        if lookup(ACTIONS, tok).is_some() {
            return Err(err(column, PolicyErrorKind::ExtraAction(tok.to_owned())));
        }
        let (key, value) = split_token(tok).map_err(|r| err(column, r))?;
        add_option(&mut seen, key, value, column).map_err(|r| err(column, r))?;
    }
    if let Some((column, reason)) = check_rule(action, &seen) {
        return Err(err(column, reason));
    }
    Ok(Some(Rule {
        line,
        text: s.get(start - 1..end).unwrap_or(s).to_owned(),
        action,
        func: seen.func.map(|(f, _)| f),
        appraise_type: seen.appraise_type,
    }))
}

/// `key=value`, `key<value`, `key>value` or `permit_directio`.
fn split_token(tok: &str) -> Result<(&'static str, &str), PolicyErrorKind> {
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
fn add_option(
    seen: &mut Seen,
    key: &'static str,
    value: &str,
    column: usize,
) -> Result<(), PolicyErrorKind> {
    use PolicyErrorKind as K;
    // The kernel lets a few repeats through (fsname, pcr, appraise_type...);
    // a repeat is a mistake either way.
    if seen.column(key).is_some() {
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
            let digits = value
                .strip_prefix("0x")
                .or_else(|| value.strip_prefix("0X"))
                .unwrap_or(value);
            // from_str_radix alone would also take a '+' sign.
            let hex = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_hexdigit());
            if !hex || u64::from_str_radix(digits, 16).is_err() {
                return Err(invalid("a hexadecimal filesystem magic such as 0x9fa0"));
            }
        }
        "fsuuid" if !is_uuid(value) => {
            return Err(invalid(
                "a UUID such as 8bcbe394-4f13-4144-be8e-5aa9ea2ce2f6",
            ));
        }
        // (uid_t)-1 is INVALID_UID, which the kernel refuses.
        _ if is_id(key) && decimal(value).is_none_or(|n| n >= u64::from(u32::MAX)) => {
            return Err(invalid("a decimal id from 0 to 4294967294"));
        }
        "pcr" if decimal(value).is_none_or(|n| n > MAX_PCR) => {
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
                _ => seen.appraise_type = Some(t),
            }
        }
        "appraise_flag" if value != "check_blacklist" => return Err(invalid("check_blacklist")),
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
        "template" if !TEMPLATES.iter().any(|&(n, fmt)| value == n || value == fmt) => {
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

/// Whole-rule checks of `ima_validate_rule()`, once the hook is known.
fn check_rule(action: Action, seen: &Seen) -> Option<(usize, PolicyErrorKind)> {
    use PolicyErrorKind as K;
    let func = seen.func.map(|(f, _)| f);
    let group = func.map_or(Group::File, Func::group);
    if let Some((f, column)) = seen.func {
        let (allowed, actions): (&[Action], _) = match group {
            Group::Cmdline | Group::Key | Group::CriticalData => (
                &[Action::Measure, Action::DontMeasure],
                "measure and dont_measure",
            ),
            Group::Setxattr => (&[Action::Appraise], "appraise"),
            Group::File | Group::Module => (&[], ""),
        };
        if !allowed.is_empty() && !allowed.contains(&action) {
            return Some((column, K::FuncNeedsAction(f, actions)));
        }
    }
    for &(key, column) in &seen.keys {
        let only_on = match key {
            "pcr" | "template" => Some(Action::Measure),
            "appraise_type" | "appraise_flag" | "appraise_algos" => Some(Action::Appraise),
            _ => None,
        };
        if let Some(only) = only_on
            && only != action
        {
            return Some((column, K::OnlyOnAction(key, only)));
        }
        let needs_func = match key {
            "keyrings" => Some(Func::Key),
            "label" => Some(Func::CriticalData),
            _ => None,
        };
        if let Some(needed) = needs_func
            && func != Some(needed)
        {
            return Some((column, K::NeedsFunc(key, needed)));
        }
        if let Some(f) = func
            && !fits(key, group)
        {
            return Some((column, K::NotWithFunc(key, f)));
        }
    }
    let at = |key| seen.column(key).unwrap_or(1);
    if seen.appraise_type == Some(AppraiseType::ImasigModsig) && group != Group::Module {
        let needs = "func=MODULE_CHECK, KEXEC_KERNEL_CHECK or KEXEC_INITRAMFS_CHECK \
                     (appended signatures exist only there)";
        return Some((
            at("appraise_type"),
            K::Requires(AppraiseType::ImasigModsig.token(), needs),
        ));
    }
    if let Some((Func::Setxattr, column)) = seen.func
        && seen.column("appraise_algos").is_none()
    {
        return Some((
            column,
            K::Requires("func=SETXATTR_CHECK", "\"appraise_algos=\""),
        ));
    }
    // An fs-verity appraise rule must demand a signature.
    if action == Action::Appraise && seen.digest_type && seen.appraise_type.is_none() {
        let needs = "\"appraise_type=sigv3\" on appraise rules";
        return Some((at("digest_type"), K::Requires("digest_type=verity", needs)));
    }
    // Older kernels refuse check_blacklist without modsig, newer ones ignore
    // the flag: with imasig|modsig every kernel takes it.
    if seen.column("appraise_flag").is_some()
        && seen.appraise_type != Some(AppraiseType::ImasigModsig)
    {
        let needs = "\"appraise_type=imasig|modsig\"";
        return Some((
            at("appraise_flag"),
            K::Requires("appraise_flag=check_blacklist", needs),
        ));
    }
    None
}

/// Digits only: `str::parse` would also take a '+' sign.
fn decimal(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// 8-4-4-4-12 hex digits, as `uuid_parse()` reads them.
fn is_uuid(value: &str) -> bool {
    value.len() == 36
        && value.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    /// The kernel's ima_policy=tcb measure rules and appraise_tcb rules.
    const TCB: &str = "\
# ima_policy=tcb
dont_measure fsmagic=0x9fa0
dont_measure fsmagic=0x62656572
dont_measure fsmagic=0x64626720
dont_measure fsmagic=0x01021994 func=FILE_CHECK
dont_measure fsmagic=0x1cd1
dont_measure fsmagic=0x42494e4d
dont_measure fsmagic=0x73636673
dont_measure fsmagic=0xf97cff8c
dont_measure fsmagic=0x43415d53
dont_measure fsmagic=0x27e0eb
dont_measure fsmagic=0x63677270
dont_measure fsmagic=0x6e736673
dont_measure fsmagic=0xde5e81e4
measure func=MMAP_CHECK mask=MAY_EXEC
measure func=BPRM_CHECK mask=MAY_EXEC
measure func=FILE_CHECK mask=^MAY_READ euid=0
measure func=FILE_CHECK mask=^MAY_READ uid=0
measure func=MODULE_CHECK
measure func=FIRMWARE_CHECK
measure func=POLICY_CHECK

# ima_policy=appraise_tcb
dont_appraise fsmagic=0x9fa0
dont_appraise fsmagic=0x62656572
dont_appraise fsmagic=0x858458f6
dont_appraise fsmagic=0x01021994
appraise func=POLICY_CHECK appraise_type=imasig
appraise fowner=0
";

    #[test]
    fn builtin_policies_parse() {
        let p = parse(TCB.as_bytes()).unwrap();
        assert_eq!(p.rules().len(), 26);
        assert_eq!(p.measure_rule_count(), 7);
        assert_eq!(p.appraise_rule_count(), 2);
        assert!(p.requires_signatures());
        // Line numbers count comments and blank lines.
        assert_eq!(p.rules()[0].line, 2);
        assert_eq!(p.rules()[20].line, 24);
        assert_eq!(p.rules()[0].text, "dont_measure fsmagic=0x9fa0");
    }

    #[test]
    fn valid_rules() {
        let cases = [
            "measure func=KEY_CHECK",
            "measure func=KEY_CHECK keyrings=.builtin_trusted_keys|.ima",
            "measure func=KEY_CHECK keyrings=.ima uid=0 pcr=11 template=ima-buf",
            "measure func=CRITICAL_DATA label=selinux",
            "measure func=CRITICAL_DATA label=kernel_info|selinux pcr=10",
            "measure func=KEXEC_KERNEL_CHECK pcr=4",
            "measure func=KEXEC_INITRAMFS_CHECK pcr=5",
            "measure func=KEXEC_CMDLINE fsname=rootfs",
            "appraise func=KEXEC_KERNEL_CHECK appraise_type=imasig|modsig",
            "appraise func=MODULE_CHECK appraise_type=imasig|modsig appraise_flag=check_blacklist",
            "appraise func=FIRMWARE_CHECK appraise_type=imasig",
            "appraise func=SETXATTR_CHECK appraise_algos=sha256,sha384,sha512",
            "appraise func=SETXATTR_CHECK appraise_algos=sha3-256 obj_type=bin_t",
            "measure func=FILE_CHECK digest_type=verity template=ima-ngv2",
            "measure func=BPRM_CHECK digest_type=verity template=d-ngv2|n-ng|sig",
            "appraise func=BPRM_CHECK digest_type=verity appraise_type=sigv3",
            "dont_measure obj_type=var_log_t",
            "dont_appraise obj_type=auditd_log_t",
            "measure subj_user=system_u func=FILE_CHECK mask=MAY_READ",
            "measure subj_role=system_r subj_type=init_t obj_user=u obj_role=r func=FILE_CHECK",
            "measure subj_user=_ func=FILE_CHECK mask=MAY_READ",
            "measure func=BPRM_CHECK uid<1000",
            "measure func=FILE_CHECK euid>999 fgroup<100 gid=5",
            "appraise fowner>0 appraise_type=imasig",
            "appraise fowner<1000 fgroup=0",
            "measure func=FILE_CHECK mask=^MAY_READ",
            "measure func=FILE_MMAP mask=MAY_EXEC",
            "measure func=PATH_CHECK mask=MAY_WRITE",
            "measure func=MMAP_CHECK_REQPROT mask=^MAY_EXEC",
            "measure func=CREDS_CHECK",
            "measure func=FILE_CHECK mask=MAY_APPEND fsuuid=8bcbe394-4f13-4144-be8e-5aa9ea2ce2f6",
            "dont_appraise fsuuid=8BCBE394-4F13-4144-BE8E-5AA9EA2CE2F6",
            "appraise func=BPRM_CHECK permit_directio appraise_type=imasig appraise_algos=sha256",
            "audit func=BPRM_CHECK mask=MAY_EXEC",
            "dont_audit fsname=fuse fs_subtype=sshfs",
            "hash func=FILE_CHECK",
            "dont_hash fsmagic=9FA0",
            "measure fsname=ext4 fsmagic=0XEF53",
            "measure func=BPRM_CHECK template=ima-sig pcr=0",
            "measure func=FILE_CHECK uid=4294967294",
            "dont_measure fsmagic=0xffffffffffffffff",
            "measure func=KEXEC_CMDLINE subj_type=kexec_t",
        ];
        for case in cases {
            let p = parse(case.as_bytes()).unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(p.rules().len(), 1, "{case}");
            assert_eq!(p.rules()[0].text, case);
        }
    }

    #[test]
    fn text_is_trimmed_and_comments_are_not_written() {
        let p = parse(b"  # c\n\tmeasure\t func=BPRM_CHECK  \n\nappraise fowner=0 # root files\n")
            .unwrap();
        let units: Vec<Vec<u8>> = p.write_units().collect();
        assert_eq!(
            units,
            [
                b"measure\t func=BPRM_CHECK\n".to_vec(),
                b"appraise fowner=0\n".to_vec()
            ]
        );
        assert_eq!((p.rules()[0].line, p.rules()[1].line), (2, 4));
        assert_eq!(p.rules()[1].action, Action::Appraise);
        assert_eq!(p.rules()[0].func, Some(Func::Bprm));
        // No final newline is fine: write_units adds it.
        let p = parse(b"measure func=FILE_MMAP").unwrap();
        assert_eq!(p.write_units().next().unwrap(), b"measure func=FILE_MMAP\n");
        assert_eq!(p.rules()[0].func, Some(Func::Mmap));
    }

    #[test]
    fn invalid_rules() {
        let long = format!("measure fsname={}", "a".repeat(MAX_LINE_LEN - 14));
        let cases: &[(&[u8], usize, usize, &str)] = &[
            (b"measure fnc=BPRM_CHECK", 1, 9, "unknown condition \"fnc=BPRM_CHECK\""),
            (
                b"# a\n\n# b\nmeasure func=BPRM_CHECK\n\n  # c\nmeasure func=BPRM_CHECK fnc=BPRM_CHECK\n",
                7,
                25,
                "unknown condition \"fnc=BPRM_CHECK\"",
            ),
            (
                b"measure func=BPRM_CHECK\r\nmeasure func=FILE_CHECK\r\n",
                1,
                24,
                "carriage return (DOS line ending): the kernel would reject the \"\\r\" token; convert the file with dos2unix",
            ),
            (b"measure func=BPRM\0_CHECK", 1, 18, "NUL byte in a text file"),
            (b"measure func=BPRM_CHECK\nmeasure obj_type=\xff_t", 2, 18, "invalid UTF-8"),
            (b"measure obj_type=\xc3", 1, 18, "invalid UTF-8"),
            (b"measure\x0bfunc=BPRM_CHECK", 1, 8, "control character 0x0b"),
            (b"measure\x7f", 1, 8, "control character 0x7f"),
            (
                long.as_bytes(),
                1,
                4094,
                "line is 4094 bytes; the kernel cuts a rule write at 4095 bytes, so at most 4093 are accepted",
            ),
            (
                b"\xef\xbb\xbfmeasure func=BPRM_CHECK",
                1,
                1,
                "file starts with a byte order mark; save it as plain UTF-8",
            ),
            (b"", 1, 1, "policy has no rules, only comments or blank lines (the kernel fails an empty update)"),
            (b"# x\n\n \t\n", 1, 1, "policy has no rules, only comments or blank lines (the kernel fails an empty update)"),
            (
                b"meassure func=BPRM_CHECK",
                1,
                1,
                "unknown action \"meassure\": a rule starts with measure, dont_measure, appraise, dont_appraise, audit, dont_audit, hash or dont_hash",
            ),
            (
                b"func=BPRM_CHECK measure",
                1,
                1,
                "unknown action \"func=BPRM_CHECK\": a rule starts with measure, dont_measure, appraise, dont_appraise, audit, dont_audit, hash or dont_hash",
            ),
            (
                b"  /etc/ima/policy",
                1,
                3,
                "unknown action \"/etc/ima/policy\": this file must hold rules, not the path of a policy",
            ),
            (b"measure appraise", 1, 9, "second action \"appraise\" in one rule"),
            (b"measure func=", 1, 9, "missing value for \"func\""),
            (b"measure func", 1, 9, "missing value for \"func\""),
            (b"measure subj_type=", 1, 9, "missing value for \"subj_type\""),
            (b"measure uid<", 1, 9, "missing value for \"uid\""),
            (b"appraise permit_directio=1", 1, 10, "\"permit_directio\" takes no value"),
            (
                b"measure func<BPRM_CHECK",
                1,
                9,
                "\"func\" takes \"=\", not \"<\" (only uid, euid, gid, egid, fowner and fgroup compare)",
            ),
            (
                b"measure pcr>3",
                1,
                9,
                "\"pcr\" takes \"=\", not \">\" (only uid, euid, gid, egid, fowner and fgroup compare)",
            ),
            (
                b"measure func=BPRM",
                1,
                9,
                "invalid func value \"BPRM\": expected BPRM_CHECK, MMAP_CHECK, MMAP_CHECK_REQPROT, CREDS_CHECK, FILE_CHECK, MODULE_CHECK, FIRMWARE_CHECK, KEXEC_KERNEL_CHECK, KEXEC_INITRAMFS_CHECK, KEXEC_CMDLINE, POLICY_CHECK, KEY_CHECK, CRITICAL_DATA or SETXATTR_CHECK",
            ),
            (
                b"measure mask=MAY_RED",
                1,
                9,
                "invalid mask value \"MAY_RED\": expected MAY_READ, MAY_WRITE, MAY_APPEND or MAY_EXEC, optionally after ^",
            ),
            (
                b"measure mask=^^MAY_READ",
                1,
                9,
                "invalid mask value \"^^MAY_READ\": expected MAY_READ, MAY_WRITE, MAY_APPEND or MAY_EXEC, optionally after ^",
            ),
            (
                b"dont_measure fsmagic=0xzz",
                1,
                14,
                "invalid fsmagic value \"0xzz\": expected a hexadecimal filesystem magic such as 0x9fa0",
            ),
            (
                b"dont_measure fsmagic=+9fa0",
                1,
                14,
                "invalid fsmagic value \"+9fa0\": expected a hexadecimal filesystem magic such as 0x9fa0",
            ),
            (
                b"dont_measure fsmagic=0x",
                1,
                14,
                "invalid fsmagic value \"0x\": expected a hexadecimal filesystem magic such as 0x9fa0",
            ),
            (
                b"dont_measure fsmagic=0x10000000000000000",
                1,
                14,
                "invalid fsmagic value \"0x10000000000000000\": expected a hexadecimal filesystem magic such as 0x9fa0",
            ),
            (
                b"measure fsuuid=8bcbe394-4f13-4144-be8e-5aa9ea2ce2f",
                1,
                9,
                "invalid fsuuid value \"8bcbe394-4f13-4144-be8e-5aa9ea2ce2f\": expected a UUID such as 8bcbe394-4f13-4144-be8e-5aa9ea2ce2f6",
            ),
            (
                b"measure fsuuid=8bcbe3944f134144be8e5aa9ea2ce2f6abcd",
                1,
                9,
                "invalid fsuuid value \"8bcbe3944f134144be8e5aa9ea2ce2f6abcd\": expected a UUID such as 8bcbe394-4f13-4144-be8e-5aa9ea2ce2f6",
            ),
            (b"measure uid=-1", 1, 9, "invalid uid value \"-1\": expected a decimal id from 0 to 4294967294"),
            (
                b"measure euid=4294967295",
                1,
                9,
                "invalid euid value \"4294967295\": expected a decimal id from 0 to 4294967294",
            ),
            (b"measure gid=+1", 1, 9, "invalid gid value \"+1\": expected a decimal id from 0 to 4294967294"),
            (b"appraise fowner>abc", 1, 10, "invalid fowner value \"abc\": expected a decimal id from 0 to 4294967294"),
            (b"measure pcr=24", 1, 9, "invalid pcr value \"24\": expected a decimal PCR index from 0 to 23"),
            (b"measure pcr=x", 1, 9, "invalid pcr value \"x\": expected a decimal PCR index from 0 to 23"),
            (
                b"appraise appraise_type=modsig",
                1,
                10,
                "invalid appraise_type value \"modsig\": expected imasig, imasig|modsig or sigv3",
            ),
            (
                b"appraise func=BPRM_CHECK appraise_type=sigv3",
                1,
                26,
                "\"appraise_type=sigv3\" requires \"digest_type=verity\" earlier in the rule",
            ),
            (
                b"appraise func=BPRM_CHECK appraise_type=sigv3 digest_type=verity",
                1,
                26,
                "\"appraise_type=sigv3\" requires \"digest_type=verity\" earlier in the rule",
            ),
            (
                b"appraise func=BPRM_CHECK appraise_type=imasig digest_type=verity",
                1,
                47,
                "\"digest_type=verity\" must come before \"appraise_type=\"",
            ),
            (
                b"appraise func=BPRM_CHECK digest_type=verity appraise_type=imasig",
                1,
                45,
                "\"appraise_type=imasig\" cannot be combined with \"digest_type=verity\" in one rule",
            ),
            (
                b"appraise func=BPRM_CHECK digest_type=verity",
                1,
                26,
                "\"digest_type=verity\" requires \"appraise_type=sigv3\" on appraise rules",
            ),
            (b"measure digest_type=sha256", 1, 9, "invalid digest_type value \"sha256\": expected verity"),
            (
                b"appraise appraise_flag=check_blacklist appraise_type=imasig",
                1,
                10,
                "\"appraise_flag=check_blacklist\" requires \"appraise_type=imasig|modsig\"",
            ),
            (
                b"appraise func=MODULE_CHECK appraise_flag=blacklist",
                1,
                28,
                "invalid appraise_flag value \"blacklist\": expected check_blacklist",
            ),
            (
                b"appraise func=SETXATTR_CHECK appraise_algos=sha256,md6",
                1,
                30,
                "invalid appraise_algos value \"md6\": expected comma-separated kernel hash names such as sha256,sha384,sha512",
            ),
            (
                b"appraise func=SETXATTR_CHECK appraise_algos=sha256,",
                1,
                30,
                "invalid appraise_algos value \"\": expected comma-separated kernel hash names such as sha256,sha384,sha512",
            ),
            (b"appraise func=SETXATTR_CHECK", 1, 10, "\"func=SETXATTR_CHECK\" requires \"appraise_algos=\""),
            (
                b"measure func=SETXATTR_CHECK appraise_algos=sha256",
                1,
                9,
                "func=SETXATTR_CHECK is only valid on appraise rules",
            ),
            (
                b"appraise func=SETXATTR_CHECK appraise_algos=sha256 fowner=0",
                1,
                52,
                "\"fowner\" cannot be used with func=SETXATTR_CHECK",
            ),
            (
                b"appraise func=BPRM_CHECK template=ima-ng",
                1,
                26,
                "\"template\" is only valid on measure rules",
            ),
            (b"dont_measure pcr=10", 1, 14, "\"pcr\" is only valid on measure rules"),
            (b"measure appraise_type=imasig", 1, 9, "\"appraise_type\" is only valid on appraise rules"),
            (b"dont_appraise appraise_algos=sha256", 1, 15, "\"appraise_algos\" is only valid on appraise rules"),
            (
                b"measure func=BPRM_CHECK template=ima-foo",
                1,
                25,
                "invalid template value \"ima-foo\": expected a built-in template: ima, ima-ng, ima-sig, ima-ngv2, ima-sigv2, ima-buf, ima-modsig or evm-sig",
            ),
            (b"measure keyrings=.ima", 1, 9, "\"keyrings\" is only valid with func=KEY_CHECK"),
            (
                b"measure func=FILE_CHECK label=selinux",
                1,
                25,
                "\"label\" is only valid with func=CRITICAL_DATA",
            ),
            (
                b"measure func=KEY_CHECK keyrings=.ima||.evm",
                1,
                24,
                "invalid keyrings value \".ima||.evm\": expected names separated by |, none empty",
            ),
            (
                b"appraise func=KEY_CHECK",
                1,
                10,
                "func=KEY_CHECK is only valid on measure and dont_measure rules",
            ),
            (
                b"audit func=CRITICAL_DATA label=selinux",
                1,
                7,
                "func=CRITICAL_DATA is only valid on measure and dont_measure rules",
            ),
            (b"measure func=KEY_CHECK obj_type=foo_t", 1, 24, "\"obj_type\" cannot be used with func=KEY_CHECK"),
            (b"measure func=KEY_CHECK euid=0", 1, 24, "\"euid\" cannot be used with func=KEY_CHECK"),
            (b"measure mask=MAY_READ func=CRITICAL_DATA", 1, 9, "\"mask\" cannot be used with func=CRITICAL_DATA"),
            (b"measure func=KEXEC_CMDLINE mask=MAY_READ", 1, 28, "\"mask\" cannot be used with func=KEXEC_CMDLINE"),
            (
                b"measure func=MODULE_CHECK digest_type=verity",
                1,
                27,
                "\"digest_type\" cannot be used with func=MODULE_CHECK",
            ),
            (
                b"appraise func=BPRM_CHECK appraise_type=imasig|modsig",
                1,
                26,
                "\"appraise_type=imasig|modsig\" requires func=MODULE_CHECK, KEXEC_KERNEL_CHECK or KEXEC_INITRAMFS_CHECK (appended signatures exist only there)",
            ),
            (b"measure func=BPRM_CHECK func=FILE_CHECK", 1, 25, "\"func\" given twice in one rule"),
            (b"measure obj_user=a obj_user=b", 1, 20, "\"obj_user\" given twice in one rule"),
            (b"measure fowner>0 fowner<5", 1, 18, "\"fowner\" given twice in one rule"),
            (b"measure fsname=a fsname=b", 1, 18, "\"fsname\" given twice in one rule"),
            (
                b"appraise func=MODULE_CHECK appraise_type=imasig appraise_type=imasig",
                1,
                49,
                "\"appraise_type\" given twice in one rule",
            ),
            (b"appraise permit_directio permit_directio", 1, 26, "\"permit_directio\" given twice in one rule"),
            (b"measure uid=0 euid=0", 1, 15, "\"euid\" cannot be combined with \"uid\" in one rule"),
            (b"measure egid=1 gid<1", 1, 16, "\"gid\" cannot be combined with \"egid\" in one rule"),
        ];
        for &(input, line, column, reason) in cases {
            let e = parse(input).expect_err(&String::from_utf8_lossy(input));
            assert_eq!(
                e.to_string(),
                format!("line {line}, column {column}: {reason}"),
                "input {:?}",
                String::from_utf8_lossy(input)
            );
            assert_eq!((e.line, e.column), (line, column));
        }
    }

    #[test]
    fn line_length_limit() {
        let at_limit = format!("measure fsname={}", "a".repeat(MAX_LINE_LEN - 15));
        assert_eq!(at_limit.len(), MAX_LINE_LEN);
        let p = parse(at_limit.as_bytes()).unwrap();
        // The write unit stays below the kernel's PAGE_SIZE - 1 cut.
        assert!(p.write_units().all(|u| u.len() < 4095));
        // Comments count too: the file is hostile input.
        let long_comment = format!("#{}\nmeasure func=BPRM_CHECK", "x".repeat(MAX_LINE_LEN));
        assert!(matches!(
            parse(long_comment.as_bytes()).unwrap_err().reason,
            PolicyErrorKind::LineTooLong(4094)
        ));
    }

    #[test]
    fn requires_signatures() {
        let yes = [
            "appraise func=BPRM_CHECK appraise_type=imasig",
            "appraise func=MODULE_CHECK appraise_type=imasig|modsig",
            "appraise func=BPRM_CHECK digest_type=verity appraise_type=sigv3",
            "dont_appraise fsmagic=0x9fa0\nappraise func=POLICY_CHECK appraise_type=imasig\nappraise fowner=0",
        ];
        let no = [
            "appraise fowner=0",
            "appraise func=MODULE_CHECK",
            "appraise func=KEXEC_KERNEL_CHECK\nappraise func=POLICY_CHECK",
            "measure func=BPRM_CHECK\ndont_appraise fsmagic=0x9fa0",
            "measure func=BPRM_CHECK digest_type=verity template=ima-sigv2",
        ];
        for case in yes {
            assert!(
                parse(case.as_bytes()).unwrap().requires_signatures(),
                "{case}"
            );
        }
        for case in no {
            assert!(
                !parse(case.as_bytes()).unwrap().requires_signatures(),
                "{case}"
            );
        }
    }

    #[test]
    fn error_is_std_error() {
        let e: Box<dyn std::error::Error> = Box::new(parse(b"bogus").unwrap_err());
        assert!(
            e.to_string()
                .starts_with("line 1, column 1: unknown action \"bogus\"")
        );
    }
}
