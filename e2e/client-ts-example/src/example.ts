// The example scenario, and an end-to-end test of the server (e2e/suites/20-client-ts-example.sh),
// written with the @confab/client library (shared/client-ts) as a third-party program would:
//
//   1. sign up and log in two users over REST;
//   2. open sockets with the bearer header, join a room, send, receive our own message;
//   3. make typed calls fail on purpose and read the JSON-RPC error codes;
//   4. drop alice's connection; while she is away bob sends room messages and a DM;
//   5. alice reconnects by herself, and `sync` delivers exactly what she missed, once each;
//   6. live delivery resumes;
//   7. a bad token is refused before the socket exists, and logging out closes the session's
//      socket with 4003, after which the client does not try to reconnect.
//
// Usage: CONFAB_URL=http://127.0.0.1:8000 node out/example.js

import { CloseCodes, ErrorCodes, type DirectMessage, type Message, type TokenPair } from "@confab/types";

import { ConfabClient, HttpError, RestClient, RpcError, type Resync } from "@confab/client";

const baseUrl = process.env["CONFAB_URL"] ?? "http://127.0.0.1:8000";
const OVERALL_TIMEOUT_MS = 60_000;
const WAIT_MS = 5_000;

let passed = 0;

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`check failed: ${what}`);
  passed += 1;
  console.log(`  ok - ${what}`);
}

/** Resolves when `predicate` holds, polling; rejects after `ms`. */
async function eventually(what: string, predicate: () => boolean, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  check(true, what);
}

async function expectRpcError(what: string, call: Promise<unknown>, code: number, field?: string): Promise<void> {
  try {
    await call;
  } catch (error) {
    if (error instanceof RpcError) {
      check(error.code === code && (field === undefined || error.field === field), `${what} (${error.code}${field ? `, field ${field}` : ""})`);
      return;
    }
    throw error;
  }
  throw new Error(`check failed: ${what}: the call succeeded`);
}

async function account(rest: RestClient, name: string): Promise<TokenPair> {
  const credentials = { username: name, password: "correct horse battery" };
  const user = await rest.signup(credentials);
  check(user.username === name && !user.is_admin, `signed up ${name}`);
  const tokens = await rest.login(credentials);
  check(tokens.token_type === "Bearer" && tokens.user.id === user.id, `logged in ${name}`);
  return tokens;
}

