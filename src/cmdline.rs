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
