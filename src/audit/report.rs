//! The audit's report: text for the admin, `--json` for machines.

use super::walk::{Listed, Tally};
use super::{AuditOptions, Inputs, Verdict};
use std::fmt::Write;

pub fn print(o: &AuditOptions, inputs: &Inputs, t: &Tally) {
    let out = if o.json {
        json(o, inputs, t)
    } else {
        text(o, inputs, t)
    };
    print!("{out}");
}

fn rule_text(inputs: &Inputs, index: usize) -> (usize, &str) {
    inputs
        .rules
        .get(index)
        .map_or((0, ""), |r| (r.line, r.text.as_str()))
}

fn text(o: &AuditOptions, inputs: &Inputs, t: &Tally) -> String {
    let mut s = String::new();
    let appraise = inputs.rules.iter().filter(|r| r.appraise).count();
    let _ = writeln!(
        s,
        "audit of {}: {} regular files; policy {} ({appraise} appraise rules); {} IMA key(s); EVM {} ({}); files opened as uid {} gid {}",
        o.root.display(),
        t.files,
        inputs.policy_path,
        inputs.ima_keys.len(),
        if inputs.evm_on { "on" } else { "off" },
        inputs.evm_why,
        o.uid,
        o.gid
    );
    for w in &inputs.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    let _ = writeln!(s, "verdicts:");
    for v in Verdict::ALL {
        let n = t.count(&v);
        if n > 0 {
            let _ = writeln!(s, "  {n:>9}  {}", v.words());
        }
    }
    if !t.by_rule.is_empty() {
        let _ = writeln!(s, "by rule (appraised, denied, undecided):");
        for (i, c) in &t.by_rule {
            let (line, text) = rule_text(inputs, *i);
            let _ = writeln!(
                s,
                "  line {line:>4}: {:>9} {:>9} {:>9}  {text}",
                c.appraised, c.denied, c.undecided
            );
        }
    }
    if !t.undecided.is_empty() {
        let _ = writeln!(s, "not evaluated offline (files):");
        for (cond, n) in &t.undecided {
            let _ = writeln!(s, "  {n:>9}  {cond}");
        }
    }
    for (path, fs) in &t.skipped_mounts {
        let _ = writeln!(s, "not walked: {path} ({fs})");
    }
    let denied = t.denied_total();
    if denied > 0 {
        let _ = writeln!(
            s,
            "would be denied ({denied}{}):",
            more(t.denied.len(), denied)
        );
        for l in &t.denied {
            let _ = writeln!(s, "  {}", listed(l));
        }
    } else {
        let _ = writeln!(s, "no file would be denied");
    }
    if o.all {
        let _ = writeln!(s, "files ({}{}):", t.files, more(t.all.len(), t.files));
        for l in &t.all {
            let _ = writeln!(s, "  {}", listed(l));
        }
    }
    let unreadable = t.count(&Verdict::Unreadable);
    if unreadable > 0 {
        let _ = writeln!(
            s,
            "cannot read ({unreadable}{}):",
            more(t.unreadable.len(), unreadable)
        );
        for l in &t.unreadable {
            let _ = writeln!(s, "  {}", listed(l));
        }
    }
    s
}

/// relabel's closing count and the files left for the admin.
pub fn print_relabel(o: &AuditOptions, inputs: &Inputs, t: &Tally, cmdline: &std::path::Path) {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "relabel of {}: {} regular files; policy {}; EVM {} ({}); fix mode from {}",
        o.root.display(),
        t.files,
        inputs.policy_path,
        if inputs.evm_on { "on" } else { "off" },
        inputs.evm_why,
        cmdline.display()
    );
    for w in &inputs.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    for v in [
        Verdict::Opened,
        Verdict::NeedsSignature,
        Verdict::NotByOpening,
        Verdict::Undecided,
        Verdict::NotCovered,
        Verdict::Unreadable,
    ] {
        let _ = writeln!(s, "  {:>9}  {}", t.count(&v), v.words());
    }
    for (path, fs) in &t.skipped_mounts {
        let _ = writeln!(s, "not walked: {path} ({fs})");
    }
    let left = t.left_to_label();
    if left > 0 {
        let _ = writeln!(
            s,
            "left to label by hand ({left}{}): sign with \
             evmctl ima_sign --key PRIVATE-KEY.pem FILE (a key whose certificate load \
             loads), or hash with evmctl ima_hash FILE where the rule accepts hashes:",
            more(t.to_label.len(), left)
        );
        for l in &t.to_label {
            let _ = writeln!(s, "  {}", listed(l));
        }
    }
    let unreadable = t.count(&Verdict::Unreadable);
    if unreadable > 0 {
        let _ = writeln!(
            s,
            "could not open ({unreadable}{}):",
            more(t.unreadable.len(), unreadable)
        );
        for l in &t.unreadable {
            let _ = writeln!(s, "  {}", listed(l));
        }
    }
    let _ = writeln!(
        s,
        "{} files opened for the kernel to label; check with integrity-audit",
        t.count(&Verdict::Opened)
    );
    print!("{s}");
}

