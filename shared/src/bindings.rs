//! TypeScript bindings: every wire type through ts-rs, plus a typed method map.
//!
//! The committed package lives in `shared/bindings/`; the test below regenerates it into
//! a temporary folder and fails when the two differ (run with `CONFAB_BLESS=1` to update).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use ts_rs::{Config, TS};

use crate::rpc::methods::table_ts;
use crate::rpc::notify::Notification;
use crate::rpc::{ErrorCode, ErrorObject, Request, RequestId, Response, close};
use crate::*;

/// The ts-rs configuration: ids are JSON numbers, so `i64` maps to `number`; imports name
/// `./X.js` so the package works under `"moduleResolution": "NodeNext"` as well as bundlers.
pub fn config(out_dir: &Path) -> Config {
    Config::new().with_large_int("number").with_out_dir(out_dir).with_import_extension(Some("js"))
}

/// The files this generator owns in `shared/bindings/` (the rest, `package.json` and
/// `README.md`, are written by hand).
pub fn is_generated(file_name: &str) -> bool {
    file_name.ends_with(".ts") || file_name == "index.js"
}

/// Writes every binding, `methods.ts`, `types.ts`, `index.ts` and `index.js` into `out_dir`.
pub fn write_all(out_dir: &Path) -> Result<(), String> {
    let cfg = config(out_dir);
    let export = |result: Result<(), ts_rs::ExportError>| result.map_err(|e| e.to_string());
    export(Request::export_all(&cfg))?;
    export(Notification::export_all(&cfg))?;
    export(Response::export_all(&cfg))?;
    export(ErrorObject::export_all(&cfg))?;
    export(RequestId::export_all(&cfg))?;
    export(Credentials::export_all(&cfg))?;
    export(RefreshRequest::export_all(&cfg))?;
    export(TokenPair::export_all(&cfg))?;
    export(SessionTokens::export_all(&cfg))?;
    export(LoginProvider::export_all(&cfg))?;
    export(OidcLogin::export_all(&cfg))?;
    export(CreateRoom::export_all(&cfg))?;
    export(QuietRequest::export_all(&cfg))?;
    export(PublishRequest::export_all(&cfg))?;
    export(PublishAccepted::export_all(&cfg))?;
    export(CreateJob::export_all(&cfg))?;
    export(JobAccepted::export_all(&cfg))?;
    export(Health::export_all(&cfg))?;
    export(Problem::export_all(&cfg))?;
    export(CreateApiToken::export_all(&cfg))?;
    export(ApiToken::export_all(&cfg))?;
    export(ApiTokenCreated::export_all(&cfg))?;
    export(crate::webhooks::CreateWebhook::export_all(&cfg))?;
    export(crate::webhooks::Webhook::export_all(&cfg))?;
    export(crate::webhooks::WebhookCreated::export_all(&cfg))?;
    export(crate::webhooks::WebhookDelivery::export_all(&cfg))?;
    export(crate::webhooks::WebhookBody::export_all(&cfg))?;
    export(crate::push::PushKey::export_all(&cfg))?;
    export(crate::push::CreatePushSubscription::export_all(&cfg))?;
    export(crate::push::PushSubscription::export_all(&cfg))?;
    export(crate::push::PushMessage::export_all(&cfg))?;
    export(crate::hooks::HookRequest::export_all(&cfg))?;
    export(crate::hooks::HookAnswer::export_all(&cfg))?;
    export(HistoryQuery::export_all(&cfg))?;
    export(UsersPage::export_all(&cfg))?;
    export(RoomsPage::export_all(&cfg))?;
    export(UsersQuery::export_all(&cfg))?;
    export(RoomsQuery::export_all(&cfg))?;
    export(crate::rpc::JoinResult::export_all(&cfg))?;
    export(crate::rpc::RoomMembersPage::export_all(&cfg))?;
    export(crate::rpc::PresenceWatchResult::export_all(&cfg))?;
    export(crate::rpc::PresenceUnwatchResult::export_all(&cfg))?;
    export(crate::rpc::SyncResult::export_all(&cfg))?;
    export(crate::rpc::AuthRefreshResult::export_all(&cfg))?;
    export(crate::rpc::Ack::export_all(&cfg))?;
    export(crate::moderation::SanctionRequest::export_all(&cfg))?;
    export(crate::moderation::KickRequest::export_all(&cfg))?;
    export(crate::moderation::RoleRequest::export_all(&cfg))?;
    export(crate::moderation::SettingsRequest::export_all(&cfg))?;
    export(crate::moderation::Suspension::export_all(&cfg))?;
    export(crate::moderation::PurgeRequest::export_all(&cfg))?;
    export(crate::moderation::SuspendedAccount::export_all(&cfg))?;
    export(crate::moderation::SuspensionsPage::export_all(&cfg))?;
    export(crate::moderation::SuspensionsQuery::export_all(&cfg))?;
    export(crate::moderation::RoomSanction::export_all(&cfg))?;
    export(crate::moderation::RoomSanctionsPage::export_all(&cfg))?;
    export(crate::moderation::RoomSanctionsQuery::export_all(&cfg))?;
    export(crate::moderation::ReportsPage::export_all(&cfg))?;
    export(crate::moderation::ReportsQuery::export_all(&cfg))?;
    export(crate::moderation::ResolveReport::export_all(&cfg))?;
    export(crate::moderation::AuditPage::export_all(&cfg))?;
    export(crate::moderation::AuditQuery::export_all(&cfg))?;
    export(crate::moderation::AuditExportRequest::export_all(&cfg))?;
    let mut methods = ExportVisitor { cfg: &cfg, result: Ok(()) };
    crate::rpc::methods::visit_types(&mut methods);
    export(methods.result)?;

    let mut names: Vec<String> = std::fs::read_dir(out_dir)
        .map_err(|e| e.to_string())?
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| entry.file_name().to_str()?.strip_suffix(".ts").map(str::to_owned))
        .filter(|name| !matches!(name.as_str(), "index" | "types" | "methods"))
        .collect();
    names.sort();

    let mut types = String::from(HEADER);
    for name in &names {
        let _ = writeln!(types, "export type {{ {name} }} from \"./{name}.js\";");
    }
    write(out_dir, "types.ts", &types)?;
    write(out_dir, "methods.ts", &methods_ts(&names)?)?;
    write(out_dir, "index.ts", &format!("{HEADER}export * from \"./types.js\";\nexport * from \"./methods.js\";\n"))?;
    // The runtime half for JavaScript consumers: the same constants, without the types.
    write(out_dir, "index.js", &format!("{HEADER}{}", constants(Lang::Js)))
}

