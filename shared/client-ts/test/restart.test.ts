// A server restart: the client is closed with 1001, reconnects by itself and catches up with
// `sync`, so that every room message and direct message sent while it was away, and every one
// sent while it was catching up, reaches its handlers exactly once, in order.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { CloseCodes, type DirectMessage, type Message } from "@confab/types";
import { ConfabClient, type Resync, type StateChange } from "@confab/client";

import { TestServer, eventually, gate, unique } from "./server.js";

let server: TestServer;

before(async () => {
  server = await TestServer.start();
});

after(async () => {
  await server?.stop();
});

test("after a restart the client reconnects and sync delivers what it missed exactly once", async () => {
  const [alice, bob] = [await server.account("alice"), await server.account("bob")];
  const room = unique("room");
  // Alice's reconnection waits at this gate until bob has sent while she was away, so "missed"
  // does not depend on timing; what bob sends after the gate opens races her catch-up on purpose.
  const away = gate();
  const a = await ConfabClient.connect({ url: server.url, token: alice.access_token, beforeReconnect: away.wait });
  const b = await ConfabClient.connect({ url: server.url, token: bob.access_token, backoff: { restartJitterMs: 50 } });
  try {
    const messages: Message[] = [];
    const dms: DirectMessage[] = [];
    const resyncs: Resync[] = [];
    const states: StateChange[] = [];
    a.on("room.message", (m) => messages.push(m));
    a.on("dm.message", (dm) => dms.push(dm));
    a.onResync((r) => resyncs.push(r));
    a.onState((s) => states.push(s));
    await a.call("room.join", { room, history: 0 });
    await b.call("room.join", { room, history: 0 });
    const sent: Message[] = [await b.call("room.send", { room, text: "before" })];
    await eventually("the message before the restart", () => messages.length === 1);

    await server.restart();
    await eventually("alice noticing the restart", () => a.connectionState === "reconnecting");
    assert.equal(states[0]?.closeCode, CloseCodes.GoingAway, "the server closed with 1001");

    // Bob reconnects by himself (no gate), re-joins and sends while alice is away.
    for (let i = 1; i <= 3; i += 1) sent.push(await b.call("room.send", { room, text: `missed ${i}` }));
    const missedDm = await b.call("dm.send", { to: alice.user.username, text: "are you there?" });
    away.open();
    for (let i = 1; i <= 3; i += 1) sent.push(await b.call("room.send", { room, text: `racing ${i}` }));

    await eventually("alice back and caught up", () => a.connectionState === "open" && messages.length >= sent.length);
    await eventually("the DM", () => dms.length >= 1);
    assert.deepEqual(
      messages.map((m) => m.id),
      sent.map((m) => m.id),
      "every message once, in order",
    );
    assert.deepEqual(dms.map((dm) => dm.id), [missedDm.id], "the missed DM once");
    assert.equal(resyncs.length, 1, "one catch-up");
    const caught = resyncs[0]!.messages.map((m) => m.id);
    assert.deepEqual(caught.slice(0, 3), sent.slice(1, 4).map((m) => m.id), "sync returned the messages sent while away");
    assert.deepEqual(resyncs[0]!.dms.map((dm) => dm.id), [missedDm.id]);

    // Live delivery goes on, and nothing arrives twice later either.
    const live = await b.call("room.send", { room, text: "welcome back" });
    await eventually("live delivery after the catch-up", () => messages.some((m) => m.id === live.id));
    assert.equal(new Set(messages.map((m) => m.id)).size, messages.length);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
});
