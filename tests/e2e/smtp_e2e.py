#!/usr/bin/env python3
"""End-to-end: the real `tykwatch run` against aiosmtpd (a real SMTP server) and a webhook
receiver, both on loopback, with the standalone demo gateway as the Tyk Gateway.

Checks: every threshold crossing arrives once as a signed webhook and once as an e-mail
(multipart/alternative, Message-ID derived from the notification id, no duplicates); a 451
from the SMTP server is retried; SIGTERM stops tykwatch with exit 0.

Usage: smtp_e2e.py PATH/TO/tykwatch
"""
import email
import email.policy
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

BIN = os.path.abspath(sys.argv[1])
DEADLINE = 60


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mailbox:
    """aiosmtpd handler: refuses the first message with 451 (a transient failure tykwatch
    must retry), then accepts and keeps every message."""

    def __init__(self):
        self.messages = []
        self.refused = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.refused == 0:
                self.refused += 1
                return "451 4.3.0 try again later (e2e)"
            self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


class Hooks(BaseHTTPRequestHandler):
    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Hooks.received.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def wait_port(port):
    end = time.time() + 20
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"port {port} never opened")


def fail(msg):
    print(f"FAIL: {msg}", flush=True)
    sys.exit(1)


def main():
    tmp = tempfile.mkdtemp(prefix="tykwatch-e2e-")
    mailbox = Mailbox()
    smtp_port = free_port()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    hooks = ThreadingHTTPServer(("127.0.0.1", 0), Hooks)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    gw_port = free_port()
    env = dict(os.environ, TYK_GW_SECRET="tykwatch-demo", XDG_CONFIG_HOME=f"{tmp}/config",
               TYKWATCH_DATA_DIR=f"{tmp}/data", TYKWATCH_CONFIG=f"{tmp}/config.toml")
    gw = subprocess.Popen([BIN, "demo-gateway", "--port", str(gw_port), "--speed", "0"],
                          env=env, stdout=subprocess.DEVNULL)
    try:
        wait_port(gw_port)
        with open(f"{tmp}/config.toml", "w") as f:
            f.write(f"""
[gateway]
url = "http://127.0.0.1:{gw_port}"
secret = "${{TYK_GW_SECRET}}"

[[webhooks]]
name = "e2e"
url = "http://127.0.0.1:{hooks.server_port}/hook"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[email_backend]
enable_email_notifications = true
code = "smtp"
default_from_email = "tykwatch@e2e.example"
default_from_name = "tykwatch e2e"
[email_backend.settings]
SMTPAddress = "127.0.0.1:{smtp_port}"

[notify]
email_to = ["ops@e2e.example"]
""")
        run = subprocess.Popen([BIN, "run"], env=env, stdout=subprocess.PIPE, text=True)
        crossings = set()
        sweeps = 0
        end = time.time() + DEADLINE
        while sweeps < 2:
            line = run.stdout.readline()
            if not line or time.time() > end:
                fail(f"tykwatch run ended or stalled after {sweeps} sweeps")
            ev = json.loads(line)
            if ev["event"] == "sweep":
                sweeps += 1
            elif ev["event"] == "threshold_crossed":
                crossings.add((ev["quota_key"], ev["period"], ev["threshold"]))
        if len(crossings) < 5:
            fail(f"expected crossings from the demo, got {len(crossings)}")
        # The 451 pushes one e-mail to its first retry (≈5 s later).
        def ops_mail():
            return [m for m in mailbox.messages if "ops@e2e.example" in str(m["To"])]

        while time.time() < end and (len(ops_mail()) < len(crossings)
                                     or len(Hooks.received) < len(crossings)):
            time.sleep(0.2)
        time.sleep(1.5)  # anything sent twice would arrive now
        run.send_signal(signal.SIGTERM)
        code = run.wait(15)
        if code != 0:
            fail(f"tykwatch run exited {code} on SIGTERM")

        if mailbox.refused != 1:
            fail("the SMTP server never refused a message")
        # One e-mail per crossing to ops; keys whose meta_data has an address also mail
        # their developer. No Message-ID twice.
        ids = [m["Message-ID"] for m in mailbox.messages]
        if len(set(ids)) != len(ids):
            fail(f"an e-mail arrived twice: {sorted(ids)}")
        if len(ops_mail()) != len(crossings):
            fail(f"{len(crossings)} crossings but {len(ops_mail())} e-mails to ops")
        for m in mailbox.messages:
            if m.get_content_type() != "multipart/alternative":
                fail(f"not multipart/alternative: {m.get_content_type()}")
            kinds = sorted(p.get_content_type() for p in m.iter_parts())
            if kinds != ["text/html", "text/plain"]:
                fail(f"parts {kinds}")
            if not m["Message-ID"].startswith("<") or "@" not in m["Message-ID"]:
                fail(f"Message-ID {m['Message-ID']}")
        hook_ids = [h.get("webhook-id") or h.get("Webhook-Id") for h, _ in Hooks.received]
        if len(hook_ids) != len(crossings) or len(set(hook_ids)) != len(hook_ids):
            fail(f"{len(crossings)} crossings but webhooks {hook_ids}")
        for h, body in Hooks.received:
            sig = h.get("webhook-signature") or h.get("Webhook-Signature") or ""
            if not sig.startswith("v1,") or b"quota.threshold_crossed" not in body:
                fail(f"unsigned or wrong webhook: {h} {body[:200]!r}")
        print(f"ok: {len(crossings)} crossings → {len(ids)} e-mails (ops and developers, one "
              f"after a 451) and "
              f"{len(hook_ids)} signed webhooks; SIGTERM exit 0", flush=True)
    finally:
        gw.terminate()
        smtp.stop()
        hooks.shutdown()


if __name__ == "__main__":
    main()
