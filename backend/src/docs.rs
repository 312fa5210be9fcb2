//! Human-readable API documentation, served under `/api/docs`.
//!
//! - `/api/docs`: the REST API, rendered by Swagger UI from `/api/openapi.json`. Its assets
//!   come from the `swagger-ui-dist` npm package, vendored into `docs/api-ui/dist` by
//!   `docs/api-ui/vendor.sh` (`just build-docs`); nothing is fetched at run time.
//! - `/api/docs/protocol`: the WebSocket protocol reference, every method, notification,
//!   type, error and close code, generated here from the same shared tables and schemas as
//!   the AsyncAPI document. `docs/protocol.md` is its Markdown form, committed; a test fails
//!   when it drifts (`CONFAB_BLESS=1 cargo test -p confab --lib docs` rewrites it).

use std::fmt::Write as _;

use confab_shared::rpc::{BEARER_PROTOCOL_PREFIX, ErrorCode, MAX_BATCH, SUBPROTOCOL, close};
use serde_json::Value;

/// The Swagger UI files the docs page needs, relative to the assets folder.
pub const SWAGGER_ASSETS: &[&str] = &["swagger-ui-bundle.js", "swagger-ui.css"];

/// One block of the reference, rendered to Markdown or HTML.
enum Block {
    Heading(u8, String),
    /// Text with Markdown inline code (`x`) and links ([text](#anchor)).
    Para(String),
    Code(String),
    Table(Vec<&'static str>, Vec<Vec<String>>),
}

/// The GitHub anchor of a heading: lowercase, punctuation dropped, spaces as dashes.
fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn type_link(name: &str) -> String {
    format!("[`{name}`](#{})", anchor(&format!("`{name}`")))
}

fn method_link(name: &str) -> String {
    format!("[`{name}`](#{})", anchor(&format!("`{name}`")))
}

/// A schema as a short type expression with links to named types.
fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        return type_link(reference.rsplit('/').next().unwrap_or(reference));
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = schema.get(key).and_then(Value::as_array) {
            return options.iter().map(type_of).collect::<Vec<_>>().join(" \\| ");
        }
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        return all.iter().map(type_of).collect::<Vec<_>>().join(" & ");
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(" \\| ");
    }
    if let Some(value) = schema.get("const") {
        return format!("`{value}`");
    }
    let one = |ty: &str| match ty {
        "array" => format!("[{}]", schema.get("items").map_or_else(|| "any".to_owned(), type_of)),
        "object" => match schema.get("additionalProperties") {
            Some(Value::Object(values)) => format!("{{string: {}}}", type_of(&Value::Object(values.clone()))),
            _ => "object".to_owned(),
        },
        other => other.to_owned(),
    };
    match schema.get("type") {
        Some(Value::String(ty)) => one(ty),
        Some(Value::Array(types)) => types.iter().filter_map(Value::as_str).map(one).collect::<Vec<_>>().join(" \\| "),
        _ => "any JSON".to_owned(),
    }
}

fn description_of(schema: &Value) -> String {
    let text = schema.get("description").and_then(Value::as_str).unwrap_or_default();
    text.replace('\n', " ").replace('|', "\\|")
}

/// A property's validation rules (length, range, pattern) in words, from its schema, so the
/// reference states exactly what the server checks.
fn constraints(schema: &Value) -> String {
    let number = |key: &str| schema.get(key).filter(|v| v.is_number()).map(Value::to_string);
    let range = |low: Option<String>, high: Option<String>, unit: &str| match (low, high) {
        (Some(low), Some(high)) => Some(format!("{low} to {high}{unit}")),
        (Some(low), None) => Some(format!("at least {low}{unit}")),
        (None, Some(high)) => Some(format!("at most {high}{unit}")),
        (None, None) => None,
    };
    let mut rules: Vec<String> = Vec::new();
    rules.extend(range(number("minLength"), number("maxLength"), " characters"));
    rules.extend(range(number("minimum"), number("maximum"), ""));
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        rules.push(format!("matches `{}`", pattern.replace('|', "\\|")));
    }
    rules.join("; ")
}

/// The field table of an object schema.
fn fields(schema: &Value) -> Option<Block> {
    let properties = schema.get("properties").and_then(Value::as_object)?;
    let required: Vec<&str> =
        schema.get("required").and_then(Value::as_array).map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let rows = properties
        .iter()
        .map(|(name, property)| {
            vec![
                format!("`{name}`"),
                type_of(property),
                if required.contains(&name.as_str()) { "yes" } else { "no" }.to_owned(),
                constraints(property),
                description_of(property),
            ]
        })
        .collect();
    Some(Block::Table(vec!["field", "type", "required", "rules", "description"], rows))
}

