//! Signed PCR policies on disk: systemd's `.pcrsig` JSON, as
//! `systemd-measure sign` writes it into a UKI and as `integrity-loader
//! sign-policy` writes it beside the sealed kmk:
//!
//! ```text
//! {"sha256":[{"pcrs":[7,11],"pkfp":"<hex>","pol":"<hex>","sig":"<base64>"}, ...]}
//! ```
//!
//! `pcrs` the PCRs of the PolicyPCR, `pkfp` SHA-256 of the signing public
//! key's DER (SubjectPublicKeyInfo), `pol` the PolicyPCR digest that is
//! signed, `sig` the signature over SHA-256(pol): ECDSA as DER, RSA as
//! PKCS#1 v1.5. Only the sha256 bank is read; other banks and unknown keys
//! are ignored. The parser is a small bounded JSON reader: the file comes
//! from the root and is hostile until the TPM has checked its signature.

use super::pcr::{PCR_COUNT, PcrSelection};
use std::fmt;

/// The bank whose entries we use: the sealing policy is SHA-256.
pub const BANK: &str = "sha256";
/// Deeper nesting than any .pcrsig has is refused rather than followed.
const MAX_DEPTH: usize = 8;

/// One signed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub pcrs: PcrSelection,
    /// SHA-256 of the public key's DER; systemd always writes it.
    pub pkfp: Option<[u8; 32]>,
    /// The PolicyPCR digest signed (approvedPolicy).
    pub pol: [u8; 32],
    pub sig: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrsigError {
    /// Byte offset in the file.
    pub at: usize,
    pub why: String,
}

impl fmt::Display for PcrsigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not a .pcrsig file (byte {}): {}; expected systemd's format {{\"sha256\":[{{\"pcrs\":[N,...],\"pkfp\":HEX,\"pol\":HEX,\"sig\":BASE64}}]}}, as `integrity-loader sign-policy` or `systemd-measure sign` write it",
            self.at, self.why
        )
    }
}

impl std::error::Error for PcrsigError {}

/// A JSON value; numbers kept as their text.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Bool,
    Number(String),
    Str(String),
    Array(Vec<(usize, Value)>),
    Object(Vec<(String, usize, Value)>),
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn err<T>(&self, why: impl Into<String>) -> Result<T, PcrsigError> {
        Err(PcrsigError {
            at: self.i,
            why: why.into(),
        })
    }

    fn ws(&mut self) {
        while self
            .s
            .get(self.i)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn expect(&mut self, b: u8) -> Result<(), PcrsigError> {
        self.ws();
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            self.err(format!("expected '{}'", char::from(b)))
        }
    }

    fn literal(&mut self, word: &str) -> Result<(), PcrsigError> {
        if self.s.get(self.i..self.i + word.len()) == Some(word.as_bytes()) {
            self.i += word.len();
            Ok(())
        } else {
            self.err("unknown literal")
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, PcrsigError> {
        if depth > MAX_DEPTH {
            return self.err("nested too deeply");
        }
        self.ws();
        match self.peek() {
            Some(b'{') => {
                self.i += 1;
                let mut members = Vec::new();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Ok(Value::Object(members));
                }
                loop {
                    self.ws();
                    let key = self.string()?;
                    self.expect(b':')?;
                    self.ws();
                    let at = self.i;
                    let v = self.value(depth + 1)?;
                    members.push((key, at, v));
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Value::Object(members));
                        }
                        _ => return self.err("expected ',' or '}'"),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(Value::Array(items));
                }
                loop {
                    self.ws();
                    let at = self.i;
                    items.push((at, self.value(depth + 1)?));
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Value::Array(items));
                        }
                        _ => return self.err("expected ',' or ']'"),
                    }
                }
            }
            Some(b'"') => self.string().map(Value::Str),
            Some(b't') => self.literal("true").map(|()| Value::Bool),
            Some(b'f') => self.literal("false").map(|()| Value::Bool),
            Some(b'n') => self.literal("null").map(|()| Value::Null),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.i;
                while self
                    .peek()
                    .is_some_and(|b| matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
                {
                    self.i += 1;
                }
                let text = self.s.get(start..self.i).unwrap_or_default();
                Ok(Value::Number(String::from_utf8_lossy(text).into_owned()))
            }
            _ => self.err("expected a value"),
        }
    }

    /// A string; escapes are decoded, `\u` ones only where they are ASCII
    /// (no field we read needs more), others refused.
    fn string(&mut self) -> Result<String, PcrsigError> {
        if self.peek() != Some(b'"') {
            return self.err("expected a string");
        }
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return self.err("unterminated string");
            };
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(e) = self.peek() else {
                        return self.err("unterminated string");
                    };
                    self.i += 1;
                    out.push(match e {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 8,
                        b'f' => 12,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            let code = self
                                .s
                                .get(self.i..self.i + 4)
                                .and_then(|h| std::str::from_utf8(h).ok())
                                .and_then(|h| u16::from_str_radix(h, 16).ok())
                                .and_then(|c| u8::try_from(c).ok())
                                .filter(u8::is_ascii);
                            let Some(c) = code else {
                                return self.err("unsupported \\u escape");
                            };
                            self.i += 4;
                            c
                        }
                        _ => return self.err("bad escape"),
                    });
                }
                0..=0x1f => return self.err("control character in a string"),
                _ => out.push(b),
            }
        }
        String::from_utf8(out).or_else(|_| self.err("string is not UTF-8"))
    }
}

