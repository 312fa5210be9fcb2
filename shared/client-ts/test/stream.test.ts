// The HTTP stream transport and the fallback to it: a client on the stream chats with a client
// on a WebSocket (room messages, direct messages, typing, presence) both ways, catches up after
// a server restart like a socket does, and, behind a real nginx, falls back to the stream when
// the proxy refuses the upgrade or kills sockets, and stays on the WebSocket when it passes them.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { CloseCodes, type DirectMessage, type Message, type RoomUser, type UserPresence } from "@confab/types";
import { ConfabClient, HttpError, type StateChange } from "@confab/client";

import { Proxy, type ProxyMode } from "./proxy.js";
import { TestServer, eventually, gate, sleep, unique } from "./server.js";

let server: TestServer;

before(async () => {
  server = await TestServer.start();
});

after(async () => {
  await server?.stop();
});

/** What one client saw. */
class Seen {
  readonly messages: Message[] = [];
  readonly dms: DirectMessage[] = [];
  readonly joined: RoomUser[] = [];
  readonly typing: RoomUser[] = [];
  readonly presence: UserPresence[] = [];

  constructor(client: ConfabClient) {
    client.on("room.message", (m) => this.messages.push(m));
    client.on("dm.message", (dm) => this.dms.push(dm));
    client.on("room.user_joined", (u) => this.joined.push(u));
    client.on("room.typing", (u) => this.typing.push(u));
    client.on("presence.changed", (p) => this.presence.push(p));
  }
}

/** `a` and `b`, connected and in one room, chat both ways: room messages, DMs, typing, and
 * `b` watching `a`'s presence go offline when `a` closes (which this closes). */
async function chatBothWays(a: ConfabClient, b: ConfabClient, aName: string, bName: string): Promise<void> {
  const [seenA, seenB] = [new Seen(a), new Seen(b)];
  const room = unique("room");
  await a.call("room.join", { room, history: 0 });
  await b.call("presence.watch", { users: [aName], replace: true });
  await b.call("room.join", { room, history: 0 });
  await eventually(`${aName} told that ${bName} joined`, () => seenA.joined.some((u) => u.username === bName && u.room === room));

  const fromA = await a.call("room.send", { room, text: `hello from ${aName}` });
  const fromB = await b.call("room.send", { room, text: `hello from ${bName}` });
  await eventually("both room messages on both sides", () =>
    [seenA, seenB].every((seen) => [fromA.id, fromB.id].every((id) => seen.messages.some((m) => m.id === id))),
  );

  const dmToB = await a.call("dm.send", { to: bName, text: "psst" });
  const dmToA = await b.call("dm.send", { to: aName, text: "psst back" });
  await eventually("each DM at its addressee", () => seenB.dms.some((dm) => dm.id === dmToB.id) && seenA.dms.some((dm) => dm.id === dmToA.id));

  assert.ok(a.notify("room.typing", { room }), `${aName} could not send a notification`);
  assert.ok(b.notify("room.typing", { room }), `${bName} could not send a notification`);
  await eventually("each one typing, seen by the other", () => seenB.typing.some((u) => u.username === aName) && seenA.typing.some((u) => u.username === bName));

  await a.close();
  await eventually(`${bName} seeing ${aName} go offline`, () => seenB.presence.some((p) => p.username === aName && !p.online));
  assert.equal(seenA.messages.filter((m) => m.id === fromB.id).length, 1, "delivered once");
  assert.equal(seenB.messages.filter((m) => m.id === fromA.id).length, 1, "delivered once");
}

test("a client on the stream chats with a client on a WebSocket, both ways, with DMs, typing and presence", async () => {
  const [alice, bob] = [await server.account("alice"), await server.account("bob")];
  const a = await ConfabClient.connect({ url: server.url, token: alice.access_token, transport: "stream" });
  const b = await ConfabClient.connect({ url: server.url, token: bob.access_token, transport: "websocket" });
  try {
    assert.equal(a.transport, "stream");
    assert.equal(b.transport, "websocket");
    await chatBothWays(a, b, alice.user.username, bob.user.username);
    await b.close();
    // And the other way round: the stream's user watched going offline.
    const a2 = await ConfabClient.connect({ url: server.url, token: alice.access_token, transport: "websocket" });
    const b2 = await ConfabClient.connect({ url: server.url, token: bob.access_token, transport: "stream" });
    try {
      await chatBothWays(b2, a2, bob.user.username, alice.user.username);
    } finally {
      await a2.close();
      await b2.close();
    }
  } finally {
    await a.close();
    await b.close();
  }
});

