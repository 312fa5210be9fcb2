//! What an API token may do: one table for the socket methods (in the shared crate,
//! [`confab_shared::tokens::METHOD_SCOPES`]) and one for the REST routes ([`REST_ROUTES`]),
//! each checked in exactly one place: [`authorize_method`] before a method runs, and the
//! [`enforce_rest`](super::extract::enforce_rest) middleware before a handler runs. Anything missing from a table is
//! refused to tokens; tests keep both tables complete.
//!
//! Logins (access tokens) carry every scope; the checks only narrow API tokens.

use axum::http::Method;
use confab_shared::Scope;
use confab_shared::tokens::{CREATE_ROOM_SCOPE, method_scope};

use super::token::Identity;
use crate::error::AppError;

/// A set of scopes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    /// Every scope: what a login may do.
    pub const ALL: Scopes = Scopes(0b111);
    pub const NONE: Scopes = Scopes(0);

    fn bit(scope: Scope) -> u8 {
        match scope {
            Scope::Read => 1,
            Scope::Write => 2,
            Scope::Publish => 4,
        }
    }

    pub fn of(scopes: &[Scope]) -> Self {
        Scopes(scopes.iter().fold(0, |bits, s| bits | Self::bit(*s)))
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & Self::bit(scope) != 0
    }

    /// The scopes, in [`Scope::ALL`] order.
    pub fn to_vec(self) -> Vec<Scope> {
        Scope::ALL.into_iter().filter(|s| self.contains(*s)).collect()
    }

    /// The stored form, `read,write`.
    pub fn to_list(self) -> String {
        self.to_vec().iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
    }

    /// Reads the stored form; unknown names grant nothing.
    pub fn parse_list(list: &str) -> Self {
        Self::of(&list.split(',').filter_map(Scope::parse).collect::<Vec<_>>())
    }
}

/// Whether `identity` (`None`: anonymous) may call socket method `method`. Anonymous
/// connections and logins pass; the method itself decides what they may do.
pub fn authorize_method(identity: Option<&Identity>, method: &str) -> Result<(), AppError> {
    let Some(me) = identity.filter(|me| me.api_token.is_some()) else { return Ok(()) };
    match method_scope(method) {
        None => Err(AppError::Forbidden("this method is not available to API tokens")),
        Some(None) => Ok(()),
        Some(Some(scope)) if me.scopes.contains(scope) => Ok(()),
        Some(Some(scope)) => Err(AppError::MissingScope(scope)),
    }
}

/// What a REST route asks of a request that carries an API token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// The route reads no identity (or, for `/ws`, checks each method itself): the token is ignored.
    Open,
    /// The token must have this scope.
    Scope(Scope),
    /// Only a login may: creating or revoking tokens, logging out, managing webhooks.
    Login,
}

