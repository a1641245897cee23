//! Intake of whole certificates, DER and PEM, against the fixtures in
//! `tests/fixtures/certs`.

use super::*;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("../../tests/fixtures/certs/", $name))
    };
}

const RSA_DER: &[u8] = fixture!("rsa2048.der");
const RSA_PEM: &[u8] = fixture!("rsa2048.pem");
/// 2026-01-01T00:00:00Z: inside the validity of every fixture but `expired`.
const NOW: i64 = 1_767_225_600;

fn ok(bytes: &[u8]) -> Certificate {
    intake_at(bytes, NOW).unwrap_or_else(|e| panic!("intake failed: {e}"))
}

fn err(bytes: &[u8]) -> CertError {
    intake_at(bytes, NOW).expect_err("intake accepted bad input")
}

fn pem_err(bytes: &[u8]) -> PemError {
    match err(bytes) {
        CertError::BadPem { reason } => reason,
        other => panic!("expected a PEM error, got {other:?}"),
    }
}

fn rsa_pem() -> String {
    String::from_utf8(RSA_PEM.to_vec()).unwrap()
}

#[test]
fn good_certificates() {
    for (der, pem, key_type, cn) in [
        (RSA_DER, RSA_PEM, "rsa2048", "rsa2048"),
        (
            fixture!("ecdsa-p256.der"),
            fixture!("ecdsa-p256.pem"),
            "ecdsa-p256",
            "ecdsa-p256",
        ),
        (
            fixture!("ecdsa-p384.der"),
            fixture!("ecdsa-p384.pem"),
            "ecdsa-p384",
            "ecdsa-p384",
        ),
    ] {
        let from_der = ok(der);
        let from_pem = ok(pem);
        assert_eq!(from_der.key_type(), key_type);
        assert_eq!(
            from_der.subject(),
            format!("O=integrity-loader tests, CN={cn}")
        );
        assert_eq!(from_der.key_id().len(), 40, "SKI=hash is a 20-byte SHA-1");
        assert!(
            from_der
                .key_id()
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert!(from_der.warnings().is_empty(), "{:?}", from_der.warnings());
        assert!(!from_der.was_pem());
        assert!(from_pem.was_pem());
        assert_eq!(from_pem.der(), der);
        assert_eq!(from_pem.key_id(), from_der.key_id());
        assert_eq!(from_pem.subject(), from_der.subject());
    }
}

#[test]
fn refused_certificates() {
    assert_eq!(err(fixture!("ca.der")), CertError::IsCa);
    assert_eq!(err(fixture!("ca.pem")), CertError::IsCa);
    assert_eq!(err(fixture!("no-ski.der")), CertError::NoSubjectKeyId);
    assert_eq!(
        err(fixture!("no-digsig.der")),
        CertError::NoDigitalSignatureUsage
    );
    match err(fixture!("ed25519.der")) {
        CertError::UnsupportedKey { alg } => assert_eq!(alg, "Ed25519 (1.3.101.112)"),
        other => panic!("ed25519: {other:?}"),
    }
    let curve = "NIST P-521 (1.3.132.0.35)".to_string();
    assert_eq!(
        err(fixture!("ecdsa-p521.der")),
        CertError::UnsupportedCurve { curve }
    );
    let alg = "RSASSA-PSS (1.2.840.113549.1.1.10)".to_string();
    assert_eq!(
        err(fixture!("pss-signed.der")),
        CertError::UnsupportedSignature { alg }
    );
}

#[test]
fn missing_key_usage_is_a_warning() {
    let cert = ok(fixture!("no-keyusage.der"));
    assert_eq!(cert.warnings().len(), 1);
    assert!(
        cert.warnings()[0].contains("no keyUsage extension"),
        "{:?}",
        cert.warnings()
    );
}

#[test]
fn validity_dates_only_warn() {
    let expired = fixture!("expired.der");
    let cert = ok(expired);
    assert_eq!(cert.warnings().len(), 1);
    assert!(cert.warnings()[0].starts_with("certificate expired on Jan  1 00:00:00 2021"));
    // 2020-06-01: inside 2020-01-01..2021-01-01.
    assert!(
        intake_at(expired, 1_590_969_600)
            .unwrap()
            .warnings()
            .is_empty()
    );
    // 2019-06-01: before notBefore (a clock that is behind).
    let early = intake_at(expired, 1_559_347_200).unwrap();
    assert!(
        early.warnings()[0].starts_with("certificate is not valid before Jan  1 00:00:00 2020")
    );
    assert!(early.warnings()[0].contains("Jun  1 00:00:00 2019"));
    // The real clock works too.
    assert!(intake(RSA_DER).is_ok());
}

#[test]
fn empty_and_oversized() {
    assert_eq!(err(b""), CertError::Empty);
    let big = vec![b'A'; MAX_INPUT_LEN + 1];
    assert_eq!(
        err(&big),
        CertError::TooLarge {
            len: MAX_INPUT_LEN + 1,
            limit: 64 * 1024
        }
    );
    assert!(err(&big).to_string().contains("65536-byte limit"));
    assert_eq!(err(b"hello world\n"), CertError::UnrecognizedFormat);
}

#[test]
fn der_framing() {
    let mut trailing = RSA_DER.to_vec();
    trailing.extend_from_slice(b"\n\n\0");
    assert_eq!(err(&trailing), CertError::TrailingData { len: 3 });
    let two = [RSA_DER, RSA_DER].concat();
    assert_eq!(err(&two), CertError::TrailingData { len: RSA_DER.len() });

    let cut = &RSA_DER[..RSA_DER.len() - 10];
    let reason = DerError::Truncated {
        expected: RSA_DER.len(),
        got: RSA_DER.len() - 10,
    };
    assert_eq!(err(cut), CertError::NotDer { reason });
    assert!(matches!(
        err(&RSA_DER[..1]),
        CertError::NotDer {
            reason: DerError::Truncated { .. }
        }
    ));
    assert!(matches!(
        err(&[0x30, 0x80, 0, 0]),
        CertError::NotDer {
            reason: DerError::BadLength
        }
    ));

    // Right framing, wrong contents: a SEQUENCE holding an INTEGER.
    assert!(matches!(
        err(&[0x30, 0x81, 0x03, 0x02, 0x01, 0x00]),
        CertError::NotDer {
            reason: DerError::Parse(_)
        }
    ));
    // A flipped byte inside the TBS header.
    let mut broken = RSA_DER.to_vec();
    broken[4] = 0x04;
    assert!(matches!(err(&broken), CertError::NotDer { .. }));
}

#[test]
fn pem_whitespace_and_leading_text() {
    let crlf = rsa_pem().replace('\n', "  \r\n");
    assert_eq!(ok(crlf.as_bytes()).der(), RSA_DER);
    let with_text = format!(
        "Certificate:\n    Data:\n        Version: 3 (0x2)\n{}\n\n  \n",
        rsa_pem()
    );
    assert_eq!(ok(with_text.as_bytes()).der(), RSA_DER);
    let bom = [b"\xef\xbb\xbf".as_slice(), RSA_PEM].concat();
    assert_eq!(ok(&bom).der(), RSA_DER);
    let no_final_newline = rsa_pem().trim_end().to_string();
    assert_eq!(ok(no_final_newline.as_bytes()).der(), RSA_DER);
    // One long base64 line, as some tools write it.
    let pem = rsa_pem();
    let lines: Vec<&str> = pem.lines().collect();
    let (first, rest) = lines.split_first().unwrap();
    let (last, body) = rest.split_last().unwrap();
    let one_line = format!("{first}\n{}\n{last}\n", body.concat());
    assert_eq!(ok(one_line.as_bytes()).der(), RSA_DER);
}

#[test]
fn pem_errors() {
    let pem = rsa_pem();
    let last = pem.lines().count();

    let junk = format!("{pem}this is junk\n");
    assert_eq!(
        pem_err(junk.as_bytes()),
        PemError::JunkAfterEnd { line: last + 1 }
    );
    let two = format!("{pem}\n{pem}");
    let second = PemError::SecondBlock {
        label: "CERTIFICATE".to_string(),
        line: last + 2,
    };
    assert_eq!(pem_err(two.as_bytes()), second);
    let key = format!("{pem}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
    assert!(
        matches!(pem_err(key.as_bytes()), PemError::SecondBlock { label, .. } if label == "PRIVATE KEY")
    );

    let bad_char = pem.replacen("MII", "M!I", 1);
    assert_eq!(
        pem_err(bad_char.as_bytes()),
        PemError::BadBase64 { line: 2 }
    );
    let lost_char = pem.replacen("MII", "MI", 1);
    assert!(matches!(
        pem_err(lost_char.as_bytes()),
        PemError::BadBase64 { .. }
    ));
    let end_cut: String = pem
        .lines()
        .take(last - 1)
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        pem_err(end_cut.as_bytes()),
        PemError::NoEndLine { begin_line: 1 }
    );
    let wrong_end = pem.replace("END CERTIFICATE", "END X509 CRL");
    assert_eq!(
        pem_err(wrong_end.as_bytes()),
        PemError::BadBoundary { line: last }
    );
    let end_junk = pem.replace("END CERTIFICATE-----", "END CERTIFICATE----- x");
    assert_eq!(
        pem_err(end_junk.as_bytes()),
        PemError::BadBoundary { line: last }
    );

    let private =
        b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";
    let wrong = PemError::WrongLabel {
        label: "PRIVATE KEY".to_string(),
        line: 1,
    };
    assert_eq!(pem_err(private), wrong);
    let empty = b"-----BEGIN CERTIFICATE-----\n\n-----END CERTIFICATE-----\n";
    assert_eq!(pem_err(empty), PemError::EmptyBody { line: 3 });
    assert_eq!(
        pem_err(b"text\n-----BEGIN CERTIFICATE\n"),
        PemError::BadBoundary { line: 2 }
    );

    // Well-formed PEM around something that is not a certificate.
    let not_cert = b"-----BEGIN CERTIFICATE-----\nZm9vYmFy\n-----END CERTIFICATE-----\n";
    assert_eq!(
        err(not_cert),
        CertError::NotDer {
            reason: DerError::NotSequence
        }
    );
}

#[test]
fn signature_algorithms() {
    for (oid, known) in [
        ("1.2.840.113549.1.1.11", true),  // sha256WithRSAEncryption
        ("1.2.840.113549.1.1.5", true),   // sha1WithRSAEncryption
        ("1.2.840.113549.1.1.4", false),  // md5WithRSAEncryption
        ("1.2.840.113549.1.1.10", false), // RSASSA-PSS
        ("1.2.840.113549.1.1.110", false),
        ("1.2.840.10045.4.1", true), // ecdsa-with-SHA1
        ("1.2.840.10045.4.3.2", true),
        ("1.2.840.10045.4.3.5", false),
        ("2.16.840.1.101.3.4.3.10", true),  // ecdsa-with-SHA3-256
        ("2.16.840.1.101.3.4.3.14", true),  // RSA with SHA3-256
        ("2.16.840.1.101.3.4.3.17", false), // ML-DSA-44
        ("1.3.101.112", false),             // Ed25519
    ] {
        assert_eq!(kernel_parses_signature(oid), known, "{oid}");
    }
}

#[test]
fn messages_are_lowercase_and_say_what_to_do() {
    let errors = [
        CertError::Empty,
        CertError::TooLarge {
            len: 70000,
            limit: MAX_INPUT_LEN,
        },
        CertError::UnrecognizedFormat,
        CertError::BadPem {
            reason: PemError::NoBeginLine,
        },
        CertError::NotDer {
            reason: DerError::NotSequence,
        },
        CertError::UnsupportedKey {
            alg: "Ed25519 (1.3.101.112)".to_string(),
        },
        CertError::UnsupportedCurve {
            curve: "NIST P-521 (1.3.132.0.35)".to_string(),
        },
        CertError::UnsupportedRsaSize { bits: 8192 },
        CertError::BadEcPoint { len: 33 },
        CertError::UnsupportedSignature {
            alg: "RSASSA-PSS (1.2.840.113549.1.1.10)".to_string(),
        },
        CertError::BadExtension { name: "keyUsage" },
        CertError::NoSubjectKeyId,
        CertError::ShortSubjectKeyId { len: 2 },
        CertError::NoDigitalSignatureUsage,
        CertError::KeyCertSignUsage,
        CertError::IsCa,
    ];
    for e in errors {
        let text = e.to_string();
        assert!(text.starts_with(|c: char| c.is_ascii_lowercase()), "{text}");
    }
    assert_eq!(
        CertError::NoSubjectKeyId.to_string(),
        "certificate has no subjectKeyIdentifier extension: the kernel names IMA/EVM keys by it; reissue the certificate with subjectKeyIdentifier=hash"
    );
    assert_eq!(
        CertError::TrailingData { len: 3 }
            .to_string()
            .split(':')
            .count(),
        1
    );
}

#[test]
fn display_for_logs() {
    let cert = ok(RSA_DER);
    let shown = cert.to_string();
    assert!(shown.starts_with("\"O=integrity-loader tests, CN=rsa2048\" (rsa2048, key id "));
    assert!(
        !format!("{cert:?}").contains("der:"),
        "Debug must not dump the DER"
    );
}

#[test]
fn times_show_as_x509_parser_shows_them() {
    use x509_parser::time::ASN1Time;
    // Leap days, centuries, the epoch, the ends of UTCTime and beyond.
    let mut times = vec![
        0i64,
        951_782_400,
        951_868_799,
        4_107_542_400,
        253_402_300_799,
    ];
    times.extend((0..2000).map(|i: i64| i * 126_230_400 + i * 3_607 % 86_400 - 1_000_000_000));
    for t in times {
        let theirs = ASN1Time::from_timestamp(t).unwrap().to_string();
        assert_eq!(super::show_time(t), theirs, "{t}");
    }
}

/// Our reader against x509-parser (a dev-dependency only) on every fixture
/// both can read: the same subject, validity, key and subjectKeyIdentifier.
#[test]
fn fields_agree_with_x509_parser() {
    use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/certs");
    let mut compared = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "der") {
            continue;
        }
        let der = std::fs::read(&path).unwrap();
        let Ok(([], theirs)) = X509Certificate::from_der(&der) else {
            assert!(
                cert::parse(&der).is_err(),
                "{} parsed by us only",
                path.display()
            );
            continue;
        };
        let ours = cert::parse(&der).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            ours.subject,
            theirs.subject().to_string(),
            "{}",
            path.display()
        );
        assert_eq!(ours.not_before, theirs.validity().not_before.timestamp());
        assert_eq!(ours.not_after, theirs.validity().not_after.timestamp());
        assert_eq!(
            ours.signature_algorithm,
            theirs.signature_algorithm.algorithm.to_id_string()
        );
        let spki = theirs.public_key();
        assert_eq!(
            ours.public_key.algorithm,
            spki.algorithm.algorithm.to_id_string()
        );
        assert_eq!(ours.public_key.key, &spki.subject_public_key.data[..]);
        let their_ski = theirs
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
                _ => None,
            });
        let our_ski = ours
            .extensions
            .iter()
            .find(|e| e.oid == OID_SKI)
            .map(|e| cert::subject_key_id(e.value).unwrap().to_vec());
        assert_eq!(our_ski, their_ski, "{}", path.display());
        compared += 1;
    }
    assert!(compared >= 8, "only {compared} fixtures compared");
}
