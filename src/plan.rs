//! The load plan as data: the steps in order, what each needs, and so what a
//! failure skips. `check` prints it; `load` walks it.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StepId {
    Kmk,
    EvmKey,
    EvmCerts,
    ImaCerts,
    ImaPolicy,
    Evm,
    DropKeys,
}

impl StepId {
    pub const ALL: [StepId; 7] = [
        StepId::Kmk,
        StepId::EvmKey,
        StepId::EvmCerts,
        StepId::ImaCerts,
        StepId::ImaPolicy,
        StepId::Evm,
        StepId::DropKeys,
    ];

    pub fn name(self) -> &'static str {
        match self {
            StepId::Kmk => "kmk",
            StepId::EvmKey => "evm-key",
            StepId::EvmCerts => "evm-certs",
            StepId::ImaCerts => "ima-certs",
            StepId::ImaPolicy => "ima-policy",
            StepId::Evm => "evm",
            StepId::DropKeys => "drop-keys",
        }
    }

    pub fn parse(name: &str) -> Option<StepId> {
        StepId::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for StepId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// When a dependency applies. The runner evaluates it: before a step for
/// [`When::Always`], and for the others once the step has read its input and
/// says which [`Conditions`] that input has (`runner::gate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Always,
    /// Only when the IMA policy has appraise rules that need signatures:
    /// writing those without the keys makes every signed file unreadable.
    PolicyNeedsSignatures,
    /// Only when the IMA policy has appraise rules: appraisal relies on
    /// EVM protecting file metadata.
    PolicyAppraises,
}

impl When {
    pub fn holds(self, input: Conditions) -> bool {
        match self {
            When::Always => true,
            When::PolicyNeedsSignatures => input.policy_needs_signatures,
            When::PolicyAppraises => input.policy_appraises,
        }
    }

    /// How `describe` qualifies a dependency; `None` for an unconditional one.
    fn words(self) -> Option<&'static str> {
        match self {
            When::Always => None,
            When::PolicyNeedsSignatures => Some("when the policy needs signatures"),
            When::PolicyAppraises => Some("when the policy appraises"),
        }
    }
}

/// What a step found in its input, for the conditions of its dependencies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Conditions {
    pub policy_appraises: bool,
    pub policy_needs_signatures: bool,
}

impl Conditions {
    /// Before a step has read anything: only unconditional dependencies hold.
    pub const NONE: Conditions = Conditions {
        policy_appraises: false,
        policy_needs_signatures: false,
    };
}

#[derive(Debug, Clone, Copy)]
pub struct Step {
    pub id: StepId,
    pub what: &'static str,
    /// A failed dependency skips this step.
    pub depends_on: &'static [(StepId, When)],
}

/// The boot sequence, in order.
pub const PLAN: [Step; 7] = [
    Step {
        id: StepId::Kmk,
        what: "load the kernel master key",
        depends_on: &[],
    },
    Step {
        id: StepId::EvmKey,
        what: "load the EVM HMAC key (encrypted key sealed by the kmk)",
        depends_on: &[(StepId::Kmk, When::Always)],
    },
    Step {
        id: StepId::EvmCerts,
        what: "load EVM certificates into .evm or _evm",
        depends_on: &[],
    },
    Step {
        id: StepId::ImaCerts,
        what: "load IMA certificates into .ima or _ima",
        depends_on: &[],
    },
    Step {
        id: StepId::ImaPolicy,
        what: "check and write the IMA policy",
        depends_on: &[
            (StepId::EvmKey, When::PolicyAppraises),
            (StepId::EvmCerts, When::PolicyAppraises),
            (StepId::ImaCerts, When::PolicyNeedsSignatures),
        ],
    },
    Step {
        id: StepId::Evm,
        what: "enable EVM",
        depends_on: &[
            (StepId::EvmKey, When::Always),
            (StepId::EvmCerts, When::Always),
        ],
    },
    Step {
        id: StepId::DropKeys,
        what: "unlink keys no longer needed",
        depends_on: &[],
    },
];

/// The plan as text, one line per step, for `check` and `--help`.
pub fn describe(plan: &[Step]) -> String {
    let mut out = String::new();
    for (i, step) in plan.iter().enumerate() {
        out.push_str(&format!(
            "  {}. {:<10} {}",
            i + 1,
            step.id.name(),
            step.what
        ));
        let deps: Vec<String> = step
            .depends_on
            .iter()
            .map(|(d, when)| match when.words() {
                None => d.name().to_string(),
                Some(words) => format!("{d} ({words})"),
            })
            .collect();
        if !deps.is_empty() {
            out.push_str(&format!("; skipped if {} failed", deps.join(" or ")));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_point_backwards() {
        for (i, step) in PLAN.iter().enumerate() {
            assert_eq!(step.id, StepId::ALL[i]);
            for (dep, _) in step.depends_on {
                let j = PLAN.iter().position(|s| s.id == *dep).unwrap();
                assert!(j < i, "{} depends on later step {}", step.id, dep);
            }
        }
    }

    #[test]
    fn names_roundtrip() {
        for id in StepId::ALL {
            assert_eq!(StepId::parse(id.name()), Some(id));
        }
        assert_eq!(StepId::parse("nope"), None);
    }
}
