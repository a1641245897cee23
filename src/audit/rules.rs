//! The appraise rules of a policy, evaluated offline against one file as
//! `ima_match_rules()` would for each hook the file goes through: rules in
//! order, the first appraise or dont_appraise rule that matches decides.
//! What depends on the running system (LSM labels, fs_subtype, fs-verity)
//! is not guessed: a rule holding it makes the file "undecided".

use crate::ima_policy::{Action, AppraiseType, Func, Policy, kernel_unsigned};
use std::cmp::Ordering;

/// The hooks a file meets, with the access mask the kernel passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Opened for reading (FILE_CHECK, MAY_READ): every file.
    Read,
    /// Executed (BPRM_CHECK and CREDS_CHECK, MAY_EXEC): an exec bit.
    Exec,
    /// Mapped executable (MMAP_CHECK, MAY_EXEC): ELF executables and objects.
    MmapExec,
    /// Read by the kernel itself (MAY_READ): modules, firmware, kexec
    /// images, the policy.
    Kernel(Func),
}

impl Access {
    fn funcs(self) -> &'static [Func] {
        match self {
            Access::Read => &[Func::File],
            Access::Exec => &[Func::Bprm, Func::Creds],
            Access::MmapExec => &[Func::Mmap, Func::MmapReqprot],
            Access::Kernel(Func::Module) => &[Func::Module],
            Access::Kernel(Func::Firmware) => &[Func::Firmware],
            Access::Kernel(Func::KexecKernel) => &[Func::KexecKernel],
            Access::Kernel(Func::KexecInitramfs) => &[Func::KexecInitramfs],
            Access::Kernel(_) => &[Func::Policy],
        }
    }

    fn mask(self) -> u32 {
        match self {
            Access::Exec | Access::MmapExec => MAY_EXEC,
            Access::Read | Access::Kernel(_) => MAY_READ,
        }
    }
}

const MAY_EXEC: u32 = 1;
const MAY_WRITE: u32 = 2;
const MAY_READ: u32 = 4;
const MAY_APPEND: u32 = 8;

/// What is known about one file and whoever opens it.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    pub owner: u32,
    pub group: u32,
    /// statfs f_type of its filesystem.
    pub fsmagic: u64,
    /// Its filesystem's UUID, when it could be found.
    pub fsuuid: Option<String>,
    /// Its filesystem's type name (mountinfo), when known.
    pub fsname: Option<String>,
    /// The process that opens it (`--uid`, default root).
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Lt,
    Gt,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Cond {
    Funcs(Vec<Func>),
    Mask {
        bit: u32,
        inverted: bool,
    },
    Fsmagic(u64),
    Fsuuid(String),
    Fsname(String),
    Uid(Op, u32),
    Gid(Op, u32),
    Fowner(Op, u32),
    Fgroup(Op, u32),
    /// Cannot be decided offline: the option as written.
    Unknown(String),
}

/// One appraise or dont_appraise rule, ready to evaluate.
#[derive(Debug, Clone)]
pub struct AppraiseRule {
    pub line: usize,
    pub text: String,
    pub appraise: bool,
    /// appraise_type=: a hash in security.ima is not enough.
    pub needs_signature: bool,
    /// appraise_algos=: kernel hash algorithm numbers allowed.
    pub allowed_algos: Option<Vec<u8>>,
    conds: Vec<Cond>,
}

/// The decision for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Coverage {
    /// No appraise rule covers it.
    NotCovered,
    /// Appraised, by the rule at this index (the strictest one when several
    /// hooks are appraised).
    Appraised(usize),
    /// A rule that may match holds a condition that cannot be evaluated.
    Undecided { rule: usize, condition: String },
}

fn id_op(op: char) -> Op {
    match op {
        '<' => Op::Lt,
        '>' => Op::Gt,
        _ => Op::Eq,
    }
}

fn id_value(value: &str) -> u32 {
    kernel_unsigned(value, 10)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(u32::MAX)
}

/// The kernel's `hash_algo_name[]` index of a name.
pub fn hash_algo_number(name: &str) -> Option<u8> {
    const NAMES: [&str; 23] = [
        "md4",
        "md5",
        "sha1",
        "rmd160",
        "sha256",
        "sha384",
        "sha512",
        "sha224",
        "rmd128",
        "rmd256",
        "rmd320",
        "wp256",
        "wp384",
        "wp512",
        "tgr128",
        "tgr160",
        "tgr192",
        "sm3",
        "streebog256",
        "streebog512",
        "sha3-256",
        "sha3-384",
        "sha3-512",
    ];
    NAMES
        .iter()
        .position(|n| *n == name)
        .and_then(|i| u8::try_from(i).ok())
}

