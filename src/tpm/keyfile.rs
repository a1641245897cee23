//! Sealed-object files: TSS2 key files (draft-bottomley-tpm2-keys, the format of the
//! kernel's trusted keys) and tpm2-tools' `.pub`/`.priv` pairs.
//!
//! ```text
//! TPMKey ::= SEQUENCE {
//!   type        OBJECT IDENTIFIER,                    -- .5 sealed data, .3 loadable key
//!   emptyAuth   [0] EXPLICIT BOOLEAN OPTIONAL,
//!   policy      [1] EXPLICIT SEQUENCE OF TPMPolicy OPTIONAL,
//!   secret      [2] EXPLICIT OCTET STRING OPTIONAL,   -- importable keys: rejected
//!   authPolicy  [3] EXPLICIT SEQUENCE OF TPMAuthPolicy OPTIONAL,  -- rejected
//!   description [4] EXPLICIT UTF8String OPTIONAL,
//!   rsaParent   [5] EXPLICIT BOOLEAN OPTIONAL,
//!   parent      INTEGER,
//!   pubkey      OCTET STRING,                         -- marshalled TPM2B_PUBLIC
//!   privkey     OCTET STRING }                        -- marshalled TPM2B_PRIVATE
//! TPMPolicy ::= SEQUENCE { commandCode   [0] EXPLICIT INTEGER,
//!                          commandPolicy [1] EXPLICIT OCTET STRING }
//! ```
//!
//! The reader is strict DER (definite, minimal lengths, each checked against the bytes
//! that remain; nothing after the outer SEQUENCE) but for one tolerance: any non-zero
//! BOOLEAN is TRUE, as `tpm2_encodeobject -p` (tpm2-tools 5.4) writes 0x01. It follows
//! the grammar and never recurses on the input, so nesting is bounded by the grammar.
//! tpm2-tools writes `.pub`/`.priv` as the bare marshalled TPM2B, with no header.

use super::constants::{self, ALG_KEYEDHASH, ALG_NULL, ALG_SHA256};
use super::wire::Reader;
use crate::pem::{self, Layout, PemError};
use std::fmt;

/// Parent of a tpm2-tools `.pub`/`.priv` pair unless configuration names another.
pub const DEFAULT_PARENT: u32 = 0x8100_0001;

const PEM_LABEL: &str = "TSS2 PRIVATE KEY";

const OID_SEALED_DATA: &str = "2.23.133.10.1.5";
const OID_LOADABLE_KEY: &str = "2.23.133.10.1.3";
/// DER content of 2.23.133.10.1.5.
const OID_SEALED_DATA_DER: [u8; 6] = [0x67, 0x81, 0x05, 0x0a, 0x01, 0x05];

const BOOLEAN: u8 = 0x01;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const OBJECT_ID: u8 = 0x06;
const UTF8_STRING: u8 = 0x0c;
const SEQUENCE: u8 = 0x30;
/// `[n] EXPLICIT`: context-specific, constructed.
const EXPLICIT: u8 = 0xa0;

const SHA256_LEN: usize = 32;

/// What the file's OID calls the object. `tpm2_encodeobject` calls every object a
/// loadable key; both hold sealed data here (the public area is checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// 2.23.133.10.1.5, what the kernel writes and reads.
    SealedData,
    /// 2.23.133.10.1.3, what `tpm2_encodeobject` writes.
    LoadableKey,
}

/// One `TPMPolicy`: a policy command code and its marshalled parameters
/// (TPM2_PolicyPCR: pcrDigest TPM2B, then TPML_PCR_SELECTION).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyCommand {
    pub command_code: u32,
    pub command_policy: Vec<u8>,
}

/// A sealed data object and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedBlob {
    /// Persistent handle (0x81......) or hierarchy (0x40......: primary from the H template).
    pub parent: u32,
    /// As the file says (FALSE when absent). `tpm2_encodeobject` of tpm2-tools 5.4 writes
    /// it inverted: FALSE for an object without an auth value, TRUE with `-p`.
    pub empty_auth: bool,
    /// Marshalled TPM2B_PUBLIC, with its u16 size.
    pub public: Vec<u8>,
    /// Marshalled TPM2B_PRIVATE, with its u16 size.
    pub private: Vec<u8>,
    /// `[1] policy`; empty when absent.
    pub policy: Vec<PolicyCommand>,
    pub description: Option<String>,
    pub oid: KeyType,
}

impl SealedBlob {
    /// The TPMT_PUBLIC inside `public`, without the size.
    pub fn public_area(&self) -> &[u8] {
        self.public.get(2..).unwrap_or_default()
    }

    /// TPMA_OBJECT (0 if `public` is not a TPMT_PUBLIC, which no parser here returns).
    pub fn object_attributes(&self) -> u32 {
        public_head(self.public_area()).map_or(0, |(attributes, _)| attributes)
    }

    /// The authPolicy digest the object is sealed to; `None` when it has none.
    pub fn auth_policy(&self) -> Option<&[u8]> {
        public_head(self.public_area())
            .map(|(_, policy)| policy)
            .filter(|p| !p.is_empty())
    }
}

/// objectAttributes and authPolicy of a TPMT_PUBLIC (type, nameAlg, attributes, policy).
fn public_head(area: &[u8]) -> Option<(u32, &[u8])> {
    let mut r = Reader::new(area);
    r.take(4).ok()?;
    let attributes = r.u32().ok()?;
    Some((attributes, r.tpm2b().ok()?))
}

/// Which optional fields the encoder writes besides emptyAuth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fields {
    /// None: the kernel parses only type, emptyAuth, parent, pubkey and privkey.
    Kernel,
    /// Also `[1] policy` and `[4] description` when the blob has them.
    All,
}

