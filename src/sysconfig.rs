//! The shell-variable subset used by dracut's /etc/sysconfig files and by our
//! native config: assignments (several in one command, commands separated by
//! `;`), `export` and `unset` of names, quotes, comments. Parsed as data:
//! dracut sources these files with a shell, we never run one, so anything
//! that would need a shell to evaluate (expansions, command substitution,
//! other commands) is an error naming the line and column rather than a
//! silent guess.

use std::fmt;

/// One `NAME=value` assignment and the line it came from (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub name: String,
    pub value: String,
    pub line: usize,
}

/// All assignments of one file, in file order. Later ones win, as in a shell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignments(Vec<Assignment>, Vec<usize>);

impl Assignments {
    /// The value of the last assignment to `name`, with its line.
    pub fn get(&self, name: &str) -> Option<&Assignment> {
        self.0.iter().rev().find(|a| a.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Assignment> {
        self.0.iter()
    }

    /// The first line that sets or unsets more than one variable
    /// (`A=1; B=2`, `export A=1 B=2`): files rewritten line by line want
    /// one per line.
    pub fn first_crowded_line(&self) -> Option<usize> {
        self.1.first().copied()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyntaxErrorKind {
    NulByte,
    CarriageReturn,
    NotUtf8,
    ExpectedAssignment,
    BadName,
    Expansion,
    UnterminatedQuote,
    ExtraWords,
    ShellSyntax(char),
    TrailingBackslash,
    /// `export A=*`: the shell may expand the pattern.
    Pattern,
    ExportArgument,
    UnsetArgument,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub kind: SyntaxErrorKind,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.kind
        )
    }
}

impl fmt::Display for SyntaxErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyntaxErrorKind::NulByte => write!(f, "NUL byte in a text file"),
            SyntaxErrorKind::CarriageReturn => write!(
                f,
                "carriage return (DOS line ending); convert the file with dos2unix"
            ),
            SyntaxErrorKind::NotUtf8 => write!(f, "line is not valid UTF-8"),
            SyntaxErrorKind::ExpectedAssignment => write!(
                f,
                "expected NAME=value, export NAME, unset NAME, a comment or an empty line (this file is read as data, not run)"
            ),
            SyntaxErrorKind::BadName => write!(
                f,
                "variable name must be letters, digits and _ and not start with a digit"
            ),
            SyntaxErrorKind::Expansion => write!(
                f,
                "shell expansion ($, ` or ~) is not supported: this file is read as data, write the literal value"
            ),
            SyntaxErrorKind::UnterminatedQuote => {
                write!(f, "unterminated quote (values cannot span lines)")
            }
            SyntaxErrorKind::ExtraWords => write!(
                f,
                "unquoted space in the value: quote it, e.g. NAME=\"a b\""
            ),
            SyntaxErrorKind::ShellSyntax(c) => {
                write!(f, "shell syntax '{c}' is not supported: quote the value")
            }
            SyntaxErrorKind::Pattern => write!(
                f,
                "unquoted *, ? or [ in an export argument: the shell may expand it, quote the value"
            ),
            SyntaxErrorKind::ExportArgument => {
                write!(f, "export takes NAME or NAME=value words only")
            }
            SyntaxErrorKind::UnsetArgument => write!(f, "unset takes variable names only"),
            SyntaxErrorKind::TrailingBackslash => {
                write!(
                    f,
                    "backslash at end of line (continuation lines are not supported)"
                )
            }
        }
    }
}

impl std::error::Error for SyntaxError {}

