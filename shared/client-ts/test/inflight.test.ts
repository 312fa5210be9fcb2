// The in-flight window: calls beyond `maxInFlight` wait their turn (first come, first served)
// and fail like the calls in flight when the connection drops; a thousand calls at once
// against a live server all succeed with at most 64 in flight.

import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { test } from "node:test";

import { WebSocketServer, type WebSocket } from "ws";
import { ConfabClient, ConnectionLost, DEFAULT_MAX_IN_FLIGHT } from "@confab/client";

import { TestServer, eventually } from "./server.js";

interface Request {
  id: number;
  method: string;
  params: { text: string };
}

/** A socket server that records requests and answers only when the test says so. */
async function silentServer(): Promise<{ url: string; requests: Request[]; answer: (request: Request) => void; close: () => Promise<void> }> {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise<void>((resolve) => wss.once("listening", resolve));
  const requests: Request[] = [];
  let socket: WebSocket | undefined;
  wss.on("connection", (ws) => {
    socket = ws;
    ws.on("message", (data) => requests.push(JSON.parse(data.toString()) as Request));
  });
  return {
    url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    requests,
    answer: (request) => socket?.send(JSON.stringify({ jsonrpc: "2.0", id: request.id, result: { text: request.params.text } })),
    close: () => {
      for (const client of wss.clients) client.terminate();
      return new Promise((resolve) => wss.close(() => resolve()));
    },
  };
}

test("calls beyond maxInFlight wait in order for an earlier answer, and fail with ConnectionLost when the socket drops", async () => {
  const server = await silentServer();
  const client = await ConfabClient.connect({ url: server.url, reconnect: false, maxInFlight: 2 });
  try {
    const calls = [0, 1, 2, 3, 4].map((i) => client.call("echo", { text: `call ${i}` }).then(
      (result) => result.text,
      (error: unknown) => error,
    ));
    await eventually("the first two requests", () => server.requests.length === 2);
    assert.deepEqual(server.requests.map((r) => r.params.text), ["call 0", "call 1"]);
    assert.equal(client.callsInFlight, 2);

    const first = server.requests[0];
    assert.ok(first);
    server.answer(first);
    assert.equal(await calls[0], "call 0");
    await eventually("the third request, sent in the answered call's place", () => server.requests.length === 3);
    assert.equal(server.requests[2]?.params.text, "call 2", "waiting calls go out first come, first served");

    client.dropConnection();
    for (const i of [1, 2, 3, 4]) {
      const failed = await calls[i];
      assert.ok(failed instanceof ConnectionLost, `call ${i}: got ${String(failed)}`);
    }
    assert.equal(server.requests.length, 3, "calls that waited for a place were never sent");
    await eventually("every place given back", () => client.callsInFlight === 0);
    assert.equal(client.peakCallsInFlight, 2);
  } finally {
    await client.close();
    await server.close();
  }
});

test("a thousand calls at once against a live server all succeed with at most 64 in flight", async () => {
  // The server's call rate limit far above the test's, so only the window shapes the traffic.
  const server = await TestServer.start({ CONFAB_RATE_PER_SEC: "1000000" });
  try {
    const alice = await server.account("alice");
    // Generous: a thousand round trips on a loaded machine; only a hang fails it.
    const client = await ConfabClient.connect({ url: server.url, token: alice.access_token, callTimeoutMs: 120_000 });
    try {
      assert.equal(DEFAULT_MAX_IN_FLIGHT, 64);
      const texts = Array.from({ length: 1000 }, (_, i) => `call ${i}`);
      const echoed = await Promise.all(texts.map((text) => client.call("echo", { text })));
      assert.deepEqual(echoed.map((result) => result.text), texts);
      const peak = client.peakCallsInFlight;
      assert.ok(peak >= 1 && peak <= DEFAULT_MAX_IN_FLIGHT, `the client had ${peak} calls in flight at once`);
      assert.equal(client.callsInFlight, 0);
    } finally {
      await client.close();
    }
  } finally {
    await server.stop();
  }
});