/// The blob an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blob {
    Pubkey,
    Privkey,
    PubFile,
    PrivFile,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFileError {
    /// Neither PEM nor DER: the first byte, `None` for an empty file.
    NotKeyFile(Option<u8>),
    PemLabel(String),
    /// A line (1-based) that is neither base64 nor the END line, or comes after it.
    PemLine(usize),
    PemNoEnd,
    Der {
        offset: usize,
        problem: DerProblem,
    },
    Trailing(usize),
    Oid(String),
    /// A context-tagged field this reader does not take: `[2]`, `[3]`, `[6]`...
    UnsupportedField(u8),
    FieldOrder(u8),
    RsaParent(u32),
    Parent(u32),
    Description,
    /// `size` is `None` when there are not even two bytes.
    NotTpm2b {
        blob: Blob,
        size: Option<u16>,
        follows: usize,
    },
    Public {
        blob: Blob,
        problem: PublicProblem,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DerProblem {
    Truncated {
        need: usize,
        have: usize,
    },
    Indefinite,
    HugeLength,
    NonMinimalLength(usize),
    Expected {
        what: &'static str,
        found: Option<u8>,
    },
    Integer(&'static str),
    Boolean(&'static str),
    Oid,
    Leftover {
        what: &'static str,
        count: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicProblem {
    /// Offset in the TPMT_PUBLIC of the field that runs past its end.
    Truncated(usize),
    Trailing(usize),
    Type(u16),
    NameAlg(u16),
    AuthPolicySize(usize),
    Scheme(u16),
}

fn alg_name(alg: u16) -> &'static str {
    constants::alg_name(alg).unwrap_or("unknown")
}

fn s(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

impl fmt::Display for Blob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Blob::Pubkey => "pubkey",
            Blob::Privkey => "privkey",
            Blob::PubFile => "the .pub file",
            Blob::PrivFile => "the .priv file",
        })
    }
}

impl fmt::Display for KeyFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use KeyFileError::*;
        let not = "not a TSS2 key file";
        match self {
            NotKeyFile(None) => write!(f, "{not}: the file is empty"),
            NotKeyFile(Some(b)) => write!(f, "{not}: neither PEM nor DER (first byte 0x{b:02x})"),
            PemLabel(label) => write!(f, "{not}: PEM label \"{label}\", not TSS2 PRIVATE KEY"),
            PemLine(line) => write!(f, "PEM key file: line {line} is not base64 of the key"),
            PemNoEnd => write!(
                f,
                "PEM key file has no -----END {PEM_LABEL}----- line: truncated?"
            ),
            Der { offset, problem } => write!(f, "malformed TSS2 key at byte {offset}: {problem}"),
            Trailing(n) => write!(f, "trailing {n} byte{} after the key", s(*n)),
            Oid(oid) => {
                let what = match oid.as_str() {
                    "2.23.133.10.1.4" => "is an importable key",
                    "2.23.133.10.2" => "is a legacy tpm2-tss-engine key",
                    _ => "is not a TPM 2.0 key type",
                };
                write!(f, "{not}: OID {oid} {what}, not sealed data")
            }
            UnsupportedField(2) => write!(f, "field secret [2] is for importable keys only"),
            UnsupportedField(3) => write!(f, "field authPolicy [3] (signed policy) is unsupported"),
            UnsupportedField(tag) => write!(f, "unknown field [{tag}] in the key"),
            FieldOrder(tag) => write!(f, "field [{tag}] is repeated or out of order"),
            RsaParent(p) => write!(
                f,
                "rsaParent: RSA primaries under 0x{p:08x} are unsupported"
            ),
            Parent(p) => write!(
                f,
                "parent 0x{p:08x} is neither persistent (0x81) nor a hierarchy"
            ),
            Description => write!(f, "description [4] is not UTF-8"),
            NotTpm2b {
                blob,
                size,
                follows: n,
            } => {
                let kind = match blob {
                    Blob::Pubkey | Blob::PubFile => "TPM2B_PUBLIC",
                    Blob::Privkey | Blob::PrivFile => "TPM2B_PRIVATE",
                };
                let (n, s) = (*n, s(*n));
                match size {
                    Some(size) => write!(
                        f,
                        "{blob} is not a {kind} (size field {size}, {n} byte{s} follow)"
                    ),
                    None => write!(f, "{blob} is not a {kind} ({n} byte{s}, no size field)"),
                }
            }
            Public { blob, problem } => write!(f, "{blob}: {problem}"),
        }
    }
}

impl fmt::Display for DerProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DerProblem::*;
        match self {
            Truncated { need, have } => write!(f, "truncated: {need} bytes needed, {have} left"),
            Indefinite => write!(f, "indefinite length (BER, not DER)"),
            HugeLength => write!(f, "length field wider than 4 bytes"),
            NonMinimalLength(len) => write!(f, "length {len} is not minimally encoded"),
            Expected {
                what,
                found: Some(tag),
            } => write!(f, "expected {what}, found 0x{tag:02x}"),
            Expected { what, found: None } => write!(f, "expected {what}, found the end"),
            Integer(what) => write!(f, "{what} is not a DER INTEGER in 0..=0xffffffff"),
            Boolean(what) => write!(f, "{what} is not a one-byte BOOLEAN"),
            Oid => write!(f, "malformed OBJECT IDENTIFIER"),
            Leftover { what, count } => write!(f, "{count} stray byte{} in {what}", s(*count)),
        }
    }
}

impl fmt::Display for PublicProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use PublicProblem::*;
        match *self {
            Truncated(at) => write!(f, "the TPMT_PUBLIC ends inside the field at byte {at}"),
            Trailing(n) => write!(f, "{n} byte{} after the TPMT_PUBLIC", s(n)),
            Type(t) => write!(
                f,
                "type {} (0x{t:04x}), not a keyedhash sealed object",
                alg_name(t)
            ),
            NameAlg(a) => write!(f, "name algorithm {} (0x{a:04x}), not sha256", alg_name(a)),
            AuthPolicySize(n) => write!(f, "authPolicy of {n} bytes, a sha256 digest has 32"),
            Scheme(x) => write!(
                f,
                "scheme {} (0x{x:04x}): an HMAC or XOR key, not sealed data",
                alg_name(x)
            ),
        }
    }
}

impl std::error::Error for KeyFileError {}

/// Parses a TSS2 key file, PEM or DER, holding a sealed data object.
pub fn parse_tss2(bytes: &[u8]) -> Result<SealedBlob, KeyFileError> {
    if bytes.first() == Some(&SEQUENCE) {
        parse_der(bytes)
    } else {
        parse_der(&pem_decode(bytes)?)
    }
}

