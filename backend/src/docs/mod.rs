//! Human-readable API documentation, served under `/api/docs`.
//!
//! - `/api/docs`: the REST API, rendered by Swagger UI from `/api/openapi.json`. Its assets
//!   come from the `swagger-ui-dist` npm package, vendored into `docs/api-ui/dist` by
//!   `docs/api-ui/vendor.sh` (`just build-docs`); nothing is fetched at run time.
//! - `/api/docs/protocol`: the WebSocket protocol reference, every method, notification,
//!   type, error and close code, generated here from the same shared tables and schemas as
//!   the AsyncAPI document. `docs/protocol.md` is its Markdown form, committed; a test fails
//!   when it drifts (`CONFAB_BLESS=1 cargo test -p confab --lib docs` rewrites it).
//!
//! # Layout
//! - this file: the reference assembled from the prose and the shared tables, and the pages.
//! - `prose/*.md`: the reference's hand-written sections, included at build time; `{{name}}`
//!   stands for a value taken from the code (a limit, a server default) when it is rendered.
//! - [`schema`]: type expressions, field tables and type sections from the JSON schemas.
//! - [`render`]: the blocks, and how they become Markdown or HTML.
//! - `nav.css`, `protocol.css`, `init.js`: the pages' style and Swagger UI's start.

mod render;
mod schema;

use confab_shared::rpc::{BEARER_PROTOCOL_PREFIX, ErrorCode, MAX_BATCH, SUBPROTOCOL, close};
use serde_json::Value;

use self::render::Block;
use self::schema::{code_link, fields, type_of, type_section};

/// The Swagger UI files the docs page needs, relative to the assets folder.
pub const SWAGGER_ASSETS: &[&str] = &["swagger-ui-bundle.js", "swagger-ui.css"];

/// Connecting: the title, the handshake, frames, renewal, limits.
const CONNECTING: &str = include_str!("prose/connecting.md");
/// Delivery: ordering, duplicates, catching up, batching, slow connections, retries.
const DELIVERY: &str = include_str!("prose/delivery.md");
/// Presence and paging.
const PRESENCE: &str = include_str!("prose/presence.md");
/// HTTP streaming: the same protocol over an event stream and POSTs.
const STREAMING: &str = include_str!("prose/streaming.md");

/// The pages' styles are files, not inline `<style>`: the pages' Content-Security-Policy
/// allows styles from this origin only (see `crate::headers`).
const NAV_LINK: &str = "<link rel=\"stylesheet\" href=\"/api/docs/nav.css\">";
const PROTOCOL_LINK: &str = "<link rel=\"stylesheet\" href=\"/api/docs/protocol.css\">";

/// The navigation bar's style, shared by both pages (Swagger UI styles its own content):
/// `/api/docs/nav.css`.
pub const NAV_CSS: &str = include_str!("nav.css");
/// The protocol reference's style: `/api/docs/protocol.css`.
pub const PROTOCOL_CSS: &str = include_str!("protocol.css");

const NAV: &str = "<nav><a href=\"/api/docs\">REST API</a><a href=\"/api/docs/protocol\">WebSocket protocol</a>\
<a href=\"/api/openapi.json\">openapi.json</a><a href=\"/api/asyncapi.json\">asyncapi.json</a>\
<a href=\"/api/docs/protocol.md\">protocol.md</a></nav>";

/// Starts Swagger UI (a separate file, so the page needs no inline script).
pub const INIT_JS: &str = include_str!("init.js");

/// A prose section's blocks, with every `{{name}}` replaced by its value from the code.
fn prose(source: &str) -> Vec<Block> {
    let values = [
        ("subprotocol", SUBPROTOCOL.to_owned()),
        ("bearer_prefix", BEARER_PROTOCOL_PREFIX.to_owned()),
        ("max_batch", MAX_BATCH.to_string()),
        ("sync_limit", crate::features::sync::MAX_ITEMS.to_string()),
        ("sync_rooms", confab_shared::rpc::MAX_SYNC_ROOMS.to_string()),
        ("expiry_warning_secs", default_of("expiry_warning_secs")),
        ("max_frame_bytes", default_of("max_frame_bytes")),
        ("rate_per_sec", default_of("rate_per_sec")),
        ("write_bytes_per_sec", default_of("write_bytes_per_sec")),
        ("write_burst", crate::ws::limits::WRITE_BURST.to_string()),
        ("rooms_per_call", crate::ws::limits::ROOMS_PER_CALL.to_string()),
        ("ping_secs", default_of("ping_secs")),
        ("fanout_window_ms", default_of("fanout_window_ms")),
        ("answer_bytes", confab_shared::rpc::MAX_ANSWER_BYTES.to_string()),
        ("message_max_bytes", confab_shared::Message::MAX_JSON_BYTES.to_string()),
        ("max_distinct_reactions", confab_shared::validate::MAX_DISTINCT_REACTIONS.to_string()),
        ("max_reactions", confab_shared::validate::MAX_REACTIONS.to_string()),
        ("max_emoji_chars", confab_shared::validate::MAX_EMOJI_CHARS.to_string()),
        ("outbox_max_kib", (default_of("outbox_max_bytes").parse::<usize>().unwrap_or(0) / 1024).to_string()),
        ("presence_watch_max", default_of("presence_watch_max")),
        ("presence_tick_ms", default_of("presence_tick_ms")),
        ("room_presence_detail_max", default_of("room_presence_detail_max")),
        ("stream_keepalive_secs", crate::ws::stream::KEEPALIVE.as_secs().to_string()),
        ("posts_in_line", crate::ws::streams::POSTS_IN_LINE.to_string()),
    ];
    let mut text = source.to_owned();
    for (name, value) in values {
        text = text.replace(&format!("{{{{{name}}}}}"), &value);
    }
    render::parse(&text)
}