fn more(shown: usize, total: u64) -> String {
    if (shown as u64) < total {
        format!(", first {shown} shown")
    } else {
        String::new()
    }
}

fn listed(l: &Listed) -> String {
    let mut s = format!("{}: {}", l.path, l.verdict.words());
    if let Some(d) = &l.detail {
        let _ = write!(s, " ({d})");
    }
    if let Some(line) = l.line {
        let _ = write!(s, " [policy line {line}]");
    }
    s
}

/// A JSON string: quotes, backslashes and control characters escaped.
fn js(text: &str) -> String {
    let mut s = String::with_capacity(text.len() + 2);
    s.push('"');
    for c in text.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

fn json_list(list: &[Listed]) -> String {
    let items: Vec<String> = list
        .iter()
        .map(|l| {
            format!(
                "{{\"path\":{},\"verdict\":{},\"policy_line\":{},\"detail\":{}}}",
                js(&l.path),
                js(l.verdict.key()),
                l.line.map_or("null".into(), |n| n.to_string()),
                l.detail.as_deref().map_or("null".into(), js)
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn json(o: &AuditOptions, inputs: &Inputs, t: &Tally) -> String {
    let verdicts: Vec<String> = Verdict::ALL
        .iter()
        .map(|v| format!("{}:{}", js(v.key()), t.count(v)))
        .collect();
    let rules: Vec<String> = t
        .by_rule
        .iter()
        .map(|(i, c)| {
            let (line, text) = rule_text(inputs, *i);
            format!(
                "{{\"line\":{line},\"rule\":{},\"appraised\":{},\"denied\":{},\"undecided\":{}}}",
                js(text),
                c.appraised,
                c.denied,
                c.undecided
            )
        })
        .collect();
    let undecided: Vec<String> = t
        .undecided
        .iter()
        .map(|(c, n)| format!("{}:{n}", js(c)))
        .collect();
    let skipped: Vec<String> = t
        .skipped_mounts
        .iter()
        .map(|(p, fs)| format!("{{\"path\":{},\"fs\":{}}}", js(p), js(fs)))
        .collect();
    let warnings: Vec<String> = inputs.warnings.iter().map(|w| js(w)).collect();
    format!(
        "{{\"root\":{},\"files\":{},\"policy\":{},\"ima_keys\":{},\"evm\":{},\"uid\":{},\"gid\":{},\"warnings\":[{}],\"verdicts\":{{{}}},\"rules\":[{}],\"undecided\":{{{}}},\"not_walked\":[{}],\"denied_total\":{},\"denied\":{},\"unreadable\":{},\"files_listed\":{}}}\n",
        js(&o.root.display().to_string()),
        t.files,
        js(&inputs.policy_path),
        inputs.ima_keys.len(),
        inputs.evm_on,
        o.uid,
        o.gid,
        warnings.join(","),
        verdicts.join(","),
        rules.join(","),
        undecided.join(","),
        skipped.join(","),
        t.denied_total(),
        json_list(&t.denied),
        json_list(&t.unreadable),
        json_list(&t.all)
    )
}

#[cfg(test)]
mod tests {
    use super::js;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(js("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\u000a\\u0001é\"");
    }
}