/// Takes tpm2-tools' `tpm2_create -u`/`-r` files (bare marshalled TPM2B_PUBLIC and
/// TPM2B_PRIVATE). They name no parent and no auth: the blob gets [`DEFAULT_PARENT`]
/// and `empty_auth` TRUE, for the caller to override.
pub fn parse_tpm2_tools(public: &[u8], private: &[u8]) -> Result<SealedBlob, KeyFileError> {
    check_public(public, Blob::PubFile)?;
    check_tpm2b(private, Blob::PrivFile)?;
    Ok(SealedBlob {
        parent: DEFAULT_PARENT,
        empty_auth: true,
        public: public.to_vec(),
        private: private.to_vec(),
        policy: Vec::new(),
        description: None,
        oid: KeyType::SealedData,
    })
}

fn parse_der(input: &[u8]) -> Result<SealedBlob, KeyFileError> {
    let mut top = Der::new(input, 0);
    let mut key = top.expect(SEQUENCE, "TPMKey SEQUENCE")?;
    if top.remaining() > 0 {
        return Err(KeyFileError::Trailing(top.remaining()));
    }
    let oid = decode_oid(&key.expect(OBJECT_ID, "type OBJECT IDENTIFIER")?)?;
    let oid = match oid.as_str() {
        OID_SEALED_DATA => KeyType::SealedData,
        OID_LOADABLE_KEY => KeyType::LoadableKey,
        _ => return Err(KeyFileError::Oid(oid)),
    };

    let (mut empty_auth, mut rsa_parent, mut policy, mut description) =
        (false, false, vec![], None);
    let mut last = None;
    while let Some(tag) = key.peek().filter(|tag| tag & 0xe0 == EXPLICIT) {
        let n = tag & 0x1f;
        if last.is_some_and(|last| n <= last) {
            return Err(KeyFileError::FieldOrder(n));
        }
        last = Some(n);
        match n {
            0 => {
                empty_auth = boolean(&key.explicit(0, BOOLEAN, "emptyAuth BOOLEAN")?, "emptyAuth")?
            }
            1 => policy = parse_policy(key.explicit(1, SEQUENCE, "policy SEQUENCE")?)?,
            4 => {
                let text = key
                    .explicit(4, UTF8_STRING, "description UTF8String")?
                    .rest()
                    .to_vec();
                description = Some(String::from_utf8(text).map_err(|_| KeyFileError::Description)?);
            }
            5 => {
                rsa_parent = boolean(&key.explicit(5, BOOLEAN, "rsaParent BOOLEAN")?, "rsaParent")?
            }
            _ => return Err(KeyFileError::UnsupportedField(n)),
        }
    }
    let parent = uint32(&key.expect(INTEGER, "parent INTEGER")?, "parent")?;
    let public = key.bytes(OCTET_STRING, "pubkey OCTET STRING")?;
    let private = key.bytes(OCTET_STRING, "privkey OCTET STRING")?;
    key.finish("the TPMKey SEQUENCE")?;

    match parent >> 24 {
        0x40 if rsa_parent => return Err(KeyFileError::RsaParent(parent)),
        0x40 | 0x81 => {}
        _ => return Err(KeyFileError::Parent(parent)),
    }
    check_public(&public, Blob::Pubkey)?;
    check_tpm2b(&private, Blob::Privkey)?;
    Ok(SealedBlob {
        parent,
        empty_auth,
        public,
        private,
        policy,
        description,
        oid,
    })
}

fn parse_policy(mut list: Der<'_>) -> Result<Vec<PolicyCommand>, KeyFileError> {
    let mut policy = Vec::new();
    while list.remaining() > 0 {
        let mut one = list.expect(SEQUENCE, "TPMPolicy SEQUENCE")?;
        let command_code = uint32(
            &one.explicit(0, INTEGER, "commandCode INTEGER")?,
            "commandCode",
        )?;
        let command_policy = one
            .explicit(1, OCTET_STRING, "commandPolicy OCTET STRING")?
            .rest()
            .to_vec();
        one.finish("a TPMPolicy")?;
        policy.push(PolicyCommand {
            command_code,
            command_policy,
        });
    }
    Ok(policy)
}

/// A DER cursor; `base` is where `buf` starts in the whole input, for error offsets.
struct Der<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Der<'a> {
    fn new(buf: &'a [u8], base: usize) -> Self {
        Der { buf, pos: 0, base }
    }

    fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    fn err(&self, problem: DerProblem) -> KeyFileError {
        KeyFileError::Der {
            offset: self.base + self.pos,
            problem,
        }
    }

    fn byte(&mut self) -> Result<u8, KeyFileError> {
        let b = self
            .peek()
            .ok_or(self.err(DerProblem::Truncated { need: 1, have: 0 }))?;
        self.pos += 1;
        Ok(b)
    }

    /// Reads one element, which must be tagged `tag`; returns a cursor over its content.
    fn expect(&mut self, tag: u8, what: &'static str) -> Result<Der<'a>, KeyFileError> {
        let found = self.peek();
        if found != Some(tag) {
            return Err(self.err(DerProblem::Expected { what, found }));
        }
        self.pos += 1;
        let first = self.byte()?;
        let len = match first {
            0..0x80 => usize::from(first),
            0x80 => return Err(self.err(DerProblem::Indefinite)),
            0x81..=0x84 => {
                let count = usize::from(first & 0x7f);
                let mut len = 0usize;
                for _ in 0..count {
                    len = len << 8 | usize::from(self.byte()?);
                }
                // Long form only from 128 on, without leading zero bytes.
                if len < 0x80 || len >> (8 * (count - 1)) == 0 {
                    return Err(self.err(DerProblem::NonMinimalLength(len)));
                }
                len
            }
            _ => return Err(self.err(DerProblem::HugeLength)),
        };
        let have = self.remaining();
        let end = self.pos.saturating_add(len);
        let content = self
            .buf
            .get(self.pos..end)
            .ok_or(self.err(DerProblem::Truncated { need: len, have }))?;
        let inner = Der::new(content, self.base + self.pos);
        self.pos = end;
        Ok(inner)
    }

    /// `[n] EXPLICIT` around exactly one element tagged `tag`.
    fn explicit(&mut self, n: u8, tag: u8, what: &'static str) -> Result<Der<'a>, KeyFileError> {
        let mut wrapper = self.expect(EXPLICIT | n, what)?;
        let inner = wrapper.expect(tag, what)?;
        wrapper.finish(what)?;
        Ok(inner)
    }

    /// The content of an element tagged `tag`.
    fn bytes(&mut self, tag: u8, what: &'static str) -> Result<Vec<u8>, KeyFileError> {
        Ok(self.expect(tag, what)?.rest().to_vec())
    }

    fn finish(&self, what: &'static str) -> Result<(), KeyFileError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(self.err(DerProblem::Leftover { what, count })),
        }
    }
}