/// Exports each type it visits; a type with no file of its own (`Vec<Message>`, `null`) is
/// looked through to the types it is made of.
struct ExportVisitor<'a> {
    cfg: &'a ts_rs::Config,
    result: Result<(), ts_rs::ExportError>,
}

impl ts_rs::TypeVisitor for ExportVisitor<'_> {
    fn visit<T: ts_rs::TS + 'static + ?Sized>(&mut self) {
        if self.result.is_err() {
            return;
        }
        if T::output_path().is_some() {
            self.result = T::export_all(self.cfg);
        } else {
            T::visit_dependencies(self);
        }
    }
}

const HEADER: &str = "// Generated by confab-shared (CONFAB_BLESS=1 cargo test -p confab-shared --features ts,openapi). Do not edit.\n\n";

fn write(dir: &Path, file: &str, text: &str) -> Result<(), String> {
    std::fs::write(dir.join(file), text).map_err(|e| format!("{file}: {e}"))
}

/// The method map, notification helpers and JSON-RPC frame types, so `call("room.send", p)`
/// is typed end to end, followed by the runtime constants.
/// Fails when a method's type names something the bindings do not export, which would
/// leave `methods.ts` importing a name `types.ts` does not have.
fn methods_ts(known: &[String]) -> Result<String, String> {
    let table = table_ts();
    let mut used: BTreeSet<&str> = table
        .iter()
        .flat_map(|(_, params, result, _)| [params.as_str(), result.as_str()])
        .flat_map(|ty| ty.split(|c: char| !c.is_alphanumeric() && c != '_'))
        .filter(|word| word.starts_with(|c: char| c.is_ascii_uppercase()) && !matches!(*word, "Array" | "Record" | "Partial"))
        .collect();
    if let Some(missing) = used.iter().find(|word| !known.iter().any(|k| k == *word)) {
        return Err(format!("methods.ts: a method's params or result is `{missing}`, which no binding exports"));
    }
    used.extend(["Notification", "ErrorObject", "RequestId"]);
    let mut out = String::from(HEADER);
    let imports: Vec<&str> = used.into_iter().collect();
    let _ = writeln!(out, "import type {{ {} }} from \"./types.js\";\n", imports.join(", "));
    out.push_str("/** Every client request: its params and the result of a successful call. */\nexport interface RpcMethods {\n");
    for (name, params, result, doc) in &table {
        let _ = writeln!(out, "  /** {} */\n  \"{name}\": {{ params: {params}; result: {result} }};", doc.trim());
    }
    out.push_str(
        r#"}

/** A method name. */
export type MethodName = keyof RpcMethods;
/** The params of method `M`. */
export type ParamsOf<M extends MethodName> = RpcMethods[M]["params"];
/** The result of method `M`. */
export type ResultOf<M extends MethodName> = RpcMethods[M]["result"];

/** A notification's method name. */
export type NotificationMethod = Notification["method"];
/** The params of notification `N`. */
export type NotificationParamsOf<N extends NotificationMethod> = Extract<Notification, { method: N }>["params"];

/** A request frame for method `M`; without `id` it is a JSON-RPC notification and gets no answer. */
export type RpcRequest<M extends MethodName = MethodName> = { jsonrpc: "2.0"; id?: RequestId; method: M; params: ParamsOf<M> };
/** A successful response to method `M`. */
export type RpcSuccess<M extends MethodName = MethodName> = { jsonrpc: "2.0"; id: RequestId; result: ResultOf<M> };
/** An error response; `id` is null when the request's id could not be read. */
export type RpcFailure = { jsonrpc: "2.0"; id: RequestId | null; error: ErrorObject };
/** A notification frame as it arrives. */
export type NotificationFrame = { jsonrpc: "2.0" } & Notification;
/** One text frame from the server: a response, a notification, or the array answering a batch. */
export type ServerFrame = RpcSuccess | RpcFailure | NotificationFrame | Array<RpcSuccess | RpcFailure>;

"#,
    );
    out.push_str(&constants(Lang::Ts));
    Ok(out)
}