fn field_error(at: usize, why: impl Into<String>) -> PcrsigError {
    PcrsigError {
        at,
        why: why.into(),
    }
}

fn hex32(at: usize, v: &Value, what: &str) -> Result<[u8; 32], PcrsigError> {
    match v {
        Value::Str(s) => crate::hex::decode::<32>(s)
            .map_err(|_| field_error(at, format!("\"{what}\" is not 64 hex digits"))),
        _ => Err(field_error(at, format!("\"{what}\" is not a string"))),
    }
}

fn entry(at: usize, v: &Value) -> Result<Entry, PcrsigError> {
    let Value::Object(members) = v else {
        return Err(field_error(at, "an entry is not an object"));
    };
    let get = |name: &str| members.iter().find(|(k, _, _)| k == name);
    let (pcrs_at, pcrs) = match get("pcrs") {
        Some((_, a, Value::Array(items))) => {
            let mut pcrs = Vec::new();
            for (i_at, item) in items {
                let n = match item {
                    Value::Number(t) => t.parse::<u8>().ok().filter(|n| *n < PCR_COUNT),
                    _ => None,
                };
                pcrs.push(n.ok_or_else(|| field_error(*i_at, "a PCR is not a number 0..23"))?);
            }
            (*a, pcrs)
        }
        Some((_, a, _)) => return Err(field_error(*a, "\"pcrs\" is not an array")),
        None => return Err(field_error(at, "an entry has no \"pcrs\"")),
    };
    let pcrs = PcrSelection::from_indices(&pcrs)
        .ok_or_else(|| field_error(pcrs_at, "\"pcrs\" is empty"))?;
    let pkfp = match get("pkfp") {
        Some((_, a, v)) => Some(hex32(*a, v, "pkfp")?),
        None => None,
    };
    let pol = match get("pol") {
        Some((_, a, v)) => hex32(*a, v, "pol")?,
        None => return Err(field_error(at, "an entry has no \"pol\"")),
    };
    let sig = match get("sig") {
        Some((_, a, Value::Str(s))) => crate::base64::decode(s.as_bytes())
            .ok()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| field_error(*a, "\"sig\" is not base64"))?,
        Some((_, a, _)) => return Err(field_error(*a, "\"sig\" is not a string")),
        None => return Err(field_error(at, "an entry has no \"sig\"")),
    };
    Ok(Entry {
        pcrs,
        pkfp,
        pol,
        sig,
    })
}