test("on the stream, errors are the socket's: RpcErrors for bad calls, a refused token is HttpError 401", async () => {
  const carol = await server.account("carol");
  // Calls queued behind others wait longer than alone: a generous call timeout, so that a
  // loaded machine is not mistaken for a lost answer.
  const client = await ConfabClient.connect({ url: server.url, token: carol.access_token, transport: "stream", callTimeoutMs: 60_000 });
  try {
    const invalid = await client.call("room.send", { room: unique("room"), text: "   " }).catch((e: unknown) => e);
    assert.ok(invalid instanceof Error && invalid.name === "RpcError", `got ${String(invalid)}`);
    // 30 calls at once: several times the 8 POSTs a stream may have waiting (the rest queue
    // in the client), within the call rate's burst (2 × 50 per second).
    const echoes = await Promise.all(Array.from({ length: 30 }, (_, i) => client.call("echo", { text: `${i}` })));
    assert.deepEqual(echoes.map((e) => e.text), Array.from({ length: 30 }, (_, i) => `${i}`));
    assert.equal(client.connectionState, "open");
  } finally {
    await client.close();
  }
  const refused = await ConfabClient.connect({ url: server.url, token: "not-a-token", transport: "stream" }).catch((e: unknown) => e);
  assert.ok(refused instanceof HttpError && refused.status === 401, `got ${String(refused)}`);
});

test("on the stream, a server restart closes with 1001 and sync delivers what was missed exactly once", async () => {
  const [dora, eve] = [await server.account("dora"), await server.account("eve")];
  const room = unique("room");
  // Dora's reconnection waits at this gate until eve has sent, so "missed" does not depend on timing.
  const away = gate();
  const d = await ConfabClient.connect({ url: server.url, token: dora.access_token, transport: "stream", beforeReconnect: away.wait });
  const states: StateChange[] = [];
  d.onState((s) => states.push(s));
  const messages: Message[] = [];
  const dms: DirectMessage[] = [];
  d.on("room.message", (m) => messages.push(m));
  d.on("dm.message", (dm) => dms.push(dm));
  try {
    await d.call("room.join", { room, history: 0 });
    await server.restart();
    await eventually("dora noticing the restart", () => d.connectionState === "reconnecting");
    const sent: Message[] = [];
    const e = await ConfabClient.connect({ url: server.url, token: eve.access_token });
    try {
      await e.call("room.join", { room, history: 0 });
      for (let i = 1; i <= 3; i += 1) sent.push(await e.call("room.send", { room, text: `while away ${i}` }));
      const missed = await e.call("dm.send", { to: dora.user.username, text: "back?" });
      away.open();
      await eventually("dora back on the stream and caught up", () => d.connectionState === "open" && messages.length >= sent.length && dms.length >= 1);
      assert.equal(states[0]?.closeCode, CloseCodes.GoingAway, "stream.closed carried 1001");
      assert.equal(states.at(-1)?.transport, "stream");
      assert.deepEqual(messages.map((m) => m.id), sent.map((m) => m.id), "every message once, in order");
      assert.deepEqual(dms.map((dm) => dm.id), [missed.id]);
    } finally {
      await e.close();
    }
  } finally {
    await d.close();
  }
});

/** Runs `body` with a server behind an nginx in `mode`. */
async function behind(mode: ProxyMode, body: (proxy: Proxy) => Promise<void>): Promise<void> {
  const proxy = await Proxy.start(server.url, mode);
  try {
    await body(proxy);
  } catch (error) {
    throw new Error(`${String(error)}\nnginx's log:\n${proxy.log}`);
  } finally {
    await proxy.stop();
  }
}