/// The default of a server setting, as `confab serve --help` shows it (read from the clap
/// definition, not the environment, so the reference does not depend on where it is built).
fn default_of(setting: &str) -> String {
    let command = <crate::config::Config as clap::Args>::augment_args(clap::Command::new("confab"));
    command
        .get_arguments()
        .find(|arg| arg.get_id() == setting)
        .and_then(|arg| arg.get_default_values().first().map(|v| v.to_string_lossy().into_owned()))
        .unwrap_or_else(|| format!("<{setting}>"))
}

/// The protocol reference as blocks.
fn reference() -> Vec<Block> {
    let methods = confab_shared::rpc::methods::table();
    let notes = confab_shared::rpc::notify::table();
    let schemas = crate::asyncapi::schemas();
    let ref_name = |reference: &utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>| -> String {
        let value = serde_json::to_value(reference).unwrap_or(Value::Null);
        type_of(&value)
    };
    let mut out = prose(CONNECTING);
    out.extend([
        Block::Heading(2, "API tokens".to_owned()),
        Block::Para(confab_shared::tokens::RULES.to_owned()),
        Block::Table(
            vec!["scope", "allows"],
            confab_shared::Scope::ALL.iter().map(|s| vec![format!("`{}`", s.as_str()), s.description().to_owned()]).collect(),
        ),
        Block::Table(
            vec!["method", "scope an API token needs"],
            confab_shared::tokens::METHOD_SCOPES
                .iter()
                .filter(|(name, _)| confab_shared::rpc::Request::METHODS.contains(name))
                .map(|(name, scope)| {
                    let mut needs = scope.map_or_else(|| "none".to_owned(), |s| format!("`{}`", s.as_str()));
                    if let Some((_, note)) = confab_shared::tokens::METHOD_SCOPE_NOTES.iter().find(|(method, _)| method == name) {
                        needs = format!("{needs} {note}");
                    }
                    vec![code_link(name), needs]
                })
                .collect(),
        ),
        Block::Heading(2, "Moderation".to_owned()),
        Block::Para(confab_shared::moderation::RULES.to_owned()),
        Block::Heading(2, "Mentions".to_owned()),
        Block::Para(confab_shared::mention::RULES.to_owned()),
        Block::Heading(2, "Methods".to_owned()),
        Block::Table(
            vec!["method", "params", "result", "description"],
            methods
                .iter()
                .map(|m| vec![code_link(m.name), ref_name(&m.params), ref_name(&m.result), m.doc.clone()])
                .collect(),
        ),
    ]);
    for method in &methods {
        out.push(Block::Heading(3, format!("`{}`", method.name)));
        out.push(Block::Para(method.doc.clone()));
        out.push(Block::Para(format!("Params: {}. Result: {}.", ref_name(&method.params), ref_name(&method.result))));
        let params_name = method.params_type.trim_matches(|c| c == '[' || c == ']');
        if let Some(table) = schemas.get(params_name).and_then(fields) {
            out.push(table);
        } else {
            out.push(Block::Para("No params: send `{}` or omit `params`.".to_owned()));
        }
    }
    out.push(Block::Heading(2, "Notifications".to_owned()));
    out.push(Block::Para("Frames the server pushes: `{\"jsonrpc\":\"2.0\",\"method\":…,\"params\":…}`, with no `id`.".to_owned()));
    out.push(Block::Table(
        vec!["method", "params", "when"],
        notes.iter().map(|n| vec![format!("`{}`", n.name), ref_name(&n.params), n.doc.clone()]).collect(),
    ));
    out.push(Block::Heading(2, "Errors".to_owned()));
    out.push(Block::Para(
        "An error response is `{\"jsonrpc\":\"2.0\",\"id\":…,\"error\":{\"code\":…,\"message\":…,\"data\":…}}`; `id` \
         is null when the request's id could not be read (parse errors, invalid requests)."
            .to_owned(),
    ));
    out.push(Block::Table(
        vec!["code", "name", "message", "meaning"],
        ErrorCode::ALL
            .iter()
            .map(|c| vec![c.code().to_string(), format!("`{}`", c.name()), c.message().to_owned(), c.description().to_owned()])
            .collect(),
    ));
    out.push(Block::Heading(2, "Close codes".to_owned()));
    out.push(Block::Table(
        vec!["code", "name", "reason sent", "what to do"],
        close::DOCS
            .iter()
            .zip(close::ALL)
            .map(|((code, name, advice), (_, reason))| {
                vec![code.to_string(), format!("`{name}`"), (*reason).to_owned(), advice.trim().to_owned()]
            })
            .collect(),
    ));
    out.push(Block::Para(confab_shared::rpc::reconnect::RULE.to_owned()));
    out.extend(prose(STREAMING));
    out.extend(prose(DELIVERY));
    out.extend(prose(PRESENCE));
    out.push(Block::Heading(2, "Types".to_owned()));
    let envelope = ["RequestId", "ErrorCode", "ErrorObject", "CloseCode"];
    for (name, schema) in schemas.iter().filter(|(name, _)| !envelope.contains(&name.as_str())) {
        type_section(name, schema, &mut out);
    }
    out
}

