//! The kernel command line, read the way dracut's `getarg` reads it
//! (dracut-util, which splits the line with the kernel's own `next_arg`):
//! words are separated by blanks outside double quotes, a word's name ends
//! at its first `=`, one pair of quotes around the whole word or around the
//! value is removed and every other quote is kept, and the last occurrence
//! of a name wins.

/// Options of the kernel command line, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmdline {
    words: Vec<(String, Option<String>)>,
}

/// Blanks as the kernel's `isspace` sees them: ASCII white space and the
/// Latin-1 no-break space (byte 0xA0), which splits words too.
fn is_blank(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' | 0xa0)
}

impl Cmdline {
    /// Splits the text into words as dracut's `getarg` does.
    pub fn parse(text: &str) -> Cmdline {
        Cmdline::parse_bytes(text.as_bytes())
    }

    /// As `parse`, from the bytes of the file. NUL bytes are dropped: the
    /// shell's `read` in dracut's `getcmdline` drops them.
    pub fn parse_bytes(bytes: &[u8]) -> Cmdline {
        let text: Vec<u8> = bytes.iter().copied().filter(|b| *b != 0).collect();
        let mut words = Vec::new();
        let mut rest = text.as_slice();
        while let Some(start) = rest.iter().position(|b| !is_blank(*b)) {
            let (word, after) = next_word(rest.get(start..).unwrap_or_default());
            words.push(word);
            rest = after;
        }
        Cmdline { words }
    }

    /// What dracut's `getarg name=` prints, when it succeeds: the value of
    /// the last `name=value`, or `Some("")` when the last occurrence is a
    /// bare `name` (getarg then succeeds and prints nothing, so dracut's
    /// scripts take the default). `None` when the name is absent.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.words
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref().unwrap_or_default())
    }

    /// A boolean option as dracut's `getargbool 0 name`: false when absent
    /// or when the last occurrence has the value 0, no or off; true
    /// otherwise (a bare `name`, `name=`, any other value).
    pub fn flag(&self, name: &str) -> bool {
        self.value(name)
            .is_some_and(|v| !matches!(v, "0" | "no" | "off"))
    }
}

/// Each file of the command line is bounded as /proc/cmdline is read.
const FILE_LIMIT: u64 = 64 * 1024;

/// The text dracut's `getcmdline` prints, from the files under `base` (`/`
/// at boot): the lines of /etc/cmdline.d/*.conf (in byte order), then of
/// /etc/cmdline, then of /proc/cmdline, each line trimmed of blanks as the
/// shell's `read` trims it and appended after a space. A file that cannot
/// be read adds nothing, as the shell's redirect then fails. Lets the hook
/// pass `--cmdline dracut` instead of running `getcmdline` into a file.
pub fn dracut_text(base: &std::path::Path) -> Vec<u8> {
    let dir = base.join("etc/cmdline.d");
    // The initramfs's own directory, read whole as the shell's glob reads it.
    let mut conf: Vec<std::path::PathBuf> = crate::dir::names(&dir, usize::MAX)
        .unwrap_or_default()
        .into_iter()
        .filter(|name| name.as_encoded_bytes().ends_with(b".conf"))
        .map(|name| dir.join(name))
        .collect();
    conf.sort_by(|a, b| {
        a.as_os_str()
            .as_encoded_bytes()
            .cmp(b.as_os_str().as_encoded_bytes())
    });
    // getcmdline's three variables, joined by a space each.
    let mut text = Vec::new();
    for path in &conf {
        append_lines(&mut text, path);
    }
    text.push(b' ');
    append_lines(&mut text, &base.join("etc/cmdline"));
    text.push(b' ');
    append_lines(&mut text, &base.join("proc/cmdline"));
    text
}

/// `while read -r _line || [ -n "$_line" ]; do V="$V $_line"; done < path`.
fn append_lines(out: &mut Vec<u8>, path: &std::path::Path) {
    let Ok(mut bytes) =
        std::fs::File::open(path).and_then(|f| crate::rootfs::read_sizeless(f, FILE_LIMIT))
    else {
        return;
    };
    // The shell's `read` drops NUL bytes.
    bytes.retain(|b| *b != 0);
    let complete = bytes.last() == Some(&b'\n');
    let mut lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
    if complete {
        // What follows the last newline is no line.
        lines.pop();
    }
    let count = lines.len();
    for (i, line) in lines.into_iter().enumerate() {
        let trimmed = trim_ifs(line);
        // A last line without its newline counts only when not empty.
        if i + 1 == count && !complete && trimmed.is_empty() {
            break;
        }
        out.push(b' ');
        out.extend_from_slice(trimmed);
    }
}

