//! dracut's /etc/sysconfig files and the native config: `sysconfig::parse`.
//! Accepted files must round-trip: writing every assignment back as
//! `NAME="value"` and parsing that gives the same names, values and order.
//! Errors must point inside the input.
#![no_main]

use integrity_loader::sysconfig;
use libfuzzer_sys::fuzz_target;

/// A value as a double-quoted shell word.
fn quoted(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fuzz_target!(|data: &[u8]| {
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    match sysconfig::parse(data) {
        Ok(vars) => {
            let mut text = String::new();
            for a in vars.iter() {
                assert!(!a.name.is_empty());
                assert!(a.line >= 1 && a.line <= lines.len());
                assert!(!a.value.contains(['\n', '\r', '\0']));
                // The last assignment wins.
                assert_eq!(
                    vars.get(&a.name).map(|last| last.line >= a.line),
                    Some(true)
                );
                text.push_str(&format!("{}={}\n", a.name, quoted(&a.value)));
            }
            let again = sysconfig::parse(text.as_bytes()).expect("written back, it parses");
            let first: Vec<_> = vars.iter().map(|a| (&a.name, &a.value)).collect();
            let second: Vec<_> = again.iter().map(|a| (&a.name, &a.value)).collect();
            assert_eq!(first, second);
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
