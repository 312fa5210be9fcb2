// Access tokens that live 3 s (the server warns 2 s before expiry): a client with credentials
// answers every `session.expiring` with a refreshed token over `auth.refresh` and keeps its
// socket (or stream) well past the first token's lifetime; a fixed token cannot renew and is closed 4001.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { CloseCodes } from "@confab/types";
import { ConfabClient, type StateChange } from "@confab/client";

import { PASSWORD, TestServer, eventually, unique } from "./server.js";

const TTL_SECS = 3;
let server: TestServer;

before(async () => {
  server = await TestServer.start({ CONFAB_ACCESS_TTL_SECS: String(TTL_SECS), CONFAB_EXPIRY_WARNING_SECS: "2" });
});

after(async () => {
  await server?.stop();
});

for (const transport of ["websocket", "stream"] as const) {
test(`credentials: the client renews its access token on the open ${transport === "stream" ? "HTTP stream (its POSTs carry the renewed token)" : "socket"} before each expiry`, async () => {
  const username = unique("renewer");
  await server.rest.signup({ username, password: PASSWORD });
  const client = await ConfabClient.connect({ url: server.url, credentials: { username, password: PASSWORD }, transport });
  try {
    const firstExpiry = Date.now() + TTL_SECS * 1000;
    const states: StateChange[] = [];
    const renewals: string[] = [];
    const errors: Error[] = [];
    client.onState((change) => states.push(change));
    client.onRenewed((expiresAt) => renewals.push(expiresAt));
    client.onError((error) => errors.push(error));
    // Past the first token's expiry (a second more: JWT expiries are whole seconds); without
    // renewal the socket would have been closed with 4001 by then.
    await eventually("two renewals and the first token's expiry", () => Date.now() > firstExpiry + 1_000 && renewals.length >= 2, 20_000);
    assert.deepEqual(states, [], "the socket never closed");
    assert.deepEqual(errors, []);
    assert.ok(new Date(renewals.at(-1)!).getTime() > firstExpiry, "the renewed expiry is later than the first");
    assert.equal((await client.call("echo", { text: "still here" })).text, "still here");
    assert.equal(client.transport, transport);
  } finally {
    await client.close();
  }
});
}

test("a fixed token that expires is closed with 4001, and the client stops", async () => {
  const tokens = await server.account("fixed");
  const client = await ConfabClient.connect({ url: server.url, token: tokens.access_token });
  const states: StateChange[] = [];
  client.onState((change) => states.push(change));
  await eventually("the expiry close", () => client.connectionState === "closed", 20_000);
  assert.equal(states.length, 1);
  assert.equal(states[0]?.closeCode, CloseCodes.TokenExpired);
  assert.ok(states[0]?.error, "the state change says why");
  await client.close();
});
