//! Interoperability with independent TPM clients on a real software TPM
//! (swtpm), both ways:
//!
//! - tss-esapi (the Rust binding of tpm2-tss's ESAPI, Debian's libtss2)
//!   creates the SRK, computes a PCR policy in a trial session and seals a
//!   kmk; `integrity-loader load` unseals it, from tpm2-tools' .pub/.priv
//!   pair and from a TSS2 key file. A kmk sealed by `integrity-loader seal`
//!   unseals with tss-esapi (PolicyPCR in a salted policy session, Unseal).
//! - An RSA-2048 storage key made by tpm2-tools: our policy session is
//!   salted to it with RSA-OAEP, a kmk sealed under it by tpm2-tools loads,
//!   `seal --parent` seals under it, and tss-esapi unseals what we sealed.
//!   RSA-3072 works the same; RSA-1024 is refused before a session starts.

mod common;
#[path = "common/swtpm.rs"]
mod swtpm;

use common::*;
use integrity_loader::tpm::client::Tpm;
use integrity_loader::tpm::keyfile;
use integrity_loader::tpm::pcr::PcrSelection;
use integrity_loader::tpm::tcti;
use integrity_loader::tpm::transport::{self, Recording};
use integrity_loader::tpm::unseal::{self, Parent};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use swtpm::Swtpm;
use tss_esapi::Context;
use tss_esapi::attributes::{ObjectAttributesBuilder, SessionAttributesBuilder};
use tss_esapi::constants::SessionType;
use tss_esapi::handles::{KeyHandle, ObjectHandle, PersistentTpmHandle, SessionHandle, TpmHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::dynamic_handles::Persistent;
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::resource_handles::{Hierarchy, Provision};
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{
    Digest, EccPoint, KeyedHashScheme, PcrSelectionList, PcrSelectionListBuilder, PcrSlot, Private,
    Public, PublicBuffer, PublicBuilder, PublicEccParametersBuilder, PublicKeyedHashParameters,
    SensitiveData, SymmetricDefinition, SymmetricDefinitionObject,
};
use tss_esapi::tcti_ldr::TctiNameConf;
use tss_esapi::traits::{Marshall, UnMarshall};

const KMK: &[u8; 32] = b"kmk sealed by another TSS, 32 B!";
const SRK: u32 = 0x8100_0001;
const RSA_SRK: u32 = 0x8100_0002;

// ---- tss-esapi side ----

fn esapi(tpm: &Swtpm) -> Context {
    let tcti = TctiNameConf::from_str(&tpm.tcti()).expect("tss-esapi parses the TCTI");
    Context::new(tcti).expect("tss-esapi connects to the swtpm")
}

fn pcr_list() -> PcrSelectionList {
    PcrSelectionListBuilder::new()
        .with_selection(HashingAlgorithm::Sha256, &[PcrSlot::Slot7, PcrSlot::Slot11])
        .build()
        .unwrap()
}

fn persistent_key(ctx: &mut Context, handle: u32) -> KeyHandle {
    let tpm_handle = TpmHandle::Persistent(PersistentTpmHandle::new(handle).unwrap());
    ctx.tr_from_tpm_public(tpm_handle).unwrap().into()
}

/// The TCG ECC P-256 SRK (attributes 0x30472, AES-128-CFB, empty unique),
/// created and made persistent at 0x81000001 by tss-esapi.
fn esapi_provision_srk(ctx: &mut Context) -> KeyHandle {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_no_da(true)
        .with_restricted(true)
        .with_decrypt(true)
        .build()
        .unwrap();
    let public = PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_ecc_parameters(
            PublicEccParametersBuilder::new_restricted_decryption_key(
                SymmetricDefinitionObject::AES_128_CFB,
                EccCurve::NistP256,
            )
            .build()
            .unwrap(),
        )
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
        .unwrap();
    let primary = ctx
        .execute_with_nullauth_session(|c| {
            c.create_primary(Hierarchy::Owner, public, None, None, None, None)
        })
        .unwrap();
    let target = Persistent::Persistent(PersistentTpmHandle::new(SRK).unwrap());
    ctx.execute_with_nullauth_session(|c| {
        c.evict_control(Provision::Owner, primary.key_handle.into(), target)
    })
    .unwrap();
    ctx.flush_context(primary.key_handle.into()).unwrap();
    persistent_key(ctx, SRK)
}

/// A session salted to `parent` (so secrets cross the bus encrypted), with
/// parameter encryption both ways.
fn salted_session(ctx: &mut Context, parent: KeyHandle, kind: SessionType) -> AuthSession {
    let session = ctx
        .start_auth_session(
            Some(parent),
            None,
            None,
            kind,
            SymmetricDefinition::AES_128_CFB,
            HashingAlgorithm::Sha256,
        )
        .unwrap()
        .unwrap();
    let (attributes, mask) = SessionAttributesBuilder::new()
        .with_continue_session(true)
        .with_decrypt(kind == SessionType::Hmac)
        .with_encrypt(true)
        .build();
    ctx.tr_sess_set_attributes(session, attributes, mask)
        .unwrap();
    session
}

fn flush_session(ctx: &mut Context, session: AuthSession) {
    ctx.flush_context(SessionHandle::from(session).into())
        .unwrap();
}

/// PolicyPCR(sha256:7,11) in a trial session: the digest of the PCRs'
/// current values, as the TPM computes it.
fn esapi_trial_policy(ctx: &mut Context) -> Digest {
    let trial = ctx
        .start_auth_session(
            None,
            None,
            None,
            SessionType::Trial,
            SymmetricDefinition::AES_128_CFB,
            HashingAlgorithm::Sha256,
        )
        .unwrap()
        .unwrap();
    let policy = PolicySession::try_from(trial).unwrap();
    ctx.policy_pcr(policy, Digest::default(), pcr_list())
        .unwrap();
    let digest = ctx.policy_get_digest(policy).unwrap();
    flush_session(ctx, trial);
    digest
}

/// Seals KMK under `parent` to `policy` (fixedTPM | fixedParent | noDA, no
/// userWithAuth, as our own seal does), through a salted HMAC session.
/// Returns the tpm2-tools files: marshalled TPM2B_PUBLIC and TPM2B_PRIVATE.
fn esapi_seal(ctx: &mut Context, parent: KeyHandle, policy: Digest) -> (Vec<u8>, Vec<u8>) {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_no_da(true)
        .build()
        .unwrap();
    let public = PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::KeyedHash)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_auth_policy(policy)
        .with_keyed_hash_parameters(PublicKeyedHashParameters::new(KeyedHashScheme::Null))
        .with_keyed_hash_unique_identifier(Digest::default())
        .build()
        .unwrap();
    let session = salted_session(ctx, parent, SessionType::Hmac);
    let created = ctx
        .execute_with_session(Some(session), |c| {
            c.create(
                parent,
                public,
                None,
                Some(SensitiveData::try_from(KMK.to_vec()).unwrap()),
                None,
                None,
            )
        })
        .unwrap();
    flush_session(ctx, session);
    let public_2b = PublicBuffer::try_from(created.out_public)
        .unwrap()
        .marshall()
        .unwrap();
    let private = created.out_private.value();
    let private_2b = [&(private.len() as u16).to_be_bytes()[..], private].concat();
    (public_2b, private_2b)
}

