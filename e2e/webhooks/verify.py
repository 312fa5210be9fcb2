"""Webhook signatures checked by an independent implementation: the Standard Webhooks
reference library (`standardwebhooks` on PyPI).

Against a running server ($CONFAB_URL) and an admin ($CONFAB_ADMIN / $CONFAB_PASSWORD):
registers a webhook pointing at a receiver on 127.0.0.1, signs two people up, and checks
that both `user.signed_up` deliveries verify with the library, that a tampered body does
not, and that the payload is the new user. Exits non-zero on any failure.
"""

import json
import os
import queue
import sys
import threading
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

BASE = os.environ["CONFAB_URL"]
received: "queue.Queue[tuple[dict, bytes]]" = queue.Queue()


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        received.put(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def call(method, path, body=None, token=None):
    request = urllib.request.Request(BASE + path, method=method, data=None if body is None else json.dumps(body).encode())
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def main():
    server = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    admin = call("POST", "/api/auth/login", {"username": os.environ["CONFAB_ADMIN"], "password": os.environ["CONFAB_PASSWORD"]})
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    hook = call("POST", "/api/webhooks", {"url": url, "events": ["user.signed_up"]}, admin["access_token"])
    names = [f"py{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for name in names:
        call("POST", "/api/auth/signup", {"username": name, "password": "correct horse battery"})
    verifier = Webhook(hook["secret"])
    seen = []
    for _ in names:
        headers, body = received.get(timeout=10)
        payload = verifier.verify(body, headers)
        assert payload["type"] == "user.signed_up", payload
        seen.append(payload["data"]["username"])
        try:
            verifier.verify(body.replace(b"signed_up", b"signed_uq"), headers)
        except WebhookVerificationError:
            pass
        else:
            sys.exit("a tampered body verified")
    assert sorted(seen) == sorted(names), (seen, names)
    print(f"webhooks: {len(seen)} deliveries verified by standardwebhooks")


if __name__ == "__main__":
    main()