/// Parses a whole file.
pub fn parse(bytes: &[u8]) -> Result<Assignments, SyntaxError> {
    let mut out = Vec::new();
    let mut crowded = Vec::new();
    for (index, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = index + 1;
        if let Some(pos) = raw.iter().position(|b| *b == 0) {
            return Err(SyntaxError {
                line,
                column: pos + 1,
                kind: SyntaxErrorKind::NulByte,
            });
        }
        if let Some(pos) = raw.iter().position(|b| *b == b'\r') {
            return Err(SyntaxError {
                line,
                column: pos + 1,
                kind: SyntaxErrorKind::CarriageReturn,
            });
        }
        let text = std::str::from_utf8(raw).map_err(|e| SyntaxError {
            line,
            column: e.valid_up_to() + 1,
            kind: SyntaxErrorKind::NotUtf8,
        })?;
        if parse_line(text, line, &mut out)? > 1 {
            crowded.push(line);
        }
    }
    Ok(Assignments(out, crowded))
}

/// One shell word of a line: where it starts (0-based byte offset) and
/// what it is.
struct Word {
    start: usize,
    kind: WordKind,
}

enum WordKind {
    /// `NAME=value`, the name unquoted.
    Assignment {
        name: String,
        value: String,
        /// An unquoted `*`, `?` or `[` in the value.
        pattern: bool,
    },
    /// Any other word, unquoted; `literal` when no quote or backslash was
    /// in it (a shell keyword or builtin name must be written so).
    Other {
        text: String,
        literal: bool,
        /// An unquoted `=` follows a name that is not a variable name.
        bad_name: bool,
    },
}

