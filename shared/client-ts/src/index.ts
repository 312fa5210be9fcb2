// @confab/client: a typed Confab client for Node, built on the generated @confab/types.
//
//   const confab = await ConfabClient.connect({ url: "http://127.0.0.1:8000", token: process.env.CONFAB_TOKEN! });
//   confab.on("room.message", (message) => console.log(message.author, message.text));
//   await confab.call("room.join", { room: "lobby" });
//
// Layout: `client.ts` (the connection: calls, notifications, reconnect + sync, renewal,
// close), `cursors.ts` (what was delivered, for exactly-once catch-up), `backoff.ts`
// (full-jitter reconnection delays), `auth.ts` (fixed token or a self-renewing login),
// `transport.ts` (the WebSocket and the HTTP stream, behind one shape), `rest.ts` (the REST
// endpoints a client needs), `errors.ts`, `reactions.ts` (applying a
// `message.reacted` change to a message), `mentions.ts` (whether a message mentions a user).

export { ConfabClient, DEFAULT_MAX_IN_FLIGHT, DEFAULT_WEBSOCKET_RETRY_MS, SHORT_LIVED_MS, type Authentication, type ClientOptions, type ConnectionState, type Resync, type StateChange } from "./client.js";
export { RestClient } from "./rest.js";
export { FixedToken, LoginSession, type Auth } from "./auth.js";
export { Backoff, DEFAULT_BACKOFF, RESTART_CLOSE_CODES, type BackoffOptions } from "./backoff.js";
export { AuthFailed, CallTimeout, ClientClosed, ConnectionLost, HttpError, RpcError } from "./errors.js";
export { applyReaction } from "./reactions.js";
export { mentionsUser } from "./mentions.js";
export { STREAM_POSTS_AT_ONCE, type TransportChoice, type TransportKind } from "./transport.js";
