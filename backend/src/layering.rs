//! The layer rule, kept by a test that reads the source tree.
//!
//! The lower layers ([`LOWER`], bottom-up as the crate doc's Layout lists them: metrics, the
//! Redis link, TLS, config, storage, error, the channel layer, presence, auth's building blocks)
//! each import only their own layer and those before it; every type `AppState` holds never
//! reaches the layers above ([`UPPER`]: the features, the socket session, `AppState` itself,
//! the auth routes and extractors, startup and the documents). Otherwise the crate is one
//! import cycle, and a change at the bottom can need a change at the top.
//!
//! The test follows every `use crate::…` / `use super::…` line and every `crate::…` /
//! `super::…` path in code, from those modules and from everything they reach, and names
//! the file and line of each import that breaks the rule. Test modules (`#[cfg(test)] mod
//! …` at the end of a file) are not read: tests may use anything.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

/// The lower layers, bottom-up: a module (or a module below it) may import its own layer and
/// the ones before it, nothing else of the crate.
const LOWER: &[&[&str]] = &[
    &["metrics", "redis_link", "auth::password", "client_ip", "tls", "signing"],
    &["config", "files", "storage", "webpush"],
    &["error"],
    &["layer"],
    &["presence"],
    &["auth::token", "auth::scopes", "auth::api_tokens", "auth::throttle"],
    &["auth::issuers"],
];

/// What the types `AppState` holds (and what they reach) must never import.
const UPPER: &[&str] = &[
    "features",
    "ws",
    "state",
    "auth::routes",
    "auth::extract",
    "auth::oidc",
    "startup",
    "cli",
    "http",
    "openapi",
    "asyncapi",
    "docs",
    "spa",
    "import",
];

/// One source file: its module path (`layer::redis::wire`, `""` for the crate root) and
/// its lines without comments and without the trailing test module.
struct Source {
    file: String,
    lines: Vec<String>,
}

/// An import of one file: the line it is on, how it is written, and the absolute path
/// (segments after `crate::`) it names.
struct Import {
    line: usize,
    written: String,
    path: Vec<String>,
}

/// Every module file under `src`, by module path.
fn modules(src: &Path) -> BTreeMap<String, Source> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative: PathBuf = path.strip_prefix(src).unwrap_or(&path).to_path_buf();
            let mut segments: Vec<String> = relative.iter().map(|s| s.to_string_lossy().into_owned()).collect();
            let last = segments.pop().unwrap_or_default();
            match last.as_str() {
                "main.rs" if segments.is_empty() => continue,
                "lib.rs" if segments.is_empty() => {}
                "mod.rs" => {}
                other => segments.push(other.trim_end_matches(".rs").to_owned()),
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let source = Source { file: relative.to_string_lossy().replace('\\', "/"), lines: code_lines(&text) };
            out.insert(segments.join("::"), source);
        }
    }
    out
}

/// The file's lines with `//` comments blanked and the test module (`#[cfg(test)]`,
/// `#[cfg(all(test, …))]`) cut off (line numbers kept).
fn code_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(|l| l.find("//").map_or(l, |at| &l[..at]).to_owned()).collect();
    let test_module = (0..lines.len()).find(|&i| {
        let attribute = lines[i].trim();
        attribute.starts_with("#[cfg(")
            && attribute.contains("test")
            && lines[i + 1..].iter().find(|l| !l.trim().is_empty()).is_some_and(|l| l.trim_start().starts_with("mod "))
    });
    if let Some(start) = test_module {
        lines.truncate(start);
    }
    lines
}

/// The lower layer `module` belongs to, by its position in [`LOWER`].
fn rank(module: &str) -> Option<usize> {
    LOWER.iter().position(|units| units.iter().any(|u| module == *u || module.starts_with(&format!("{u}::"))))
}

/// The parent module path of `module` (`a::b` → `a`; `a` → the crate root).
fn parent(module: &str) -> String {
    module.rsplit_once("::").map_or_else(String::new, |(p, _)| p.to_owned())
}

fn join(base: &str, rest: &[&str]) -> Vec<String> {
    base.split("::").filter(|s| !s.is_empty()).map(str::to_owned).chain(rest.iter().map(|s| (*s).to_owned())).collect()
}

