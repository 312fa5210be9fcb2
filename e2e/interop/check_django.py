"""Confab beside a Django app, checked from the outside: a Python client logs into the Django
site (e2e/interop/django) over HTTP, takes the JWT it signs, and uses it on Confab's socket.

    python3 check_django.py lenient   # the issuer has require_exp = false
    python3 check_django.py strict    # require_exp = true and rooms_claim_exclusive = true

Environment: CONFAB_URL, DJANGO_URL, CHAT_PASSWORD (every Django user's), TOKEN_FILE (the
lenient run writes a token without `exp` there; the strict run offers it to its server).
The Django users are ann (staff) and bob in group team-red, cat in team-blue. Exits
non-zero at the first check that fails.
"""

import asyncio
import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request

import jwt
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

CONFAB = os.environ["CONFAB_URL"]
DJANGO = os.environ["DJANGO_URL"]
PASSWORD = os.environ["CHAT_PASSWORD"]
TOKEN_FILE = os.environ["TOKEN_FILE"]
WS = CONFAB.replace("http://", "ws://", 1) + "/ws"
WAIT = 10  # seconds: the bound of every wait


def http(method, url, body=None, token=None):
    """(status, headers, parsed JSON body) of one request; error statuses are answers too."""
    request = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            return response.status, response.headers, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, err.headers, json.loads(err.read() or b"null")


def django_login(username, password=PASSWORD):
    status, _, body = http("POST", f"{DJANGO}/api/token", {"username": username, "password": password})
    assert status == 200, f"Django login of {username}: {status} {body}"
    return body["token"]


def claims_of(token):
    """The claims as signed, read without a key (the check is what Django put in them)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class Socket:
    """One JSON-RPC connection; notifications that arrive while waiting are kept in order."""

    def __init__(self, ws, name):
        self.ws = ws
        self.name = name
        self.last_id = 0
        self.notifications = []

    async def _frame(self):
        raw = await asyncio.wait_for(self.ws.recv(), WAIT)
        frame = json.loads(raw)
        return frame if isinstance(frame, list) else [frame]

    async def call(self, method, params):
        self.last_id += 1
        await self.ws.send(json.dumps({"jsonrpc": "2.0", "id": self.last_id, "method": method, "params": params}))
        while True:
            for message in await self._frame():
                if message.get("id") == self.last_id:
                    return message
                assert "id" not in message, f"{self.name}: an answer to no call of ours: {message}"
                self.notifications.append(message)

    async def ok(self, method, params):
        answer = await self.call(method, params)
        assert "result" in answer, f"{self.name}: {method} {params} failed: {answer}"
        return answer["result"]

    async def fail(self, method, params):
        answer = await self.call(method, params)
        assert "error" in answer, f"{self.name}: {method} {params} should have failed: {answer}"
        return answer["error"]

    async def notification(self, method, matches=lambda params: True):
        """The first `method` notification whose params match, received or still to come."""
        while True:
            for i, message in enumerate(self.notifications):
                if message.get("method") == method and matches(message["params"]):
                    return self.notifications.pop(i)["params"]
            try:
                frames = await self._frame()
            except TimeoutError:
                raise AssertionError(f"{self.name}: no {method} within {WAIT} s; got {self.notifications}") from None
            for message in frames:
                assert "id" not in message, f"{self.name}: an answer to no call of ours: {message}"
                self.notifications.append(message)

    async def barrier(self):
        """Answers and notifications share one ordered queue per connection, so everything
        delivered to this socket before now has arrived once an `echo` is answered."""
        assert await self.ok("echo", {"text": "barrier"}) == {"text": "barrier"}

    async def members(self, room):
        return (await self.ok("room.members", {"room": room}))["members"]


def connect_as(token, browser):
    """The upgrade of a program (the Authorization header) or of a page served by Confab
    (its Origin, and the token in the subprotocol list, since a browser cannot set headers)."""
    if browser:
        return connect(WS, origin=CONFAB, subprotocols=["confab.v1", f"bearer.{token}"], open_timeout=WAIT)
    return connect(WS, subprotocols=["confab.v1"], additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=WAIT)


async def open_socket(name, token, browser=False):
    """A socket past its first answer: from then on it hears everything meant for it."""
    ws = await connect_as(token, browser)
    assert ws.subprotocol == "confab.v1", f"{name}: the server selected {ws.subprotocol!r}"
    socket = Socket(ws, name)
    await socket.barrier()
    return socket


async def refused_at_upgrade(token, browser=False):
    """The upgrade's answer to a token that must be refused: (status, content type, problem)."""
    try:
        ws = await connect_as(token, browser)
    except InvalidStatus as refused:
        response = refused.response
        return response.status_code, response.headers.get("content-type"), json.loads(response.body)
    await ws.close()
    raise AssertionError("the upgrade was accepted")


def assert_refused(status, content_type, problem, detail, token, where):
    assert status == 401, f"{where}: {status} {problem}"
    assert content_type == "application/problem+json", f"{where}: content type {content_type}"
    assert problem["status"] == 401 and problem["detail"] == detail, f"{where}: {problem}"
    assert token.split(".")[2] not in json.dumps(problem), f"{where}: the problem repeats the token"


