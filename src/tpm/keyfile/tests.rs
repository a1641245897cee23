use super::der::*;
use super::encode::*;
use super::tss2::*;
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
