//! The AsyncAPI 3.0 document of the WebSocket API, generated from the shared wire types.
//!
//! Every method of [`confab_shared::rpc::methods::table`] becomes a `send` operation whose
//! reply is its result (or the error message), every notification of
//! [`confab_shared::rpc::notify::table`] a `receive` operation; the payload schemas are the
//! same utoipa schemas the OpenAPI document uses. Error and close codes come from
//! [`ErrorCode::ALL`] and [`close::DOCS`].
//!
//! `openapi/asyncapi.json` is this document, committed; a test fails when they differ
//! (`CONFAB_BLESS=1` rewrites it: see `committed.rs`).

use confab_shared::rpc::{BEARER_PROTOCOL_PREFIX, ErrorCode, MAX_BATCH, SUBPROTOCOL, close};
use confab_shared::schema::{self, Schemas};
use serde_json::{Map, Value, json};

/// The one channel: the socket at `/ws`.
const CHANNEL: &str = "socket";

/// Component message names: `<method>.request`, `<method>.result`, `<method>.notification`.
pub fn request_message(method: &str) -> String {
    format!("{method}.request")
}

pub fn result_message(method: &str) -> String {
    format!("{method}.result")
}

pub fn notification_message(method: &str) -> String {
    format!("{method}.notification")
}

/// The shared error-response message of every call.
const ERROR_MESSAGE: &str = "error";

/// Every schema the socket API uses: the wire types plus the JSON-RPC envelope parts.
pub fn schemas() -> Map<String, Value> {
    let mut out = Map::new();
    let wire: Schemas = schema::rpc_schemas();
    for (name, schema) in wire {
        out.insert(name, serde_json::to_value(schema).unwrap_or(Value::Null));
    }
    out.insert(
        "RequestId".into(),
        json!({
            "description": "A request id: a number or a string, echoed back unchanged in the response.",
            "oneOf": [{"type": "integer", "format": "int64"}, {"type": "string"}],
        }),
    );
    let codes: Vec<Value> = ErrorCode::ALL
        .iter()
        .map(|code| json!({"const": code.code(), "title": code.name(), "description": code.description()}))
        .collect();
    out.insert(
        "ErrorCode".into(),
        json!({"type": "integer", "description": "JSON-RPC 2.0 and Confab error codes.", "oneOf": codes}),
    );
    out.insert(
        "ErrorObject".into(),
        json!({
            "type": "object",
            "description": "The `error` member of an error response.",
            "required": ["code", "message"],
            "properties": {
                "code": {"$ref": "#/components/schemas/ErrorCode"},
                "message": {"type": "string", "description": "A short human-readable message."},
                "data": {"description": "`{field}` for -32602 (the offending param), `{retry_after_ms}` for -32029."},
            },
        }),
    );
    let closes: Vec<Value> = close::DOCS
        .iter()
        .map(|(code, name, advice)| json!({"const": code, "title": name, "description": advice.trim()}))
        .collect();
    out.insert(
        "CloseCode".into(),
        json!({"type": "integer", "description": "WebSocket close codes the server uses.", "oneOf": closes}),
    );
    out
}

fn schema_ref(reference: &impl serde::Serialize) -> Value {
    serde_json::to_value(reference).unwrap_or(Value::Null)
}

fn message_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/messages/{name}")})
}

fn channel_message_ref(name: &str) -> Value {
    json!({"$ref": format!("#/channels/{CHANNEL}/messages/{name}")})
}

fn channel_ref() -> Value {
    json!({"$ref": format!("#/channels/{CHANNEL}")})
}