/// The blocks describing one named schema.
fn type_section(name: &str, schema: &Value, out: &mut Vec<Block>) {
    out.push(Block::Heading(3, format!("`{name}`")));
    let description = schema.get("description").and_then(Value::as_str).unwrap_or_default();
    if !description.is_empty() {
        out.push(Block::Para(description.to_owned()));
    }
    if let Some(table) = fields(schema) {
        out.push(table);
    } else if let Some(variants) = schema.get("oneOf").and_then(Value::as_array) {
        out.push(Block::Para("One of:".to_owned()));
        for variant in variants {
            let summary = variant.get("description").and_then(Value::as_str).unwrap_or_default();
            if !summary.is_empty() {
                out.push(Block::Para(summary.to_owned()));
            }
            out.push(fields(variant).unwrap_or_else(|| Block::Para(format!("A {}.", type_of(variant)))));
        }
    } else if schema.get("type").and_then(Value::as_str) == Some("object") {
        out.push(Block::Para("An object with no fields: `{}`.".to_owned()));
    } else {
        out.push(Block::Para(format!("Type: {}.", type_of(schema))));
    }
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

/// What a client may rely on about ordering, duplicates, catching up and slow connections.
fn delivery_rules() -> Vec<String> {
    let sync_limit = crate::features::sync::MAX_ITEMS;
    let sync_rooms = confab_shared::rpc::MAX_SYNC_ROOMS;
    vec![
        "Persisted first. A message is committed to the database before any `room.message` or `dm.message` \
         for it leaves the server; the result of `room.send` / `dm.send` is that stored message."
            .to_owned(),
        "Ordered ids. Message ids increase, and within a room they become visible in id order: a connection \
         never receives a `room.message` with a smaller id after a larger one of the same room. Every connection \
         in the room gets the notification, the sending one included, so de-duplicate by `id` (the `room.send` \
         result and its `room.message` are the same message)."
            .to_owned(),
        format!(
            "Catching up. After a reconnect, re-join the rooms (`room.join` with `history: 0`), then call `sync` \
             with `{{\"rooms\": {{room: last id seen}}, \"dm_after\": last direct message id}}`. It returns \
             exactly the messages and direct messages newer than those ids, none twice, in id order within each \
             room (rooms in name order, then the direct messages), at most {sync_limit} items per call counting \
             both and at most 1 MiB; while `complete` is `false`, call again with the newest ids received. One call names at most \
             {sync_rooms} rooms (more is -32602 with `data.field = \"rooms\"`: split them over several calls). A \
             room the caller may not read, or that does not exist, yields nothing rather than an error. Live notifications that arrive meanwhile may overlap the `sync` result: de-duplicate \
             by `id`."
        ),
        format!(
            "Answer size. No reply frame is larger than {answer} bytes (1 MiB, `MAX_ANSWER_BYTES`), a batch's array \
             included. Answers that page stop short of it and say so: `sync` with `complete: false`, `room.join` \
             with `history_more: true`, `room.history` and `dm.history` with a page shorter than `limit` (so only an \
             empty page is the start of a history). The calls of a batch share the {answer} bytes: a call whose \
             answer could not fit in what the calls before it left is not run and answers -32029 with \
             `retry_after_ms: 0`; send it again. A call on its own always makes progress: the largest message \
             ({message} bytes) always fits.",
            answer = confab_shared::rpc::MAX_ANSWER_BYTES,
            message = confab_shared::Message::MAX_JSON_BYTES,
        ),
        format!(
            "Reactions. `message.reacted` carries one change, `{{id, room, emoji, user, added, count}}`, never the \
             message or its whole list: add `user` under `emoji` (or remove them when `added` is `false`) in the \
             message you hold; `count` is how many users have reacted with that emoji after the change (0: it is \
             gone). A message holds at most {distinct} distinct emoji and {total} reactions in all; a reaction past \
             either is -32009 with `data.field = \"emoji\"`. An emoji is 1 to {chars} visible characters: no \
             whitespace, control or invisible formatting characters (-32602 with `data.field = \"emoji\"`).",
            distinct = confab_shared::validate::MAX_DISTINCT_REACTIONS,
            total = confab_shared::validate::MAX_REACTIONS,
            chars = confab_shared::validate::MAX_EMOJI_CHARS,
        ),
        format!(
            "Batched writes. Notifications to one connection may be written together: a notification that \
             follows the previous write to that connection within {} ms (the server's default) waits for the rest \
             of that window and goes out with whatever arrived meanwhile. The first notification after a quiet \
             window is written at once, and a response to the connection's own call is never held (it takes the \
             held notifications with it), so only a connection receiving more than one frame per window sees the \
             delay. Order is unchanged.",
            default_of("fanout_window_ms")
        ),
        "Slow connections. Room messages, direct messages and edits are never dropped for a live connection: \
         one that cannot keep up is closed with 1013 and recovers them with `sync` after reconnecting (with \
         backoff). Typing and presence notifications may be coalesced or dropped for a slow connection, and of \
         `job.progress` only the latest value per job is kept."
            .to_owned(),
        "Idempotent sends. `room.send` and `dm.send` take an optional `nonce`, one per message: a repeat from \
         the same user with the same room (recipient) and text returns the first message instead of storing a \
         duplicate, so a call whose answer was lost to a disconnect can be retried safely. The same nonce with \
         another room, recipient or text is refused with -32009 and `data.field = \"nonce\"`, and stores \
         nothing (once the first room message has been edited or deleted, only its room is compared)."
            .to_owned(),
    ]
}

/// What a connection hears about presence, the limits, and how lists page.
fn presence_rules() -> Vec<String> {
    vec![
        "Presence by interest. A connection receives `presence.changed` only for the users it watches: \
         `presence.watch {users, replace}` adds users to its watch set (or, with `replace: true`, makes them \
         the set), `presence.unwatch {users}` removes some. A connection that watches nobody, which is every \
         connection until it calls `presence.watch`, receives no `presence.changed` at all, its own user's \
         included. The result of `presence.watch` has the current state of the users named, so render from it \
         and apply the notifications after it. Unknown usernames are ignored; names match case-insensitively and \
         come back as the server spells them. The set dies with the connection: after a reconnect, watch again."
            .to_owned(),
        format!(
            "Limits and errors. A connection watches at most {} users (server setting `presence_watch_max`); \
             a `presence.watch` that would exceed it, or a `users` list longer than that, changes nothing and \
             fails with -32602 and `data.field = \"users\"`, as does a name that breaks the username rules.",
            default_of("presence_watch_max")
        ),
        format!(
            "Ticks. Arrivals and departures are collected for one tick ({} ms by default) and only the net change \
             per user is sent: a user who goes offline and comes back within a tick (a reload) sends nothing, and \
             every change reaches a watcher at most once per tick. Across instances each tick's changes travel as \
             one message, so presence costs O(changes × watchers), never O(users²).",
            default_of("presence_tick_ms")
        ),
        format!(
            "Room presence. Connections in a room get its net `room.user_joined` / `room.user_left` per tick while \
             the room has at most {} users present and at most 20 of them changed in the tick; otherwise the tick's \
             joins and leaves in that room are replaced by one `room.online_changed {{room, online}}` (the new count): \
             page `room.members` when the names matter. `room.join` returns the first 100 present users in `online` \
             and `online_next_cursor` for the rest.",
            default_of("room_presence_detail_max")
        ),
        "Paging. `users.list`, `rooms.list` and `room.members` (and `GET /api/users`, `GET /api/rooms`) return \
         pages in name order (users and members case-insensitively) of `limit` items (1 to 200; default 50, for \
         members 100) and a `next_cursor`: pass it as `cursor` for the next page; `null` means the last page. \
         Cursors are opaque keysets: a page starts strictly after the last name of the previous one, so names \
         inserted meanwhile never shift or repeat a page. `prefix` narrows to names starting with it (users: \
         case-insensitively), so one call finds a user among any number. `users.list` with `online: true` lists \
         online users only; its `total` counts the accounts matching the prefix and `online` those of them online. \
         A bad `cursor`, `limit` or `prefix` is -32602 (HTTP 422) naming the field."
            .to_owned(),
    ]
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
    let mut out = vec![
        Block::Heading(1, "Confab WebSocket protocol reference".to_owned()),
        Block::Para(
            "Generated from the Rust types in `shared/` (the same tables as `/api/asyncapi.json`); do not edit. \
             Regenerate with `CONFAB_BLESS=1 cargo test -p confab --lib docs`. Served at `/api/docs/protocol`; \
             the REST API is documented at `/api/docs` and `/api/openapi.json`."
                .to_owned(),
        ),
        Block::Heading(2, "Connecting".to_owned()),
        Block::Para(format!(
            "Open a WebSocket to `/ws` with the subprotocol `{SUBPROTOCOL}`. Programs authenticate with the header \
             `Authorization: Bearer <access token>` (from `POST /api/auth/login`) or an API token (see \
             [API tokens](#api-tokens)); browsers, which cannot set \
             headers, add `{BEARER_PROTOCOL_PREFIX}<access token>` to the subprotocol list. The server always \
             selects `{SUBPROTOCOL}` and never echoes the token. Without a token the connection is anonymous: it \
             may read (`echo`, `users.list`, `rooms.list`, `room.join` of public rooms, `room.history`) and gets \
             -32001 for anything that writes. An invalid, expired or revoked token is refused with HTTP 401 before \
             the socket exists; a browser `Origin` that is not allowed, with HTTP 403."
        )),
        Block::Para(format!(
            "Each text frame holds one JSON-RPC 2.0 request, or a batch array of 1 to {MAX_BATCH} requests answered \
             by one array (a longer batch gets a single -32600). Every request with an `id` gets exactly one \
             response with that `id`; a request without `id` is a notification and gets no answer. A bad request \
             never closes the socket: it gets its error response. The server pushes notifications (no `id`)."
        )),
        Block::Code(
            "→ {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"room.send\",\"params\":{\"room\":\"lobby\",\"text\":\"hi\"}}\n\
             ← {\"jsonrpc\":\"2.0\",\"method\":\"room.message\",\"params\":{\"id\":42,\"room\":\"lobby\",…}}\n\
             ← {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"id\":42,\"room\":\"lobby\",…}}"
                .to_owned(),
        ),
        Block::Para(format!(
            "{} s before the access token expires (by default) the server sends `session.expiring`; answer with \
             `auth.refresh` and a freshly refreshed access token of the same user, or the socket closes with 4001 \
             at expiry. After a reconnect, call `sync` with the last message id seen in each room (and the last \
             direct message id) to get exactly what was missed (see [Delivery](#delivery)).",
            default_of("expiry_warning_secs")
        )),
        Block::Para(format!(
            "Limits (server defaults, configurable): a frame of at most {} bytes (larger closes with 1009); \
             {} calls per second per connection with bursts of twice that, every call counting, \
             malformed or refused ones included (beyond: -32029 with `data.retry_after_ms`); the server pings every {} s and drops a connection silent for three \
             intervals; binary frames close with 1003.",
            default_of("max_frame_bytes"),
            default_of("rate_per_sec"),
            default_of("ping_secs"),
        )),
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
                .map(|(name, scope)| vec![method_link(name), scope.map_or_else(|| "none".to_owned(), |s| format!("`{}`", s.as_str()))])
                .collect(),
        ),
        Block::Heading(2, "Methods".to_owned()),
        Block::Table(
            vec!["method", "params", "result", "description"],
            methods
                .iter()
                .map(|m| vec![method_link(m.name), ref_name(&m.params), ref_name(&m.result), m.doc.clone()])
                .collect(),
        ),
    ];
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
    out.push(Block::Heading(2, "Delivery".to_owned()));
    for rule in delivery_rules() {
        out.push(Block::Para(rule));
    }
    out.push(Block::Heading(2, "Presence and paging".to_owned()));
    for rule in presence_rules() {
        out.push(Block::Para(rule));
    }
    out.push(Block::Heading(2, "Types".to_owned()));
    let envelope = ["RequestId", "ErrorCode", "ErrorObject", "CloseCode"];
    for (name, schema) in schemas.iter().filter(|(name, _)| !envelope.contains(&name.as_str())) {
        type_section(name, schema, &mut out);
    }
    out
}

