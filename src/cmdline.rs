//! The kernel command line, read the way dracut's `getarg` reads it: the
//! last occurrence of an option wins, and a value may be double-quoted.

/// Options of the kernel command line, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cmdline {
    words: Vec<(String, Option<String>)>,
}

impl Cmdline {
    /// Splits the text like the kernel does: blanks separate words, double
    /// quotes protect blanks and are removed.
    pub fn parse(text: &str) -> Cmdline {
        let mut words = Vec::new();
        let mut current = String::new();
        let mut in_quote = false;
        let mut has_word = false;
        for c in text.chars() {
            match c {
                '"' => {
                    in_quote = !in_quote;
                    has_word = true;
                }
                c if c.is_whitespace() && !in_quote => {
                    if has_word {
                        words.push(split_word(&current));
                        current.clear();
                        has_word = false;
                    }
                }
                c => {
                    current.push(c);
                    has_word = true;
                }
            }
        }
        if has_word {
            words.push(split_word(&current));
        }
        Cmdline { words }
    }

    /// The value of the last `name=value`, as dracut's `getarg name=`.
    /// `Some("")` for `name=`; `None` when absent or given without `=`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.words
            .iter()
            .rev()
            .find(|(n, v)| n == name && v.is_some())
            .and_then(|(_, v)| v.as_deref())
    }

    /// A boolean option as dracut's `getargbool`: present alone or with a
    /// value other than 0/no/off means true. The last occurrence wins.
    pub fn flag(&self, name: &str) -> bool {
        match self.words.iter().rev().find(|(n, _)| n == name) {
            None => false,
            Some((_, None)) => true,
            Some((_, Some(v))) => !matches!(v.as_str(), "0" | "no" | "off" | "false"),
        }
    }
}

fn split_word(word: &str) -> (String, Option<String>) {
    match word.split_once('=') {
        Some((name, value)) => (name.to_string(), Some(value.to_string())),
        None => (word.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getarg_table() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("quiet masterkey=/a", "masterkey", Some("/a")),
            ("masterkey=/a masterkey=/b", "masterkey", Some("/b")),
            ("masterkey=/a masterkey", "masterkey", Some("/a")),
            ("masterkey=", "masterkey", Some("")),
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
        ];
        for (text, name, want) in cases {
            assert_eq!(Cmdline::parse(text).value(name), *want, "{text}");
        }
    }

    #[test]
    fn getargbool_table() {
        let cases: &[(&str, bool)] = &[
            ("", false),
            ("rd.debug", true),
            ("rd.debug=1", true),
            ("rd.debug=0", false),
            ("rd.debug=no", false),
            ("rd.debug rd.debug=0", false),
            ("rd.debug=0 rd.debug", true),
            ("rd.debugx", false),
        ];
        for (text, want) in cases {
            assert_eq!(Cmdline::parse(text).flag("rd.debug"), *want, "{text}");
        }
    }
}