/// The appraise and dont_appraise rules, in order.
pub fn appraise_rules(policy: &Policy) -> Vec<AppraiseRule> {
    let mut out = Vec::new();
    for rule in policy.rules() {
        let appraise = match rule.action {
            Action::Appraise => true,
            Action::DontAppraise => false,
            _ => continue,
        };
        let mut conds = Vec::new();
        let mut allowed_algos = None;
        for (key, op, value) in rule.options() {
            let cond = match key {
                // The grammar keeps the canonical hook; FILE_MMAP is MMAP_CHECK.
                "func" => match rule.func {
                    Some(Func::Mmap) => Cond::Funcs(vec![Func::Mmap]),
                    Some(f) => Cond::Funcs(vec![f]),
                    None => continue,
                },
                "mask" => {
                    let inverted = value.starts_with('^');
                    let bit = match value.trim_start_matches('^') {
                        "MAY_EXEC" => MAY_EXEC,
                        "MAY_WRITE" => MAY_WRITE,
                        "MAY_APPEND" => MAY_APPEND,
                        _ => MAY_READ,
                    };
                    Cond::Mask { bit, inverted }
                }
                "fsmagic" => Cond::Fsmagic(kernel_unsigned(value, 16).unwrap_or(u64::MAX)),
                "fsuuid" => Cond::Fsuuid(value.to_ascii_lowercase()),
                "fsname" => Cond::Fsname(value.to_owned()),
                "uid" | "euid" => Cond::Uid(id_op(op), id_value(value)),
                "gid" | "egid" => Cond::Gid(id_op(op), id_value(value)),
                "fowner" => Cond::Fowner(id_op(op), id_value(value)),
                "fgroup" => Cond::Fgroup(id_op(op), id_value(value)),
                "appraise_algos" => {
                    allowed_algos = Some(value.split(',').filter_map(hash_algo_number).collect());
                    continue;
                }
                // Flags that do not select files.
                "appraise_type" | "appraise_flag" | "permit_directio" => continue,
                _ => Cond::Unknown(format!("{key}{op}{value}")),
            };
            conds.push(cond);
        }
        out.push(AppraiseRule {
            line: rule.line,
            text: rule.text.clone(),
            appraise,
            needs_signature: rule.appraise_type.is_some_and(|t| t != AppraiseType::Sigv3),
            allowed_algos,
            conds,
        });
    }
    out
}

fn compare(op: Op, actual: u32, wanted: u32) -> bool {
    matches!(
        (op, actual.cmp(&wanted)),
        (Op::Eq, Ordering::Equal) | (Op::Lt, Ordering::Less) | (Op::Gt, Ordering::Greater)
    )
}