/// Unseals a blob with tss-esapi: Load under `parent`, a policy session
/// salted to `parent`, PolicyPCR(sha256:7,11), Unseal with the answer
/// encrypted. Every handle is flushed.
fn esapi_unseal(ctx: &mut Context, parent: KeyHandle, blob: &keyfile::SealedBlob) -> Vec<u8> {
    let public = Public::unmarshall(blob.public_area()).unwrap();
    let private = Private::try_from(blob.private[2..].to_vec()).unwrap();
    let item = ctx
        .execute_with_nullauth_session(|c| c.load(parent, private, public))
        .unwrap();
    let session = salted_session(ctx, parent, SessionType::Policy);
    ctx.policy_pcr(
        PolicySession::try_from(session).unwrap(),
        Digest::default(),
        pcr_list(),
    )
    .unwrap();
    let data = ctx
        .execute_with_session(Some(session), |c| c.unseal(ObjectHandle::from(item)))
        .unwrap();
    flush_session(ctx, session);
    ctx.flush_context(item.into()).unwrap();
    data.value().to_vec()
}

// ---- integrity-loader side ----

/// A root whose configuration points `load` at this swtpm and `blob_path`,
/// without the PCR lock (tss-esapi unseals the same blob afterwards; the
/// lock has tests/pcr_lock.rs).
fn load_fixture(tpm: &Swtpm, name: &str, blob_path: &str, parent: u32) -> Fixture {
    let f = Fixture::new(name);
    f.write(
        "/etc/integrity-loader.conf",
        format!(
            "MASTERKEYTYPE=tpm2\nMASTERKEY={blob_path}\nTPM={}\nTPM2_PCRS=sha256:7,11\nTPM2_PARENT={parent:#010x}\nTPM2_PCRLOCK=no\n",
            tpm.tcti()
        ),
    );
    f
}

