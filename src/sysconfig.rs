//! The shell-variable subset used by dracut's /etc/sysconfig files and by our
//! native config: `NAME=value` lines, quotes, comments. Parsed as data: dracut
//! sources these files with a shell, we never run one, so anything that would
//! need a shell to evaluate (expansions, command substitution, several words)
//! is an error naming the line and column rather than a silent guess.

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
pub struct Assignments(Vec<Assignment>);

impl Assignments {
    /// The value of the last assignment to `name`, with its line.
    pub fn get(&self, name: &str) -> Option<&Assignment> {
        self.0.iter().rev().find(|a| a.name == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Assignment> {
        self.0.iter()
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
            SyntaxErrorKind::ExpectedAssignment => {
                write!(f, "expected NAME=value, a comment or an empty line")
            }
            SyntaxErrorKind::BadName => write!(
                f,
                "variable name must be letters, digits and _ and not start with a digit"
            ),
            SyntaxErrorKind::Expansion => write!(
                f,
                "shell expansion ($ or `) is not supported: this file is read as data, write the literal value"
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
        if let Some(assignment) = parse_line(text, line)? {
            out.push(assignment);
        }
    }
    Ok(Assignments(out))
}

fn parse_line(text: &str, line: usize) -> Result<Option<Assignment>, SyntaxError> {
    let err = |column: usize, kind| SyntaxError { line, column, kind };
    let body = text.trim_start_matches([' ', '\t']);
    let mut col = text.len() - body.len() + 1;
    if body.is_empty() || body.starts_with('#') {
        return Ok(None);
    }
    let mut rest = body;
    if let Some(after) = rest.strip_prefix("export")
        && after.starts_with([' ', '\t'])
    {
        let trimmed = after.trim_start_matches([' ', '\t']);
        col += rest.len() - trimmed.len();
        rest = trimmed;
    }
    let Some(eq) = rest.find('=') else {
        return Err(err(col, SyntaxErrorKind::ExpectedAssignment));
    };
    let name = &rest[..eq];
    if name.is_empty() || name.contains([' ', '\t']) {
        return Err(err(col, SyntaxErrorKind::ExpectedAssignment));
    }
    let valid_name = name
        .chars()
        .enumerate()
        .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
    if !valid_name {
        return Err(err(col, SyntaxErrorKind::BadName));
    }
    let value_start = col + eq + 1;
    let value = parse_value(&rest[eq + 1..], value_start, line)?;
    Ok(Some(Assignment {
        name: name.to_string(),
        value,
        line,
    }))
}

/// Parses one shell word made of unquoted, '…' and "…" segments, then allows
/// only blanks and a comment after it.
fn parse_value(text: &str, start_col: usize, line: usize) -> Result<String, SyntaxError> {
    let err = |offset: usize, kind| SyntaxError {
        line,
        column: start_col + offset,
        kind,
    };
    let mut value = String::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            ' ' | '\t' => {
                let rest = text[i..].trim_start_matches([' ', '\t']);
                if rest.is_empty() || rest.starts_with('#') {
                    return Ok(value);
                }
                return Err(err(text.len() - rest.len(), SyntaxErrorKind::ExtraWords));
            }
            '\'' => loop {
                match chars.next() {
                    Some((_, '\'')) => break,
                    Some((_, ch)) => value.push(ch),
                    None => return Err(err(i, SyntaxErrorKind::UnterminatedQuote)),
                }
            },
            '"' => loop {
                match chars.next() {
                    Some((_, '"')) => break,
                    Some((j, '$' | '`')) => return Err(err(j, SyntaxErrorKind::Expansion)),
                    Some((j, '\\')) => match chars.next() {
                        Some((_, ch @ ('"' | '\\' | '$' | '`'))) => value.push(ch),
                        Some((_, ch)) => {
                            value.push('\\');
                            value.push(ch);
                        }
                        None => return Err(err(j, SyntaxErrorKind::UnterminatedQuote)),
                    },
                    Some((_, ch)) => value.push(ch),
                    None => return Err(err(i, SyntaxErrorKind::UnterminatedQuote)),
                }
            },
            '\\' => match chars.next() {
                Some((_, ch)) => value.push(ch),
                None => return Err(err(i, SyntaxErrorKind::TrailingBackslash)),
            },
            '$' | '`' => return Err(err(i, SyntaxErrorKind::Expansion)),
            ';' | '&' | '|' | '<' | '>' | '(' | ')' => {
                return Err(err(i, SyntaxErrorKind::ShellSyntax(c)));
            }
            _ => value.push(c),
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
            (b"A=b;reboot", 1, 4, ShellSyntax(';')),
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
            "line 1, column 3: shell expansion ($ or `) is not supported: this file is read as data, write the literal value"
        );
    }
}
