//! The TPM 2.0 commands the loader and `seal` use, on top of `client`.

use super::client::{Auth, Request, Session, SessionKind, Tpm, TpmError};
use super::constants::{
    ALG_AES, ALG_CFB, ALG_SHA256, CAP_PCRS, CommandCode, ECC_NIST_P256, RH_NULL, RH_OWNER, SE_HMAC,
    SE_POLICY,
};
use super::crypto;
use super::pcr::{Banks, PcrSelection};
use super::public::{KeyDetail, Public};
use super::rsa::{self, RsaPublicKey};
use super::wire::{Reader, Writer};
use zeroize::Zeroizing;

fn malformed(command: CommandCode, why: impl Into<String>) -> TpmError {
    TpmError::Malformed {
        command: command.name(),
        why: why.into(),
    }
}

fn handle_name(h: u32) -> Vec<u8> {
    h.to_be_bytes().to_vec()
}

/// TPM2_Startup(CLEAR): needed on a simulator that was just powered on.
pub fn startup_clear(tpm: &mut Tpm) -> Result<(), TpmError> {
    let mut p = Writer::new();
    p.u16(0);
    match tpm.execute(
        Request::with_params(CommandCode::Startup, p.into_vec()),
        &mut [],
    ) {
        // Already started is fine.
        Err(TpmError::Rc { rc, .. }) if rc.0 == super::rc::INITIALIZE => Ok(()),
        other => other.map(|_| ()),
    }
}

/// TPM2_ReadPublic: the object's public area, checked against its Name.
pub fn read_public(tpm: &mut Tpm, handle: u32) -> Result<Public, TpmError> {
    const C: CommandCode = CommandCode::ReadPublic;
    let resp = tpm.execute(
        Request {
            handles: &[handle],
            ..Request::new(C)
        },
        &mut [],
    )?;
    let mut r = Reader::new(&resp.params);
    let public = r.tpm2b().map_err(|e| malformed(C, e.to_string()))?;
    let name = r.tpm2b().map_err(|e| malformed(C, e.to_string()))?;
    let public = Public::parse(public).map_err(|e| malformed(C, e.to_string()))?;
    if public.name() != name {
        return Err(malformed(C, "the Name does not match the public area"));
    }
    Ok(public)
}

/// The salt of a session salted to `salt_public`, and the `encryptedSalt`
/// that carries it: ECDH for an ECC P-256 key, RSA-OAEP for an RSA-2048 or
/// RSA-3072 key (Part 1, secret sharing). The public area came from the
/// TPM: its key is checked before use.
pub fn salt_for(
    salt_key: u32,
    salt_public: &Public,
) -> Result<(Zeroizing<Vec<u8>>, Vec<u8>), TpmError> {
    match &salt_public.detail {
        KeyDetail::Ecc { curve, x, y } => {
            let (ECC_NIST_P256, Ok(x), Ok(y)) = (
                *curve,
                <[u8; 32]>::try_from(x.as_slice()),
                <[u8; 32]>::try_from(y.as_slice()),
            ) else {
                return Err(TpmError::Crypto(format!(
                    "the parent {salt_key:#010x} is an ECC key but not on P-256 (curve {curve:#06x}); only P-256 can salt a session"
                )));
            };
            let salt = crypto::ecdh_salt(&x, &y).map_err(|e| TpmError::Crypto(e.to_string()))?;
            let mut point = Writer::new();
            point.tpm2b(&salt.ephemeral_x).tpm2b(&salt.ephemeral_y);
            Ok((salt.salt, point.into_vec()))
        }
        KeyDetail::Rsa {
            bits,
            exponent,
            modulus,
        } => {
            let key = RsaPublicKey::new(*bits, *exponent, modulus)
                .map_err(|e| TpmError::Crypto(format!("parent {salt_key:#010x}: {e}")))?;
            let salt = rsa::rsa_salt(&key).map_err(|e| TpmError::Crypto(e.to_string()))?;
            Ok((salt.salt, salt.encrypted))
        }
        KeyDetail::KeyedHash => Err(TpmError::Crypto(format!(
            "the parent {salt_key:#010x} is not an asymmetric key; an ECC P-256 or RSA storage key must salt the session"
        ))),
    }
}

