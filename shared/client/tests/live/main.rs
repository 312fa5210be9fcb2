//! The client against a real server (in-process, on a loopback port): connecting by token and
//! by credentials, typed calls and notifications, API tokens (scopes, revocation closing with
//! 4003), a restart caught up exactly once, renewal
//! with 3-second access tokens, and a clean close. Every wait is bounded.

mod connect;
mod lifecycle;
mod server;
