"""Small TCP endpoints for integration tests (no third-party modules).

  tcpflow.py server PORT SECONDS
      accept connections on PORT, discard what arrives, for SECONDS
  tcpflow.py client DST DPORT SPORT SECONDS INTERVAL_MS
      connect from source port SPORT, send 1 KiB every INTERVAL_MS for
      SECONDS; exit 0 if everything was sent
"""
import socket
import sys
import threading
import time


def server(port, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(16)
    s.settimeout(0.5)
    end = time.time() + seconds

    def drain(c):
        c.settimeout(1)
        while time.time() < end:
            try:
                if not c.recv(65536):
                    break
            except socket.timeout:
                continue
            except OSError:
                break
        c.close()

    while time.time() < end:
        try:
            c, _ = s.accept()
        except socket.timeout:
            continue
        threading.Thread(target=drain, args=(c,), daemon=True).start()


def client(dst, dport, sport, seconds, interval_ms):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", sport))
    s.settimeout(10)
    s.connect((dst, dport))
    end = time.time() + seconds
    chunk = b"x" * 1024
    while time.time() < end:
        s.sendall(chunk)
        time.sleep(interval_ms / 1000.0)
    s.close()


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(int(sys.argv[2]), float(sys.argv[3]))
    else:
        client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]),
               float(sys.argv[5]), float(sys.argv[6]))