/// TPM2_StartAuthSession salted to `salt_key` (ECC P-256 or RSA, see
/// [`salt_for`]), unbound, AES-128-CFB parameter encryption, SHA-256.
pub fn start_salted_session(
    tpm: &mut Tpm,
    salt_key: u32,
    salt_public: &Public,
    kind: SessionKind,
) -> Result<Session, TpmError> {
    const C: CommandCode = CommandCode::StartAuthSession;
    let start = std::time::Instant::now();
    let (salt, encrypted_salt) = salt_for(salt_key, salt_public)?;
    let nonce_caller = crypto::random_bytes(32).map_err(|e| TpmError::Crypto(e.to_string()))?;
    tpm.stats.salt += start.elapsed();
    let mut p = Writer::new();
    p.tpm2b(&nonce_caller).tpm2b(&encrypted_salt);
    p.u8(match kind {
        SessionKind::Hmac => SE_HMAC,
        SessionKind::Policy => SE_POLICY,
    });
    p.u16(ALG_AES).u16(128).u16(ALG_CFB);
    p.u16(ALG_SHA256);
    let resp = tpm.execute(
        Request {
            handles: &[salt_key, RH_NULL],
            params: p.into_vec(),
            response_handles: 1,
            ..Request::new(C)
        },
        &mut [],
    )?;
    let handle = resp.handle(C, "no session handle")?;
    let mut r = Reader::new(&resp.params);
    let nonce_tpm = r.tpm2b().map_err(|e| malformed(C, e.to_string()))?.to_vec();
    if nonce_tpm.len() < 16 {
        return Err(malformed(C, "nonceTPM shorter than 16 bytes"));
    }
    let key = crypto::session_key(&salt, &[], &nonce_tpm, &nonce_caller);
    Ok(Session::new(handle, kind, key, nonce_tpm))
}

/// TPM2_PolicyPCR with the TPM's current values of `pcrs`.
pub fn policy_pcr(tpm: &mut Tpm, session: &Session, pcrs: &PcrSelection) -> Result<(), TpmError> {
    let mut p = Writer::new();
    p.tpm2b(&[]).bytes(&pcrs.marshal());
    tpm.execute(
        Request {
            handles: &[session.handle],
            params: p.into_vec(),
            ..Request::new(CommandCode::PolicyPcr)
        },
        &mut [],
    )
    .map(|_| ())
}

/// TPM2_PolicyGetDigest.
pub fn policy_get_digest(tpm: &mut Tpm, session: &Session) -> Result<Vec<u8>, TpmError> {
    const C: CommandCode = CommandCode::PolicyGetDigest;
    let resp = tpm.execute(
        Request {
            handles: &[session.handle],
            ..Request::new(C)
        },
        &mut [],
    )?;
    let mut r = Reader::new(&resp.params);
    Ok(r.tpm2b().map_err(|e| malformed(C, e.to_string()))?.to_vec())
}

/// TPM2_Load under `parent` (authorized with its empty password).
/// Returns the transient handle and the object's Name, checked against the
/// public area we sent.
pub fn load(
    tpm: &mut Tpm,
    parent: u32,
    parent_name: &[u8],
    private_2b: &[u8],
    public_2b: &[u8],
    public: &Public,
) -> Result<(u32, Vec<u8>), TpmError> {
    const C: CommandCode = CommandCode::Load;
    let mut p = Writer::new();
    p.bytes(private_2b).bytes(public_2b);
    let resp = tpm.execute(
        Request {
            handles: &[parent],
            names: &[parent_name],
            params: p.into_vec(),
            response_handles: 1,
            ..Request::new(C)
        },
        &mut [Auth::Password(&[])],
    )?;
    let handle = resp.handle(C, "no object handle")?;
    let mut r = Reader::new(&resp.params);
    let name = r.tpm2b().map_err(|e| malformed(C, e.to_string()))?.to_vec();
    if name != public.name() {
        let _ = flush(tpm, handle);
        return Err(malformed(
            C,
            "the loaded object's Name differs from its public area",
        ));
    }
    Ok((handle, name))
}

/// TPM2_Unseal with a policy session; with `encrypt` the TPM encrypts the
/// answer on the bus.
pub fn unseal(
    tpm: &mut Tpm,
    item: u32,
    item_name: &[u8],
    session: &mut Session,
    encrypt: bool,
) -> Result<Zeroizing<Vec<u8>>, TpmError> {
    let attrs = if encrypt {
        super::client::ATTR_ENCRYPT
    } else {
        0
    };
    const C: CommandCode = CommandCode::Unseal;
    let resp = tpm.execute(
        Request {
            handles: &[item],
            names: &[item_name],
            ..Request::new(C)
        },
        &mut [Auth::Session {
            session,
            attrs,
            auth_value: &[],
        }],
    )?;
    let mut r = Reader::new(&resp.params);
    let data = r.tpm2b().map_err(|e| malformed(C, e.to_string()))?;
    Ok(Zeroizing::new(data.to_vec()))
}

/// TPM2_FlushContext of a transient object or a session.
pub fn flush(tpm: &mut Tpm, handle: u32) -> Result<(), TpmError> {
    let mut p = Writer::new();
    p.u32(handle);
    tpm.execute(
        Request::with_params(CommandCode::FlushContext, p.into_vec()),
        &mut [],
    )
    .map(|_| ())
}