/// The protocol reference as Markdown, exactly as committed in `docs/protocol.md`.
pub fn protocol_markdown() -> String {
    let mut md = String::new();
    for block in reference() {
        match block {
            Block::Heading(level, text) => {
                let _ = writeln!(md, "{} {text}\n", "#".repeat(usize::from(level)));
            }
            Block::Para(text) => {
                let _ = writeln!(md, "{text}\n");
            }
            Block::Code(text) => {
                let _ = writeln!(md, "```\n{text}\n```\n");
            }
            Block::Table(headers, rows) => {
                let _ = writeln!(md, "| {} |", headers.join(" | "));
                let _ = writeln!(md, "|{}", "---|".repeat(headers.len()));
                for row in rows {
                    let _ = writeln!(md, "| {} |", row.join(" | "));
                }
                md.push('\n');
            }
        }
    }
    md.truncate(md.trim_end().len());
    md.push('\n');
    md
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Markdown inline syntax as HTML: `code`, [text](href) and `\|`; everything else escaped.
fn inline(text: &str) -> String {
    let mut html = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '`'
            && let Some(end) = rest[1..].find('`')
        {
            let _ = write!(html, "<code>{}</code>", escape(&rest[1..=end]));
            rest = &rest[end + 2..];
            continue;
        }
        if c == '['
            && let Some((label, after)) = rest[1..].split_once("](")
            && let Some((href, tail)) = after.split_once(')')
            && !label.contains('[')
        {
            let _ = write!(html, "<a href=\"{}\">{}</a>", escape(href), inline(label));
            rest = tail;
            continue;
        }
        if c == '\\' && rest[1..].starts_with('|') {
            html.push('|');
            rest = &rest[2..];
            continue;
        }
        html.push_str(&escape(&c.to_string()));
        rest = &rest[c.len_utf8()..];
    }
    html
}

