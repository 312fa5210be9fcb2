//! `confab-client` (shared/client) against a real server (in-process, on a loopback port): connecting by token and
//! by credentials, typed calls and notifications, API tokens (scopes, revocation closing with
//! 4003), a restart caught up exactly once, renewal
//! with 3-second access tokens, a clean close, the in-flight window of pipelined calls, and the HTTP
//! stream transport with the fallback to it behind proxies that break WebSockets. Every wait is bounded.
//!
//! They live in the server's suite, not in the client crate's own `tests/`: every test
//! binary instantiates the protocol's serde code and the server's futures anew, and one more
//! binary cost minutes of a CI build on two cores.

mod connect;
mod lifecycle;
mod pipelining;
mod relay;
mod server;
mod stream;