async function main(): Promise<void> {
  const rest = new RestClient(baseUrl);
  const suffix = Math.random().toString(36).slice(2, 8);
  const room = `ts-${suffix}`;
  const aliceTokens = await account(rest, `alice-${suffix}`);
  const bobTokens = await account(rest, `bob-${suffix}`);

  // While alice is away, the reconnection waits at this gate until bob has sent everything,
  // so "sent while disconnected" does not depend on timing.
  let openGate: () => void = () => {};
  const gate = new Promise<void>((resolve) => (openGate = resolve));
  let reconnects = 0;

  const alice = new ConfabClient({
    url: baseUrl,
    token: aliceTokens.access_token,
    backoff: { initialDelayMs: 100 },
    beforeReconnect: async () => {
      reconnects += 1;
      await gate;
    },
  });
  const bob = new ConfabClient({ url: baseUrl, token: bobTokens.access_token });

  const aliceMessages: Message[] = [];
  const aliceDms: DirectMessage[] = [];
  const resyncs: Resync[] = [];
  alice.on("room.message", (message) => aliceMessages.push(message));
  alice.on("dm.message", (dm) => aliceDms.push(dm));
  alice.onResync((resync) => resyncs.push(resync));
  const states: string[] = [];
  alice.onState((change) => states.push(change.state));

  await alice.connect();
  await bob.connect();
  check(alice.connectionState === "open", "alice's socket is open (bearer header accepted)");

  const echoed = await alice.call("echo", { text: "ping" });
  check(echoed.text === "ping", "echo answers with the same text");

  // Presence is by interest: alice hears about bob only once she watches him.
  const watched = await alice.call("presence.watch", { users: [`bob-${suffix}`], replace: true });
  check(watched.watching === 1 && watched.users[0]?.username === `bob-${suffix}`, "presence.watch returns the current presence of the users named");
  const found = await alice.call("users.list", { prefix: `bob-${suffix}`, limit: 5 });
  check(found.users.length === 1 && found.total === 1 && found.next_cursor === null, "users.list finds bob by prefix in one page");

  const joined = await alice.call("room.join", { room });
  check(joined.room.name === room && joined.history.length === 0, "alice created and joined a fresh room");
  await bob.call("room.join", { room, history: 0 });

  const hello = await alice.call("room.send", { room, text: "hello from alice", nonce: `n-${suffix}` });
  check(hello.author === `alice-${suffix}` && hello.text === "hello from alice", "room.send returns the persisted Message");
  await eventually("alice receives her own room.message", () => aliceMessages.some((m) => m.id === hello.id));
  const again = await alice.call("room.send", { room, text: "hello from alice", nonce: `n-${suffix}` });
  check(again.id === hello.id, "a repeated nonce returns the first message, not a duplicate");

  await expectRpcError("room.send to a room not joined is forbidden", alice.call("room.send", { room: `other-${suffix}`, text: "x" }), ErrorCodes.Forbidden);
  await expectRpcError("empty text is invalid params naming the field", alice.call("room.send", { room, text: "   " }), ErrorCodes.InvalidParams, "text");
  await expectRpcError("editing an unknown message is not found", alice.call("message.edit", { id: 999_999_999, text: "x" }), ErrorCodes.NotFound);
  check(alice.connectionState === "open", "errors do not close the socket");

  // --- Reconnect and catch up ---------------------------------------------------------
  const beforeDrop = aliceMessages.length;
  alice.dropConnection();
  await eventually("alice notices the dropped connection", () => alice.connectionState === "reconnecting" && reconnects > 0);

  const missed: Message[] = [];
  for (let i = 1; i <= 3; i += 1) {
    missed.push(await bob.call("room.send", { room, text: `missed ${i}` }));
  }
  const missedDm = await bob.call("dm.send", { to: `alice-${suffix}`, text: "are you there?" });
  openGate();

  await eventually("alice reconnects and resyncs by herself", () => resyncs.length === 1 && alice.connectionState === "open");
  const resync = resyncs[0]!;
  check(
    JSON.stringify(resync.messages.map((m) => m.id)) === JSON.stringify(missed.map((m) => m.id)),
    "sync returned exactly the three missed room messages, in order",
  );
  check(resync.messages.every((m, i) => m.text === `missed ${i + 1}`), "the missed messages carry their text");
  check(resync.dms.length === 1 && resync.dms[0]?.id === missedDm.id && resync.dms[0]?.from === `bob-${suffix}`, "sync returned the missed DM");
  const delivered = aliceMessages.slice(beforeDrop).map((m) => m.id);
  check(new Set(aliceMessages.map((m) => m.id)).size === aliceMessages.length, "no message reached the handler twice");
  check(delivered.length === 3, "the room.message handler got each missed message once");
  check(aliceDms.some((dm) => dm.id === missedDm.id), "the dm.message handler got the missed DM");
  check(states.includes("reconnecting") && states.at(-1) === "open", "state went open → reconnecting → open");

  // A program holding a login refreshes its pair over REST (ConfabClient does it by itself
  // when given credentials); the old refresh token is spent, the new access token works.
  const refreshed = await rest.refresh(aliceTokens.refresh_token);
  const me = await rest.me(refreshed.access_token);
  check(me.username === `alice-${suffix}`, "the refreshed access token works over REST");

  const live = await bob.call("room.send", { room, text: "welcome back" });
  await eventually("live delivery resumes after the reconnect", () => aliceMessages.some((m) => m.id === live.id));
  check(alice.lastSeenIn(room) === live.id, "the client tracks the last seen id per room");

  // --- Refused and revoked -------------------------------------------------------------
  const intruder = new ConfabClient({ url: baseUrl, token: "not-a-valid-token", reconnect: false });
  const refused = await intruder.connect().then(
    () => undefined,
    (error: unknown) => error,
  );
  check(refused instanceof HttpError && refused.status === 401, "a bad token is refused with HTTP 401 before the socket exists");

  const bobStates: Array<[string, number | undefined]> = [];
  bob.onState((change) => bobStates.push([change.state, change.closeCode]));
  await rest.logout(bobTokens.access_token);
  await eventually("logging out closes the session's socket with 4003", () =>
    bobStates.some(([state, code]) => state === "closed" && code === CloseCodes.LoggedOut),
  );
  await new Promise((resolve) => setTimeout(resolve, 500));
  check(bob.connectionState === "closed" && !bobStates.some(([state]) => state === "reconnecting"), "the client does not reconnect after 4003");
  const revoked = await rest.me(bobTokens.access_token).then(
    () => undefined,
    (error: unknown) => error,
  );
  check(revoked instanceof HttpError && revoked.status === 401, "the logged-out access token gets 401 over REST");

  await alice.close();
}

const timer = setTimeout(() => {
  console.error(`client-ts example: timed out after ${OVERALL_TIMEOUT_MS} ms`);
  process.exit(1);
}, OVERALL_TIMEOUT_MS);

main().then(
  () => {
    clearTimeout(timer);
    console.log(`client-ts example: ${passed} passed, 0 failed`);
    process.exit(0);
  },
  (error: unknown) => {
    clearTimeout(timer);
    console.error(`client-ts example failed after ${passed} checks:`, error);
    console.log(`client-ts example: ${passed} passed, 1 failed`);
    process.exit(1);
  },
);
