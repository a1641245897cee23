//! IMA policy text: parsed and checked here before anything is written to
//! `<securityfs>/ima/policy`.
//!
//! The kernel drops a whole update on the first bad rule while `close()`
//! still returns 0 (kernel-interfaces.md pitfall 4), so every rule is checked
//! the way `ima_parse_rule()` and `ima_validate_rule()` check it, and the
//! admin gets a line and column instead of "policy update failed" in dmesg.
//! Where kernels differ, the checks follow 6.1 (Debian 12's, the oldest
//! kernel the loader is tested on): the action anywhere in the rule, a '+'
//! before numbers, the options it takes twice, no `#` after a rule in a file
//! the kernel reads by path.
//! What depends on the running kernel is not checked here: LSM labels, hash
//! algorithms missing from its crypto API, CONFIG_IMA_APPRAISE_MODSIG,
//! CONFIG_IMA_MEASURE_ASYMMETRIC_KEYS, and tokens older kernels lack.

pub mod attest;
mod canonical;
mod error;
pub mod split;
#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests;
mod values;

pub use error::{PolicyError, PolicyErrorKind};
/// Numbers as the kernel reads them, for `audit` to evaluate rules.
pub(crate) use values::kernel_unsigned;
use values::{HASH_ALGOS, add_option, split_token};

/// Longest line accepted, without its newline. The kernel takes at most
/// PAGE_SIZE-1 = 4095 bytes per write() and silently drops the rest; a rule
/// plus its newline must stay below that, with one byte to spare.
pub const MAX_LINE_LEN: usize = 4093;

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

