//! The wire types as JSON Schemas, by reference, for the generated API documents.
//!
//! utoipa inlines `Vec<T>` and friends; an API document wants `{"$ref": …}` to a named
//! schema plus one copy of every named schema. [`WireSchema`] gives both for every wire type
//! (each `wire!` type implements it), and [`MethodSchema`] / [`NotificationSchema`] are the
//! rows of the method and notification tables ([`crate::rpc::methods::table`],
//! [`crate::rpc::notify::table`]) the backend builds its AsyncAPI document and protocol
//! reference from.

use std::collections::BTreeMap;

use utoipa::openapi::schema::{ArrayBuilder, Schema};
use utoipa::openapi::{Ref, RefOr};

/// Named schemas by name, as they go under `components.schemas`.
pub type Schemas = BTreeMap<String, RefOr<Schema>>;

/// A wire type seen from an API document.
pub trait WireSchema {
    /// A `$ref` to the named schema (an array of them for `Vec<T>`).
    fn reference() -> RefOr<Schema>;
    /// How the documentation writes the type: `Message`, `[Message]`.
    fn display() -> String;
    /// Adds the named schema and every schema it refers to.
    fn collect(into: &mut Schemas);
}

impl<T: WireSchema> WireSchema for Vec<T> {
    fn reference() -> RefOr<Schema> {
        ArrayBuilder::new().items(T::reference()).into()
    }

    fn display() -> String {
        format!("[{}]", T::display())
    }

    fn collect(into: &mut Schemas) {
        T::collect(into);
    }
}

/// Implements [`WireSchema`] for a type deriving `utoipa::ToSchema`.
macro_rules! named_schema {
    ($name:ident) => {
        impl $crate::schema::WireSchema for $name {
            fn reference() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::schema::reference(stringify!($name))
            }
            fn display() -> String {
                stringify!($name).to_owned()
            }
            fn collect(into: &mut $crate::schema::Schemas) {
                $crate::schema::collect_named::<Self>(into);
            }
        }
    };
}
pub(crate) use named_schema;

/// `{"$ref": "#/components/schemas/<name>"}`.
pub fn reference(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

/// Adds `T`'s schema under its name, and the schemas its fields refer to.
pub fn collect_named<T: utoipa::ToSchema>(into: &mut Schemas) {
    into.insert(T::name().into_owned(), T::schema());
    let mut nested = Vec::new();
    T::schemas(&mut nested);
    into.extend(nested);
}

/// One row of the method table.
#[derive(Clone)]
pub struct MethodSchema {
    /// The JSON-RPC method name, e.g. `room.send`.
    pub name: &'static str,
    /// What it does (the doc comment of its table row).
    pub doc: String,
    pub params: RefOr<Schema>,
    /// The params type as the documentation writes it.
    pub params_type: String,
    pub result: RefOr<Schema>,
    /// The result type as the documentation writes it.
    pub result_type: String,
}

/// One row of the notification table.
#[derive(Clone)]
pub struct NotificationSchema {
    /// The notification's method name, e.g. `room.message`.
    pub name: &'static str,
    /// When the server sends it (the doc comment of its table row).
    pub doc: String,
    pub params: RefOr<Schema>,
    /// The params type as the documentation writes it.
    pub params_type: String,
}

/// Every named schema the WebSocket API uses: params, results, notification params and
/// everything they refer to.
pub fn rpc_schemas() -> Schemas {
    let mut schemas = Schemas::new();
    crate::rpc::methods::collect_schemas(&mut schemas);
    crate::rpc::notify::collect_schemas(&mut schemas);
    schemas
}

/// The doc lines of a table row as one sentence.
pub fn doc_text(lines: &[&str]) -> String {
    lines.iter().map(|line| line.trim()).filter(|line| !line.is_empty()).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_referenced_schema_is_collected() {
        let schemas = rpc_schemas();
        let json = serde_json::to_string(&schemas).unwrap_or_default();
        let mut refs = json.split("#/components/schemas/").skip(1);
        for rest in refs.by_ref() {
            let name: String = rest.chars().take_while(|c| *c != '"').collect();
            assert!(schemas.contains_key(&name), "{name} is referenced but not collected");
        }
        for method in crate::rpc::methods::table() {
            let reference = serde_json::to_string(&method.params).unwrap_or_default();
            assert!(reference.contains("#/components/schemas/"), "{} params are not a reference", method.name);
        }
    }

    #[test]
    fn tables_cover_every_method_and_notification() {
        let methods: Vec<&str> = crate::rpc::methods::table().iter().map(|m| m.name).collect();
        assert_eq!(methods, crate::rpc::Request::METHODS);
        let notes: Vec<&str> = crate::rpc::notify::table().iter().map(|n| n.name).collect();
        assert_eq!(notes, crate::rpc::Notification::METHODS);
        assert!(crate::rpc::methods::table().iter().all(|m| !m.doc.is_empty()));
    }
}