async def lenient():
    # Django's own authentication decides who gets a token.
    status, _, body = http("POST", f"{DJANGO}/api/token", {"username": "ann", "password": "not the password"})
    assert (status, body) == (401, {"error": "invalid username or password"}), (status, body)
    ann_token, bob_token, cat_token = (django_login(name) for name in ("ann", "bob", "cat"))
    ann_claims = claims_of(ann_token)
    assert set(ann_claims) == {"uid", "nickname", "group_name"}, f"the seeds' claims, no exp: {ann_claims}"
    assert (ann_claims["nickname"], ann_claims["group_name"]) == ("ann", "team-red"), ann_claims
    assert claims_of(cat_token)["group_name"] == "team-blue"
    with open(TOKEN_FILE, "w") as f:
        f.write(ann_token)

    # The token is a Confab bearer on REST too, for an account named after `nickname`.
    status, _, me = http("GET", f"{CONFAB}/api/me", token=ann_token)
    assert status == 200 and me["username"] == "ann", (status, me)

    # Each socket lands in its Django group's room without calling room.join.
    ann = await open_socket("ann", ann_token)
    assert await ann.members("team-red") == ["ann"]
    bob = await open_socket("bob", bob_token, browser=True)
    assert await bob.members("team-red") == ["ann", "bob"]
    assert await ann.notification("room.user_joined", lambda p: p["username"] == "bob") == {"room": "team-red", "username": "bob"}
    cat = await open_socket("cat", cat_token)
    assert await cat.members("team-blue") == ["cat"]
    not_joined = await cat.fail("room.members", {"room": "team-red"})
    assert not_joined == {"code": -32003, "message": "join the room first"}, not_joined

    # A message to the group reaches the group, and only the group.
    sent = await ann.ok("room.send", {"room": "team-red", "text": "hello team-red"})
    assert (sent["author"], sent["room"], sent["text"]) == ("ann", "team-red", "hello team-red"), sent
    heard = await bob.notification("room.message", lambda p: p["id"] == sent["id"])
    assert (heard["author"], heard["room"], heard["text"]) == ("ann", "team-red", "hello team-red"), heard
    own = await cat.ok("room.send", {"room": "team-blue", "text": "hello team-blue"})
    assert (await cat.notification("room.message", lambda p: p["id"] == own["id"]))["text"] == "hello team-blue"
    await ann.barrier()
    await bob.barrier()
    for socket, foreign in ((cat, "team-red"), (ann, "team-blue"), (bob, "team-blue")):
        leaked = [m for m in socket.notifications if m.get("params", {}).get("room") == foreign]
        assert not leaked, f"{socket.name} received {foreign}'s traffic: {leaked}"

    # The Django view's publish (Channels' group_send) reaches the group's sockets.
    status, _, body = http("POST", f"{DJANGO}/api/announce", {"text": "deploy at 17:00"}, token=ann_token)
    assert (status, body) == (202, {"group": "team-red", "delivered_locally": 2}), (status, body)
    expected = {"payload": {"type": "announcement", "group": "team-red", "text": "deploy at 17:00", "by": "ann"}}
    assert await ann.notification("notice") == expected
    assert await bob.notification("notice") == expected
    await cat.barrier()
    assert not [m for m in cat.notifications if m["method"] == "notice"], f"cat got a notice: {cat.notifications}"

    # A token signed with another key is refused before the socket exists, both ways.
    forged = jwt.encode(ann_claims, "another key, not the one shared with Confab!!", algorithm="HS256")
    detail = "token refused: the signature does not verify"
    assert_refused(*await refused_at_upgrade(forged), detail, forged, "upgrade (header)")
    assert_refused(*await refused_at_upgrade(forged, browser=True), detail, forged, "upgrade (subprotocol)")
    status, headers, problem = http("GET", f"{CONFAB}/api/me", token=forged)
    assert_refused(status, headers.get("content-type"), problem, detail, forged, "REST")

    for socket in (ann, bob, cat):
        await socket.ws.close()
    print("django lenient: group room at connect (header and subprotocol), group-only delivery, publish from a Django view, a forged key refused")


async def strict():
    # The very token the lenient issuer accepted has no `exp`: refused here, naming the rule.
    with open(TOKEN_FILE) as f:
        no_exp = f.read()
    detail = "token refused: the token lacks the required claim `exp`"
    assert_refused(*await refused_at_upgrade(no_exp), detail, no_exp, "upgrade (header)")
    assert_refused(*await refused_at_upgrade(no_exp, browser=True), detail, no_exp, "upgrade (subprotocol)")
    status, headers, problem = http("GET", f"{CONFAB}/api/me", token=no_exp)
    assert_refused(status, headers.get("content-type"), problem, detail, no_exp, "REST")

    # This site signs with an `exp`: accepted, and held to the rooms of its claim.
    token = django_login("ann")
    claims = claims_of(token)
    assert set(claims) == {"uid", "nickname", "group_name", "exp"}, claims
    assert 0 < claims["exp"] - time.time() <= 300, claims
    ann = await open_socket("ann", token)
    assert await ann.members("team-red") == ["ann"]
    joined = await ann.ok("room.join", {"room": "team-red", "history": 0})
    assert joined["room"]["name"] == "team-red" and joined["online"] == ["ann"], joined
    refused = await ann.fail("room.join", {"room": "elsewhere"})
    assert refused == {"code": -32003, "message": "this token's rooms are fixed by its issuer; it may join no other room"}, refused
    rooms = await ann.ok("rooms.list", {})
    assert [r["name"] for r in rooms["rooms"]] == ["team-red"], f"a refused join created a room: {rooms}"
    await ann.ws.close()
    print("django strict: a token without exp refused at the upgrade and on REST; exclusive rooms enforced")


if __name__ == "__main__":
    phases = {"lenient": lenient, "strict": strict}
    if len(sys.argv) != 2 or sys.argv[1] not in phases:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(phases)}")
    asyncio.run(phases[sys.argv[1]]())