/// TPM2_PCR_Read of the selected sha256 PCRs, in ascending order (the TPM
/// returns at most 8 per call, so this loops).
pub fn pcr_read(tpm: &mut Tpm, pcrs: &PcrSelection) -> Result<Vec<(u8, [u8; 32])>, TpmError> {
    const C: CommandCode = CommandCode::PcrRead;
    let mut out = Vec::new();
    let wanted: Vec<u8> = pcrs.indices().collect();
    for chunk in wanted.chunks(8) {
        let Some(sel) = PcrSelection::from_indices(chunk) else {
            continue;
        };
        let resp = tpm.execute(Request::with_params(C, sel.marshal()), &mut [])?;
        let mut r = Reader::new(&resp.params);
        let _update_counter = r.u32().map_err(|e| malformed(C, e.to_string()))?;
        let (got, rest) = PcrSelection::unmarshal(r.rest()).ok_or_else(|| {
            malformed(
                C,
                format!("no sha256 PCRs in the answer for {sel} (has the TPM a sha256 bank?)"),
            )
        })?;
        if got != sel {
            return Err(malformed(
                C,
                format!("asked for {sel}, the TPM answered {got}"),
            ));
        }
        let mut r = Reader::new(rest);
        let count = r.u32().map_err(|e| malformed(C, e.to_string()))? as usize;
        if count != chunk.len() {
            return Err(malformed(
                C,
                format!("{count} digests for {} PCRs", chunk.len()),
            ));
        }
        for pcr in chunk {
            let d = r.tpm2b().map_err(|e| malformed(C, e.to_string()))?;
            let d: [u8; 32] = d
                .try_into()
                .map_err(|_| malformed(C, "digest is not 32 bytes"))?;
            out.push((*pcr, d));
        }
    }
    Ok(out)
}

/// TPM2_GetCapability(TPM_CAP_PCRS): the PCR banks the TPM has allocated.
pub fn pcr_banks(tpm: &mut Tpm) -> Result<Banks, TpmError> {
    const C: CommandCode = CommandCode::GetCapability;
    let mut p = Writer::new();
    p.u32(CAP_PCRS).u32(0).u32(1);
    let resp = tpm.execute(Request::with_params(C, p.into_vec()), &mut [])?;
    let mut r = Reader::new(&resp.params);
    let _more_data = r.u8().map_err(|e| malformed(C, e.to_string()))?;
    let capability = r.u32().map_err(|e| malformed(C, e.to_string()))?;
    if capability != CAP_PCRS {
        return Err(malformed(
            C,
            format!("asked for TPM_CAP_PCRS, the TPM answered capability {capability:#x}"),
        ));
    }
    Banks::unmarshal(r.rest()).ok_or_else(|| malformed(C, "bad list of PCR banks"))
}

/// TPM2_PCR_Extend of a sha256 PCR (tests and `pcrlock`).
pub fn pcr_extend(tpm: &mut Tpm, pcr: u32, digest: &[u8; 32]) -> Result<(), TpmError> {
    let mut p = Writer::new();
    p.u32(1).u16(ALG_SHA256).bytes(digest);
    tpm.execute(
        Request {
            handles: &[pcr],
            names: &[&handle_name(pcr)],
            params: p.into_vec(),
            ..Request::new(CommandCode::PcrExtend)
        },
        &mut [Auth::Password(&[])],
    )
    .map(|_| ())
}

/// TPM2_GetRandom.
pub fn get_random(tpm: &mut Tpm, n: u16) -> Result<Zeroizing<Vec<u8>>, TpmError> {
    const C: CommandCode = CommandCode::GetRandom;
    let mut p = Writer::new();
    p.u16(n);
    let resp = tpm.execute(Request::with_params(C, p.into_vec()), &mut [])?;
    let mut r = Reader::new(&resp.params);
    Ok(Zeroizing::new(
        r.tpm2b().map_err(|e| malformed(C, e.to_string()))?.to_vec(),
    ))
}

/// TPM2_CreatePrimary in the owner hierarchy (empty owner auth unless given).
pub fn create_primary(
    tpm: &mut Tpm,
    owner_auth: &[u8],
    template: &[u8],
) -> Result<(u32, Public), TpmError> {
    const C: CommandCode = CommandCode::CreatePrimary;
    let mut p = Writer::new();
    p.u16(4).tpm2b(&[]).tpm2b(&[]); // inSensitive: empty userAuth, empty data
    p.tpm2b(template).tpm2b(&[]).u32(0); // outsideInfo, creationPCR (none)
    let resp = tpm.execute(
        Request {
            handles: &[RH_OWNER],
            names: &[&handle_name(RH_OWNER)],
            params: p.into_vec(),
            response_handles: 1,
            ..Request::new(C)
        },
        &mut [Auth::Password(owner_auth)],
    )?;
    let handle = resp.handle(C, "no handle")?;
    let mut r = Reader::new(&resp.params);
    let public = r.tpm2b().map_err(|e| malformed(C, e.to_string()))?;
    Public::parse(public)
        .map(|p| (handle, p))
        .map_err(|e| malformed(C, e.to_string()))
}