fn boolean(content: &Der<'_>, what: &'static str) -> Result<bool, KeyFileError> {
    match content.rest() {
        [b] => Ok(*b != 0),
        _ => Err(content.err(DerProblem::Boolean(what))),
    }
}

/// A non-negative, minimally encoded INTEGER that fits 32 bits.
fn uint32(content: &Der<'_>, what: &'static str) -> Result<u32, KeyFileError> {
    let digits = match content.rest() {
        [0] => Some(&[][..]),
        [0, rest @ ..] if rest.first().is_some_and(|b| b & 0x80 != 0) => Some(rest),
        digits @ [first, ..] if *first != 0 && first & 0x80 == 0 => Some(digits),
        _ => None, // empty, padded or negative
    };
    match digits {
        Some(digits) if digits.len() <= 4 => {
            Ok(digits.iter().fold(0, |v, &d| v << 8 | u32::from(d)))
        }
        _ => Err(content.err(DerProblem::Integer(what))),
    }
}

/// Dotted form of an OBJECT IDENTIFIER's content (at most 32 bytes).
fn decode_oid(content: &Der<'_>) -> Result<String, KeyFileError> {
    let bytes = content.rest();
    let bad = || content.err(DerProblem::Oid);
    if bytes.is_empty() || bytes.len() > 32 || bytes.last().is_some_and(|b| b & 0x80 != 0) {
        return Err(bad());
    }
    let (mut dotted, mut arc, mut start) = (String::new(), 0u64, true);
    for &b in bytes {
        if start && b == 0x80 || arc > u64::MAX >> 7 {
            return Err(bad()); // a leading zero septet is not minimal
        }
        arc = arc << 7 | u64::from(b & 0x7f);
        start = b & 0x80 == 0;
        if start {
            if dotted.is_empty() {
                let first = arc.min(80) / 40;
                dotted = format!("{first}.{}", arc - first * 40);
            } else {
                dotted = format!("{dotted}.{arc}");
            }
            arc = 0;
        }
    }
    Ok(dotted)
}

/// A u16 size then exactly that many bytes, at least one; returns them.
fn check_tpm2b(bytes: &[u8], blob: Blob) -> Result<&[u8], KeyFileError> {
    let [hi, lo, body @ ..] = bytes else {
        return Err(KeyFileError::NotTpm2b {
            blob,
            size: None,
            follows: bytes.len(),
        });
    };
    let size = u16::from_be_bytes([*hi, *lo]);
    if usize::from(size) != body.len() || body.is_empty() {
        return Err(KeyFileError::NotTpm2b {
            blob,
            size: Some(size),
            follows: body.len(),
        });
    }
    Ok(body)
}

/// A TPM2B_PUBLIC of a sealed data object: keyedhash, sha256 name, null scheme.
fn check_public(bytes: &[u8], blob: Blob) -> Result<(), KeyFileError> {
    let area = check_tpm2b(bytes, blob)?;
    let mut r = Reader::new(area);
    let fail = |problem| KeyFileError::Public { blob, problem };
    let short = |r: &Reader<'_>| fail(PublicProblem::Truncated(area.len() - r.remaining()));
    match r.u16().map_err(|_| short(&r))? {
        ALG_KEYEDHASH => {}
        other => return Err(fail(PublicProblem::Type(other))),
    }
    match r.u16().map_err(|_| short(&r))? {
        ALG_SHA256 => {}
        other => return Err(fail(PublicProblem::NameAlg(other))),
    }
    r.u32().map_err(|_| short(&r))?;
    match r.tpm2b().map_err(|_| short(&r))?.len() {
        0 | SHA256_LEN => {}
        other => return Err(fail(PublicProblem::AuthPolicySize(other))),
    }
    match r.u16().map_err(|_| short(&r))? {
        ALG_NULL => {}
        other => return Err(fail(PublicProblem::Scheme(other))),
    }
    r.tpm2b().map_err(|_| short(&r))?; // unique
    match r.remaining() {
        0 => Ok(()),
        n => Err(fail(PublicProblem::Trailing(n))),
    }
}

/// DER of `blob` with OID 2.23.133.10.1.5, emptyAuth TRUE when set, and the optional
/// `fields` (present ones only). `public` and `private` are written as they are.
pub fn encode_tss2_der(blob: &SealedBlob, fields: Fields) -> Vec<u8> {
    let mut key = tlv(OBJECT_ID, &OID_SEALED_DATA_DER);
    if blob.empty_auth {
        put(&mut key, EXPLICIT, &[BOOLEAN, 1, 0xff]);
    }
    if fields == Fields::All && !blob.policy.is_empty() {
        let mut list = Vec::new();
        for command in &blob.policy {
            let mut one = tlv(EXPLICIT, &tlv(INTEGER, &integer(command.command_code)));
            put(
                &mut one,
                EXPLICIT | 1,
                &tlv(OCTET_STRING, &command.command_policy),
            );
            put(&mut list, SEQUENCE, &one);
        }
        put(&mut key, EXPLICIT | 1, &tlv(SEQUENCE, &list));
    }
    if let Some(text) = blob
        .description
        .as_deref()
        .filter(|_| fields == Fields::All)
    {
        put(&mut key, EXPLICIT | 4, &tlv(UTF8_STRING, text.as_bytes()));
    }
    put(&mut key, INTEGER, &integer(blob.parent));
    put(&mut key, OCTET_STRING, &blob.public);
    put(&mut key, OCTET_STRING, &blob.private);
    tlv(SEQUENCE, &key)
}

