//! What a remote verifier (Keylime, say) misses in a policy: it learns the
//! keys that check signatures from their KEY_CHECK measurements, and which
//! policy is in force only if the kernel measured it, which it does only
//! for a policy written by path (read through the POLICY_CHECK hook).

use super::{Action, Func, Policy};

/// The IMA and EVM keyrings, each under its kernel and userspace name.
const KEYRINGS: [(&str, &str); 2] = [(".ima", "_ima"), (".evm", "_evm")];

/// One sentence per gap; none for a policy that neither measures nor
/// appraises (nothing a verifier reads).
pub fn gaps(policy: &Policy, by_path: bool) -> Vec<String> {
    let mut out = Vec::new();
    let measures = policy.measure_rule_count() > 0;
    if !measures && policy.appraise_rule_count() == 0 {
        return out;
    }
    let uncovered: Vec<&str> = KEYRINGS
        .iter()
        .filter(|(kernel, user)| {
            !policy.rules().iter().any(|r| {
                r.action == Action::Measure
                    && r.func == Some(Func::Key)
                    && r.options()
                        .find(|(k, _, _)| *k == "keyrings")
                        .is_none_or(|(_, _, v)| v.split('|').any(|n| n == *kernel || n == *user))
            })
        })
        .map(|(kernel, _)| *kernel)
        .collect();
    if !uncovered.is_empty() {
        out.push(format!(
            "no `measure func=KEY_CHECK` rule covers {} (a keyrings= naming it, or none): a verifier such as Keylime cannot learn from the measurement list the keys that check the signatures; add `measure func=KEY_CHECK keyrings=.ima|.evm` (_ima|_evm for the userspace keyrings)",
            uncovered.join(" or ")
        ));
    }
    if measures && !by_path {
        out.push(
            "the policy measures but is written rule by rule, so the measurement list never shows which policy is in force; a verifier that needs it measured needs it written by path (sign it, or IMA_POLICY_WRITE=path) under a boot policy that measures func=POLICY_CHECK (ima_policy=tcb)"
                .to_string(),
        );
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ima_policy::parse;

    fn gaps_of(text: &str, by_path: bool) -> Vec<String> {
        gaps(&parse(text.as_bytes()).unwrap(), by_path)
    }

    #[test]
    fn key_check_coverage() {
        let g = gaps_of("appraise func=BPRM_CHECK\n", true);
        assert_eq!(g.len(), 1, "{g:?}");
        assert!(g[0].starts_with("no `measure func=KEY_CHECK` rule covers .ima or .evm "));
        // keyrings= absent covers every keyring.
        assert!(gaps_of("appraise func=BPRM_CHECK\nmeasure func=KEY_CHECK\n", true).is_empty());
        let g = gaps_of(
            "appraise func=BPRM_CHECK\nmeasure func=KEY_CHECK keyrings=.ima|.builtin_trusted_keys\n",
            true,
        );
        assert!(
            g[0].starts_with("no `measure func=KEY_CHECK` rule covers .evm "),
            "{g:?}"
        );
        // The userspace names count, across two rules.
        assert!(
            gaps_of(
                "appraise func=BPRM_CHECK\nmeasure func=KEY_CHECK keyrings=_ima\nmeasure func=KEY_CHECK keyrings=.evm\n",
                true
            )
            .is_empty()
        );
        // dont_measure does not cover.
        assert_eq!(
            gaps_of(
                "appraise func=BPRM_CHECK\ndont_measure func=KEY_CHECK\n",
                true
            )
            .len(),
            1
        );
        // Nothing measured or appraised: nothing for a verifier.
        assert!(gaps_of("dont_measure fsmagic=0x9fa0\n", false).is_empty());
    }

    #[test]
    fn a_measured_policy_written_rule_by_rule() {
        let text = "measure func=BPRM_CHECK\nmeasure func=KEY_CHECK\n";
        assert!(gaps_of(text, true).is_empty());
        let g = gaps_of(text, false);
        assert_eq!(g.len(), 1);
        assert!(g[0].starts_with("the policy measures but is written rule by rule"));
        // An appraise-only policy: only the keys are missing.
        let g = gaps_of("appraise func=BPRM_CHECK\n", false);
        assert_eq!(g.len(), 1, "{g:?}");
        assert!(g[0].starts_with("no `measure func=KEY_CHECK`"));
    }
}
