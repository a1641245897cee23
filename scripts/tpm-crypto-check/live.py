# Live check of the Python session crypto against swtpm; prints a JSON transcript
# whose values are hard-coded into crypto.rs tests. Test-only, never shipped.
import sys, os, socket, struct, json, hashlib
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tpmcrypto import *

port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port))

def xfer(cmd):
    s.sendall(cmd)
    hdr = b""
    while len(hdr) < 10:
        hdr += s.recv(10 - len(hdr))
    tag, size, rc = struct.unpack(">HII", hdr)
    body = b""
    while len(body) < size - 10:
        body += s.recv(size - 10 - len(body))
    return tag, rc, body

def b2(x): return struct.pack(">H", len(x)) + x
def u16(x): return struct.pack(">H", x)
def u32(x): return struct.pack(">I", x)

class R:
    def __init__(s_, b): s_.b, s_.o = b, 0
    def take(s_, n):
        v = s_.b[s_.o:s_.o + n]; s_.o += n; return v
    def u8(s_): return s_.take(1)[0]
    def u16(s_): return struct.unpack(">H", s_.take(2))[0]
    def u32(s_): return struct.unpack(">I", s_.take(4))[0]
    def b2(s_): return s_.take(s_.u16())

def cmd(cc, handles=b"", params=b"", sessions=None):
    body = handles
    if sessions is not None:
        body += u32(len(sessions)) + sessions
    body += params
    tag = 0x8002 if sessions is not None else 0x8001
    return struct.pack(">HII", tag, 10 + len(body), cc) + body

def check(rc, what):
    if rc != 0:
        raise SystemExit(f"{what}: rc=0x{rc:x}")

out = {}
# ReadPublic of the SRK and the sealed object.
def read_public(h):
    tag, rc, body = xfer(cmd(0x173, u32(h)))
    check(rc, "ReadPublic")
    r = R(body)
    pub = r.b2(); name = r.b2()
    return pub, name
srk_pub, srk_name = read_public(0x81000001)
p = R(srk_pub)
assert p.u16() == 0x0023 and p.u16() == 0x000b
p.u32(); p.b2()
alg = p.u16()
if alg != 0x10: p.u16(); p.u16()
sch = p.u16()
if sch != 0x10: p.u16()
assert p.u16() == 0x0003
kdf = p.u16()
if kdf != 0x10: p.u16()
tpm_x = p.b2(); tpm_y = p.b2()
assert len(tpm_x) == 32 and len(tpm_y) == 32
out["srk_x"], out["srk_y"] = tpm_x.hex(), tpm_y.hex()
_, seal_name = read_public(0x81000002)
out["seal_name"] = seal_name.hex()

# Salted HMAC session (bind NULL), AES-128-CFB, SHA-256.
d = hashlib.sha256(b"integrity-loader ephemeral test key").digest()
salt, ex, ey = ecdh_salt(tpm_x, tpm_y, d)
nonce_caller0 = hashlib.sha256(b"nonce caller 0").digest()
params = b2(nonce_caller0) + b2(b2(ex) + b2(ey)) + bytes([0x00]) + u16(0x0006) + u16(128) + u16(0x0043) + u16(0x000b)
tag, rc, body = xfer(cmd(0x176, u32(0x81000001) + u32(0x40000007), params))
check(rc, "StartAuthSession")
r = R(body); sh = r.u32(); nonce_tpm0 = r.b2()
out.update(ephemeral_d=d.hex(), ephemeral_x=ex.hex(), ephemeral_y=ey.hex(),
           nonce_caller0=nonce_caller0.hex(), nonce_tpm0=nonce_tpm0.hex(), salt=salt.hex())
skey = session_key(salt, b"", nonce_tpm0, nonce_caller0)
out["session_key"] = skey.hex()