/// Every REST route: method (`*` for any), the route's path as the router spells it (a
/// trailing `*` matches any path with that prefix), and what it needs of an API token.
pub const REST_ROUTES: &[(&str, &str, Need)] = &[
    ("POST", "/api/auth/signup", Need::Open),
    ("POST", "/api/auth/login", Need::Open),
    ("POST", "/api/auth/refresh", Need::Open),
    ("POST", "/api/auth/logout", Need::Login),
    // The web app's cookie session: they read no bearer, only the cookie.
    ("POST", "/api/auth/session", Need::Open),
    ("POST", "/api/auth/session/refresh", Need::Open),
    ("POST", "/api/auth/session/logout", Need::Open),
    // "Log in with": the provider's code is the credential, not a bearer.
    ("GET", "/api/auth/providers", Need::Open),
    ("POST", "/api/auth/oidc/{issuer}", Need::Open),
    ("POST", "/api/auth/session/oidc/{issuer}", Need::Open),
    ("GET", "/api/me", Need::Scope(Scope::Read)),
    ("GET", "/api/users", Need::Scope(Scope::Read)),
    ("GET", "/api/rooms", Need::Scope(Scope::Read)),
    ("POST", "/api/rooms", Need::Scope(CREATE_ROOM_SCOPE)),
    ("GET", "/api/rooms/{room}/messages", Need::Scope(Scope::Read)),
    // Like `room.read`: the caller's own state in the room, written.
    ("PUT", "/api/rooms/{room}/quiet", Need::Scope(Scope::Write)),
    ("POST", "/api/publish", Need::Scope(Scope::Publish)),
    // An export stores a copy of a room's history and keeps a worker busy: writing.
    ("POST", "/api/jobs", Need::Scope(Scope::Write)),
    ("GET", "/api/jobs/{id}", Need::Scope(Scope::Read)),
    ("GET", "/api/jobs/{id}/download", Need::Scope(Scope::Read)),
    ("GET", "/api/tokens", Need::Login),
    ("POST", "/api/tokens", Need::Login),
    ("DELETE", "/api/tokens/{id}", Need::Login),
    ("GET", "/api/webhooks", Need::Login),
    ("POST", "/api/webhooks", Need::Login),
    ("DELETE", "/api/webhooks/{id}", Need::Login),
    ("GET", "/api/webhooks/{id}/deliveries", Need::Login),
    ("POST", "/api/webhooks/{id}/deliveries/{delivery_id}/retry", Need::Login),
    ("GET", "/api/push/key", Need::Open),
    ("GET", "/api/push/subscriptions", Need::Login),
    ("POST", "/api/push/subscriptions", Need::Login),
    ("DELETE", "/api/push/subscriptions/{id}", Need::Login),
    // Admins' and moderators' work: changing what others may do is writing.
    ("POST", "/api/users/{username}/suspend", Need::Scope(Scope::Write)),
    ("POST", "/api/users/{username}/unsuspend", Need::Scope(Scope::Write)),
    ("POST", "/api/users/{username}/purge", Need::Scope(Scope::Write)),
    ("POST", "/api/rooms/{room}/members/{username}/kick", Need::Scope(Scope::Write)),
    ("PUT", "/api/rooms/{room}/bans/{username}", Need::Scope(Scope::Write)),
    ("DELETE", "/api/rooms/{room}/bans/{username}", Need::Scope(Scope::Write)),
    ("PUT", "/api/rooms/{room}/mutes/{username}", Need::Scope(Scope::Write)),
    ("DELETE", "/api/rooms/{room}/mutes/{username}", Need::Scope(Scope::Write)),
    ("PUT", "/api/rooms/{room}/roles/{username}", Need::Scope(Scope::Write)),
    ("PATCH", "/api/rooms/{room}/settings", Need::Scope(Scope::Write)),
    ("GET", "/api/rooms/{room}/bans", Need::Scope(Scope::Read)),
    ("GET", "/api/rooms/{room}/mutes", Need::Scope(Scope::Read)),
    ("GET", "/api/reports", Need::Scope(Scope::Read)),
    ("POST", "/api/reports/{id}/resolve", Need::Scope(Scope::Write)),
    ("GET", "/api/audit", Need::Scope(Scope::Read)),
    ("POST", "/api/audit/export", Need::Scope(Scope::Write)),
    ("GET", "/api/suspensions", Need::Scope(Scope::Read)),
    ("GET", "/api/health", Need::Open),
    ("GET", "/api/openapi.json", Need::Open),
    ("GET", "/api/asyncapi.json", Need::Open),
    ("GET", "/api/docs", Need::Open),
    ("GET", "/api/docs/", Need::Open),
    ("GET", "/api/docs/init.js", Need::Open),
    ("GET", "/api/docs/protocol", Need::Open),
    ("GET", "/api/docs/protocol.md", Need::Open),
    ("GET", "/api/docs/nav.css", Need::Open),
    ("GET", "/api/docs/protocol.css", Need::Open),
    // A nested file service: matched by prefix (a row ending in `*`).
    ("*", "/api/docs/assets*", Need::Open),
    ("GET", "/metrics", Need::Open),
    ("GET", "/ws", Need::Open),
];

/// What route `path` (as the router spells it) needs for `method`; `None` when unlisted.
pub fn rest_need(method: &Method, path: &str) -> Option<Need> {
    REST_ROUTES
        .iter()
        .find(|(m, p, _)| {
            let path_matches = match p.strip_suffix('*') {
                Some(prefix) => path.starts_with(prefix),
                None => *p == path,
            };
            path_matches && (*m == "*" || *m == method.as_str())
        })
        .map(|(_, _, need)| *need)
}

#[cfg(test)]
mod tests {
    use utoipa::OpenApi as _;

    use super::*;

    #[test]
    fn every_documented_route_is_in_the_table() {
        let doc = crate::openapi::ApiDoc::openapi();
        for (path, item) in &doc.paths.paths {
            let operations = [
                (Method::GET, item.get.is_some()),
                (Method::POST, item.post.is_some()),
                (Method::PUT, item.put.is_some()),
                (Method::PATCH, item.patch.is_some()),
                (Method::DELETE, item.delete.is_some()),
            ];
            for (method, present) in operations {
                if present {
                    assert!(rest_need(&method, path).is_some(), "{method} {path} is missing from REST_ROUTES");
                }
            }
        }
    }

    #[test]
    fn scope_sets_round_trip_through_their_stored_form() {
        let set = Scopes::of(&[Scope::Write, Scope::Read, Scope::Write]);
        assert_eq!(set.to_list(), "read,write");
        assert_eq!(Scopes::parse_list("read,write"), set);
        assert_eq!(Scopes::parse_list("admin,,x"), Scopes::NONE);
        assert!(Scopes::ALL.contains(Scope::Publish) && !set.contains(Scope::Publish));
    }
}