#[derive(Clone, Copy, PartialEq)]
enum Lang {
    Ts,
    Js,
}

/// Method names, error codes, close codes, the reconnection policy and the subprotocol, as TypeScript (typed
/// `as const`) or plain JavaScript (`index.js`, what a program imports at run time).
fn constants(lang: Lang) -> String {
    let (as_const, methods_check, notes_check) = match lang {
        Lang::Ts => (" as const", " satisfies readonly MethodName[]", " satisfies readonly NotificationMethod[]"),
        Lang::Js => ("", "", ""),
    };
    let list = |names: &[&str]| names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ");
    let mut out = String::new();
    let _ = writeln!(out, "/** Every method name, in table order. */");
    let _ = writeln!(out, "export const METHODS = [{}]{as_const}{methods_check};\n", list(Request::METHODS));
    let _ = writeln!(out, "/** Every notification method name. */");
    let _ = writeln!(out, "export const NOTIFICATIONS = [{}]{as_const}{notes_check};\n", list(Notification::METHODS));
    out.push_str("/** JSON-RPC error codes. */\nexport const ErrorCodes = {\n");
    for code in ErrorCode::ALL {
        let _ = writeln!(out, "  /** {} */\n  {}: {},", code.description(), code.name(), code.code());
    }
    let _ = writeln!(out, "}}{as_const};\n");
    if lang == Lang::Ts {
        out.push_str("/** A JSON-RPC error code the server answers with. */\n");
        out.push_str("export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];\n\n");
    }
    out.push_str("/** WebSocket close codes. */\nexport const CloseCodes = {\n");
    for (code, name, advice) in close::DOCS {
        let _ = writeln!(out, "  /** {} */\n  {}: {code},", advice.trim(), pascal_case(name));
    }
    let _ = writeln!(out, "}}{as_const};\n");
    let policy = crate::rpc::reconnect::Policy::DEFAULT;
    out.push_str("/** The reconnection policy (the protocol reference's \"Reconnecting\"): a delay drawn uniformly from\n");
    out.push_str(" * [0, c) before each attempt, c doubling from `baseMs` per failed attempt up to `capMs`; the first\n");
    out.push_str(" * attempt after a `spreadCloseCodes` close waits a delay drawn from [0, goingAwaySpreadMs). */\n");
    out.push_str("export const Reconnect = {\n");
    let _ = writeln!(out, "  /** The first backoff ceiling (ms); it doubles per failed attempt. */\n  baseMs: {},", policy.base_ms);
    let _ = writeln!(out, "  /** The largest backoff ceiling (ms). */\n  capMs: {},", policy.cap_ms);
    let _ = writeln!(out, "  /** The window (ms) of the first attempt after a going-away close. */\n  goingAwaySpreadMs: {},", policy.going_away_spread_ms);
    let codes = crate::rpc::reconnect::SPREAD_CLOSE_CODES.map(|c| c.to_string()).join(", ");
    let _ = writeln!(out, "  /** 1001 (the server is stopping) and 1012 (service restart, sent by proxies). */\n  spreadCloseCodes: [{codes}],");
    let _ = writeln!(out, "}}{as_const};\n");
    out.push_str("/** The subprotocol to request; add `bearer.<token>` after it in browsers. */\n");
    let _ = writeln!(out, "export const SUBPROTOCOL = \"{}\";", crate::rpc::SUBPROTOCOL);
    out.push_str("/** Browsers send the access token as the subprotocol `bearer.<token>`. */\n");
    let _ = writeln!(out, "export const BEARER_PROTOCOL_PREFIX = \"{}\";", crate::rpc::BEARER_PROTOCOL_PREFIX);
    out.push_str("/** The most calls one batch array may hold. */\n");
    let _ = writeln!(out, "export const MAX_BATCH = {};", crate::rpc::MAX_BATCH);
    out.push_str("/** The most bytes one reply frame may take; paging answers stop short of it. */\n");
    let _ = writeln!(out, "export const MAX_ANSWER_BYTES = {};", crate::rpc::MAX_ANSWER_BYTES);
    out.push_str("/** Calls a client keeps in flight on one socket by default; later ones wait for an answer. */\n");
    let _ = writeln!(out, "export const MAX_CALLS_IN_FLIGHT = {};", crate::rpc::MAX_CALLS_IN_FLIGHT);
    out.push_str("/** Every API token starts with this; other bearer values are access tokens. */\n");
    let _ = writeln!(out, "export const API_TOKEN_PREFIX = \"{}\";", crate::tokens::API_TOKEN_PREFIX);
    out.push_str("/** The scope an API token needs for each socket method (`null`: none). */\nexport const METHOD_SCOPES = {\n");
    for (method, scope) in crate::tokens::METHOD_SCOPES {
        let scope = scope.map_or_else(|| "null".to_owned(), |s| format!("\"{}\"", s.as_str()));
        let _ = writeln!(out, "  \"{method}\": {scope},");
    }
    let _ = writeln!(out, "}}{as_const};");
    out
}