/// The protocol reference as a standalone HTML page (`/api/docs/protocol`).
pub fn protocol_html() -> String {
    let mut body = String::new();
    for block in reference() {
        match block {
            Block::Heading(level, text) => {
                let _ = writeln!(body, "<h{level} id=\"{}\">{}</h{level}>", anchor(&text), inline(&text));
            }
            Block::Para(text) => {
                let _ = writeln!(body, "<p>{}</p>", inline(&text));
            }
            Block::Code(text) => {
                let _ = writeln!(body, "<pre><code>{}</code></pre>", escape(&text));
            }
            Block::Table(headers, rows) => {
                body.push_str("<table><thead><tr>");
                for header in headers {
                    let _ = write!(body, "<th>{}</th>", escape(header));
                }
                body.push_str("</tr></thead><tbody>\n");
                for row in rows {
                    body.push_str("<tr>");
                    for cell in row {
                        let _ = write!(body, "<td>{}</td>", inline(&cell));
                    }
                    body.push_str("</tr>\n");
                }
                body.push_str("</tbody></table>\n");
            }
        }
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Confab WebSocket protocol</title><style>{NAV_CSS}{PROTOCOL_CSS}</style></head>\
         <body>{NAV}<main>\n{body}</main></body></html>\n"
    )
}

