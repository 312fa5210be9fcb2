//! The OpenAPI 3.1 document of the REST API, generated from the handlers' annotations.
//!
//! `openapi/openapi.json` is this document, committed; a test fails when they differ
//! (`CONFAB_BLESS=1 cargo test -p confab openapi` rewrites it).

use confab_shared::*;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::{auth, features};

#[derive(OpenApi)]
#[openapi(
    info(title = "Confab", description = "Real-time chat and presence: REST API. The WebSocket JSON-RPC API is described at /api/asyncapi.json."),
    paths(
        auth::routes::signup,
        auth::routes::login,
        auth::routes::refresh,
        auth::routes::logout,
        auth::routes::me,
        features::users::list_users,
        features::rooms::list_rooms,
        features::rooms::create_room,
        features::rooms::room_messages,
        features::system::health,
    ),
    components(schemas(User, UserPresence, Credentials, RefreshRequest, TokenPair, RoomSummary, CreateRoom, Message, DirectMessage, Health, Status, Problem)),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Accounts and tokens"),
        (name = "users", description = "Users and presence"),
        (name = "rooms", description = "Rooms and history"),
        (name = "system", description = "Health"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// The document as pretty JSON, exactly as committed.
pub fn openapi_json() -> String {
    let mut json = ApiDoc::openapi().to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_committed_openapi_document_matches_the_code() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi/openapi.json");
        let fresh = super::openapi_json();
        if std::env::var_os("CONFAB_BLESS").is_some() {
            std::fs::write(&path, &fresh).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(committed == fresh, "openapi/openapi.json is stale: run `CONFAB_BLESS=1 cargo test -p confab openapi` and commit");
    }
}
