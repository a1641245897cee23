//! Where a policy is wrong and why, in words for the admin: line, column
//! and the kernel rule that the text breaks.

use super::{Action, Func, MAX_LINE_LEN};
use std::fmt;

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
    MissingAction,
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
    /// Only when the kernel reads the file itself (by path).
    CommentAfterRule,
    NoFinalNewline,
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
                "unknown action \"{t}\": a rule needs one of measure, dont_measure, appraise, \
                 dont_appraise, audit, dont_audit, hash or dont_hash"
            ),
            K::MissingAction => write!(
                f,
                "no action: a rule needs one of measure, dont_measure, appraise, \
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
            K::CommentAfterRule => write!(
                f,
                "comment after a rule: the kernel reading the policy by path refuses it \
                 (6.1); put the comment on its own line"
            ),
            K::NoFinalNewline => write!(
                f,
                "the last line has no newline: the kernel reading the policy by path \
                 refuses the file (6.1); end the file with a newline"
            ),
        }
    }
}
