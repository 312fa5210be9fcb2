// The client against a live release server: connecting by token and by credentials, typed
// calls and notifications, errors, calls that wait out a reconnection, and a clean close.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { CloseCodes, ErrorCodes, type Message, type RoomUser } from "@confab/types";
import { AuthFailed, ClientClosed, ConfabClient, HttpError, LoginSession, RpcError, type StateChange } from "@confab/client";

import { PASSWORD, TestServer, eventually, gate, unique } from "./server.js";

let server: TestServer;

before(async () => {
  server = await TestServer.start();
});

after(async () => {
  await server?.stop();
});

test("a bearer token opens the socket; calls and notifications are typed end to end", async () => {
  const alice = await server.account("alice");
  const client = await ConfabClient.connect({ url: server.url, token: alice.access_token });
  try {
    assert.equal(client.connectionState, "open");
    assert.equal((await client.me())?.username, alice.user.username);

    const echoed = await client.call("echo", { text: "ping" });
    assert.equal(echoed.text, "ping");

    const received: Message[] = [];
    client.on("room.message", (message) => received.push(message));
    const room = unique("room");
    const joined = await client.call("room.join", { room });
    assert.equal(joined.room.name, room);
    const sent = await client.call("room.send", { room, text: "hello", nonce: unique("n") });
    assert.equal(sent.author, alice.user.username);
    await eventually("our own room.message", () => received.some((m) => m.id === sent.id));
    assert.equal(received.length, 1, "the send result and its notification are one message, delivered once");
    assert.equal(client.lastSeenIn(room), sent.id);
  } finally {
    await client.close();
  }
});

test("JSON-RPC errors are RpcErrors with their code and field; the socket stays open", async () => {
  const bob = await server.account("bob");
  const client = await ConfabClient.connect({ url: server.url, token: bob.access_token });
  try {
    const forbidden = await client.call("room.send", { room: unique("not-joined"), text: "x" }).catch((e: unknown) => e);
    assert.ok(forbidden instanceof RpcError && forbidden.code === ErrorCodes.Forbidden, `got ${String(forbidden)}`);
    const room = unique("room");
    await client.call("room.join", { room, history: 0 });
    const invalid = await client.call("room.send", { room, text: "   " }).catch((e: unknown) => e);
    assert.ok(invalid instanceof RpcError && invalid.code === ErrorCodes.InvalidParams && invalid.field === "text", `got ${String(invalid)}`);
    assert.equal(client.connectionState, "open");
  } finally {
    await client.close();
  }
});

test("an API token connects and calls within its scopes, gets -32003 with data.scope outside them, and closes with 4003 once revoked", async () => {
  const hank = await server.account("hank");
  const created = await server.rest.createApiToken(hank.access_token, { name: "reader", scopes: ["read"] });
  assert.ok(created.token.startsWith("cfb_"), created.token);
  const client = await ConfabClient.connect({ url: server.url, token: created.token });
  const states: StateChange[] = [];
  client.onState((change) => states.push(change));
  try {
    assert.equal((await client.me())?.username, hank.user.username);
    // Joining an existing room is reading; creating one by joining it is writing.
    const room = unique("room");
    const owner = await ConfabClient.connect({ url: server.url, token: hank.access_token });
    try {
      await owner.call("room.join", { room, history: 0 });
    } finally {
      await owner.close();
    }
    const creating = await client.call("room.join", { room: unique("room"), history: 0 }).catch((e: unknown) => e);
    assert.ok(creating instanceof RpcError && creating.code === ErrorCodes.Forbidden && creating.scope === "write", `got ${String(creating)}`);
    const joined = await client.call("room.join", { room, history: 0 });
    assert.equal(joined.room.name, room, "read covers joining");
    const refused = await client.call("room.send", { room, text: "not with a read token" }).catch((e: unknown) => e);
    assert.ok(refused instanceof RpcError && refused.code === ErrorCodes.Forbidden && refused.scope === "write", `got ${String(refused)}`);
    assert.equal(client.connectionState, "open", "a scope error leaves the socket open");
    const listed = await server.rest.apiTokens(hank.access_token);
    assert.deepEqual(
      listed.map((t) => [t.id, t.name]),
      [[created.id, "reader"]],
    );
    assert.ok(!JSON.stringify(listed).includes(created.token), "the listing never shows the secret");

    await server.rest.revokeApiToken(hank.access_token, created.id);
    await eventually("the revoked token's socket to close", () => client.connectionState === "closed");
    assert.equal(states.at(-1)?.closeCode, CloseCodes.LoggedOut, JSON.stringify(states));
    const later = await client.call("echo", { text: "after the revocation" }).catch((e: unknown) => e);
    assert.ok(later instanceof ClientClosed && later.closeCode === CloseCodes.LoggedOut, `got ${String(later)}`);
    const reopened = await ConfabClient.connect({ url: server.url, token: created.token }).catch((e: unknown) => e);
    assert.ok(reopened instanceof HttpError && reopened.status === 401, `a revoked token opens nothing: ${String(reopened)}`);
  } finally {
    await client.close();
  }
});

