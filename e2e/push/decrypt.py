"""Web Push encryption checked by an independent implementation: Mozilla's `http_ece`
package (PyPI) decrypts what Confab sent.

Against a running server ($CONFAB_URL, started with CONFAB_WEBHOOK_ALLOW_PRIVATE=true so a
push endpoint on 127.0.0.1 is accepted): signs two people up, subscribes one of them with a
P-256 key pair and auth secret made here (as a browser would), sends them a private message
over the WebSocket while they have no connection, and checks that the push reaching the
receiver on 127.0.0.1 decrypts with `http_ece` (RFC 8291, aes128gcm) to the expected message,
and that a tampered body does not. Exits non-zero on any failure.
"""

import base64
import json
import os
import queue
import sys
import threading
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer

import http_ece
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from websockets.sync.client import connect

BASE = os.environ["CONFAB_URL"]
received: "queue.Queue[tuple[dict, bytes]]" = queue.Queue()


class PushService(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        received.put(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args):
        pass


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def call(method, path, body=None, token=None):
    request = urllib.request.Request(BASE + path, method=method, data=None if body is None else json.dumps(body).encode())
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def account(prefix):
    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    credentials = {"username": name, "password": "correct horse battery"}
    call("POST", "/api/auth/signup", credentials)
    return name, call("POST", "/api/auth/login", credentials)["access_token"]


def main():
    server = HTTPServer(("127.0.0.1", 0), PushService)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    alice, alice_token = account("pya")
    bob, bob_token = account("pyb")
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    auth = os.urandom(16)
    endpoint = f"http://127.0.0.1:{server.server_address[1]}/push/{bob}"
    call("POST", "/api/push/subscriptions", {"endpoint": endpoint, "keys": {"p256dh": b64(public), "auth": b64(auth)}, "device": "http_ece"}, bob_token)

    text = "When I grow up, I want to be a watermelon"
    ws_url = BASE.replace("http", "ws", 1) + "/ws"
    with connect(ws_url, additional_headers={"Authorization": f"Bearer {alice_token}"}) as ws:
        ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "dm.send", "params": {"to": bob, "text": text}}))
        while True:
            frame = json.loads(ws.recv(timeout=10))
            if frame.get("id") == 1:
                assert "result" in frame, frame
                break

    headers, body = received.get(timeout=10)
    assert headers["content-encoding"] == "aes128gcm", headers
    assert headers["authorization"].startswith("vapid t="), headers
    message = json.loads(http_ece.decrypt(body, private_key=private, auth_secret=auth, version="aes128gcm"))
    expected = {"kind": "dm", "conversation": alice, "from": alice, "preview": text, "url": f"/dm/{alice}"}
    assert message == expected, (message, expected)
    tampered = body[:-1] + bytes([body[-1] ^ 1])
    try:
        http_ece.decrypt(tampered, private_key=private, auth_secret=auth, version="aes128gcm")
    except Exception:
        pass
    else:
        sys.exit("a tampered push decrypted")
    print(f"push: a {len(body)}-byte push decrypted by http_ece to the expected message")


if __name__ == "__main__":
    main()