test("behind a proxy that refuses the upgrade, the client falls back to the stream and chats with a WebSocket user", async () => {
  await behind("refusing", async (proxy) => {
    const [frank, gina] = [await server.account("frank"), await server.account("gina")];
    const errors: Error[] = [];
    const f = new ConfabClient({ url: proxy.url, token: frank.access_token });
    f.onError((error) => errors.push(error));
    await f.connect();
    const g = await ConfabClient.connect({ url: server.url, token: gina.access_token });
    try {
      assert.equal(f.transport, "stream", "behind the refusing proxy");
      assert.ok(errors.some((e) => /WebSocket did not open/.test(e.message)), "the fallback was reported");
      assert.equal(g.transport, "websocket");
      await chatBothWays(f, g, frank.user.username, gina.user.username);
      await g.close();
      // The other way round: the WebSocket user leaves, watched from behind the proxy.
      const f2 = await ConfabClient.connect({ url: proxy.url, token: frank.access_token });
      const g2 = await ConfabClient.connect({ url: server.url, token: gina.access_token });
      try {
        assert.equal(f2.transport, "stream");
        await chatBothWays(g2, f2, gina.user.username, frank.user.username);
      } finally {
        await f2.close();
        await g2.close();
      }
    } finally {
      await f.close();
      await g.close();
    }
  });
});

test("a client forced onto the WebSocket behind a proxy that refuses the upgrade fails to connect", async () => {
  await behind("refusing", async (proxy) => {
    const hank = await server.account("hank");
    const failed = await ConfabClient.connect({ url: proxy.url, token: hank.access_token, transport: "websocket" }).catch((e: unknown) => e);
    assert.ok(failed instanceof HttpError, `got ${String(failed)}`);
  });
});

test("behind a proxy that passes WebSockets, the client stays on the WebSocket", async () => {
  await behind("passing", async (proxy) => {
    const [ivan, judy] = [await server.account("ivan"), await server.account("judy")];
    const i = await ConfabClient.connect({ url: proxy.url, token: ivan.access_token });
    const j = await ConfabClient.connect({ url: proxy.url, token: judy.access_token, transport: "stream" });
    try {
      assert.equal(i.transport, "websocket");
      assert.equal(j.transport, "stream", "the stream passes the same proxy");
      await chatBothWays(i, j, ivan.user.username, judy.user.username);
      assert.equal(j.transport, "stream");
    } finally {
      await i.close();
      await j.close();
    }
  });
});

test("behind a proxy that kills sockets right after they open, the second such death moves the client to the stream", async () => {
  await behind("killing", async (proxy) => {
    const [kate, leo] = [await server.account("kate"), await server.account("leo")];
    const k = await ConfabClient.connect({ url: proxy.url, token: kate.access_token, backoff: { initialDelayMs: 50 } });
    const states: StateChange[] = [];
    k.onState((s) => states.push(s));
    const l = await ConfabClient.connect({ url: server.url, token: leo.access_token });
    try {
      assert.equal(k.transport, "websocket", "the upgrade passes");
      await eventually("kate on the stream", () => k.connectionState === "open" && k.transport === "stream", 20_000);
      const opened = states.filter((s) => s.state === "open").map((s) => s.transport);
      assert.deepEqual(opened, ["websocket", "stream"], "one reconnection on the WebSocket, killed again, then the stream");
      await chatBothWays(k, l, kate.user.username, leo.user.username);
    } finally {
      await k.close();
      await l.close();
    }
  });
});

test("after webSocketRetryMs on the stream, a reconnection tries the WebSocket again", async () => {
  await behind("killing", async (proxy) => {
    const mia = await server.account("mia");
    const retryMs = 1_000;
    const m = await ConfabClient.connect({ url: proxy.url, token: mia.access_token, backoff: { initialDelayMs: 50 }, webSocketRetryMs: retryMs });
    const opened: Array<string | undefined> = [];
    m.onState((s) => {
      if (s.state === "open") opened.push(s.transport);
    });
    try {
      await eventually("mia on the stream", () => opened.includes("stream"), 20_000);
      // The fallback began before the stream opened: past this, its time is up.
      await sleep(retryMs + 100);
      const onStream = opened.length;
      m.dropConnection();
      await eventually("mia back on a WebSocket", () => opened.slice(onStream).includes("websocket"), 20_000);
    } finally {
      await m.close();
    }
  });
});