/// Whether a rule matches: `Some(true/false)`, or `Err(condition)` when it
/// would match if a condition that cannot be evaluated holds.
fn matches(rule: &AppraiseRule, access: Access, s: &Subject) -> Result<bool, String> {
    let mut unknown = None;
    for cond in &rule.conds {
        let ok = match cond {
            Cond::Funcs(funcs) => funcs.iter().any(|f| access.funcs().contains(f)),
            Cond::Mask { bit, inverted } => {
                if *inverted {
                    access.mask() & bit != 0
                } else {
                    access.mask() == *bit
                }
            }
            Cond::Fsmagic(m) => s.fsmagic == *m,
            Cond::Fsuuid(u) => match &s.fsuuid {
                Some(have) => have == u,
                None => {
                    unknown.get_or_insert_with(|| format!("fsuuid={u} (filesystem UUID unknown)"));
                    true
                }
            },
            Cond::Fsname(n) => match &s.fsname {
                Some(have) => have == n,
                None => {
                    unknown.get_or_insert_with(|| format!("fsname={n} (filesystem type unknown)"));
                    true
                }
            },
            Cond::Uid(op, v) => compare(*op, s.uid, *v),
            Cond::Gid(op, v) => compare(*op, s.gid, *v),
            Cond::Fowner(op, v) => compare(*op, s.owner, *v),
            Cond::Fgroup(op, v) => compare(*op, s.group, *v),
            Cond::Unknown(text) => {
                unknown.get_or_insert_with(|| text.clone());
                true
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    match unknown {
        Some(u) => Err(u),
        None => Ok(true),
    }
}

/// The first appraise or dont_appraise rule matching one access.
fn decide_access(rules: &[AppraiseRule], access: Access, s: &Subject) -> Coverage {
    for (i, rule) in rules.iter().enumerate() {
        match matches(rule, access, s) {
            Ok(false) => continue,
            Ok(true) if rule.appraise => return Coverage::Appraised(i),
            Ok(true) => return Coverage::NotCovered,
            Err(condition) => return Coverage::Undecided { rule: i, condition },
        }
    }
    Coverage::NotCovered
}

/// The decision over every access: appraised by any hook is appraised; a
/// signature rule wins over a hash rule; undecided only when no hook is
/// surely appraised.
pub fn decide(rules: &[AppraiseRule], accesses: &[Access], s: &Subject) -> Coverage {
    let mut best = Coverage::NotCovered;
    for &access in accesses {
        let c = decide_access(rules, access, s);
        best = match (&best, &c) {
            (_, Coverage::NotCovered) => best,
            (Coverage::NotCovered | Coverage::Undecided { .. }, Coverage::Appraised(_)) => c,
            (Coverage::Appraised(a), Coverage::Appraised(b)) => {
                let sig = |i: &usize| rules.get(*i).is_some_and(|r| r.needs_signature);
                if !sig(a) && sig(b) { c } else { best }
            }
            (Coverage::NotCovered, Coverage::Undecided { .. }) => c,
            _ => best,
        };
    }
    best
}

/// Whether any rule could depend on the file being an ELF object.
pub fn uses_mmap(rules: &[AppraiseRule]) -> bool {
    rules.iter().any(|r| {
        r.conds.iter().all(|c| match c {
            Cond::Funcs(f) => f
                .iter()
                .any(|f| matches!(f, Func::Mmap | Func::MmapReqprot)),
            _ => true,
        })
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<AppraiseRule> {
        appraise_rules(&crate::ima_policy::parse(text.as_bytes()).unwrap())
    }

    fn root_file() -> Subject {
        Subject {
            fsmagic: 0xef53,
            ..Subject::default()
        }
    }

    #[test]
    fn first_match_wins_and_dont_appraise_is_honoured() {
        let r = rules(
            "dont_appraise fsmagic=0x9fa0\nappraise func=BPRM_CHECK appraise_type=imasig\n\
             dont_appraise fowner=1000\nappraise fowner=0\n",
        );
        let s = root_file();
        assert_eq!(decide(&r, &[Access::Read], &s), Coverage::Appraised(3));
        assert_eq!(
            decide(&r, &[Access::Read, Access::Exec], &s),
            Coverage::Appraised(1)
        );
        let user = Subject {
            owner: 1000,
            ..root_file()
        };
        assert_eq!(decide(&r, &[Access::Read], &user), Coverage::NotCovered);
        let proc = Subject {
            fsmagic: 0x9fa0,
            ..root_file()
        };
        assert_eq!(
            decide(&r, &[Access::Read, Access::Exec], &proc),
            Coverage::NotCovered
        );
    }

    #[test]
    fn hooks_and_masks() {
        let r = rules(
            "appraise func=FILE_MMAP mask=MAY_EXEC\nappraise func=MODULE_CHECK\n\
             appraise func=FILE_CHECK mask=^MAY_WRITE\n",
        );
        let s = root_file();
        assert_eq!(decide(&r, &[Access::MmapExec], &s), Coverage::Appraised(0));
        assert_eq!(decide(&r, &[Access::Exec], &s), Coverage::NotCovered);
        assert_eq!(
            decide(&r, &[Access::Kernel(Func::Module)], &s),
            Coverage::Appraised(1)
        );
        // ^MAY_WRITE: any access whose mask has the bit, which a read has not.
        assert_eq!(decide(&r, &[Access::Read], &s), Coverage::NotCovered);
        assert!(uses_mmap(&r));
        assert!(!uses_mmap(&rules("appraise func=BPRM_CHECK\n")));
        assert!(uses_mmap(&rules("appraise fowner=0\n")));
    }

    #[test]
    fn id_operators() {
        let r = rules("appraise fowner<1000 uid=0\n");
        assert_eq!(
            decide(&r, &[Access::Read], &root_file()),
            Coverage::Appraised(0)
        );
        let other = Subject {
            uid: 5,
            ..root_file()
        };
        assert_eq!(decide(&r, &[Access::Read], &other), Coverage::NotCovered);
    }

    #[test]
    fn lsm_labels_are_undecided() {
        let r = rules("dont_appraise obj_type=var_log_t\nappraise\n");
        assert_eq!(
            decide(&r, &[Access::Read], &root_file()),
            Coverage::Undecided {
                rule: 0,
                condition: "obj_type=var_log_t".into()
            }
        );
        // A rule that surely does not match needs no label.
        let r = rules("dont_appraise fsmagic=0x9fa0 obj_type=x\nappraise\n");
        assert_eq!(
            decide(&r, &[Access::Read], &root_file()),
            Coverage::Appraised(1)
        );
    }

    #[test]
    fn fsuuid_and_algos() {
        let r = rules(
            "appraise fsuuid=8BCBE394-4F13-4144-BE8E-5AA9EA2CE2F6 appraise_algos=sha256,sha512\n",
        );
        assert_eq!(r[0].allowed_algos, Some(vec![4, 6]));
        let mut s = root_file();
        assert!(matches!(
            decide(&r, &[Access::Read], &s),
            Coverage::Undecided { .. }
        ));
        s.fsuuid = Some("8bcbe394-4f13-4144-be8e-5aa9ea2ce2f6".into());
        assert_eq!(decide(&r, &[Access::Read], &s), Coverage::Appraised(0));
        s.fsuuid = Some("00000000-4f13-4144-be8e-5aa9ea2ce2f6".into());
        assert_eq!(decide(&r, &[Access::Read], &s), Coverage::NotCovered);
    }
}