/// `written` (a path as it appears in `module`) as segments from the crate root, or `None`
/// for a path into another crate.
fn absolute(module: &str, written: &str, all: &BTreeMap<String, Source>) -> Option<Vec<String>> {
    let segments: Vec<&str> = written.split("::").map(str::trim).filter(|s| !s.is_empty()).collect();
    let (&first, rest) = segments.split_first()?;
    match first {
        "crate" => Some(join("", rest)),
        "self" => Some(join(module, rest)),
        "super" => {
            let mut base = parent(module);
            let mut rest = rest;
            while let Some((&"super", tail)) = rest.split_first() {
                base = parent(&base);
                rest = tail;
            }
            Some(join(&base, rest))
        }
        // A bare path in a `use` names a child module, or another crate.
        child => {
            let candidate = join(module, &[child]).join("::");
            all.contains_key(&candidate).then(|| join(module, &segments))
        }
    }
}

/// `use a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e` (aliases and globs dropped).
fn expand(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path = tree.split(" as ").next().unwrap_or(tree).trim();
        return vec![path.trim_end_matches("::*").trim_end_matches("::self").to_owned()];
    };
    let prefix = &tree[..open];
    let inner = tree[open + 1..].strip_suffix('}').unwrap_or(&tree[open + 1..]);
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .flat_map(|p| expand(p).into_iter().map(move |e| if e == "self" { prefix.trim_end_matches("::").to_owned() } else { format!("{prefix}{e}") }))
        .collect()
}

/// Every crate-internal path `module`'s code names, with its line.
fn imports(module: &str, source: &Source, all: &BTreeMap<String, Source>) -> Vec<Import> {
    let mut out = Vec::new();
    let mut in_use: Option<(usize, String)> = None;
    for (index, line) in source.lines.iter().enumerate() {
        let trimmed = line.trim();
        let statement = match in_use.take() {
            Some((start, mut text)) => {
                text.push_str(trimmed);
                Some((start, text))
            }
            None => {
                let after_vis = trimmed.strip_prefix("pub ").or_else(|| trimmed.strip_prefix("pub(crate) ")).or_else(|| trimmed.strip_prefix("pub(super) ")).unwrap_or(trimmed);
                after_vis.strip_prefix("use ").map(|rest| (index, rest.to_owned()))
            }
        };
        if let Some((start, text)) = statement {
            match text.split_once(';') {
                Some((tree, _)) => {
                    for written in expand(tree) {
                        if let Some(path) = absolute(module, &written, all) {
                            out.push(Import { line: start + 1, written: format!("use {written}"), path });
                        }
                    }
                }
                None => in_use = Some((start, text)),
            }
            continue;
        }
        for anchor in ["crate::", "super::"] {
            let mut from = 0;
            while let Some(at) = line[from..].find(anchor).map(|i| i + from) {
                from = at + anchor.len();
                let preceded = line[..at].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
                if preceded {
                    continue;
                }
                let end = line[at..].find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).map_or(line.len(), |i| i + at);
                let written = line[at..end].trim_end_matches(':');
                if let Some(path) = absolute(module, written, all) {
                    out.push(Import { line: index + 1, written: written.to_owned(), path });
                }
            }
        }
    }
    out
}

/// The module a path lands in: its longest prefix that is a module file.
fn landing(path: &[String], all: &BTreeMap<String, Source>) -> String {
    (0..=path.len()).rev().map(|n| path[..n].join("::")).find(|m| all.contains_key(m)).unwrap_or_default()
}

/// `path` starts with `prefix` (as `::`-separated segments).
fn under(path: &[String], prefix: &str) -> bool {
    let prefix: Vec<&str> = prefix.split("::").collect();
    path.len() >= prefix.len() && path.iter().zip(&prefix).all(|(a, b)| a == b)
}

/// The files that define the crate's types named in `AppState`'s fields.
fn held_by_state(all: &BTreeMap<String, Source>) -> Vec<String> {
    let Some(state) = all.get("state") else { return Vec::new() };
    let body: Vec<&String> = state.lines.iter().skip_while(|l| !l.contains("pub struct AppState")).skip(1).take_while(|l| l.trim() != "}").collect();
    let mut types = BTreeSet::new();
    for line in body {
        let Some((_, ty)) = line.split_once(':') else { continue };
        for word in ty.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            if word.starts_with(char::is_uppercase) && !["Arc", "Option", "Vec", "Box"].contains(&word) {
                types.insert(word.to_owned());
            }
        }
    }
    let mut out = Vec::new();
    for ty in types {
        for (module, source) in all {
            let defines = source.lines.iter().any(|l| {
                let l = l.trim_start().trim_start_matches("pub ");
                ["struct ", "enum ", "trait ", "type "].iter().any(|kind| {
                    l.strip_prefix(kind).is_some_and(|rest| rest.strip_prefix(ty.as_str()).is_some_and(|tail| !tail.starts_with(|c: char| c.is_alphanumeric() || c == '_')))
                })
            });
            if defines && !out.contains(module) {
                out.push(module.clone());
            }
        }
    }
    out
}

