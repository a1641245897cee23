//! The kernel command line as the loader reads /proc/cmdline
//! (`Cmdline::parse_bytes`). Besides not panicking, dracut's `getarg` rules
//! must hold whatever came before: an option appended at the end wins,
//! quotes protect blanks, `name=0` is false, a bare name gives "".
#![no_main]

use integrity_loader::cmdline::Cmdline;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let c = Cmdline::parse_bytes(data);
    let text = String::from_utf8_lossy(data);
    // Look up the names the input itself uses.
    for word in text.split_whitespace().take(8) {
        let name = word.split('=').next().unwrap_or_default();
        let _ = (c.value(name), c.flag(name));
    }
    let _ = (c.value("masterkey"), c.flag("rd.debug"));

    // With an unbalanced quote the rest of the line is inside it; the
    // kernel does the same, so only balanced lines get the appended checks.
    if !text.matches('"').count().is_multiple_of(2) {
        return;
    }
    let appended = Cmdline::parse(&format!("{text} rd.fuzz=/etc/keys/x.blob"));
    assert_eq!(appended.value("rd.fuzz"), Some("/etc/keys/x.blob"));
    assert!(appended.flag("rd.fuzz"));
    let appended = Cmdline::parse(&format!("{text}\trd.fuzz=\"a b\" rd.flag"));
    assert_eq!(appended.value("rd.fuzz"), Some("a b"));
    assert!(appended.flag("rd.flag"));
    assert_eq!(appended.value("rd.flag"), Some(""));
    let appended = Cmdline::parse(&format!("{text} rd.fuzz=0"));
    assert!(!appended.flag("rd.fuzz"));
    assert_eq!(appended.value("rd.fuzz"), Some("0"));
});