fn is_name(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Parses one line: commands separated by `;`, each a list of assignments,
/// `export` with names or assignments, or `unset` with names. What only a
/// shell could evaluate (expansions, other commands) is an error. Returns
/// how many variables the line sets or unsets.
fn parse_line(text: &str, line: usize, out: &mut Vec<Assignment>) -> Result<usize, SyntaxError> {
    let err = |offset: usize, kind| SyntaxError {
        line,
        column: offset + 1,
        kind,
    };
    let bytes = text.as_bytes();
    let mut pos = 0;
    let mut words: Vec<Word> = Vec::new();
    let mut effects = 0;
    loop {
        while matches!(bytes.get(pos), Some(b' ' | b'\t')) {
            pos += 1;
        }
        match bytes.get(pos) {
            None | Some(b'#') => {
                return Ok(effects + command(&words, line, out)?);
            }
            Some(b';') => {
                // `A=1;` ends a command; an empty command is a shell error.
                if words.is_empty() {
                    return Err(err(pos, SyntaxErrorKind::ShellSyntax(';')));
                }
                effects += command(&words, line, out)?;
                words.clear();
                pos += 1;
            }
            Some(_) => {
                let (word, end) = parse_word(text, pos, line)?;
                words.push(word);
                pos = end;
            }
        }
    }
}

/// Applies one command's words to `out`; returns how many variables it
/// sets or unsets.
fn command(words: &[Word], line: usize, out: &mut Vec<Assignment>) -> Result<usize, SyntaxError> {
    let err = |word: &Word, kind| SyntaxError {
        line,
        column: word.start + 1,
        kind,
    };
    let Some((first, args)) = words.split_first() else {
        return Ok(0);
    };
    let builtin = match &first.kind {
        WordKind::Other {
            text,
            literal: true,
            ..
        } if text == "export" || text == "unset" => text.as_str(),
        WordKind::Other { bad_name: true, .. } => {
            return Err(err(first, SyntaxErrorKind::BadName));
        }
        WordKind::Other { .. } => return Err(err(first, SyntaxErrorKind::ExpectedAssignment)),
        WordKind::Assignment { .. } => "",
    };
    let mut unset_options = builtin == "unset";
    let mut effects = 0;
    for word in if builtin.is_empty() { words } else { args } {
        match (&word.kind, builtin) {
            (WordKind::Assignment { pattern: true, .. }, "export") => {
                return Err(err(word, SyntaxErrorKind::Pattern));
            }
            (WordKind::Assignment { name, value, .. }, "" | "export") => {
                effects += 1;
                out.push(Assignment {
                    name: name.clone(),
                    value: value.clone(),
                    line,
                });
            }
            // `export NAME` exports, `unset NAME` removes: the default applies.
            (WordKind::Other { text, .. }, "export") if is_name(text) => {}
            (WordKind::Other { text, .. }, "unset") if unset_options && text == "-v" => {
                unset_options = false;
            }
            (WordKind::Other { text, .. }, "unset") if is_name(text) => {
                unset_options = false;
                effects += 1;
                out.retain(|a| a.name != *text);
            }
            (_, "") => return Err(err(word, SyntaxErrorKind::ExtraWords)),
            (_, "export") => return Err(err(word, SyntaxErrorKind::ExportArgument)),
            _ => return Err(err(word, SyntaxErrorKind::UnsetArgument)),
        }
    }
    Ok(effects)
}

/// Parses the word at `start` (not a blank): `NAME=value` or another word.
/// Returns it and the offset after it.
fn parse_word(text: &str, start: usize, line: usize) -> Result<(Word, usize), SyntaxError> {
    let rest = text.get(start..).unwrap_or_default();
    let name_len = rest
        .find(|c: char| !(c == '_' || c.is_ascii_alphanumeric()))
        .unwrap_or(rest.len());
    let name = rest.get(..name_len).unwrap_or_default();
    if rest.get(name_len..).is_some_and(|r| r.starts_with('=')) && is_name(name) {
        let value = parse_value(text, start + name_len + 1, line, true)?;
        let word = Word {
            start,
            kind: WordKind::Assignment {
                name: name.to_string(),
                value: value.text,
                pattern: value.pattern,
            },
        };
        return Ok((word, value.end));
    }
    let value = parse_value(text, start, line, false)?;
    let bad_name = !value.quoted
        && text
            .get(start..value.end)
            .is_some_and(|w| w.find('=').is_some_and(|eq| eq > 0));
    let word = Word {
        start,
        kind: WordKind::Other {
            text: value.text,
            literal: !value.quoted,
            bad_name,
        },
    };
    Ok((word, value.end))
}

struct Value {
    text: String,
    /// Offset after the word.
    end: usize,
    /// A quote or backslash was in it.
    quoted: bool,
    /// An unquoted `*`, `?` or `[`.
    pattern: bool,
}

/// Parses one shell word made of unquoted, '…' and "…" segments, from
/// `start` to the next unquoted blank, `;` or the end of the line.
/// `assignment`: the word is a value after `NAME=`, where `~` expands after
/// an unquoted `:` too.
fn parse_value(
    text: &str,
    start: usize,
    line: usize,
    assignment: bool,
) -> Result<Value, SyntaxError> {
    let err = |offset: usize, kind| SyntaxError {
        line,
        column: offset + 1,
        kind,
    };
    let mut value = Value {
        text: String::new(),
        end: text.len(),
        quoted: false,
        pattern: false,
    };
    let mut chars = text
        .get(start..)
        .unwrap_or_default()
        .char_indices()
        .map(|(i, c)| (start + i, c))
        .peekable();
    // Where an unquoted `~` would be a tilde expansion.
    let mut tilde_here = true;
    while let Some((i, c)) = chars.next() {
        let tilde = std::mem::replace(&mut tilde_here, assignment && c == ':');
        match c {
            ' ' | '\t' | ';' => {
                value.end = i;
                return Ok(value);
            }
            '~' if tilde => return Err(err(i, SyntaxErrorKind::Expansion)),
            '\'' => {
                value.quoted = true;
                loop {
                    match chars.next() {
                        Some((_, '\'')) => break,
                        Some((_, ch)) => value.text.push(ch),
                        None => return Err(err(i, SyntaxErrorKind::UnterminatedQuote)),
                    }
                }
            }
            '"' => {
                value.quoted = true;
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((j, '$' | '`')) => return Err(err(j, SyntaxErrorKind::Expansion)),
                        Some((j, '\\')) => match chars.next() {
                            Some((_, ch @ ('"' | '\\' | '$' | '`'))) => value.text.push(ch),
                            Some((_, ch)) => {
                                value.text.push('\\');
                                value.text.push(ch);
                            }
                            None => return Err(err(j, SyntaxErrorKind::UnterminatedQuote)),
                        },
                        Some((_, ch)) => value.text.push(ch),
                        None => return Err(err(i, SyntaxErrorKind::UnterminatedQuote)),
                    }
                }
            }
            '\\' => {
                value.quoted = true;
                match chars.next() {
                    Some((_, ch)) => value.text.push(ch),
                    None => return Err(err(i, SyntaxErrorKind::TrailingBackslash)),
                }
            }
            '$' | '`' => return Err(err(i, SyntaxErrorKind::Expansion)),
            '&' | '|' | '<' | '>' | '(' | ')' => {
                return Err(err(i, SyntaxErrorKind::ShellSyntax(c)));
            }
            '*' | '?' | '[' => {
                value.pattern = true;
                value.text.push(c);
            }
            _ => value.text.push(c),
        }
    }
    Ok(value)
}