fn is_lsm(key: &str) -> bool {
    key.starts_with("subj_") || key.starts_with("obj_")
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

impl Rule {
    /// The rule's options as (key, operator, value), in order, for tools
    /// that evaluate the rule (`audit`); the action and a `#` comment are
    /// left out. The text passed `parse`, so every token splits.
    pub fn options(&self) -> impl Iterator<Item = (&'static str, char, &str)> + '_ {
        tokens(&self.text)
            .map(|(_, tok)| tok)
            .filter(|tok| lookup(ACTIONS, tok).is_none())
            .filter_map(|tok| {
                let (key, value) = split_token(tok).ok()?;
                let op = tok.get(key.len()..).and_then(|r| r.chars().next());
                Some((key, op.unwrap_or('='), value))
            })
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
    /// Column of a `#` comment after the rule.
    pub comment: Option<usize>,
    /// The rule has a `subj_*`/`obj_*` condition: it means something only
    /// once the LSM has loaded its policy.
    pub lsm: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    rules: Vec<Rule>,
    /// The last line and its length, when the file does not end in a newline.
    unterminated: Option<(usize, usize)>,
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

    /// What the kernel refuses when it reads the file itself (the policy
    /// written by path), beyond the rules: 6.1's `ima_read_policy()` fails
    /// on a last line without a newline, and its `ima_parse_rule()` on a `#`
    /// after a rule (rule by rule, the comment is not written and the
    /// newline is added). The first of them, by line.
    pub fn check_by_path(&self) -> Result<(), PolicyError> {
        let comment = self.rules.iter().find_map(|r| {
            r.comment.map(|column| PolicyError {
                line: r.line,
                column,
                reason: PolicyErrorKind::CommentAfterRule,
            })
        });
        let unterminated = self.unterminated.map(|(line, len)| PolicyError {
            line,
            column: len + 1,
            reason: PolicyErrorKind::NoFinalNewline,
        });
        match comment
            .into_iter()
            .chain(unterminated)
            .min_by_key(|e| e.line)
        {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Whether the kernel's read-back of its policy (`ima_policy_show()`
    /// lines) holds these rules, one after the other: compared in the
    /// kernel's normal form, not byte by byte.
    pub fn is_shown_in(&self, kernel: &[u8]) -> bool {
        let shown: Vec<Option<Vec<String>>> = kernel
            .split(|&b| b == b'\n')
            .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
            .map(|l| std::str::from_utf8(l).ok().map(canonical::canonical))
            .collect();
        let ours: Vec<Vec<String>> = self
            .rules
            .iter()
            .map(|r| canonical::canonical(&r.text))
            .collect();
        canonical::shown_as_block(&ours, &shown)
    }

    /// The rules in the kernel's normal form, one a line: what a load
    /// records so that a second one knows what the first one wrote.
    pub fn normal_form(&self) -> String {
        self.rules
            .iter()
            .map(|r| canonical::canonical(&r.text).join(" ") + "\n")
            .collect()
    }

    /// One buffer per write(): the kernel parses one line per write and
    /// answers `strlen(line) + 1`, so every rule carries its own newline.
    pub fn write_units(&self) -> impl Iterator<Item = Vec<u8>> + '_ {
        self.rules
            .iter()
            .map(|r| format!("{}\n", r.text).into_bytes())
    }
}

/// Parses and validates a whole policy file.
pub fn parse(text: &[u8]) -> Result<Policy, PolicyError> {
    let mut rules = Vec::new();
    let mut unterminated = None;
    for (index, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line = index + 1;
        let s = check_line(line, raw)?;
        if let Some(rule) = parse_rule(line, s)? {
            rules.push(rule);
        }
        // split() ends with the bytes after the last newline: empty if the
        // file ends with one.
        unterminated = (!raw.is_empty()).then_some((line, raw.len()));
    }
    if rules.is_empty() {
        return Err(PolicyError {
            line: 1,
            column: 1,
            reason: PolicyErrorKind::NoRules,
        });
    }
    Ok(Policy {
        rules,
        unterminated,
    })
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
    action: Option<Action>,
    keys: Vec<(&'static str, usize)>,
    func: Option<(Func, usize)>,
    appraise_type: Option<AppraiseType>,
    digest_type: bool,
    /// The last fsmagic= was 0, the last fsuuid= the nil UUID: the kernel
    /// takes another one then.
    zero_fsmagic: bool,
    nil_fsuuid: bool,
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
    let mut toks = tokens(s).peekable();
    let Some(&(start, _)) = toks.peek().filter(|(_, t)| !t.starts_with('#')) else {
        return Ok(None);
    };
    let mut action = None;
    let mut end = start;
    let mut comment = None;
    let mut seen = Seen::default();
    for (column, tok) in toks {
        // Only a whole line can be a comment for the kernel (6.1 refuses a
        // '#' token); the comment is not written, and by path it is refused.
        if tok.starts_with('#') {
            comment = Some(column);
            break;
        }
        end = column - 1 + tok.len();
        // The action may stand anywhere in the rule, once.
        if let Some(a) = lookup(ACTIONS, tok) {
            if action.is_some() {
                return Err(err(column, PolicyErrorKind::ExtraAction(tok.to_owned())));
            }
            action = Some(a);
            seen.action = action;
            continue;
        }
        let (key, value) = split_token(tok).map_err(|r| match r {
            // A first word that is nothing the kernel knows reads best as a
            // misspelt action.
            PolicyErrorKind::UnknownCondition(t) if column == start => {
                err(column, PolicyErrorKind::UnknownAction(t))
            }
            r => err(column, r),
        })?;
        add_option(&mut seen, key, value, column).map_err(|r| err(column, r))?;
    }
    let Some(action) = action else {
        return Err(err(start, PolicyErrorKind::MissingAction));
    };
    if let Some((column, reason)) = check_rule(action, &seen) {
        return Err(err(column, reason));
    }
    Ok(Some(Rule {
        line,
        text: s.get(start - 1..end).unwrap_or(s).to_owned(),
        action,
        func: seen.func.map(|(f, _)| f),
        appraise_type: seen.appraise_type,
        comment,
        lsm: seen.keys.iter().any(|(k, _)| is_lsm(k)),
    }))
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
