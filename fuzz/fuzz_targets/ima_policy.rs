//! The IMA policy grammar: `ima_policy::parse`. An accepted policy is
//! re-checked: the exact bytes the loader writes to securityfs
//! (`write_units`) must parse again to the same rules, one rule and one
//! newline per write, each under the kernel's per-write limit, and are
//! recognised again in the kernel's normal form. Errors must
//! point inside the input.
#![no_main]

use integrity_loader::ima_policy::{self, MAX_LINE_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    match ima_policy::parse(data) {
        Ok(policy) => {
            let rules = policy.rules();
            assert!(!rules.is_empty());
            let mut written = Vec::new();
            for (rule, unit) in rules.iter().zip(policy.write_units()) {
                assert!(unit.len() <= MAX_LINE_LEN + 1, "{} bytes", unit.len());
                assert_eq!(unit.iter().filter(|&&b| b == b'\n').count(), 1);
                assert!(unit.ends_with(b"\n"));
                assert_eq!(&unit[..unit.len() - 1], rule.text.as_bytes());
                assert!(rule.line >= 1 && rule.line <= lines.len());
                written.extend_from_slice(&unit);
            }
            assert_eq!(policy.write_units().count(), rules.len());
            let again = ima_policy::parse(&written).expect("the rules as written parse again");
            assert_eq!(again.rules().len(), rules.len());
            for (i, (a, b)) in rules.iter().zip(again.rules()).enumerate() {
                assert_eq!(b.line, i + 1);
                assert_eq!(
                    (&a.text, a.action, a.func, a.appraise_type),
                    (&b.text, b.action, b.func, b.appraise_type)
                );
            }
            assert_eq!(again.requires_signatures(), policy.requires_signatures());
            // The rules are recognised in what was written and in their own
            // normal form (what a second load compares with the kernel's).
            assert!(policy.is_shown_in(&written));
            assert!(policy.is_shown_in(policy.normal_form().as_bytes()));
            assert_eq!(again.normal_form(), policy.normal_form());
            assert!(policy.appraise_rule_count() + policy.measure_rule_count() <= rules.len());
        }
        Err(e) => {
            assert!(e.line >= 1 && e.line <= lines.len(), "{e:?}");
            let len = lines[e.line - 1].len();
            assert!(
                e.column >= 1 && e.column <= len + 1,
                "{e:?} in a line of {len} bytes"
            );
            assert!(!e.to_string().is_empty());
        }
    }
});