/// The sha256 entries of a .pcrsig file (none when it has no sha256 bank).
pub fn parse(bytes: &[u8]) -> Result<Vec<Entry>, PcrsigError> {
    let mut p = Parser { s: bytes, i: 0 };
    let top = p.value(0)?;
    p.ws();
    if p.i != bytes.len() {
        return p.err("trailing bytes after the JSON object");
    }
    let Value::Object(banks) = top else {
        return Err(field_error(0, "the top level is not an object"));
    };
    let mut out = Vec::new();
    for (name, at, v) in &banks {
        if name != BANK {
            continue;
        }
        let Value::Array(items) = v else {
            return Err(field_error(*at, "\"sha256\" is not an array"));
        };
        for (i_at, item) in items {
            out.push(entry(*i_at, item)?);
        }
    }
    Ok(out)
}

/// The file for `entries`, in systemd's layout (one line).
pub fn encode(entries: &[Entry]) -> String {
    let items: Vec<String> = entries
        .iter()
        .map(|e| {
            let pcrs: Vec<String> = e.pcrs.indices().map(|p| p.to_string()).collect();
            let pkfp = e
                .pkfp
                .map(|f| format!("\"pkfp\":\"{}\",", crate::hex::encode(&f)))
                .unwrap_or_default();
            format!(
                "{{\"pcrs\":[{}],{pkfp}\"pol\":\"{}\",\"sig\":\"{}\"}}",
                pcrs.join(","),
                crate::hex::encode(&e.pol),
                crate::base64::encode(&e.sig)
            )
        })
        .collect();
    format!("{{\"{BANK}\":[{}]}}\n", items.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_systemd_measure_writes() {
        // The shape of a UKI's .pcrsig (systemd issue 40245), sha1 bank
        // ignored, sha256 read; whitespace as `--json=pretty` leaves it.
        let pol = "265bfca5096406428767dc042c29efada44531215eeab0c272e6465195d77888";
        let text = format!(
            "{{\"sha1\": [{{\"pcrs\": [11], \"pol\": \"{pol}\", \"sig\": \"AAEC\"}}],\n \"sha256\" : [ {{ \"pcrs\" : [ 11 ], \"pkfp\" : \"{}\", \"pol\" : \"{pol}\", \"sig\" : \"AQID\", \"extra\": {{\"a\": [null, true, 1.5e3]}} }} ] }}\n",
            "76".repeat(32)
        );
        let e = parse(text.as_bytes()).unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].pcrs.to_string(), "sha256:11");
        assert_eq!(e[0].pkfp, Some([0x76; 32]));
        assert_eq!(crate::hex::encode(&e[0].pol), pol);
        assert_eq!(e[0].sig, vec![1, 2, 3]);
        assert_eq!(parse(encode(&e).as_bytes()).unwrap(), e);
        assert_eq!(parse(b"{\"sha1\":[]}").unwrap(), vec![]);
    }

    #[test]
    fn hostile_files_are_errors() {
        let good = encode(&[Entry {
            pcrs: PcrSelection::parse("sha256:7,11").unwrap(),
            pkfp: None,
            pol: [1; 32],
            sig: vec![9; 70],
        }]);
        for n in 0..good.len() - 1 {
            assert!(parse(&good.as_bytes()[..n]).is_err(), "prefix {n}");
        }
        for bad in [
            "[]",
            "{\"sha256\":{}}",
            "{\"sha256\":[1]}",
            "{\"sha256\":[{\"pcrs\":[24],\"pol\":\"\",\"sig\":\"AA==\"}]}",
            "{\"sha256\":[{\"pcrs\":[],\"pol\":\"\",\"sig\":\"AA==\"}]}",
            "{\"sha256\":[{\"pcrs\":[7],\"pol\":\"00\",\"sig\":\"AA==\"}]}",
            "{} x",
            "{\"a\":\"\\u0100\"}",
            "{\"a\":\"\u{1}\"}",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100), "]".repeat(100));
        assert!(parse(deep.as_bytes()).unwrap_err().why.contains("deeply"));
        let e = parse(b"{\"sha256\":[{\"pcrs\":[7]}]}").unwrap_err();
        assert!(e.to_string().contains("no \"pol\""), "{e}");
    }
}