/// `TRY_AGAIN_LATER` → `TryAgainLater`.
fn pascal_case(screaming: &str) -> String {
    screaming
        .split('_')
        .map(|word| {
            let lower = word.to_ascii_lowercase();
            let mut chars = lower.chars();
            chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn read_dir_sorted(dir: &Path) -> Vec<(String, String)> {
        let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| is_generated(&e.file_name().to_string_lossy()))
                    .map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        (name, std::fs::read_to_string(e.path()).unwrap_or_default())
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }

    #[test]
    fn committed_typescript_bindings_match_the_rust_types() {
        let committed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bindings");
        if std::env::var_os("CONFAB_BLESS").is_some() {
            for (name, _) in read_dir_sorted(&committed) {
                std::fs::remove_file(committed.join(name)).unwrap();
            }
            std::fs::create_dir_all(&committed).unwrap();
            write_all(&committed).unwrap();
            return;
        }
        let fresh = std::env::temp_dir().join(format!("confab-bindings-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&fresh);
        std::fs::create_dir_all(&fresh).unwrap();
        write_all(&fresh).unwrap();
        let (want, have) = (read_dir_sorted(&fresh), read_dir_sorted(&committed));
        let _ = std::fs::remove_dir_all(&fresh);
        assert!(
            want == have,
            "shared/bindings is stale: run `CONFAB_BLESS=1 cargo test -p confab-shared --features ts,openapi` and commit"
        );
    }
}
