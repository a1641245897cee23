//! The exported form of a kernel `encrypted` key (what `keyctl pipe` of the
//! evm-key writes): `[format] <user:|trusted:>MASTER LEN HEX`. Checked here so
//! that a wrong or damaged blob gets a precise message instead of the
//! kernel's bare EINVAL, and so we know which master key it needs.

use std::fmt;

/// The kernel's limits on the decrypted length (encrypted.c).
const MIN_DATA_LEN: usize = 20;
const MAX_DATA_LEN: usize = 4096;
const IV_LEN: usize = 16;
const HMAC_LEN: usize = 32;
const AES_BLOCK: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterType {
    User,
    Trusted,
}

impl MasterType {
    pub fn key_type(self) -> &'static str {
        match self {
            MasterType::User => "user",
            MasterType::Trusted => "trusted",
        }
    }
}

/// The parsed header of an encrypted-key blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobHeader {
    pub format: String,
    pub master_type: MasterType,
    pub master_name: String,
    pub data_len: usize,
}

impl BlobHeader {
    /// `user:kmk-user`, as the kernel and keyctl write it.
    pub fn master(&self) -> String {
        format!("{}:{}", self.master_type.key_type(), self.master_name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobError {
    Empty,
    CarriageReturn,
    NotText,
    MultipleLines,
    MissingField(&'static str),
    BadMaster(String),
    BadLength(String),
    LengthOutOfRange(usize),
    FormatLength {
        format: String,
        required: usize,
        found: usize,
    },
    BadHex {
        position: usize,
    },
    HexLength {
        expected: usize,
        found: usize,
    },
    TrailingFields,
}

impl fmt::Display for BlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobError::Empty => write!(f, "the file is empty"),
            BlobError::CarriageReturn => write!(
                f,
                "carriage return (DOS line ending); convert the file with dos2unix"
            ),
            BlobError::NotText => write!(
                f,
                "not an exported encrypted key (binary data); export it with `keyctl pipe <id> > FILE`"
            ),
            BlobError::MultipleLines => {
                write!(
                    f,
                    "more than one line; an exported encrypted key is one line"
                )
            }
            BlobError::MissingField(what) => write!(
                f,
                "truncated: {what} is missing (expected `[format] user:NAME LEN HEX`)"
            ),
            BlobError::BadMaster(m) => {
                write!(f, "master key \"{m}\" must be user:NAME or trusted:NAME")
            }
            BlobError::BadLength(l) => write!(f, "key length \"{l}\" is not a decimal number"),
            BlobError::LengthOutOfRange(n) => write!(
                f,
                "key length {n} is outside {MIN_DATA_LEN}..{MAX_DATA_LEN}"
            ),
            BlobError::FormatLength {
                format,
                required,
                found,
            } => write!(
                f,
                "format {format} needs key length {required}, the blob says {found}"
            ),
            BlobError::BadHex { position } => {
                write!(
                    f,
                    "the hex data has a non-hex character at offset {position}"
                )
            }
            BlobError::HexLength { expected, found } => write!(
                f,
                "the hex data is {found} characters, a key of this length needs {expected} (truncated or damaged blob)"
            ),
            BlobError::TrailingFields => write!(f, "unexpected text after the hex data"),
        }
    }
}

impl std::error::Error for BlobError {}

/// A checked blob: its header and the text to put after `load `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub header: BlobHeader,
    pub text: String,
}

impl Blob {
    /// The `add_key` payload that loads this blob.
    pub fn load_payload(&self) -> Vec<u8> {
        format!("load {}", self.text).into_bytes()
    }
}

