"""Independent Python reading of TPM 2.0 session crypto (Part 1 11.4.10, 19.6, 21),
built on hashlib/hmac and the `cryptography` package. Test-only, never shipped."""
import hashlib, hmac, struct
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

def _mask(out, bits):
    out = bytearray(out)
    if bits % 8:
        out[0] &= 0xff >> (8 - bits % 8)
    return bytes(out)

def kdfa(key, label, u, v, bits):
    n = (bits + 7) // 8
    out, i = b"", 0
    while len(out) < n:
        i += 1
        out += hmac.new(key, struct.pack(">I", i) + label.encode() + b"\0" + u + v + struct.pack(">I", bits), hashlib.sha256).digest()
    return _mask(out[:n], bits)

def kdfe(z, label, u, v, bits):
    n = (bits + 7) // 8
    out, i = b"", 0
    while len(out) < n:
        i += 1
        out += hashlib.sha256(struct.pack(">I", i) + z + label.encode() + b"\0" + u + v).digest()
    return _mask(out[:n], bits)

def trim(a):
    return a.rstrip(b"\0")

def ecdh_salt(tpm_x, tpm_y, d):
    priv = ec.derive_private_key(int.from_bytes(d, "big"), ec.SECP256R1())
    peer = ec.EllipticCurvePublicNumbers(int.from_bytes(tpm_x, "big"), int.from_bytes(tpm_y, "big"), ec.SECP256R1()).public_key()
    z = priv.exchange(ec.ECDH(), peer)
    pn = priv.public_key().public_numbers()
    ex, ey = pn.x.to_bytes(32, "big"), pn.y.to_bytes(32, "big")
    return kdfe(z, "SECRET", ex, tpm_x, 256), ex, ey

def session_key(salt, bind, nonce_tpm, nonce_caller):
    k = salt + trim(bind)
    return kdfa(k, "ATH", nonce_tpm, nonce_caller, 256) if k else b""

def cp_hash(cc, names, params):
    return hashlib.sha256(struct.pack(">I", cc) + b"".join(names) + params).digest()

def rp_hash(rc, cc, params):
    return hashlib.sha256(struct.pack(">II", rc, cc) + params).digest()

def cmd_hmac(skey, auth, cph, nonce_caller, nonce_tpm, attrs):
    return hmac.new(skey + trim(auth), cph + nonce_caller + nonce_tpm + bytes([attrs]), hashlib.sha256).digest()

def rsp_hmac(skey, auth, rph, nonce_tpm, nonce_caller, attrs):
    return hmac.new(skey + trim(auth), rph + nonce_tpm + nonce_caller + bytes([attrs]), hashlib.sha256).digest()

def cfb_key_iv(skey, auth, newer, older):
    return kdfa(skey + trim(auth), "CFB", newer, older, 256)

def cfb_encrypt(key_iv, data):
    e = Cipher(algorithms.AES(key_iv[:16]), modes.CFB(key_iv[16:])).encryptor()
    return e.update(data) + e.finalize()

def cfb_decrypt(key_iv, data):
    d = Cipher(algorithms.AES(key_iv[:16]), modes.CFB(key_iv[16:])).decryptor()
    return d.update(data) + d.finalize()

def policy_pcr(old, sel, values):
    return hashlib.sha256(old + struct.pack(">I", 0x17F) + sel + hashlib.sha256(b"".join(values)).digest()).digest()
