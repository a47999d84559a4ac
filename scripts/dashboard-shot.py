#!/usr/bin/env python3
"""Screenshot of the live dashboard after it has watched a run for a while.

    scripts/dashboard-shot.py http://127.0.0.1:8090/ docs/dashboard.png 30

Headless Chromium takes its screenshot when the page has loaded, and
--virtual-time-budget runs timers in virtual time, so neither lets the
dashboard poll /status in real time. This loads a local wrapper page that
shows the dashboard in an iframe and holds its own load event open for
SECONDS with a slow image, so the dashboard keeps polling (and filling its
charts) for that long before the picture is taken.
"""
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

url, out, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
W, H = 1400, 1250

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/slow":
            time.sleep(seconds)
            body, kind = b"", "image/gif"
        else:
            body = (f'<html><body style="margin:0"><iframe src="{url}" '
                    f'style="border:0;width:{W}px;height:{H}px"></iframe>'
                    f'<img src="/slow" style="display:none"></body></html>'
                    ).encode()
            kind = "text/html"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=srv.serve_forever, daemon=True).start()
profile = tempfile.mkdtemp(prefix="et-shot-")
chromium = shutil.which("chromium") or shutil.which("chromium-browser")
try:
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-quic", "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--hide-scrollbars", f"--user-data-dir={profile}",
                    f"--window-size={W},{H}", f"--screenshot={os.path.abspath(out)}",
                    f"http://127.0.0.1:{srv.server_address[1]}/"],
                   check=True, timeout=seconds + 60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
finally:
    srv.shutdown()
    shutil.rmtree(profile, ignore_errors=True)
print(out)