/// The protocol reference as Markdown, exactly as committed in `docs/protocol.md`.
pub fn protocol_markdown() -> String {
    render::markdown(reference())
}

/// The protocol reference as a standalone HTML page (`/api/docs/protocol`).
pub fn protocol_html() -> String {
    let body = render::html(reference());
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Confab WebSocket protocol</title>{NAV_LINK}{PROTOCOL_LINK}</head>\
         <body>{NAV}<main>\n{body}</main></body></html>\n"
    )
}

/// The `/api/docs` page: Swagger UI on the committed OpenAPI document, or, when the assets
/// were not vendored, links to the raw documents and how to vendor them.
pub fn index_html(assets_available: bool) -> String {
    let main = if assets_available {
        "<link rel=\"stylesheet\" href=\"/api/docs/assets/swagger-ui.css\">\
         <div id=\"swagger-ui\"></div>\
         <script src=\"/api/docs/assets/swagger-ui-bundle.js\"></script>\
         <script src=\"/api/docs/init.js\"></script>"
            .to_owned()
    } else {
        "<main><h1>Confab API</h1><p>The interactive REST documentation needs its assets, which this server \
         does not have. Vendor them with <code>just build-docs</code> (or <code>bash docs/api-ui/vendor.sh</code>) \
         and restart, or set <code>CONFAB_DOCS_ASSETS_DIR</code>.</p><ul>\
         <li><a href=\"/api/openapi.json\">REST API: OpenAPI 3.1 document</a></li>\
         <li><a href=\"/api/docs/protocol\">WebSocket protocol reference</a></li>\
         <li><a href=\"/api/asyncapi.json\">WebSocket API: AsyncAPI 3.0 document</a></li></ul></main>"
            .to_owned()
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Confab API documentation</title>{NAV_LINK}{}</head>\
         <body>{NAV}{main}</body></html>\n",
        if assets_available { "" } else { PROTOCOL_LINK }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_protocol_reference_matches_the_code() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/protocol.md");
        let fresh = protocol_markdown();
        if std::env::var_os("CONFAB_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &fresh).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(committed == fresh, "docs/protocol.md is stale: run `CONFAB_BLESS=1 cargo test -p confab --lib docs` and commit");
    }

    #[test]
    fn the_reference_names_every_method_notification_error_close_code_and_type() {
        let md = protocol_markdown();
        for method in confab_shared::rpc::Request::METHODS {
            assert!(md.contains(&format!("### `{method}`")), "{method} has no section");
        }
        for note in confab_shared::rpc::Notification::METHODS {
            assert!(md.contains(&format!("| `{note}` |")), "{note} is missing");
        }
        for code in ErrorCode::ALL {
            assert!(md.contains(&format!("| {} |", code.code())), "{code:?} is missing");
        }
        for (code, _) in close::ALL {
            assert!(md.contains(&format!("| {code} |")), "close code {code} is missing");
        }
        for name in crate::asyncapi::schemas().keys().filter(|n| !["RequestId", "ErrorCode", "ErrorObject", "CloseCode"].contains(&n.as_str())) {
            assert!(md.contains(&format!("### `{name}`")), "type {name} has no section");
        }
    }

    #[test]
    fn the_settings_the_reference_quotes_exist() {
        for setting in ["expiry_warning_secs", "max_frame_bytes", "rate_per_sec", "write_bytes_per_sec", "ping_secs"] {
            assert!(default_of(setting).parse::<u64>().is_ok(), "{setting} has no numeric default");
        }
    }

    #[test]
    fn every_placeholder_of_the_prose_is_filled() {
        for source in [CONNECTING, DELIVERY, PRESENCE] {
            for block in prose(source) {
                if let Block::Para(text) | Block::Code(text) | Block::Heading(_, text) = block {
                    assert!(!text.contains("{{"), "unfilled: {text}");
                }
            }
        }
    }

    #[test]
    fn every_link_of_the_html_page_has_its_anchor() {
        let html = protocol_html();
        for href in html.split("href=\"#").skip(1) {
            let id: String = href.chars().take_while(|c| *c != '"').collect();
            assert!(html.contains(&format!("id=\"{id}\"")), "#{id} has no target");
        }
    }
}