/// Parses a blob file. One trailing newline is allowed (editors add one).
pub fn parse(bytes: &[u8]) -> Result<Blob, BlobError> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if body.is_empty() {
        return Err(BlobError::Empty);
    }
    if body.contains(&b'\n') {
        return Err(BlobError::MultipleLines);
    }
    if body.contains(&b'\r') {
        return Err(BlobError::CarriageReturn);
    }
    if body
        .iter()
        .any(|b| !(b.is_ascii_graphic() || *b == b' ' || *b == b'\t'))
    {
        return Err(BlobError::NotText);
    }
    let text = std::str::from_utf8(body).map_err(|_| BlobError::NotText)?;
    let mut fields = text.split([' ', '\t']).filter(|f| !f.is_empty());
    let first = fields.next().ok_or(BlobError::Empty)?;
    let (format, master) = match first {
        "default" | "ecryptfs" | "enc32" => (
            first.to_string(),
            fields
                .next()
                .ok_or(BlobError::MissingField("the master key name"))?,
        ),
        _ => ("default".to_string(), first),
    };
    let (master_type, master_name) = match master.split_once(':') {
        Some(("user", name)) if !name.is_empty() => (MasterType::User, name),
        Some(("trusted", name)) if !name.is_empty() => (MasterType::Trusted, name),
        _ => return Err(BlobError::BadMaster(master.to_string())),
    };
    let len_text = fields
        .next()
        .ok_or(BlobError::MissingField("the key length"))?;
    if !len_text.bytes().all(|b| b.is_ascii_digit()) || len_text.len() > 5 {
        return Err(BlobError::BadLength(len_text.to_string()));
    }
    let data_len: usize = len_text
        .parse()
        .map_err(|_| BlobError::BadLength(len_text.to_string()))?;
    if !(MIN_DATA_LEN..=MAX_DATA_LEN).contains(&data_len) {
        return Err(BlobError::LengthOutOfRange(data_len));
    }
    let required = match format.as_str() {
        "ecryptfs" => Some(64),
        "enc32" => Some(32),
        _ => None,
    };
    if let Some(required) = required
        && data_len != required
    {
        return Err(BlobError::FormatLength {
            format,
            required,
            found: data_len,
        });
    }
    let hex = fields
        .next()
        .ok_or(BlobError::MissingField("the hex data"))?;
    if let Some(position) = hex.bytes().position(|b| !b.is_ascii_hexdigit()) {
        return Err(BlobError::BadHex { position });
    }
    let encrypted_len = data_len.div_ceil(AES_BLOCK) * AES_BLOCK;
    // IV, one separator byte the kernel keeps after it, data, HMAC.
    let expected = 2 * (IV_LEN + 1 + encrypted_len + HMAC_LEN);
    if hex.len() != expected {
        return Err(BlobError::HexLength {
            expected,
            found: hex.len(),
        });
    }
    if fields.next().is_some() {
        return Err(BlobError::TrailingFields);
    }
    Ok(Blob {
        header: BlobHeader {
            format,
            master_type,
            master_name: master_name.to_string(),
            data_len,
        },
        text: text.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(n: usize) -> String {
        "ab".repeat(n)
    }

    #[test]
    fn accepts_kernel_exports() {
        let b = parse(format!("default user:kmk-user 32 {}", hex(81)).as_bytes()).unwrap();
        assert_eq!(b.header.master(), "user:kmk-user");
        assert_eq!(b.header.data_len, 32);
        let b = parse(format!("user:kmk 64 {}\n", hex(113)).as_bytes()).unwrap();
        assert_eq!(
            (b.header.format.as_str(), b.header.master_type),
            ("default", MasterType::User)
        );
        let b = parse(format!("enc32 trusted:kmk-trusted 32 {}", hex(81)).as_bytes()).unwrap();
        assert_eq!(b.header.master(), "trusted:kmk-trusted");
        assert!(
            b.load_payload()
                .starts_with(b"load enc32 trusted:kmk-trusted 32 abab")
        );
    }

    #[test]
    fn rejects_damage() {
        let cases: Vec<(Vec<u8>, BlobError)> = vec![
            (b"".to_vec(), BlobError::Empty),
            (b"\n".to_vec(), BlobError::Empty),
            (b"\x00\x01binary".to_vec(), BlobError::NotText),
            (
                b"default user:kmk 32 ab\nmore".to_vec(),
                BlobError::MultipleLines,
            ),
            (
                b"default".to_vec(),
                BlobError::MissingField("the master key name"),
            ),
            (
                b"default kmk 32 ab".to_vec(),
                BlobError::BadMaster("kmk".into()),
            ),
            (
                b"default logon:kmk 32 ab".to_vec(),
                BlobError::BadMaster("logon:kmk".into()),
            ),
            (
                b"default user: 32 ab".to_vec(),
                BlobError::BadMaster("user:".into()),
            ),
            (
                b"default user:kmk".to_vec(),
                BlobError::MissingField("the key length"),
            ),
            (
                b"default user:kmk 0x20 ab".to_vec(),
                BlobError::BadLength("0x20".into()),
            ),
            (
                b"default user:kmk 19 ab".to_vec(),
                BlobError::LengthOutOfRange(19),
            ),
            (
                b"default user:kmk 4097 ab".to_vec(),
                BlobError::LengthOutOfRange(4097),
            ),
            (
                b"ecryptfs user:kmk 32 ab".to_vec(),
                BlobError::FormatLength {
                    format: "ecryptfs".into(),
                    required: 64,
                    found: 32,
                },
            ),
            (
                b"default user:kmk 32".to_vec(),
                BlobError::MissingField("the hex data"),
            ),
            (
                b"default user:kmk 32 abzz".to_vec(),
                BlobError::BadHex { position: 2 },
            ),
            (
                format!("default user:kmk 32 {}", hex(80)).into_bytes(),
                BlobError::HexLength {
                    expected: 162,
                    found: 160,
                },
            ),
            (
                format!("default user:kmk 32 {}a", hex(80)).into_bytes(),
                BlobError::HexLength {
                    expected: 162,
                    found: 161,
                },
            ),
            (
                format!("default user:kmk 32 {} extra", hex(81)).into_bytes(),
                BlobError::TrailingFields,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse(&input).unwrap_err(),
                want,
                "{}",
                String::from_utf8_lossy(&input)
            );
        }
    }
}