/// TPM2_EvictControl: makes a transient object persistent at `persistent`.
pub fn evict_control(
    tpm: &mut Tpm,
    owner_auth: &[u8],
    object: u32,
    object_name: &[u8],
    persistent: u32,
) -> Result<(), TpmError> {
    let mut p = Writer::new();
    p.u32(persistent);
    tpm.execute(
        Request {
            handles: &[RH_OWNER, object],
            names: &[&handle_name(RH_OWNER), object_name],
            params: p.into_vec(),
            ..Request::new(CommandCode::EvictControl)
        },
        &mut [Auth::Password(owner_auth)],
    )
    .map(|_| ())
}

/// TPM2_Create of a sealed-data object holding `secret` under `parent`,
/// authorized by a salted HMAC session that also encrypts the secret on
/// its way to the TPM. Returns TPM2B_PRIVATE and TPM2B_PUBLIC (with sizes).
pub fn create_sealed(
    tpm: &mut Tpm,
    parent: u32,
    parent_name: &[u8],
    session: &mut Session,
    secret: &[u8],
    template: &[u8],
) -> Result<(Vec<u8>, Vec<u8>), TpmError> {
    const C: CommandCode = CommandCode::Create;
    let mut sensitive = Writer::new();
    sensitive.tpm2b(&[]).tpm2b(secret);
    let mut p = Writer::new();
    p.tpm2b(sensitive.as_slice()); // first parameter: encrypted on the bus
    p.tpm2b(template).tpm2b(&[]).u32(0);
    let params = p.into_vec();
    drop(sensitive);
    let resp = tpm.execute(
        Request {
            handles: &[parent],
            names: &[parent_name],
            params,
            ..Request::new(C)
        },
        &mut [Auth::Session {
            session,
            attrs: super::client::ATTR_DECRYPT | super::client::ATTR_CONTINUE,
            auth_value: &[],
        }],
    )?;
    let mut r = Reader::new(&resp.params);
    let private = r
        .tpm2b_with_size()
        .map_err(|e| malformed(C, e.to_string()))?
        .to_vec();
    let public = r
        .tpm2b_with_size()
        .map_err(|e| malformed(C, e.to_string()))?
        .to_vec();
    Ok((private, public))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(detail: KeyDetail) -> Public {
        Public {
            object_type: 0,
            name_alg: super::ALG_SHA256,
            attributes: 0,
            auth_policy: Vec::new(),
            detail,
            bytes: Vec::new(),
        }
    }

    fn salt_error(detail: KeyDetail) -> String {
        match salt_for(0x8100_0001, &public(detail)) {
            Err(TpmError::Crypto(m)) => m,
            other => panic!("expected a crypto error, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn hostile_salt_keys_are_refused_before_use() {
        let rsa = |bits, exponent, modulus: Vec<u8>| KeyDetail::Rsa {
            bits,
            exponent,
            modulus,
        };
        let mut n = vec![0xc3; 256];
        n[255] = 0x01;
        let msg = salt_error(rsa(1024, 0, n[..128].to_vec()));
        assert!(
            msg.contains("0x81000001") && msg.contains("1024 bits"),
            "{msg}"
        );
        assert!(salt_error(rsa(2048, 0, n[..255].to_vec())).contains("255 bytes"));
        assert!(salt_error(rsa(2048, 1, n.clone())).contains("exponent 1"));
        let mut even = n.clone();
        even[255] = 0x02;
        assert!(salt_error(rsa(2048, 0, even)).contains("even"));
        let ecc = |curve, x: Vec<u8>| KeyDetail::Ecc {
            curve,
            x,
            y: vec![1; 32],
        };
        assert!(salt_error(ecc(0x0004, vec![1; 32])).contains("not on P-256"));
        assert!(salt_error(ecc(0x0003, vec![1; 31])).contains("not on P-256"));
        assert!(salt_error(ecc(0x0003, vec![1; 32])).contains("not on the P-256 curve"));
        assert!(salt_error(KeyDetail::KeyedHash).contains("not an asymmetric key"));
    }

    #[test]
    fn an_rsa_salt_is_one_modulus_long() {
        let mut n = vec![0xc3; 256];
        n[255] = 0x01;
        let detail = KeyDetail::Rsa {
            bits: 2048,
            exponent: 0,
            modulus: n,
        };
        let (salt, encrypted) = salt_for(0x8100_0001, &public(detail)).unwrap();
        assert_eq!((salt.len(), encrypted.len()), (32, 256));
    }
}