/// Every import that breaks the rule, as `file:line: …`, from the lower layers, the types
/// `AppState` holds, and everything they reach.
fn violations(src: &Path) -> Vec<String> {
    let all = modules(src);
    let mut reached: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut queue = VecDeque::new();
    let roots = all.keys().filter(|m| rank(m).is_some()).cloned().chain(held_by_state(&all));
    for root in roots {
        if reached.insert(root.clone(), None).is_none() {
            queue.push_back(root);
        }
    }
    let mut out = Vec::new();
    while let Some(module) = queue.pop_front() {
        let Some(source) = all.get(&module) else { continue };
        // A type AppState holds may live in a feature and use that feature's own modules.
        let own_feature = module.starts_with("features::").then(|| module.split("::").take(2).collect::<Vec<_>>().join("::"));
        for import in imports(&module, source, &all) {
            let target = landing(&import.path, &all);
            let own = own_feature.as_deref().is_some_and(|f| under(&import.path, f));
            let above = match rank(&module) {
                // A lower layer: only its own layer and those before it.
                Some(own_rank) => (target != module && rank(&target).is_none_or(|r| r > own_rank)).then(|| target.clone()),
                None => UPPER.iter().find(|u| under(&import.path, u)).filter(|_| !own).map(|u| (*u).to_owned()),
            };
            if let Some(upper) = above {
                let via = match &reached[&module] {
                    Some(from) => format!(" (reached from {})", all[from].file),
                    None => String::new(),
                };
                out.push(format!("{}:{}: `{}` reaches up into `{upper}`{via}", source.file, import.line, import.written));
                continue;
            }
            if !target.is_empty() && !reached.contains_key(&target) {
                reached.insert(target.clone(), Some(module.clone()));
                queue.push_back(target);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lower_layers_and_the_types_app_state_holds_never_import_the_layers_above() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let all = modules(&src);
        assert!(all.contains_key("layer::hub") && all.contains_key("state"), "the source tree was read from {}", src.display());
        let held = held_by_state(&all);
        for expected in ["config", "storage", "layer", "presence", "presence::batch", "storage::webhook_queue"] {
            assert!(held.iter().any(|m| m == expected), "AppState holds a type defined in {expected}: found {held:?}");
        }
        let broken = violations(&src);
        assert!(broken.is_empty(), "imports that reach up (see the Layout in lib.rs):\n{}", broken.join("\n"));
    }

    #[test]
    fn an_import_that_reaches_up_is_named_with_its_file_and_line() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let write = |path: &str, text: &str| {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("a directory");
            std::fs::write(path, text).expect("a file");
        };
        write("lib.rs", "pub mod state;\npub mod storage;\npub mod features;\npub mod layer;\n");
        write("state.rs", "pub struct AppState {\n    pub db: crate::storage::Db,\n    pub writer: Writer,\n}\n");
        write("features/mod.rs", "pub mod chat;\npub struct Thing;\n");
        write("features/chat/mod.rs", "pub mod writer;\npub mod list;\n");
        // Held by AppState: its own feature is allowed, AppState is not.
        write("features/chat/writer.rs", "use super::list;\npub struct Writer;\nfn f() { let _ = crate::state::AppState::default; }\n");
        write("features/chat/list.rs", "// crate::ws is only mentioned\n");
        write(
            "storage/mod.rs",
            "//! Storage.\npub mod users;\npub struct Db;\n\n#[cfg(all(test, unix))]\nmod tests {\n    use crate::features::Thing;\n}\n",
        );
        write("storage/users.rs", "use std::fmt;\nuse crate::{storage::Db,\n    features::{Thing, chat::writer}};\nfn f() { crate::layer::Hub::new(); crate::storage::Db; }\n");
        // Above storage: it may use storage, and storage may not use it.
        write("layer/mod.rs", "pub struct Hub;\nfn f() { let _ = crate::storage::Db; }\n");
        let mut broken = violations(dir.path());
        broken.sort();
        assert_eq!(
            broken,
            [
                "features/chat/writer.rs:3: `crate::state::AppState::default` reaches up into `state`",
                "storage/users.rs:2: `use crate::features::Thing` reaches up into `features`",
                "storage/users.rs:2: `use crate::features::chat::writer` reaches up into `features::chat::writer`",
                "storage/users.rs:4: `crate::layer::Hub::new` reaches up into `layer`",
            ]
        );
    }
}
