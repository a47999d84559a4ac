#!/usr/bin/env python3
"""A stranger on the LAN opening an activation stream to an agent:
rogue_stream.py HOST:PORT FROM RUN_ID_HEX TOKEN_HEX
sends a StreamHello (edgetrain wire frame, hand-encoded protobuf) and prints
"closed" if the agent closes the connection without granting credit, or
"credit" if it answered with a Credit frame (accepted)."""
import socket, struct, sys

def varint(n):
    out = b""
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])

def field_bytes(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data

host, port = sys.argv[1].rsplit(":", 1)
frm, run_id, token = sys.argv[2], int(sys.argv[3], 16), bytes.fromhex(sys.argv[4])
meta = field_bytes(1, frm.encode()) + varint(2 << 3) + varint(run_id) \
    + field_bytes(3, token) + varint(4 << 3) + varint(0)
frame = struct.pack(">IBBHII", 0x4554524e, 1, 9, 0, len(meta), 0) + meta
s = socket.create_connection((host, int(port)), timeout=3)
s.sendall(frame)
got = b""
try:
    while True:
        d = s.recv(4096)
        if not d:
            break
        got += d
        if len(got) >= 6 and got[5] == 11:      # a Credit frame
            print("credit")
            sys.exit(0)
except OSError:
    pass
print("closed")