/// The navigation bar's style, shared by both pages (Swagger UI styles its own content).
const NAV_CSS: &str = "body{margin:0}nav{background:#1b1f24;padding:.6rem 2rem;font:15px/1.5 system-ui,sans-serif}\
nav a{color:#fff;margin-right:1.5rem;text-decoration:none}";

const PROTOCOL_CSS: &str = "body{font:15px/1.5 system-ui,sans-serif;color:#1b1f24}\
main{max-width:70rem;margin:0 auto;padding:1rem 2rem 4rem}\
code{font:13px ui-monospace,monospace;background:#f2f4f7;padding:0 .25em;border-radius:3px}\
pre{background:#f2f4f7;padding:.8rem;overflow:auto}pre code{background:none}\
table{border-collapse:collapse;margin:.5rem 0 1.2rem;width:100%}\
th,td{border:1px solid #d5dae1;padding:.3rem .5rem;text-align:left;vertical-align:top}\
th{background:#f6f8fa}h2{border-bottom:1px solid #d5dae1;margin-top:2.5rem}h3{margin-top:1.8rem}";

const NAV: &str = "<nav><a href=\"/api/docs\">REST API</a><a href=\"/api/docs/protocol\">WebSocket protocol</a>\
<a href=\"/api/openapi.json\">openapi.json</a><a href=\"/api/asyncapi.json\">asyncapi.json</a>\
<a href=\"/api/docs/protocol.md\">protocol.md</a></nav>";

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
         <title>Confab API documentation</title><style>{NAV_CSS}{}</style></head>\
         <body>{NAV}{main}</body></html>\n",
        if assets_available { "" } else { PROTOCOL_CSS }
    )
}

/// Starts Swagger UI (a separate file, so the page needs no inline script). `validatorUrl: null`
/// turns off the online validator badge, which Swagger UI otherwise loads from
/// validator.swagger.io: the page must not reach any other host.
pub const INIT_JS: &str = "window.addEventListener('load', function () {\n\
  window.ui = SwaggerUIBundle({\n\
    url: '/api/openapi.json',\n\
    dom_id: '#swagger-ui',\n\
    deepLinking: true,\n\
    tryItOutEnabled: false,\n\
    validatorUrl: null,\n\
  });\n\
});\n";

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
        for setting in ["expiry_warning_secs", "max_frame_bytes", "rate_per_sec", "ping_secs"] {
            assert!(default_of(setting).parse::<u64>().is_ok(), "{setting} has no numeric default");
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

    #[test]
    fn inline_markup_is_escaped_and_linked() {
        assert_eq!(inline("a `<b>` [`X`](#x) \\| c"), "a <code>&lt;b&gt;</code> <a href=\"#x\"><code>X</code></a> | c");
    }
}