/// Runs `load` and returns the kmk it put in the keyring.
fn load_kmk(f: &Fixture) -> integrity_loader::secret::Secret {
    let r = f.run(&["load", "-v"]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains("loaded user key kmk (32 bytes, unsealed by the TPM)");
    r.assert_contains("TPM: 6 commands");
    let kmk = f.find("user", "kmk").expect("kmk in the keyring");
    integrity_loader::keyring::read_secret(kmk).unwrap()
}

fn pcrs() -> PcrSelection {
    PcrSelection::parse("sha256:7,11").unwrap()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A sha256 PCR's value after one extend from zeros with `byte` x 32.
fn extended(byte: u8) -> [u8; 32] {
    use sha2::{Digest as _, Sha256};
    Sha256::new()
        .chain_update([0u8; 32])
        .chain_update([byte; 32])
        .finalize()
        .into()
}

fn extend(tpm: &Swtpm, pcr: u32, byte: u8) {
    let digest: String = std::iter::repeat_n(format!("{byte:02x}"), 32).collect();
    tpm.tool(&["tpm2_pcrextend", &format!("{pcr}:sha256={digest}")]);
}

#[test]
fn load_unseals_a_kmk_sealed_by_tss_esapi() {
    let tpm = Swtpm::start("esapi-seal");
    // PCRs that are not all zeros, so the policy binds something.
    extend(&tpm, 7, 0x17);
    extend(&tpm, 11, 0x11);
    let (public, private) = {
        let mut ctx = esapi(&tpm);
        let srk = esapi_provision_srk(&mut ctx);
        let policy = esapi_trial_policy(&mut ctx);
        // Our policy arithmetic agrees with the TPM's trial session.
        let values = [extended(0x17), extended(0x11)];
        assert_eq!(
            policy.value(),
            integrity_loader::tpm::seal::pcr_policy(&pcrs(), &values)
        );
        esapi_seal(&mut ctx, srk, policy)
    };

    // tpm2-tools' pair, TPM2_PARENT naming the SRK.
    let f = load_fixture(&tpm, "esapi-pair", "/etc/keys/kmk.pub", SRK);
    f.write("/etc/keys/kmk.pub", &public);
    f.write("/etc/keys/kmk.priv", &private);
    assert_eq!(load_kmk(&f).expose(), KMK);

    // The same pair as a TSS2 key file, encoded by tpm2-tools.
    std::fs::write(tpm.path("esapi.pub"), &public).unwrap();
    std::fs::write(tpm.path("esapi.priv"), &private).unwrap();
    tpm.tool(&[
        "tpm2_encodeobject",
        "-C",
        "0x81000001",
        "-u",
        &tpm.path("esapi.pub"),
        "-r",
        &tpm.path("esapi.priv"),
        "-o",
        &tpm.path("esapi.pem"),
    ]);
    let g = load_fixture(&tpm, "esapi-tss2", "/etc/keys/kmk.pem", SRK);
    g.write("/etc/keys/kmk.pem", tpm.read("esapi.pem"));
    assert_eq!(load_kmk(&g).expose(), KMK);

    // Nothing left behind in the TPM by either client.
    let left = tpm.tool(&["tpm2_getcap", "handles-transient"]);
    assert!(left.trim().is_empty(), "transient handles left: {left}");
}

/// `integrity-loader seal` under `parent` (creating the ECC SRK when the
/// handle is empty), then `load`: the kmk, and the blob as written.
fn seal_and_load(tpm: &Swtpm, name: &str, parent: u32) -> (Vec<u8>, keyfile::SealedBlob) {
    let f = Fixture::new(name);
    f.write(
        "/etc/integrity-loader.conf",
        format!("TPM={}\n", tpm.tcti()),
    );
    let r = f.run(&["seal", "--parent", &format!("{parent:#010x}")]);
    assert_eq!(r.code, 0, "{}", r.output());
    r.assert_contains(&format!("under {parent:#010x}"));
    f.write(
        "/etc/integrity-loader.conf",
        format!(
            "TPM={}\nMASTERKEYTYPE=tpm2\nMASTERKEY=/etc/keys/kmk-tpm2.pem\nTPM2_PCRLOCK=no\n",
            tpm.tcti()
        ),
    );
    let kmk = load_kmk(&f).expose().to_vec();
    let pem = std::fs::read(f.root().join("etc/keys/kmk-tpm2.pem")).unwrap();
    let blob = keyfile::parse_tss2(&pem).unwrap();
    assert_eq!(blob.parent, parent);
    (kmk, blob)
}

#[test]
fn tss_esapi_unseals_a_kmk_sealed_by_integrity_loader() {
    let tpm = Swtpm::start("esapi-unseal");
    extend(&tpm, 11, 0x42);
    let (kmk, blob) = seal_and_load(&tpm, "esapi-unseal", SRK);
    let mut ctx = esapi(&tpm);
    let srk = persistent_key(&mut ctx, SRK);
    assert_eq!(esapi_unseal(&mut ctx, srk, &blob), kmk);
    drop(ctx);
    let left = tpm.tool(&["tpm2_getcap", "handles-transient"]);
    assert!(left.trim().is_empty(), "transient handles left: {left}");
}

// ---- RSA storage key ----

/// Unseals with our client over a recording transport: the kmk, and what
/// crossed the bus.
fn recorded_unseal(tpm: &Swtpm, blob: &keyfile::SealedBlob, parent: u32) -> (Vec<u8>, Vec<u8>) {
    let t = tcti::parse(&tpm.tcti()).unwrap();
    let inner = transport::open(&t, Duration::from_secs(10)).unwrap();
    let record = Arc::new(Mutex::new(Vec::new()));
    let mut c = Tpm::new(Box::new(Recording::new(inner, record.clone())));
    let secret = unseal::unseal(&mut c, blob, Parent::unpinned(parent), &pcrs()).unwrap();
    assert_eq!(c.stats.commands, 6);
    let traffic = record.lock().unwrap().clone();
    (secret.expose().to_vec(), traffic)
}

#[test]
fn rsa_srk_from_tpm2_tools_salts_the_session() {
    let tpm = Swtpm::start("rsa-srk");
    tpm.provision_primary("rsa2048", "0x81000002");
    let pem = tpm.seal_with_tools_under("0x81000002", KMK, "sha256:7,11");
    let blob = keyfile::parse_tss2(&pem).unwrap();
    assert_eq!(blob.parent, RSA_SRK);

    let (secret, traffic) = recorded_unseal(&tpm, &blob, RSA_SRK);
    assert_eq!(secret, KMK);
    assert!(!contains(&traffic, &KMK[..8]), "the kmk crossed the bus");
    // StartAuthSession carried a 256-byte OAEP-encrypted salt: 10 header +
    // 8 handles + 34 nonce + 258 salt + 1 type + 6 symmetric + 2 hash.
    assert!(
        contains(&traffic, &[0x80, 0x01, 0, 0, 0x01, 0x3f, 0, 0, 0x01, 0x76]),
        "no RSA-salted StartAuthSession on the bus"
    );

    // The binary: the pair with TPM2_PARENT, and the key file naming it.
    let f = load_fixture(&tpm, "rsa-pair", "/etc/keys/kmk.pub", RSA_SRK);
    f.write("/etc/keys/kmk.pub", tpm.read("0x81000002.pub"));
    f.write("/etc/keys/kmk.priv", tpm.read("0x81000002.priv"));
    assert_eq!(load_kmk(&f).expose(), KMK);
    let g = load_fixture(&tpm, "rsa-tss2", "/etc/keys/kmk.pem", SRK);
    g.write("/etc/keys/kmk.pem", &pem);
    assert_eq!(load_kmk(&g).expose(), KMK);
}

#[test]
fn seal_under_an_rsa_srk_and_tss_esapi_unseals() {
    let tpm = Swtpm::start("rsa-seal");
    tpm.provision_primary("rsa2048", "0x81000002");
    let (kmk, blob) = seal_and_load(&tpm, "rsa-seal", RSA_SRK);
    let mut ctx = esapi(&tpm);
    let parent = persistent_key(&mut ctx, RSA_SRK);
    assert_eq!(esapi_unseal(&mut ctx, parent, &blob), kmk);
}

#[test]
fn an_rsa_3072_srk_works_too() {
    let tpm = Swtpm::start("rsa-3072");
    tpm.provision_primary("rsa3072", "0x81000003");
    let pem = tpm.seal_with_tools_under("0x81000003", KMK, "sha256:7,11");
    let blob = keyfile::parse_tss2(&pem).unwrap();
    let (secret, traffic) = recorded_unseal(&tpm, &blob, 0x8100_0003);
    assert_eq!(secret, KMK);
    // A 384-byte salt: StartAuthSession is 128 bytes longer (0x1bf).
    assert!(contains(
        &traffic,
        &[0x80, 0x01, 0, 0, 0x01, 0xbf, 0, 0, 0x01, 0x76]
    ));
}

#[test]
fn an_rsa_1024_parent_is_refused() {
    let tpm = Swtpm::start("rsa-1024");
    tpm.provision_primary("rsa1024", "0x81000003");
    let pem = tpm.seal_with_tools_under("0x81000003", KMK, "sha256:7,11");
    let f = load_fixture(&tpm, "rsa-1024", "/etc/keys/kmk.pem", SRK);
    f.write("/etc/keys/kmk.pem", &pem);
    let r = f.run(&["load"]);
    assert_eq!(r.code, 1, "{}", r.output());
    r.assert_contains(
        "session crypto: parent 0x81000003: the RSA salt key has 1024 bits; only 2048- and 3072-bit keys are supported",
    );
    assert!(f.find("user", "kmk").is_none());
}