/// Strips the IFS white space (space, tab, newline) `read` strips.
fn trim_ifs(line: &[u8]) -> &[u8] {
    let ifs = |b: &u8| matches!(b, b' ' | b'\t' | b'\n');
    let start = line.iter().position(|b| !ifs(b)).unwrap_or(line.len());
    let end = line.iter().rposition(|b| !ifs(b)).map_or(start, |e| e + 1);
    line.get(start..end).unwrap_or_default()
}

/// One word from the start of `text` (which is not a blank), and the text
/// after it, as the kernel's `next_arg` splits and unquotes it.
fn next_word(text: &[u8]) -> ((String, Option<String>), &[u8]) {
    // A leading quote opens a quote and is not part of the word.
    let quoted = text.first() == Some(&b'"');
    let word_start = usize::from(quoted);
    let mut in_quote = quoted;
    let mut end = word_start;
    // The first `=` that is not the word's first character.
    let mut equals = None;
    while let Some(&b) = text.get(end) {
        if is_blank(b) && !in_quote {
            break;
        }
        if equals.is_none() && b == b'=' && end > word_start {
            equals = Some(end);
        }
        if b == b'"' {
            in_quote = !in_quote;
        }
        end += 1;
    }
    let ends_in_quote = end > word_start && text.get(end - 1) == Some(&b'"');
    let lossy = |from: usize, to: usize| {
        String::from_utf8_lossy(text.get(from..to.max(from)).unwrap_or_default()).into_owned()
    };
    let word = match equals {
        None => {
            // `"name"`: the closing quote goes with the opening one.
            let to = if quoted && ends_in_quote {
                end - 1
            } else {
                end
            };
            (lossy(word_start, to), None)
        }
        Some(eq) => {
            let mut from = eq + 1;
            let mut to = end;
            if text.get(from) == Some(&b'"') {
                // `name="value"`: the quotes around the value go.
                from += 1;
                if ends_in_quote {
                    to = end - 1;
                }
            } else if quoted && ends_in_quote {
                // `"name=value"`.
                to = end - 1;
            }
            (lossy(word_start, eq), Some(lossy(from, to)))
        }
    };
    (word, text.get(end..).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each row was checked against dracut 059's `dracut-getarg NAME=`
    /// (CMDLINE="TEXT"): `None` where it exits 1.
    #[test]
    fn getarg_table() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("quiet masterkey=/a", "masterkey", Some("/a")),
            ("masterkey=/a masterkey=/b", "masterkey", Some("/b")),
            // A bare name succeeds with nothing: the default.
            ("masterkey=/a masterkey", "masterkey", Some("")),
            ("masterkey", "masterkey", Some("")),
            ("masterkey masterkey=/a", "masterkey", Some("/a")),
            ("masterkey=", "masterkey", Some("")),
            ("masterkey=/a masterkey=", "masterkey", Some("")),
            ("masterkeytype=user", "masterkey", None),
            ("xmasterkey=/a", "masterkey", None),
            (
                "evmkey=\"/etc/my keys/evm.blob\"",
                "evmkey",
                Some("/etc/my keys/evm.blob"),
            ),
            ("\"evmkey=/q\" ro", "evmkey", Some("/q")),
            ("a=b=c", "a", Some("b=c")),
            ("  \n evmx509=/x.der\n", "evmx509", Some("/x.der")),
            ("", "evmkey", None),
            (
                "evmkey=\"unterminated value",
                "evmkey",
                Some("unterminated value"),
            ),
            // Quotes inside a value or a name stay.
            ("masterkey=\"/a\"b", "masterkey", Some("/a\"b")),
            ("masterkey=a\" \"b", "masterkey", Some("a\" \"b")),
            ("master\"key\"=/q", "masterkey", None),
            ("master\"key\"=/q", "master\"key\"", Some("/q")),
            ("\"masterkey\"=/q", "masterkey", None),
            ("\"masterkey\"", "masterkey", Some("")),
            ("\"masterkey", "masterkey", Some("")),
            ("\"masterkey=\"/q\"\"", "masterkey", Some("/q\"")),
            ("masterkey=\"", "masterkey", Some("")),
            ("a \"masterkey=/q", "masterkey", Some("/q")),
            ("masterkey=/a \"x", "masterkey", Some("/a")),
            // An `=` first in a word does not end its name.
            ("=x masterkey=/z", "masterkey", Some("/z")),
            ("=masterkey=/z", "masterkey", None),
            // Tabs, vertical tabs and the Latin-1 no-break space separate.
            ("ro\tmasterkey=/t\x0bquiet", "masterkey", Some("/t")),
        ];
        for (text, name, want) in cases {
            assert_eq!(Cmdline::parse(text).value(name), *want, "{text}");
        }
    }

    #[test]
    fn bytes_as_getarg_sees_them() {
        let c = Cmdline::parse_bytes(b"masterkey=/a\xa0evmkey=/e\0vm");
        assert_eq!(c.value("masterkey"), Some("/a"));
        assert_eq!(c.value("evmkey"), Some("/evm"));
    }

    /// dracut's own `getcmdline`, its paths moved under `base`; `None`
    /// where dracut is not installed.
    fn dracut_getcmdline(base: &std::path::Path) -> Option<Vec<u8>> {
        let lib = std::fs::read_to_string("/usr/lib/dracut/modules.d/99base/dracut-lib.sh").ok()?;
        let start = lib.find("getcmdline() {")?;
        let body = lib.get(start..)?;
        let end = body.find("\n}\n")? + 3;
        let b = base.display().to_string();
        let func = body
            .get(..end)?
            .replace("/etc/cmdline", &format!("{b}/etc/cmdline"))
            .replace("/proc/cmdline", &format!("{b}/proc/cmdline"));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{func}\ngetcmdline"))
            .output()
            .ok()?;
        Some(out.stdout)
    }

    #[test]
    fn dracut_text_is_what_getcmdline_prints() {
        let cases: &[&[(&str, &[u8])]] = &[
            &[],
            &[("proc/cmdline", b"ro quiet masterkey=/a\n")],
            &[
                ("etc/cmdline.d/b.conf", b"  evmkey=/b \t\nx=\"1   2\"\n\n"),
                ("etc/cmdline.d/a.conf", b"masterkey=/from-d"),
                ("etc/cmdline.d/c.txt", b"ignored=1\n"),
                ("etc/cmdline.d/d.conf", b" \t "),
                ("etc/cmdline", b"a\\b \"q\n w\"\r\n\0z\n"),
                ("proc/cmdline", b"ro masterkey=/p\n"),
            ],
            &[("etc/cmdline", b"only\n  \n"), ("proc/cmdline", b"")],
        ];
        for files in cases {
            let base = crate::test_support::temp_dir("cmdline");
            for (path, bytes) in *files {
                let path = base.join(path);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, bytes).unwrap();
            }
            std::fs::create_dir_all(base.join("etc/cmdline.d/dir.conf")).unwrap();
            let ours = dracut_text(&base);
            if let Some(theirs) = dracut_getcmdline(&base) {
                assert_eq!(
                    String::from_utf8_lossy(&ours),
                    String::from_utf8_lossy(&theirs),
                    "{files:?}"
                );
            }
            std::fs::remove_dir_all(&base).unwrap();
        }
        // Without dracut installed, what its loops give by hand.
        let base = crate::test_support::temp_dir("cmdline");
        std::fs::create_dir_all(base.join("etc/cmdline.d")).unwrap();
        std::fs::create_dir_all(base.join("proc")).unwrap();
        std::fs::write(base.join("etc/cmdline.d/1.conf"), " a=1 \nb").unwrap();
        std::fs::write(base.join("proc/cmdline"), "ro\n").unwrap();
        assert_eq!(dracut_text(&base), b" a=1 b   ro");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn getargbool_table() {
        let cases: &[(&str, bool)] = &[
            ("", false),
            ("rd.debug", true),
            ("rd.debug=1", true),
            ("rd.debug=", true),
            ("rd.debug=0", false),
            ("rd.debug=no", false),
            ("rd.debug=off", false),
            ("rd.debug=false", true),
            ("rd.debug rd.debug=0", false),
            ("rd.debug=0 rd.debug", true),
            ("rd.debugx", false),
        ];
        for (text, want) in cases {
            assert_eq!(Cmdline::parse(text).flag("rd.debug"), *want, "{text}");
        }
    }
}
