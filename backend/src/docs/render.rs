//! The reference's blocks, and how they become Markdown (`docs/protocol.md`) or HTML
//! (`/api/docs/protocol`). Only the Markdown the reference uses is understood: headings,
//! paragraphs with inline code and links, fenced code, and tables.

use std::fmt::Write as _;

/// One block of the reference, rendered to Markdown or HTML.
pub enum Block {
    Heading(u8, String),
    /// Text with Markdown inline code (`x`) and links ([text](#anchor)).
    Para(String),
    Code(String),
    Table(Vec<&'static str>, Vec<Vec<String>>),
}

/// Blocks from Markdown source: `#` headings, ```` ``` ```` fences, and paragraphs whose
/// lines are joined with spaces (so the source may wrap them). Blocks are separated by blank
/// lines.
pub fn parse(source: &str) -> Vec<Block> {
    source
        .split("\n\n")
        .map(str::trim)
        .filter(|block| !block.is_empty())
        .map(|block| {
            if let Some(code) = block.strip_prefix("```\n").and_then(|b| b.strip_suffix("\n```")) {
                return Block::Code(code.to_owned());
            }
            let level = block.bytes().take_while(|&b| b == b'#').count();
            if level > 0 && block[level..].starts_with(' ') && !block.contains('\n') {
                return Block::Heading(level as u8, block[level + 1..].to_owned());
            }
            Block::Para(block.lines().map(str::trim).collect::<Vec<_>>().join(" "))
        })
        .collect()
}

/// The GitHub anchor of a heading: lowercase, punctuation dropped, spaces as dashes.
pub fn anchor(heading: &str) -> String {
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

/// Blocks as Markdown, ending in one newline.
pub fn markdown(blocks: Vec<Block>) -> String {
    let mut md = String::new();
    for block in blocks {
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

/// Blocks as the body of an HTML page; headings get their [`anchor`] as id.
pub fn html(blocks: Vec<Block>) -> String {
    let mut body = String::new();
    for block in blocks {
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
    body
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Markdown inline syntax as HTML: `code`, [text](href) and `\|`; everything else escaped.
pub fn inline(text: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_markup_is_escaped_and_linked() {
        assert_eq!(inline("a `<b>` [`X`](#x) \\| c"), "a <code>&lt;b&gt;</code> <a href=\"#x\"><code>X</code></a> | c");
    }

    #[test]
    fn markdown_source_becomes_blocks_with_wrapped_paragraphs_joined() {
        let blocks = parse("# Title\n\nOne para\n  wrapped.\n\n```\nline 1\n  line 2\n```\n\n## Next\n");
        assert_eq!(markdown(blocks), "# Title\n\nOne para wrapped.\n\n```\nline 1\n  line 2\n```\n\n## Next\n");
    }
}
