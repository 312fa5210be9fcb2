//! The backend integration suite, in one binary: every test starts the real server on an
//! ephemeral port with a database of its own and talks to it over real HTTP and WebSocket.
//!
//! `cargo test -p confab --test api` runs it on SQLite; `CONFAB_TEST_DATABASE=postgres` (with
//! `CONFAB_TEST_PG_URL`, see `scripts/services.sh`) runs the same tests on PostgreSQL.
//!
//! # Layout
//! - [`helpers`]: `spawn_app()`, the HTTP helpers and the JSON-RPC `WsClient`.
//! - one module per area: accounts and tokens, REST, the socket's handshake and frames, the
//!   byte budget of answers,
//!   rooms, chat, mentions, presence (by interest), paging, private messages, catch-up, ordering,
//!   back-pressure, pipelining and byte budgets, coalesced writes, publishing from outside, background jobs, API tokens, webhooks, Web Push,
//!   moderation (roles, kicks, bans, mutes, slow mode, suspensions, reports, the audit log), "Log in with" an identity provider, how
//!   answers are compressed and cached.
//! - hostile clients at the edge: [`socket_caps`] (open sockets per address and per user,
//!   trusted proxies), [`login_throttle`] (guesses counted before hashing, sign-up floods,
//!   malformed names), [`scopes`] (what creating a room or an export needs),
//!   [`credentials`] (short JWT secrets, a token on another user's session).
//! - [`stream`]: the HTTP streaming transport, the socket's protocol over an event stream
//!   and POSTs, and its users talking with socket users.
//! - [`client`]: the Rust client library (`confab-client`) against the server.
//! - [`fuzz`]: contract fuzzing of the socket session with generated hostile frames.
//! - [`cluster`]: scale-out, several `confab` processes on one Redis (or a Redis Cluster)
//!   and PostgreSQL; [`durability`]: `kill -9` mid-send loses nothing acknowledged. Both run
//!   the binary as child processes.
//!
//! One binary for all of it (the client library's tests, scale-out and durability too):
//! each test binary re-instantiates the protocol's serde code and the server's futures, and
//! every extra one cost minutes of a CI build on two cores.

mod helpers;

mod anonymous;
mod answers;
mod auth;
mod backpressure;
mod chat;
mod client;
mod cluster;
mod credentials;
mod delivery;
mod dm;
mod durability;
mod fanout;
mod fuzz;
mod hooks;
mod issuers;
mod jobs;
mod login_throttle;
mod logins;
mod mentions;
mod moderation;
mod oidc;
mod ordering;
mod paging;
mod pipelining;
mod presence;
mod publish;
mod push;
mod rest;
mod rooms;
mod security;
mod scopes;
mod socket;
mod socket_caps;
mod stream;
mod sync;
mod tokens;
mod webhooks;
