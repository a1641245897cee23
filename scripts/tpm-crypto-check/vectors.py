# Offline vectors: the Python reading above on fixed inputs; hex goes into crypto.rs tests.
import sys; sys.path.insert(0, "/tmp/crypto_check")
from tpmcrypto import *
h = lambda b: b.hex()
salt = bytes(range(0x20, 0x40)); bind = b"bind-auth\0\0"
nt = bytes(range(0x40, 0x60)); nc = bytes(range(0x60, 0x80))
sk = session_key(salt, bind, nt, nc)
print("session_key", h(sk))
print("session_key_bind_only", h(session_key(b"", b"pw\0", nt, nc)))
names = [bytes.fromhex("000b") + bytes(range(32)), bytes.fromhex("40000001")]
params = b"\x00\x05hello\x00\x0b"
cph = cp_hash(0x15E, names, params); print("cp_hash", h(cph))
rph = rp_hash(0, 0x15E, b"\x00\x03abc"); print("rp_hash", h(rph))
print("cmd_hmac", h(cmd_hmac(sk, b"pass\0\0", cph, nc, nt, 0x61)))
print("rsp_hmac", h(rsp_hmac(sk, b"pass", rph, nt, nc, 0x41)))
kiv = cfb_key_iv(sk, b"pass\0", nc, nt); print("cfb_key_iv", h(kiv))
data = bytes(range(37)); print("cfb_ct", h(cfb_encrypt(kiv, data)))
print("kdfa_long_key", h(kdfa(bytes(range(100)), "CFB", b"u", b"", 600)))
print("kdfa_zero_bits", h(kdfa(b"k", "X", b"", b"", 0)))
sel = bytes.fromhex("00000001000b03800000")
vals = [bytes([1]) * 32, bytes([2]) * 32]
print("policy_pcr", h(policy_pcr(bytes(32), sel, vals)))
# Trailing zeros only change an HMAC once sessionKey || authValue is longer than one block.
long_auth = b"A" * 40 + b"\0" * 10
print("cmd_hmac_long_auth", h(cmd_hmac(sk, long_auth, cph, nc, nt, 0x21)))
print("cfb_key_iv_long_auth", h(cfb_key_iv(sk, long_auth, nc, nt)))