/// PEM of [`encode_tss2_der`], in 64-column lines.
pub fn encode_tss2_pem(blob: &SealedBlob, fields: Fields) -> String {
    pem::encode(PEM_LABEL, &encode_tss2_der(blob, fields), 64)
}

fn put(out: &mut Vec<u8>, tag: u8, content: &[u8]) {
    out.push(tag);
    match u8::try_from(content.len()) {
        Ok(short @ 0..0x80) => out.push(short),
        _ => {
            let len = content.len().to_be_bytes();
            let len = without_leading_zeros(&len);
            out.push(0x80 | len.len() as u8);
            out.extend_from_slice(len);
        }
    }
    out.extend_from_slice(content);
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    put(&mut out, tag, content);
    out
}

fn without_leading_zeros(bytes: &[u8]) -> &[u8] {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    bytes.get(zeros..).unwrap_or_default()
}

/// Minimal two's-complement content of a non-negative INTEGER.
fn integer(value: u32) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let digits = without_leading_zeros(&bytes);
    let sign = digits.first().is_none_or(|b| b & 0x80 != 0);
    [if sign { &[0][..] } else { &[] }, digits].concat()
}

/// Strict PEM (see [`Layout::Strict`]): padding only at the very end and zero
/// padding bits, LF or CRLF.
fn pem_decode(bytes: &[u8]) -> Result<Vec<u8>, KeyFileError> {
    match pem::decode(bytes, PEM_LABEL, Layout::Strict) {
        Ok(der) => Ok(der),
        // BEGIN then END: no DER, which the DER reader reports.
        Err(PemError::EmptyBody { .. }) => Ok(Vec::new()),
        Err(PemError::NoBeginLine) => Err(KeyFileError::NotKeyFile(bytes.first().copied())),
        Err(PemError::WrongLabel { label, .. }) => {
            Err(KeyFileError::PemLabel(label.chars().take(64).collect()))
        }
        Err(PemError::NoEndLine { .. }) => Err(KeyFileError::PemNoEnd),
        Err(
            PemError::BadBoundary { line }
            | PemError::BadBase64 { line }
            | PemError::SecondBlock { line, .. }
            | PemError::JunkAfterEnd { line },
        ) => Err(KeyFileError::PemLine(line)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base64::ALPHABET;

    const PEM_BEGIN: &str = "-----BEGIN TSS2 PRIVATE KEY-----";
    const PEM_END: &str = "-----END TSS2 PRIVATE KEY-----";

    const SEAL_PUB: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tpm/seal.pub"
    ));
    const SEAL_PRIV: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tpm/seal.priv"
    ));
    const SEAL_PEM: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tpm/seal.tss2.pem"
    ));
    const SEAL_KEYAUTH_PEM: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tpm/seal-keyauth.tss2.pem"
    ));
    const POLICY_DIGEST: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tpm/policy.digest"
    ));

    /// The fixture pair, with a policy and a description to exercise every field.
    fn full_blob() -> SealedBlob {
        let mut blob = parse_tpm2_tools(SEAL_PUB, SEAL_PRIV).unwrap();
        blob.policy = vec![
            PolicyCommand {
                command_code: 0x17f,
                command_policy: vec![0, 2, 0xaa, 0xbb, 0, 0, 0, 1],
            },
            PolicyCommand {
                command_code: 0x8000_0000,
                command_policy: vec![],
            },
        ];
        blob.description = Some("kernel master key".into());
        blob
    }

    fn der_error(bytes: &[u8]) -> (usize, DerProblem) {
        match parse_tss2(bytes) {
            Err(KeyFileError::Der { offset, problem }) => (offset, problem),
            other => panic!("expected a DER error, got {other:?}"),
        }
    }

    fn message(bytes: &[u8]) -> String {
        parse_tss2(bytes).unwrap_err().to_string()
    }

    /// A TPMKey built from the fixture with `fields` standing for everything after the OID.
    fn key_with(oid: &[u8], fields: &[&[u8]]) -> Vec<u8> {
        let mut body = tlv(OBJECT_ID, oid);
        fields.iter().for_each(|f| body.extend_from_slice(f));
        tlv(SEQUENCE, &body)
    }

    fn tail() -> Vec<u8> {
        [
            tlv(INTEGER, &integer(DEFAULT_PARENT)),
            tlv(OCTET_STRING, SEAL_PUB),
            tlv(OCTET_STRING, SEAL_PRIV),
        ]
        .concat()
    }

    #[test]
    fn tpm2_tools_pair_is_bare_tpm2b() {
        let blob = parse_tpm2_tools(SEAL_PUB, SEAL_PRIV).unwrap();
        assert_eq!(
            (blob.parent, blob.empty_auth, blob.oid),
            (0x8100_0001, true, KeyType::SealedData)
        );
        assert_eq!(blob.public_area(), &SEAL_PUB[2..]);
        assert_eq!(blob.auth_policy(), Some(POLICY_DIGEST));
        // fixedtpm | fixedparent | noda, as make-tpm-fixtures asks; no userwithauth.
        assert_eq!(blob.object_attributes(), 0x0000_0412);
    }

    #[test]
    fn tpm2_encodeobject_output() {
        let blob = parse_tss2(SEAL_PEM).unwrap();
        assert_eq!(blob.oid, KeyType::LoadableKey);
        assert_eq!(blob.parent, 0x8100_0001);
        assert!(
            !blob.empty_auth,
            "tpm2-tools 5.4 writes emptyAuth FALSE without -p"
        );
        assert_eq!(
            (blob.public.as_slice(), blob.private.as_slice()),
            (SEAL_PUB, SEAL_PRIV)
        );
        assert_eq!((blob.policy.len(), blob.description.as_deref()), (0, None));
        assert_eq!(blob.auth_policy(), Some(POLICY_DIGEST));
    }

    #[test]
    fn tpm2_encodeobject_key_auth_writes_ber_true() {
        let der = pem_decode(SEAL_KEYAUTH_PEM).unwrap();
        assert!(
            der.windows(5).any(|w| w == [EXPLICIT, 3, BOOLEAN, 1, 0x01]),
            "0x01, not DER's 0xff"
        );
        let blob = parse_tss2(SEAL_KEYAUTH_PEM).unwrap();
        assert!(blob.empty_auth);
        assert_eq!(blob.public, SEAL_PUB);
    }

    #[test]
    fn kernel_encoding_has_only_the_fields_the_kernel_parses() {
        let blob = full_blob();
        let der = encode_tss2_der(&blob, Fields::Kernel);
        let head = [
            0x06, 6, 0x67, 0x81, 5, 10, 1, 5, 0xa0, 3, 1, 1, 0xff, 2, 5, 0, 0x81, 0, 0, 1, 4, 80,
        ];
        assert_eq!(der.get(4..4 + head.len()), Some(&head[..]));
        assert_eq!(der.len(), 4 + head.len() + 80 + 3 + 160);
        let back = parse_tss2(&der).unwrap();
        let expected = SealedBlob {
            policy: vec![],
            description: None,
            ..blob
        };
        assert_eq!(back, expected);
    }

    #[test]
    fn round_trip_with_every_field() {
        let blob = full_blob();
        let der = encode_tss2_der(&blob, Fields::All);
        assert_eq!(parse_tss2(&der).unwrap(), blob);
        let pem = encode_tss2_pem(&blob, Fields::All);
        assert_eq!(parse_tss2(pem.as_bytes()).unwrap(), blob);
        let no_auth = SealedBlob {
            empty_auth: false,
            parent: 0x4000_0001,
            ..blob
        };
        assert_eq!(
            parse_tss2(&encode_tss2_der(&no_auth, Fields::All)).unwrap(),
            no_auth
        );
    }

    #[test]
    fn reencoding_tpm2_tools_output_gives_sealed_data() {
        let blob = parse_tss2(SEAL_PEM).unwrap();
        let again = parse_tss2(encode_tss2_pem(&blob, Fields::Kernel).as_bytes()).unwrap();
        assert_eq!(
            again,
            SealedBlob {
                oid: KeyType::SealedData,
                ..blob
            }
        );
    }

    #[test]
    fn pem_layout_and_der_agree() {
        let pem = encode_tss2_pem(&full_blob(), Fields::All);
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines.first(), Some(&PEM_BEGIN));
        assert_eq!(lines.last(), Some(&PEM_END));
        assert!(lines.iter().all(|l| l.len() <= 64));
        assert!(pem.ends_with("-----\n"));
        let crlf = pem.replace('\n', "\r\n");
        let der = encode_tss2_der(&full_blob(), Fields::All);
        assert_eq!(parse_tss2(crlf.as_bytes()), parse_tss2(&der));
        assert_eq!(
            pem_decode(SEAL_PEM).map(|d| parse_tss2(&d)),
            Ok(parse_tss2(SEAL_PEM))
        );
    }

    #[test]
    fn every_truncation_is_an_error() {
        let der = encode_tss2_der(&full_blob(), Fields::All);
        for n in 0..der.len() {
            assert!(parse_tss2(&der[..n]).is_err(), "prefix of {n} bytes parsed");
        }
        let pem = encode_tss2_pem(&full_blob(), Fields::All);
        for n in 0..pem.trim_end().len() {
            assert!(
                parse_tss2(&pem.as_bytes()[..n]).is_err(),
                "PEM prefix of {n} bytes parsed"
            );
        }
        for n in 0..SEAL_PUB.len() {
            assert!(parse_tpm2_tools(&SEAL_PUB[..n], SEAL_PRIV).is_err());
        }
    }

    #[test]
    fn flipped_bytes_never_panic() {
        let der = encode_tss2_der(&full_blob(), Fields::All);
        for i in 0..der.len() {
            for mask in [0x01, 0x80, 0xff] {
                let mut bad = der.clone();
                bad[i] ^= mask;
                let _ = parse_tss2(&bad);
            }
        }
    }

    #[test]
    fn other_key_types_are_named() {
        let cases: [(&[u8], &str); 3] = [
            (
                &[0x67, 0x81, 5, 10, 1, 4],
                "OID 2.23.133.10.1.4 is an importable key, not sealed data",
            ),
            (
                &[0x67, 0x81, 5, 10, 2],
                "OID 2.23.133.10.2 is a legacy tpm2-tss-engine key",
            ),
            (
                &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 1, 1, 1],
                "OID 1.2.840.113549.1.1.1 is not a TPM 2.0 key type",
            ),
        ];
        for (oid, text) in cases {
            let msg = message(&key_with(oid, &[&tail()]));
            assert!(
                msg.starts_with("not a TSS2 key file: ") && msg.contains(text),
                "{msg}"
            );
        }
        assert_eq!(
            message(&key_with(&[0x67, 0x81, 5, 10, 1, 4], &[&tail()])),
            "not a TSS2 key file: OID 2.23.133.10.1.4 is an importable key, not sealed data"
        );
        for bad_oid in [&[][..], &[0x67, 0x81], &[0x67, 0x80, 0x01], &[0x01; 40]] {
            assert_eq!(der_error(&key_with(bad_oid, &[&tail()])).1, DerProblem::Oid);
        }
    }

    #[test]
    fn trailing_bytes_are_counted() {
        let mut der = encode_tss2_der(&full_blob(), Fields::Kernel);
        der.extend_from_slice(&[0, 0, 0]);
        assert_eq!(message(&der), "trailing 3 bytes after the key");
        let mut inner = key_with(&OID_SEALED_DATA_DER, &[&tail(), &[5, 0]]);
        assert!(matches!(
            der_error(&inner).1,
            DerProblem::Leftover { count: 2, .. }
        ));
        inner.push(0);
        assert_eq!(parse_tss2(&inner), Err(KeyFileError::Trailing(1)));
    }

    #[test]
    fn lengths_must_be_definite_minimal_and_present() {
        let good = key_with(&OID_SEALED_DATA_DER, &[&tail()]);
        // Long form for the 6-byte OID (outer length adjusted).
        let mut long = vec![0x30, 0x82];
        let body = [&[0x06, 0x81, 6][..], &OID_SEALED_DATA_DER, &tail()].concat();
        long.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        long.extend_from_slice(&body);
        assert_eq!(der_error(&long), (7, DerProblem::NonMinimalLength(6)));
        // Leading zero in the outer length.
        let mut padded = vec![0x30, 0x83, 0x00];
        padded.extend_from_slice(&good[2..]);
        assert_eq!(
            der_error(&padded).1,
            DerProblem::NonMinimalLength(good.len() - 4)
        );
        // Indefinite length, BER style, with end-of-contents.
        let mut indefinite = vec![0x30, 0x80];
        indefinite.extend_from_slice(&good[4..]);
        indefinite.extend_from_slice(&[0, 0]);
        assert_eq!(der_error(&indefinite), (2, DerProblem::Indefinite));
        // Huge lengths: never allocated, never read past the end.
        assert_eq!(
            der_error(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x06]).1,
            DerProblem::Truncated {
                need: 0xffff_ffff,
                have: 1
            }
        );
        assert_eq!(
            der_error(&[0x30, 0x89, 1, 2, 3, 4, 5, 6, 7, 8, 9]).1,
            DerProblem::HugeLength
        );
        assert_eq!(der_error(&[0x30, 0xff]).1, DerProblem::HugeLength);
        let mut short_pub = key_with(&OID_SEALED_DATA_DER, &[&tlv(INTEGER, &[0x40, 0, 0, 1])]);
        short_pub.extend_from_slice(&[0x04, 0x82, 0x10, 0x00]);
        short_pub[1] += 4;
        assert!(matches!(
            der_error(&short_pub).1,
            DerProblem::Truncated {
                need: 4096,
                have: 0
            }
        ));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let mut nested = vec![0x05, 0x00];
        for _ in 0..2000 {
            nested = tlv(SEQUENCE, &nested);
        }
        assert!(matches!(
            der_error(&nested).1,
            DerProblem::Expected {
                what: "type OBJECT IDENTIFIER",
                ..
            }
        ));
        let policy = tlv(EXPLICIT | 1, &nested);
        let problem = der_error(&key_with(&OID_SEALED_DATA_DER, &[&policy, &tail()])).1;
        assert!(
            matches!(
                problem,
                DerProblem::Expected {
                    what: "commandCode INTEGER",
                    ..
                }
            ),
            "{problem:?}"
        );
    }

    #[test]
    fn optional_fields_are_checked() {
        let t = tail();
        let empty_auth = tlv(EXPLICIT, &[BOOLEAN, 1, 0xff]);
        let desc = tlv(EXPLICIT | 4, &tlv(UTF8_STRING, b"x"));
        let check = |fields: &[&[u8]]| parse_tss2(&key_with(&OID_SEALED_DATA_DER, fields));
        assert_eq!(
            check(&[&desc, &empty_auth, &t]),
            Err(KeyFileError::FieldOrder(0))
        );
        assert_eq!(
            check(&[&empty_auth, &empty_auth, &t]),
            Err(KeyFileError::FieldOrder(0))
        );
        let secret = tlv(EXPLICIT | 2, &tlv(OCTET_STRING, b"seed"));
        assert_eq!(
            message(&key_with(&OID_SEALED_DATA_DER, &[&secret, &t])),
            "field secret [2] is for importable keys only"
        );
        let auth_policy = tlv(EXPLICIT | 3, &tlv(SEQUENCE, &[]));
        assert_eq!(
            check(&[&auth_policy, &t]),
            Err(KeyFileError::UnsupportedField(3))
        );
        let unknown = tlv(EXPLICIT | 6, &tlv(OCTET_STRING, b"name"));
        assert_eq!(
            check(&[&unknown, &t]),
            Err(KeyFileError::UnsupportedField(6))
        );
        let bad_utf8 = tlv(EXPLICIT | 4, &tlv(UTF8_STRING, &[0xff, 0xfe]));
        assert_eq!(check(&[&bad_utf8, &t]), Err(KeyFileError::Description));
        let two_bools = tlv(EXPLICIT, &[BOOLEAN, 1, 0xff, BOOLEAN, 1, 0]);
        assert!(matches!(
            der_error(&key_with(&OID_SEALED_DATA_DER, &[&two_bools, &t])).1,
            DerProblem::Leftover { .. }
        ));
        let long_bool = tlv(EXPLICIT, &[BOOLEAN, 2, 0, 0xff]);
        assert_eq!(
            der_error(&key_with(&OID_SEALED_DATA_DER, &[&long_bool, &t])).1,
            DerProblem::Boolean("emptyAuth")
        );
        // rsaParent matters only for a hierarchy parent.
        let rsa = tlv(EXPLICIT | 5, &[BOOLEAN, 1, 0xff]);
        assert!(check(&[&rsa, &t]).is_ok());
        let owner = [
            tlv(INTEGER, &[0x40, 0, 0, 1]),
            tlv(OCTET_STRING, SEAL_PUB),
            tlv(OCTET_STRING, SEAL_PRIV),
        ]
        .concat();
        assert_eq!(
            check(&[&rsa, &owner]),
            Err(KeyFileError::RsaParent(0x4000_0001))
        );
        let ecc = tlv(EXPLICIT | 5, &[BOOLEAN, 1, 0]);
        assert_eq!(check(&[&ecc, &owner]).map(|b| b.parent), Ok(0x4000_0001));
    }

    #[test]
    fn parent_must_be_a_handle() {
        let key = |parent: &[u8]| {
            let rest = [
                tlv(INTEGER, parent),
                tlv(OCTET_STRING, SEAL_PUB),
                tlv(OCTET_STRING, SEAL_PRIV),
            ]
            .concat();
            parse_tss2(&key_with(&OID_SEALED_DATA_DER, &[&rest]))
        };
        assert_eq!(key(&[0, 0x81, 0, 0, 1]).map(|b| b.parent), Ok(0x8100_0001));
        for bad in [
            &[][..],
            &[0x81, 0, 0, 1],
            &[0, 0x40, 0, 0, 1],
            &[1, 0, 0, 0, 0],
            &[0xff, 0x81, 0, 0, 1],
        ] {
            assert!(
                matches!(
                    key(bad),
                    Err(KeyFileError::Der {
                        problem: DerProblem::Integer("parent"),
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            key(&[0, 0x80, 0, 0, 0]),
            Err(KeyFileError::Parent(0x8000_0000))
        );
        assert_eq!(key(&[1]), Err(KeyFileError::Parent(1)));
    }

    #[test]
    fn blobs_must_be_tpm2b() {
        let mut short = SEAL_PUB.to_vec();
        short[1] = 40;
        short.truncate(40);
        let rest = [
            tlv(INTEGER, &[0x40, 0, 0, 1]),
            tlv(OCTET_STRING, &short),
            tlv(OCTET_STRING, SEAL_PRIV),
        ]
        .concat();
        assert_eq!(
            message(&key_with(&OID_SEALED_DATA_DER, &[&rest])),
            "pubkey is not a TPM2B_PUBLIC (size field 40, 38 bytes follow)"
        );
        assert_eq!(
            parse_tpm2_tools(SEAL_PUB, &[0, 0]).unwrap_err().to_string(),
            "the .priv file is not a TPM2B_PRIVATE (size field 0, 0 bytes follow)"
        );
        assert_eq!(
            parse_tpm2_tools(&[0], SEAL_PRIV).unwrap_err().to_string(),
            "the .pub file is not a TPM2B_PUBLIC (1 byte, no size field)"
        );
        // tpm2_create -c writes a context (magic 0xbadcc0de), not a TPM2B.
        let context_file = [&[0xba, 0xdc, 0xc0, 0xde, 0, 0, 0, 1][..], SEAL_PRIV].concat();
        assert!(parse_tpm2_tools(&context_file, SEAL_PRIV).is_err());
    }

    #[test]
    fn public_area_must_be_sealed_data() {
        let patched = |offset: usize, bytes: &[u8]| {
            let mut public = SEAL_PUB.to_vec();
            public[offset..offset + bytes.len()].copy_from_slice(bytes);
            parse_tpm2_tools(&public, SEAL_PRIV).unwrap_err()
        };
        let public = |problem| KeyFileError::Public {
            blob: Blob::PubFile,
            problem,
        };
        assert_eq!(patched(2, &[0, 1]), public(PublicProblem::Type(0x0001)));
        assert_eq!(
            patched(2, &[0, 0x23]).to_string(),
            "the .pub file: type ecc (0x0023), not a keyedhash sealed object"
        );
        assert_eq!(patched(4, &[0, 4]), public(PublicProblem::NameAlg(0x0004)));
        assert_eq!(
            patched(10, &[0, 20]),
            public(PublicProblem::AuthPolicySize(20))
        );
        assert_eq!(patched(44, &[0, 5]), public(PublicProblem::Scheme(0x0005)));
        assert_eq!(patched(46, &[0, 33]), public(PublicProblem::Truncated(46)));
        // One byte more inside the TPM2B than the TPMT_PUBLIC uses.
        let mut long = SEAL_PUB.to_vec();
        long.push(0);
        long[1] += 1;
        assert_eq!(
            parse_tpm2_tools(&long, SEAL_PRIV),
            Err(public(PublicProblem::Trailing(1)))
        );
    }

    #[test]
    fn pem_is_strict() {
        let pem = encode_tss2_pem(&full_blob(), Fields::Kernel);
        let with = |from: &str, to: &str| parse_tss2(pem.replacen(from, to, 1).as_bytes());
        assert!(
            matches!(with("TSS2 PRIVATE KEY", "PRIVATE KEY"), Err(KeyFileError::PemLabel(l)) if l == "PRIVATE KEY")
        );
        assert_eq!(with(PEM_END, ""), Err(KeyFileError::PemNoEnd));
        assert_eq!(
            with("\n", "\nProc-Type: 4,ENCRYPTED\n"),
            Err(KeyFileError::PemLine(2))
        );
        assert_eq!(with("\n", "\n\n"), Err(KeyFileError::PemLine(2)));
        assert_eq!(with("\nM", "\n M"), Err(KeyFileError::PemLine(2)));
        assert_eq!(
            parse_tss2(format!("{pem}junk\n").as_bytes()),
            Err(KeyFileError::PemLine(pem.lines().count() + 1))
        );
        assert_eq!(
            parse_tss2(format!("\n  {pem}\n\n").as_bytes()),
            parse_tss2(pem.as_bytes())
        );
        // Padding in the middle, and non-zero padding bits.
        let lines: Vec<&str> = pem.lines().collect();
        let body_end = lines.len() - 2;
        let mut padded_mid = lines.clone();
        let first_body = format!("{}=", &lines[1][..63]);
        padded_mid[1] = &first_body;
        assert_eq!(
            parse_tss2(padded_mid.join("\n").as_bytes()),
            Err(KeyFileError::PemLine(2))
        );
        let last = lines[body_end];
        assert!(
            last.ends_with('='),
            "the fixture blob's base64 ends in padding: {last}"
        );
        let data_end = last.trim_end_matches('=').len();
        let bumped = ALPHABET[ALPHABET
            .iter()
            .position(|&c| c == last.as_bytes()[data_end - 1])
            .unwrap()
            + 1];
        let mut nonzero_bits = lines.clone();
        let changed = format!(
            "{}{}{}",
            &last[..data_end - 1],
            char::from(bumped),
            &last[data_end..]
        );
        nonzero_bits[body_end] = &changed;
        assert_eq!(
            parse_tss2(nonzero_bits.join("\n").as_bytes()),
            Err(KeyFileError::PemLine(body_end + 1))
        );
        assert_eq!(parse_tss2(b""), Err(KeyFileError::NotKeyFile(None)));
        assert_eq!(
            parse_tss2(b"hello"),
            Err(KeyFileError::NotKeyFile(Some(b'h')))
        );
        assert_eq!(
            message(SEAL_PUB),
            "not a TSS2 key file: neither PEM nor DER (first byte 0x00)"
        );
    }
}
