#!/bin/bash
# Starts a private swtpm, provisions an ECC SRK and a sealed object with tpm2-tools,
# runs live.py against it, and stops the swtpm it started.
set -euo pipefail
P=${1:-24321}
D=$(mktemp -d)
swtpm socket --tpm2 --server type=tcp,port=$P,bindaddr=127.0.0.1 --ctrl type=tcp,port=$((P+1)),bindaddr=127.0.0.1 \
  --tpmstate dir=$D --flags not-need-init,startup-clear --pid file=$D/pid &
SW=$!
trap 'kill $SW 2>/dev/null || true' EXIT
sleep 1
export TPM2TOOLS_TCTI=swtpm:host=127.0.0.1,port=$P
tpm2_createprimary -Q -C o -G ecc -c $D/srk.ctx
tpm2_evictcontrol -Q -C o -c $D/srk.ctx 0x81000001
tpm2_flushcontext -t
printf 'integrity-loader test secret' > $D/secret
tpm2_create -Q -C 0x81000001 -p hex:7061737300 -i $D/secret -u $D/seal.pub -r $D/seal.priv
tpm2_load -Q -C 0x81000001 -u $D/seal.pub -r $D/seal.priv -c $D/seal.ctx
tpm2_evictcontrol -Q -C o -c $D/seal.ctx 0x81000002
tpm2_flushcontext -t
tpm2_pcrextend "7:sha256=$(printf 'boot component' | sha256sum | cut -d' ' -f1)"
python3 "$(dirname "$0")/live.py" $P 2>&1 | grep -v -i deprecat
