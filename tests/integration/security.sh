#!/bin/sh
# Integration: what a stranger on the LAN can and cannot do to a controller
# with a cluster key (real processes on loopback; docs/security.md).
# Checks: an agent without the key is refused and logged; POST /start needs
# the key's token (none or a wrong one: 401 and a log line; GET /status
# stays open); a frame header claiming a 4 GiB payload and a pre-Hello
# frame announcing a 60 MiB payload are refused at the header, before the
# controller buffers or allocates anything (its RSS does not grow); the
# HTTP server binds loopback by default; the controller keeps serving.
set -u
BUILD=${BUILD:-build}
T=$(mktemp -d /tmp/et-sec.XXXXXX)
. tests/lib/procs.sh
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

printf 'secret-cluster-key\n' >"$T/key"
printf 'another-key\n' >"$T/badkey"
if ! start_controller ctl --topology topology/loopback-3.json \
        --key-file "$T/key"; then
    fail "keyed controller starts"; exit 1
fi
CTL=$CTLPID

# 1. An agent without the key: refused, and the controller logs who.
"$BIN/edgetrain" agent-sim --controller 127.0.0.1:$MPORT --name a1 \
    --exit-after-ms 2000 >"$T/nokey.out" 2>&1
check "agent without the key refused (Error: authentication failed)" \
    "grep -q 'authentication failed' $T/nokey.out && ! grep -q '^welcome' $T/nokey.out"
check "controller logs the refused agent with its address" \
    "grep -q \"refused 127.0.0.1:[0-9]*: agent 'a1': authentication failed\" $T/ctl.err"

# 2. POST /start needs the token derived from the key.
"$BIN/edgetrain" start --controller 127.0.0.1:$HPORT >"$T/s1.out" 2>&1
check "POST /start without the key: 401, logged" \
    "grep -q 'HTTP 401' $T/s1.out && grep -q 'http: refused /start from 127.0.0.1:[0-9]*: no Authorization header' $T/ctl.err"
"$BIN/edgetrain" start --controller 127.0.0.1:$HPORT --key-file "$T/badkey" >"$T/s2.out" 2>&1
check "POST /start with a wrong key: 401, logged" \
    "grep -q 'HTTP 401' $T/s2.out && grep -q 'wrong key token' $T/ctl.err"
"$BIN/edgetrain" start --controller 127.0.0.1:$HPORT --key-file "$T/key" >"$T/s3.out" 2>&1
check "POST /start with the key passes authentication (then: no agents)" \
    "grep -q 'HTTP 500' $T/s3.out && grep -q 'no agent registered' $T/ctl.err"
check "GET /status needs no key" \
    "'$BIN/edgetrain' status --controller http://127.0.0.1:$HPORT --json >$T/st.json 2>&1"

# 3. Oversized length prefixes from a stranger.
r0=$(rss_kb $CTL)
python3 - "$MPORT" >"$T/big.out" 2>&1 <<'PY'
import socket, struct, sys, time
port = int(sys.argv[1])
def hdr(typ, meta, payload):
    return struct.pack(">IBBHII", 0x4554524e, 1, typ, 0, meta, payload)
def probe(name, data, extra=b""):
    s = socket.create_connection(("127.0.0.1", port), timeout=3)
    s.recv(4096)                          # the Challenge
    s.sendall(data)
    sent = 0
    closed = False
    try:
        # Keep pushing junk for up to 1 s: the controller must have closed.
        end = time.time() + 1.0
        chunk = b"\0" * 65536
        while time.time() < end and sent < 8 << 20:
            s.sendall(chunk); sent += len(chunk)
    except socket.timeout:
        pass                              # still open, not reading
    except OSError:
        closed = True
    if not closed:
        s.settimeout(1.0)
        try:
            while True:                   # an Error frame, then EOF
                if not s.recv(4096):
                    closed = True
                    break
        except socket.timeout:
            pass
        except OSError:
            closed = True
    print(name, "closed" if closed else "open", "sent", sent)
    s.close()
probe("4GiB", hdr(7, 0, 0xffffffff))
probe("60MiB-prehello", hdr(7, 0, 60 << 20))
PY
r1=$(rss_kb $CTL)
check "4 GiB length prefix: connection closed at the header" \
    "grep -q '^4GiB closed' $T/big.out && grep -q 'malformed frame' $T/ctl.err"
check "60 MiB payload before Hello: refused at the header, not buffered" \
    "grep -q '^60MiB-prehello closed' $T/big.out && grep -q 'expected hello, got checkpoint with a payload' $T/ctl.err"
check "controller RSS grew < 8 MiB over both ($r0 -> $r1 kB)" \
    "[ $((r1 - r0)) -lt 8192 ]"
check "controller still serves after the probes" \
    "'$BIN/edgetrain' status --controller http://127.0.0.1:$HPORT --json >/dev/null 2>&1 && kill -0 $CTL"