/// A value as the file's syntax reads it back unchanged: bare when plain,
/// else in single quotes, or double quotes when it holds a single quote.
pub fn quote(value: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._:,@+=-%".contains(c);
    if !value.is_empty() && value.chars().all(plain) {
        value.to_string()
    } else if !value.contains('\'') {
        format!("'{value}'")
    } else {
        let mut q = String::from("\"");
        for c in value.chars() {
            if matches!(c, '"' | '\\' | '$' | '`') {
                q.push('\\');
            }
            q.push(c);
        }
        q.push('"');
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> (String, String) {
        let parsed = parse(text.as_bytes()).unwrap();
        let a = parsed.iter().next().unwrap();
        (a.name.clone(), a.value.clone())
    }

    #[test]
    fn accepted_forms() {
        let cases = [
            ("A=b", "A", "b"),
            ("A=", "A", ""),
            ("  A=/etc/keys/x", "A", "/etc/keys/x"),
            ("export A=1", "A", "1"),
            ("A='a b'", "A", "a b"),
            ("A=\"a b\"", "A", "a b"),
            ("A=\"q\\\"x\"", "A", "q\"x"),
            ("A=\"back\\\\slash\"", "A", "back\\slash"),
            ("A=a'b c'd", "A", "ab cd"),
            ("A=x # comment", "A", "x"),
            ("A=x\t", "A", "x"),
            ("A=a#b", "A", "a#b"),
            ("A=a\\ b", "A", "a b"),
            ("_X1=v", "_X1", "v"),
            ("A='$HOME'", "A", "$HOME"),
            ("MASTERKEYTYPE=\"user\"", "MASTERKEYTYPE", "user"),
        ];
        for (text, name, value) in cases {
            assert_eq!(one(text), (name.to_string(), value.to_string()), "{text}");
        }
    }

    /// Lines the shell takes as data, with what they leave set.
    #[test]
    fn several_assignments_export_and_unset() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("export A", &[]),
            ("export A B", &[]),
            ("export", &[]),
            ("A=1; B=2", &[("A", "1"), ("B", "2")]),
            ("A=1;B=2;", &[("A", "1"), ("B", "2")]),
            ("A=1 ; B=2 # c", &[("A", "1"), ("B", "2")]),
            ("A=1;# c", &[("A", "1")]),
            ("export A=1 B=2", &[("A", "1"), ("B", "2")]),
            ("export A B=\"x y\"", &[("B", "x y")]),
            ("A=1 B='2 3'", &[("A", "1"), ("B", "2 3")]),
            ("A=1\nunset A", &[]),
            ("A=1\nB=2\nunset -v A B\nB=3", &[("B", "3")]),
            ("A=1; unset A; A=2", &[("A", "2")]),
            ("unset X", &[]),
            ("A=*.der", &[("A", "*.der")]),
            ("A=x~", &[("A", "x~")]),
            ("A='~'", &[("A", "~")]),
            ("exportA=1", &[("exportA", "1")]),
            ("export=1", &[("export", "1")]),
        ];
        for (text, want) in cases {
            let parsed = parse(text.as_bytes()).unwrap();
            let got: Vec<(&str, &str)> = parsed
                .iter()
                .map(|a| (a.name.as_str(), a.value.as_str()))
                .collect();
            assert_eq!(got, *want, "{text}");
        }
    }

    #[test]
    fn crowded_lines() {
        let cases: &[(&str, Option<usize>)] = &[
            ("A=1\nB=2\nexport C\nunset D\n", None),
            ("A=1\nB=2; C=3\n", Some(2)),
            ("export A=1 B=2\n", Some(1)),
            ("A=1; unset A\n", Some(1)),
            ("unset A B\n", Some(1)),
            ("A=1;\n", None),
        ];
        for (text, want) in cases {
            let parsed = parse(text.as_bytes()).unwrap();
            assert_eq!(parsed.first_crowded_line(), *want, "{text}");
        }
    }

    #[test]
    fn comments_blank_lines_and_last_wins() {
        let parsed = parse(b"# c\n\nA=1\n  # indented\nA=2\nB=3\n").unwrap();
        let a = parsed.get("A").unwrap();
        assert_eq!((a.value.as_str(), a.line), ("2", 5));
        assert_eq!(parsed.get("B").unwrap().value, "3");
        assert!(parsed.get("C").is_none());
    }

    #[test]
    fn rejected_forms() {
        use SyntaxErrorKind::*;
        let cases: &[(&[u8], usize, usize, SyntaxErrorKind)] = &[
            (b"A=$B", 1, 3, Expansion),
            (b"A=\"${B}\"", 1, 4, Expansion),
            (b"A=`id`", 1, 3, Expansion),
            (b"A=$(id)", 1, 3, Expansion),
            (b"A=b c", 1, 5, ExtraWords),
            (b"A='b", 1, 3, UnterminatedQuote),
            (b"A=\"b", 1, 3, UnterminatedQuote),
            (b"\n\nnot an assignment", 3, 1, ExpectedAssignment),
            (b"A =b", 1, 1, ExpectedAssignment),
            (b"1A=b", 1, 1, BadName),
            (b"A-B=c", 1, 1, BadName),
            (b"A=b\r\n", 1, 4, CarriageReturn),
            (b"A=b\0", 1, 4, NulByte),
            (b"A=\xff", 1, 3, NotUtf8),
            (b"A=b;reboot", 1, 5, ExpectedAssignment),
            (b"A=b && B=c", 1, 5, ShellSyntax('&')),
            (b"; A=1", 1, 1, ShellSyntax(';')),
            (b"A=1;; B=2", 1, 5, ShellSyntax(';')),
            (b"A=~/x", 1, 3, Expansion),
            (b"A=/a:~/b", 1, 6, Expansion),
            (b"export A=1 B=$C", 1, 14, Expansion),
            (b"export A=*.der", 1, 8, Pattern),
            (b"export -p", 1, 8, ExportArgument),
            (b"export A-B", 1, 8, ExportArgument),
            (b"unset -f X", 1, 7, UnsetArgument),
            (b"unset X=1", 1, 7, UnsetArgument),
            (b"\"export\" A=1", 1, 1, ExpectedAssignment),
            (b"A=1 echo hi", 1, 5, ExtraWords),
            (b"echo hi", 1, 1, ExpectedAssignment),
            (b"A=b|c", 1, 4, ShellSyntax('|')),
            (b"A=b\\", 1, 4, TrailingBackslash),
            (b"A=1\nif true; then", 2, 1, ExpectedAssignment),
        ];
        for (text, line, column, kind) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(
                (e.line, e.column, &e.kind),
                (*line, *column, kind),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
    }

    #[test]
    fn message_is_readable() {
        let e = parse(b"A=$B").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 1, column 3: shell expansion ($, ` or ~) is not supported: this file is read as data, write the literal value"
        );
    }
}