# Unseal with the session: continueSession|encrypt; auth value given with a trailing zero.
auth = b"pass\0"
nc1 = hashlib.sha256(b"nonce caller 1").digest()
attrs = 0x41
cph = cp_hash(0x15E, [seal_name], b"")
hm = cmd_hmac(skey, auth, cph, nc1, nonce_tpm0, attrs)
sess = u32(sh) + b2(nc1) + bytes([attrs]) + b2(hm)
tag, rc, body = xfer(cmd(0x15E, u32(0x81000002), b"", sess))
check(rc, "Unseal")
r = R(body); psize = r.u32(); rparams = r.take(psize)
nt1 = r.b2(); rattrs = r.u8(); rhm = r.b2()
rph = rp_hash(0, 0x15E, rparams)
assert rsp_hmac(skey, auth, rph, nt1, nc1, rattrs) == rhm, "unseal response hmac"
enc = R(rparams).b2()
plain = cfb_decrypt(cfb_key_iv(skey, auth, nt1, nc1), enc)
out.update(unseal_nonce_caller=nc1.hex(), unseal_cmd_hmac=hm.hex(), unseal_rsp_params=rparams.hex(),
           unseal_nonce_tpm=nt1.hex(), unseal_rsp_attrs=rattrs, unseal_rsp_hmac=rhm.hex(), unseal_plain=plain.hex())
print("unsealed:", plain, file=sys.stderr)

# Hash with the same session as decrypt+encrypt (not for authorization): checks the
# command-direction CFB (the TPM hashes what it decrypted) and nonce rolling.
nc2 = hashlib.sha256(b"nonce caller 2").digest()
attrs = 0x61
msg = b"a message that is not a whole number of AES blocks long"
ct = cfb_encrypt(cfb_key_iv(skey, b"", nc2, nt1), msg)
hparams = b2(ct) + u16(0x000b) + u32(0x40000007)
cph = cp_hash(0x17D, [], hparams)
hm = cmd_hmac(skey, b"", cph, nc2, nt1, attrs)
sess = u32(sh) + b2(nc2) + bytes([attrs]) + b2(hm)
tag, rc, body = xfer(cmd(0x17D, b"", hparams, sess))
check(rc, "Hash")
r = R(body); psize = r.u32(); rparams = r.take(psize)
nt2 = r.b2(); rattrs = r.u8(); rhm = r.b2()
rph = rp_hash(0, 0x17D, rparams)
assert rsp_hmac(skey, b"", rph, nt2, nc2, rattrs) == rhm, "hash response hmac"
enc_digest = R(rparams).b2()
assert cfb_decrypt(cfb_key_iv(skey, b"", nt2, nc2), enc_digest) == hashlib.sha256(msg).digest(), "hash result"
out.update(hash_msg=msg.hex(), hash_nonce_caller=nc2.hex(), hash_cmd_params=hparams.hex(), hash_cmd_hmac=hm.hex(),
           hash_rsp_params=rparams.hex(), hash_nonce_tpm=nt2.hex(), hash_rsp_attrs=rattrs, hash_rsp_hmac=rhm.hex())
xfer(cmd(0x165, b"", u32(sh)))

# PolicyPCR in a trial session over PCRs 0 and 7 (SHA-256); PCR 7 was extended beforehand.
sel = u32(1) + u16(0x000b) + bytes([3, 0x81, 0x00, 0x00])
tag, rc, body = xfer(cmd(0x17E, b"", sel))
check(rc, "PCR_Read")
r = R(body); r.u32(); r.take(len(sel)); n = r.u32(); vals = [r.b2() for _ in range(n)]
tag, rc, body = xfer(cmd(0x176, u32(0x40000007) + u32(0x40000007), b2(bytes(16)) + u16(0) + bytes([0x03]) + u16(0x0010) + u16(0x000b)))
check(rc, "StartAuthSession trial")
ph = R(body).u32()
tag, rc, body = xfer(cmd(0x17F, u32(ph), b2(b"") + sel))
check(rc, "PolicyPCR")
tag, rc, body = xfer(cmd(0x189, u32(ph)))
check(rc, "PolicyGetDigest")
pd = R(body).b2()
assert pd == policy_pcr(bytes(32), sel, vals), "policy digest"
xfer(cmd(0x165, b"", u32(ph)))
out.update(pcr_selection=sel.hex(), pcr_values=[v.hex() for v in vals], policy_digest=pd.hex())
print(json.dumps(out, indent=1))