# 4. Data streams: a real edgetrain-agent (last stage) between two
# agent-sims. A stranger not named in its Assignment, or the named upstream
# with a wrong token, is refused and logged; the right token gets credit.
if start_controller ctl3 --topology topology/loopback-3.json \
        --key-file "$T/key" --expect-agents 3 --stages 3 --heartbeat-ms 200; then
    M3=$MPORT
    for a in a1 a3; do
        "$BIN/edgetrain" agent-sim --controller 127.0.0.1:$M3 --name $a \
            --key-file "$T/key" --exit-after-ms 20000 >"$T/$a.out" 2>&1 &
        pids="$pids $!"
    done
    "$BIN/edgetrain-agent" --controller 127.0.0.1:$M3 --name a2 \
        --key-file "$T/key" --listen 127.0.0.1:0 --threads 1 \
        >"$T/a2.out" 2>"$T/a2.err" &
    pids="$pids $!"
    wait_for "$T/a2.err" 20 "stage .* ready"
    wait_for "$T/a3.out" 5 "^token-hex"
    port=$(sed -n 's/.*data on 127.0.0.1:\([0-9]*\),.*/\1/p' "$T/a2.err")
    run=$(sed -n 's/.*assignment: run \([0-9a-f]*\) .*/\1/p' "$T/a2.err" | head -n 1)
    up=$(grep -l 'down=a2@' "$T/a1.out" "$T/a3.out" | head -n 1)
    up=$(basename "${up:-none.out}" .out)
    tok=$(sed -n 's/^token-hex //p' "$T/a3.out" | head -n 1)
    R="python3 tests/integration/rogue_stream.py 127.0.0.1:$port"
    s1=$($R mallory "$run" "$tok" 2>&1)
    s2=$($R "$up" "$run" 00112233445566778899aabbccddeeff 2>&1)
    s3=$($R "$up" "$run" "$tok" 2>&1)
    check "data stream from a peer not in the assignment refused and logged ($s1)" \
        "[ '$s1' = closed ] && grep -q \"unknown peer 'mallory'\" $T/a2.err"
    check "data stream from '$up' with a wrong token refused and logged ($s2)" \
        "[ '$s2' = closed ] && grep -q \"peer '$up' presented a bad token\" $T/a2.err"
    check "data stream from '$up' with the run token accepted ($s3)" \
        "[ '$s3' = credit ]"
else
    fail "controller for the data-stream checks starts"
fi

# 5. OpenFlow listener: restricted to an address; TLS (pssl:) with
# certificates (libopenvswitch stream-ssl): a switch with a certificate
# from the CA completes the handshake, a client without one does not.
P=$((20000 + $$ % 20000))
"$BIN/edgetrain-controller" --listen 127.0.0.1:0 --http off \
    --topology topology/diamond-4pi.json --openflow "ptcp:$P:127.0.0.1" \
    >"$T/of.out" 2>"$T/of.err" &
OF=$!
pids="$pids $OF"
wait_for "$T/of.err" 5 "openflow: listening"
check "--openflow ptcp:$P:127.0.0.1 listens on loopback only" \
    "ss -ltn | grep -q '127.0.0.1:$P ' && ! ss -ltn | grep -q '0.0.0.0:$P '"
kill $OF
if command -v openssl >/dev/null; then
    (cd "$T" && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key \
        -out ca.pem -days 2 -subj /CN=et-ca && for n in ctl sw; do
        openssl req -newkey rsa:2048 -nodes -keyout $n.key -out $n.csr \
            -subj /CN=$n && openssl x509 -req -in $n.csr -CA ca.pem \
            -CAkey ca.key -CAcreateserial -out $n.pem -days 2; done) \
        >"$T/pki.log" 2>&1
    P=$((P + 1))
    "$BIN/edgetrain-controller" --listen 127.0.0.1:0 --http off \
        --topology topology/diamond-4pi.json --openflow "pssl:$P:127.0.0.1" \
        --ssl-private-key "$T/ctl.key" --ssl-certificate "$T/ctl.pem" \
        --ssl-ca-cert "$T/ca.pem" >"$T/tls.out" 2>"$T/tls.err" &
    pids="$pids $!"
    wait_for "$T/tls.err" 5 "openflow: listening on pssl"
    echo | timeout 5 openssl s_client -connect 127.0.0.1:$P -cert "$T/sw.pem" \
        -key "$T/sw.key" -CAfile "$T/ca.pem" >"$T/tls1.out" 2>&1
    echo | timeout 5 openssl s_client -connect 127.0.0.1:$P \
        -CAfile "$T/ca.pem" >"$T/tls2.out" 2>&1
    check "pssl: switch with a CA-signed certificate: TLS handshake verified" \
        "grep -q 'Verify return code: 0 (ok)' $T/tls1.out"
    check_within "pssl: client without a certificate is refused by the controller" 5 \
        "grep -q 'peer did not return a certificate' $T/tls.err"
fi

# 6. The HTTP server binds loopback unless told otherwise.
if ! ss -ltn 2>/dev/null | grep -q ':7080 '; then
    "$BIN/edgetrain-controller" --listen 127.0.0.1:0 \
        --topology topology/loopback-3.json >"$T/def.out" 2>"$T/def.err" &
    DEF=$!
    pids="$pids $DEF"
    wait_for "$T/def.out" 5 "^listening"
    check "default HTTP listener is 127.0.0.1:7080 (loopback only)" \
        "ss -ltn | grep -q '127.0.0.1:7080 ' && ! ss -ltn | grep -q '0.0.0.0:7080 '"
    kill $DEF
else
    pass "default HTTP listener is loopback (port 7080 busy: checked by --help only)"
fi
[ "$fails" -eq 0 ]