test("a refused token is an HttpError 401 before any socket exists", async () => {
  const client = new ConfabClient({ url: server.url, token: "cfb_not-a-token" });
  const refused = await client.connect().catch((e: unknown) => e);
  assert.ok(refused instanceof HttpError && refused.status === 401, `got ${String(refused)}`);
  assert.equal(client.connectionState, "closed");
});

test("credentials log in over REST; refused ones are AuthFailed; close logs the session out", async () => {
  const username = unique("carol");
  await server.rest.signup({ username, password: PASSWORD });
  const wrong = await ConfabClient.connect({ url: server.url, credentials: { username, password: "not the password" } }).catch((e: unknown) => e);
  assert.ok(wrong instanceof AuthFailed && wrong.cause.status === 401, `got ${String(wrong)}`);

  const client = await ConfabClient.connect({ url: server.url, credentials: { username, password: PASSWORD } });
  const me = await client.me();
  assert.equal(me?.username, username);
  const watcher = await server.account("watcher");
  const watching = await ConfabClient.connect({ url: server.url, token: watcher.access_token });
  const room = unique("room");
  const joined: RoomUser[] = [];
  const left: RoomUser[] = [];
  watching.on("room.user_joined", (who) => joined.push(who));
  watching.on("room.user_left", (who) => left.push(who));
  try {
    await watching.call("room.join", { room, history: 0 });
    await client.call("room.join", { room, history: 0 });
    // Room presence is coalesced per tick (a join and a leave within one send nothing):
    // see the join arrive before closing, so that the leave is a change of its own.
    await eventually("the client joining the room", () => joined.some((u) => u.username === username));
    await client.close();
    await eventually("the closed client leaving the room", () => left.some((u) => u.username === username));
  } finally {
    await watching.close();
  }
  // What close() does with a login: the session ends, its access token is refused from then on.
  const session = new LoginSession(server.rest, { username, password: PASSWORD });
  const token = await session.bearer();
  assert.equal((await server.rest.me(token)).username, username);
  await session.end();
  const revoked = await server.rest.me(token).catch((e: unknown) => e);
  assert.ok(revoked instanceof HttpError && revoked.status === 401, `got ${String(revoked)}`);
});

test("notifications from other users reach typed handlers", async () => {
  const [dave, erin] = [await server.account("dave"), await server.account("erin")];
  const room = unique("room");
  const d = await ConfabClient.connect({ url: server.url, token: dave.access_token });
  const e = await ConfabClient.connect({ url: server.url, token: erin.access_token });
  try {
    const typing: RoomUser[] = [];
    const joinedUsers: RoomUser[] = [];
    d.on("room.typing", (who) => typing.push(who));
    d.on("room.user_joined", (who) => joinedUsers.push(who));
    await d.call("room.join", { room, history: 0 });
    await e.call("room.join", { room, history: 0 });
    await eventually("room.user_joined for erin", () => joinedUsers.some((u) => u.username === erin.user.username));
    assert.equal(e.notify("room.typing", { room }), true);
    await eventually("room.typing from erin", () => typing.some((u) => u.room === room && u.username === erin.user.username));
  } finally {
    await Promise.all([d.close(), e.close()]);
  }
});

test("a call made while reconnecting waits for the connection and goes out once it is back", async () => {
  const frank = await server.account("frank");
  const hold = gate();
  const client = await ConfabClient.connect({
    url: server.url,
    token: frank.access_token,
    backoff: { initialDelayMs: 20 },
    beforeReconnect: hold.wait,
  });
  try {
    const states: StateChange[] = [];
    client.onState((change) => states.push(change));
    client.dropConnection();
    await eventually("the client noticing the drop", () => client.connectionState === "reconnecting");
    const echo = client.call("echo", { text: "after the drop" });
    hold.open();
    assert.equal((await echo).text, "after the drop");
    assert.deepEqual(
      states.map((s) => s.state),
      ["reconnecting", "open"],
    );
  } finally {
    await client.close();
  }
});

test("close() is clean: no reconnection, waiting and later calls fail with ClientClosed", async () => {
  const gina = await server.account("gina");
  const never = gate();
  const client = await ConfabClient.connect({
    url: server.url,
    token: gina.access_token,
    backoff: { initialDelayMs: 20 },
    beforeReconnect: never.wait,
  });
  const states: StateChange[] = [];
  client.onState((change) => states.push(change));
  client.dropConnection();
  await eventually("the client noticing the drop", () => client.connectionState === "reconnecting");
  const waiting = client.call("echo", { text: "never sent" }).catch((e: unknown) => e);
  await client.close();
  never.open();
  const failed = await waiting;
  assert.ok(failed instanceof ClientClosed, `got ${String(failed)}`);
  const later = await client.call("echo", { text: "x" }).catch((e: unknown) => e);
  assert.ok(later instanceof ClientClosed, `got ${String(later)}`);
  assert.equal(client.connectionState, "closed");
  assert.deepEqual(states.at(-1), { state: "closed", closeCode: CloseCodes.Normal });
  const reconnect = await client.connect().catch((e: unknown) => e);
  assert.ok(reconnect instanceof ClientClosed, "a closed client stays closed");
});
