//! A policy with LSM-label rules, split in two: the rules the kernel can take
//! in the initramfs, and those that must wait until the LSM has loaded its
//! policy (before that, the first custom load refuses an unknown label with
//! EINVAL and the whole update is dropped).
//!
//! The split keeps the policy's meaning. IMA decides each kind of action
//! (measure, appraise, audit, hash) by the first rule of that kind that
//! matches (`ima_match_policy()`'s action mask), and a second load appends.
//! So a rule may go ahead of a rule that waits only when the two can never
//! decide the same event; any other rule after a waiting one waits too, in
//! its place. Written in two parts, the kernel ends up with exactly the
//! order of the file for every pair of rules that can compete.

use super::{Action, Func, Policy, Rule};

/// The kind of decision a rule takes part in; rules of different kinds
/// never shadow each other.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Measure,
    Appraise,
    Audit,
    Hash,
}

fn kind(action: Action) -> Kind {
    match action {
        Action::Measure | Action::DontMeasure => Kind::Measure,
        Action::Appraise | Action::DontAppraise => Kind::Appraise,
        Action::Audit | Action::DontAudit => Kind::Audit,
        Action::Hash | Action::DontHash => Kind::Hash,
    }
}

/// Whether `a` and `b` can both match one event and so decide it by their
/// order. Conservative: only what `ima_match_rules()` (6.1) rules out is
/// ruled out.
fn may_compete(a: &Rule, b: &Rule) -> bool {
    let k = kind(a.action);
    if k != kind(b.action) {
        return false;
    }
    // KEY_CHECK and CRITICAL_DATA events match only rules of that func.
    let data = |f: Option<Func>| matches!(f, Some(Func::Key | Func::CriticalData));
    if data(a.func) || data(b.func) {
        return a.func == b.func;
    }
    match k {
        // ima_inode_post_setattr() asks with POST_SETATTR, which matches
        // appraise and hash rules whatever their func.
        Kind::Appraise | Kind::Hash => true,
        Kind::Measure | Kind::Audit => a.func.is_none() || b.func.is_none() || a.func == b.func,
    }
}

/// Why a rule waits for the LSM's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// It has an LSM label.
    Label,
    /// It follows the waiting rule on this line and may decide the same
    /// events, so it keeps its place after it.
    Order(usize),
}

/// The two parts of a policy.
#[derive(Debug, Clone)]
pub struct Split<'p> {
    policy: &'p Policy,
    /// Per rule: why it waits, or `None` when it goes in the initramfs.
    wait: Vec<Option<Wait>>,
}

impl<'p> Split<'p> {
    pub fn of(policy: &'p Policy) -> Split<'p> {
        let mut wait: Vec<Option<Wait>> = Vec::with_capacity(policy.rules.len());
        // Competing depends only on a rule's kind and func, so the first
        // waiting rule of each (kind, func) stands for all that follow it:
        // a few dozen at most, whatever the policy's length (a hostile
        // 100,000-rule policy must not cost n² comparisons).
        let mut first_waiting: Vec<&Rule> = Vec::new();
        for rule in &policy.rules {
            let w = if rule.lsm {
                Some(Wait::Label)
            } else {
                first_waiting
                    .iter()
                    .find(|earlier| may_compete(earlier, rule))
                    .map(|earlier| Wait::Order(earlier.line))
            };
            if w.is_some()
                && !first_waiting
                    .iter()
                    .any(|f| kind(f.action) == kind(rule.action) && f.func == rule.func)
            {
                first_waiting.push(rule);
            }
            wait.push(w);
        }
        Split { policy, wait }
    }

    /// Whether any rule has an LSM label.
    pub fn has_labels(&self) -> bool {
        self.wait.contains(&Some(Wait::Label))
    }

    fn part(&self, waiting: bool) -> Policy {
        Policy {
            rules: self
                .policy
                .rules
                .iter()
                .zip(&self.wait)
                .filter(|(_, w)| w.is_some() == waiting)
                .map(|(r, _)| r.clone())
                .collect(),
            unterminated: None,
        }
    }

    /// The rules the initramfs writes, in order.
    pub fn now(&self) -> Policy {
        self.part(false)
    }

    /// The rules written after the LSM's policy load, in order.
    pub fn later(&self) -> Policy {
        self.part(true)
    }

    /// The rules as the kernel holds them once both parts are written.
    pub fn in_kernel_order(&self) -> Policy {
        let mut all = self.now();
        all.rules.extend(self.later().rules);
        all
    }

    /// The waiting rules: line and why.
    pub fn waiting(&self) -> impl Iterator<Item = (usize, Wait)> + '_ {
        self.policy
            .rules
            .iter()
            .zip(&self.wait)
            .filter_map(|(r, w)| w.map(|w| (r.line, w)))
    }

