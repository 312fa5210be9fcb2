//! The reference's parts that come from JSON schemas (the shared types'): type
//! expressions with links, field tables with the rules the server checks, type sections.

use serde_json::Value;

use super::render::{Block, anchor};

/// A link to the section of a type or a method, whose heading is its name in code.
pub fn code_link(name: &str) -> String {
    format!("[`{name}`](#{})", anchor(&format!("`{name}`")))
}

/// A schema as a short type expression with links to named types.
pub fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        return code_link(reference.rsplit('/').next().unwrap_or(reference));
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
pub fn fields(schema: &Value) -> Option<Block> {
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
pub fn type_section(name: &str, schema: &Value, out: &mut Vec<Block>) {
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