/// The AsyncAPI document.
pub fn document() -> Value {
    let mut messages = Map::new();
    let mut operations = Map::new();

    for method in confab_shared::rpc::methods::table() {
        let name = method.name;
        messages.insert(
            request_message(name),
            json!({
                "name": name,
                "title": format!("{name} request"),
                "summary": method.doc,
                "payload": {
                    "type": "object",
                    "required": ["jsonrpc", "method"],
                    "properties": {
                        "jsonrpc": {"const": "2.0"},
                        "id": {"$ref": "#/components/schemas/RequestId", "description": "Omit to send a notification: no answer, not even an error."},
                        "method": {"const": name},
                        "params": schema_ref(&method.params),
                    },
                },
            }),
        );
        messages.insert(
            result_message(name),
            json!({
                "name": format!("{name} result"),
                "title": format!("{name} result"),
                "summary": format!("A successful answer to `{name}`: {}.", method.result_type),
                "payload": {
                    "type": "object",
                    "required": ["jsonrpc", "id", "result"],
                    "properties": {
                        "jsonrpc": {"const": "2.0"},
                        "id": {"$ref": "#/components/schemas/RequestId"},
                        "result": schema_ref(&method.result),
                    },
                },
            }),
        );
        operations.insert(
            format!("request.{name}"),
            json!({
                "action": "send",
                "channel": channel_ref(),
                "title": name,
                "summary": method.doc,
                "messages": [channel_message_ref(&request_message(name))],
                "reply": {
                    "channel": channel_ref(),
                    "messages": [channel_message_ref(&result_message(name)), channel_message_ref(ERROR_MESSAGE)],
                },
            }),
        );
    }

    messages.insert(
        ERROR_MESSAGE.into(),
        json!({
            "name": "error",
            "title": "Error response",
            "summary": "The answer to a call that failed; `id` is null when the request's id could not be read.",
            "payload": {
                "type": "object",
                "required": ["jsonrpc", "id", "error"],
                "properties": {
                    "jsonrpc": {"const": "2.0"},
                    "id": {"oneOf": [{"$ref": "#/components/schemas/RequestId"}, {"type": "null"}]},
                    "error": {"$ref": "#/components/schemas/ErrorObject"},
                },
            },
        }),
    );

    for note in confab_shared::rpc::notify::table() {
        let name = note.name;
        messages.insert(
            notification_message(name),
            json!({
                "name": name,
                "title": format!("{name} notification"),
                "summary": note.doc,
                "payload": {
                    "type": "object",
                    "required": ["jsonrpc", "method", "params"],
                    "properties": {
                        "jsonrpc": {"const": "2.0"},
                        "method": {"const": name},
                        "params": schema_ref(&note.params),
                    },
                },
            }),
        );
        operations.insert(
            format!("notification.{name}"),
            json!({
                "action": "receive",
                "channel": channel_ref(),
                "title": name,
                "summary": note.doc,
                "messages": [channel_message_ref(&notification_message(name))],
            }),
        );
    }

    let channel_messages: Map<String, Value> =
        messages.keys().map(|name| (name.clone(), message_ref(name))).collect();

    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Confab WebSocket API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": description(),
            "license": {"name": "MIT OR Apache-2.0"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "this": {
                "host": "127.0.0.1:8000",
                "protocol": "ws",
                "description": "The Confab instance serving this document (use wss behind TLS).",
                "security": [
                    {"$ref": "#/components/securitySchemes/bearer"},
                    {"$ref": "#/components/securitySchemes/subprotocol"},
                ],
            },
        },
        "channels": {
            CHANNEL: {
                "address": "/ws",
                "title": "The Confab socket",
                "description": format!(
                    "JSON-RPC 2.0 over text frames, subprotocol `{SUBPROTOCOL}`. One request object per frame, or a \
                     batch array of 1 to {MAX_BATCH} calls answered by one array. The server pushes notifications \
                     (requests without an `id`)."
                ),
                "messages": channel_messages,
                "bindings": {
                    "ws": {
                        "bindingVersion": "0.1.0",
                        "method": "GET",
                        "headers": {
                            "type": "object",
                            "properties": {
                                "Authorization": {"type": "string", "description": "`Bearer <access token>` (programs). Absent: an anonymous connection."},
                                "Sec-WebSocket-Protocol": {"type": "string", "description": format!("`{SUBPROTOCOL}`, and in browsers also `{BEARER_PROTOCOL_PREFIX}<access token>`. The server selects `{SUBPROTOCOL}`.")},
                                "Origin": {"type": "string", "description": "Browsers: must be the server's own origin or an allowed one (else HTTP 403)."},
                            },
                        },
                    },
                },
            },
        },
        "operations": operations,
        "components": {
            "schemas": schemas(),
            "messages": messages,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "The access token from `POST /api/auth/login` in the `Authorization` header of the upgrade request. An invalid, expired or revoked token is refused with HTTP 401.",
                },
                "subprotocol": {
                    "type": "httpApiKey",
                    "name": "Sec-WebSocket-Protocol",
                    "in": "header",
                    "description": format!("For browsers, which cannot set headers: `{SUBPROTOCOL}, {BEARER_PROTOCOL_PREFIX}<access token>`. The token is never echoed back."),
                },
            },
        },
    })
}

/// The document's overview: transport, errors and close codes, as Markdown.
fn description() -> String {
    let mut text = format!(
        "Everything live in Confab: JSON-RPC 2.0 over a WebSocket at `/ws`, subprotocol `{SUBPROTOCOL}`.\n\n\
         Authenticate with `Authorization: Bearer <access token>` or, in browsers, the subprotocol \
         `{BEARER_PROTOCOL_PREFIX}<access token>`; without a token the connection is anonymous and may only read. \
         Every request with an `id` gets exactly one response with that `id`; a bad request never closes the \
         socket. After a reconnect, call `sync` with the last message id seen per room. A readable reference \
         of everything below is served at `/api/docs/protocol`.\n\n\
         ## Error codes\n\n| code | name | meaning |\n|---|---|---|\n"
    );
    for code in ErrorCode::ALL {
        text.push_str(&format!("| {} | `{}` | {} |\n", code.code(), code.name(), code.description()));
    }
    text.push_str("\n## Close codes\n\n| code | name | meaning |\n|---|---|---|\n");
    for (code, name, advice) in close::DOCS {
        text.push_str(&format!("| {code} | `{name}` | {} |\n", advice.trim()));
    }
    text
}

/// The document as pretty JSON, exactly as committed.
pub fn asyncapi_json() -> String {
    let mut json = serde_json::to_string_pretty(&document()).unwrap_or_default();
    json.push('\n');
    json
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_asyncapi_document_matches_the_code() {
        crate::committed::check("openapi/asyncapi.json", &asyncapi_json());
    }

    #[test]
    fn every_method_and_notification_has_an_operation_and_every_ref_resolves() {
        let doc = document();
        let operations = doc["operations"].as_object().cloned().unwrap_or_default();
        for method in confab_shared::rpc::Request::METHODS {
            assert!(operations.contains_key(&format!("request.{method}")), "{method} has no operation");
        }
        for note in confab_shared::rpc::Notification::METHODS {
            assert!(operations.contains_key(&format!("notification.{note}")), "{note} has no operation");
        }
        let text = doc.to_string();
        for reference in text.split("\"$ref\":\"#/").skip(1) {
            let path: String = reference.chars().take_while(|c| *c != '"').collect();
            let target = path.split('/').try_fold(&doc, |node, key| node.get(key));
            assert!(target.is_some(), "dangling $ref #/{path}");
        }
    }
}