    /// One sentence on the waiting rules, for `check` and the log.
    pub fn describe(&self) -> String {
        let lines = |want: fn(&Wait) -> bool| -> Vec<String> {
            self.waiting()
                .filter(|(_, w)| want(w))
                .map(|(l, _)| l.to_string())
                .collect()
        };
        let labels = lines(|w| *w == Wait::Label);
        let order = lines(|w| matches!(w, Wait::Order(_)));
        let mut text = format!(
            "{} rule(s) with LSM labels (line {})",
            labels.len(),
            labels.join(", ")
        );
        if !order.is_empty() {
            text.push_str(&format!(
                " and {} rule(s) after them that could match the same events (line {}), kept in their place so that the first match stays the same",
                order.len(),
                order.join(", ")
            ));
        }
        text
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::ima_policy::parse;

    fn lines(p: &Policy) -> Vec<usize> {
        p.rules().iter().map(|r| r.line).collect()
    }

    #[test]
    fn a_policy_without_labels_goes_whole_in_the_initramfs() {
        let p = parse(b"measure func=BPRM_CHECK\nappraise func=FILE_CHECK\n").unwrap();
        let s = Split::of(&p);
        assert!(!s.has_labels());
        assert_eq!(lines(&s.now()), [1, 2]);
        assert!(s.later().rules().is_empty());
    }

    #[test]
    fn labels_last_split_without_reordering() {
        let p = parse(
            b"dont_measure fsmagic=0x9fa0\nmeasure func=BPRM_CHECK\nmeasure func=FILE_CHECK subj_type=unconfined_t\n",
        )
        .unwrap();
        let s = Split::of(&p);
        assert!(s.has_labels());
        assert_eq!(lines(&s.now()), [1, 2]);
        assert_eq!(lines(&s.later()), [3]);
        assert_eq!(s.in_kernel_order().normal_form(), p.normal_form());
    }

    #[test]
    fn a_rule_that_could_be_shadowed_keeps_its_place_after_the_label() {
        // The usual SELinux measure policy: written as is in two parts, log
        // files would be measured by line 3 before line 2 excludes them.
        let p = parse(
            b"dont_measure fsmagic=0x9fa0\ndont_measure obj_type=var_log_t\nmeasure func=FILE_CHECK mask=MAY_READ uid=0\nmeasure func=KEY_CHECK keyrings=.ima\nappraise func=BPRM_CHECK\n",
        )
        .unwrap();
        let s = Split::of(&p);
        assert_eq!(lines(&s.now()), [1, 4, 5]);
        assert_eq!(lines(&s.later()), [2, 3]);
        assert_eq!(
            s.waiting().collect::<Vec<_>>(),
            [(2, Wait::Label), (3, Wait::Order(2))]
        );
        assert!(
            s.describe()
                .contains("1 rule(s) with LSM labels (line 2) and 1 rule(s) after them"),
            "{}",
            s.describe()
        );
    }

    #[test]
    fn competition_follows_the_kernels_matching() {
        let rule = |t: &str| parse(t.as_bytes()).unwrap().rules()[0].clone();
        let yes = [
            ("measure subj_role=x", "measure func=BPRM_CHECK"),
            (
                "measure func=BPRM_CHECK subj_role=x",
                "dont_measure func=BPRM_CHECK",
            ),
            // POST_SETATTR matches every appraise rule.
            (
                "appraise func=BPRM_CHECK subj_role=x",
                "appraise func=FILE_CHECK",
            ),
            (
                "hash func=BPRM_CHECK subj_role=x",
                "dont_hash func=FILE_CHECK",
            ),
            ("audit subj_role=x", "audit func=FILE_CHECK"),
            (
                "measure func=KEY_CHECK",
                "dont_measure func=KEY_CHECK keyrings=.ima",
            ),
        ];
        let no = [
            ("measure subj_role=x", "appraise func=BPRM_CHECK"),
            (
                "measure func=BPRM_CHECK subj_role=x",
                "measure func=FILE_CHECK",
            ),
            ("measure subj_role=x", "measure func=KEY_CHECK"),
            ("measure subj_role=x", "measure func=CRITICAL_DATA"),
            ("audit func=BPRM_CHECK subj_role=x", "audit func=MMAP_CHECK"),
        ];
        for (a, b) in yes {
            assert!(may_compete(&rule(a), &rule(b)), "{a} / {b}");
        }
        for (a, b) in no {
            assert!(!may_compete(&rule(a), &rule(b)), "{a} / {b}");
        }
    }

    #[test]
    fn a_chain_of_shadowing_rules_waits_together() {
        // Line 3 does not compete with the label rule (another func), but
        // with line 2, which waits: it waits too. Line 4 competes with
        // neither.
        let p = parse(
            b"measure func=BPRM_CHECK subj_role=x\ndont_measure fsmagic=0x9fa0\nmeasure func=FILE_CHECK\nappraise func=FILE_CHECK\n",
        )
        .unwrap();
        let s = Split::of(&p);
        assert_eq!(lines(&s.now()), [4]);
        assert_eq!(
            s.waiting().collect::<Vec<_>>(),
            [(1, Wait::Label), (2, Wait::Order(1)), (3, Wait::Order(2))]
        );
        let p = parse(b"measure subj_role=x\nmeasure func=FILE_CHECK\nappraise func=FILE_CHECK\n")
            .unwrap();
        let s = Split::of(&p);
        assert_eq!(lines(&s.now()), [3]);
        assert_eq!(lines(&s.later()), [1, 2]);
    }
}
