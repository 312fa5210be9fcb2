//! `docs/configuration.md`, generated from the `confab` command's clap definitions: every
//! setting of [`crate::config::Config`] (environment variable, flag, default, doc comment)
//! and every subcommand with its arguments, around the prose of `configuration.template.md`.
//!
//! The committed file is checked like `docs/protocol.md`: a test renders it again and fails
//! when the two differ; `CONFAB_BLESS=1` rewrites it. A setting documents itself by its
//! `///` comment, so adding one to `Config` (or an argument to a subcommand) and blessing is
//! all the page needs; a test refuses an argument without a comment.

use clap::{Arg, ArgAction, Command, CommandFactory};

use super::Cli;

/// The hand-written parts of the page; `{{settings}}` and `{{commands}}` mark where the
/// generated tables go.
const TEMPLATE: &str = include_str!("configuration.template.md");

/// The whole page, as committed in `docs/configuration.md`.
pub fn configuration_markdown() -> String {
    let mut command = Cli::command();
    // Built, so that clap has filled in what the derive leaves implicit (the `false` of a
    // switch, the bin names of subcommands for their usage lines).
    command.build();
    let header = format!(
        "<!-- Generated from the clap definitions of the `confab` command (backend/src/config.rs, \
         backend/src/cli.rs, backend/src/import.rs) and backend/src/cli/configuration.template.md. \
         Do not edit: change those, then run `{}` and commit. -->\n\n",
        crate::committed::BLESS
    );
    header + &TEMPLATE.replace("{{settings}}", settings_table(&command).trim_end()).replace("{{commands}}", commands(&mut command).trim_end())
}

/// The server's settings: the top-level arguments (the flattened `Config`).
fn settings_table(command: &Command) -> String {
    let mut out = String::from("| Variable | Flag | Default | Meaning |\n|---|---|---|---|\n");
    for arg in documented(command) {
        out += &row(&[env(arg), flag(arg), default(arg), meaning(arg)]);
    }
    out
}

/// Every subcommand, depth first, with its usage line and arguments.
fn commands(command: &mut Command) -> String {
    let mut out = String::new();
    for sub in command.get_subcommands_mut().filter(|s| s.get_name() != "help" && !s.is_hide_set()) {
        if sub.has_subcommands() {
            out += &commands(sub);
            continue;
        }
        let name = sub.get_bin_name().unwrap_or(sub.get_name()).to_owned();
        let about = sub.get_long_about().or(sub.get_about()).map(sentence).unwrap_or_default();
        let usage = sub.render_usage().to_string();
        let usage = usage.trim_start_matches("Usage: ").trim();
        out += &format!("### `{name}`\n\n{about}\n\n```text\n{usage}\n```\n\n");
        let args: Vec<&Arg> = documented(sub).collect();
        if !args.is_empty() {
            out += "| Argument | Variable | Default | Meaning |\n|---|---|---|---|\n";
            for arg in args {
                out += &row(&[flag(arg), env(arg), default(arg), meaning(arg)]);
            }
            out += "\n";
        }
    }
    out
}

/// The arguments a reader sets: not clap's own `--help` and `--version`.
fn documented(command: &Command) -> impl Iterator<Item = &Arg> {
    command
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !matches!(a.get_action(), ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version))
}

/// One table row; an empty cell stays empty.
fn row(cells: &[String]) -> String {
    format!("| {} |\n", cells.join(" | ")).replace("|  |", "| |")
}

fn env(arg: &Arg) -> String {
    arg.get_env().map(|e| format!("`{}`", e.to_string_lossy())).unwrap_or_default()
}

/// `--name <VALUE>` (or `--name` for a switch), `<NAME>` for a positional argument.
fn flag(arg: &Arg) -> String {
    let value = arg.get_value_names().and_then(|names| names.first()).map(|n| n.to_string()).unwrap_or_else(|| arg.get_id().as_str().to_uppercase());
    match arg.get_long() {
        Some(long) if takes_no_value(arg) => format!("`--{long}`"),
        Some(long) => format!("`--{long} <{value}>`"),
        None => format!("`<{value}>`"),
    }
}

fn takes_no_value(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse | ArgAction::Count)
}

fn default(arg: &Arg) -> String {
    let defaults: Vec<String> = arg.get_default_values().iter().map(|d| format!("`{}`", d.to_string_lossy())).collect();
    match (defaults.is_empty(), arg.is_required_set() || arg.is_positional()) {
        (false, _) => defaults.join(", "),
        (true, true) => "required".to_owned(),
        (true, false) => "unset".to_owned(),
    }
}

/// The doc comment on one line, then the values an enum takes (with their own comments).
fn meaning(arg: &Arg) -> String {
    let mut text = arg.get_long_help().or(arg.get_help()).map(sentence).unwrap_or_default();
    let values = arg.get_possible_values();
    if !takes_no_value(arg) && !values.is_empty() {
        let listed: Vec<String> = values
            .iter()
            .filter(|v| !v.is_hide_set())
            .map(|v| match v.get_help() {
                Some(help) => format!("`{}` ({})", v.get_name(), lowercase_first(&one_line(help))),
                None => format!("`{}`", v.get_name()),
            })
            .collect();
        text += &format!(" One of: {}.", listed.join(", "));
    }
    text
}

/// A doc comment as one table-safe line: paragraphs joined, `|` escaped, without the final
/// full stop (clap drops it from one-line comments, not from longer ones).
fn one_line(text: &clap::builder::StyledStr) -> String {
    let line = text.to_string().split_whitespace().collect::<Vec<_>>().join(" ").replace('|', "\\|");
    line.strip_suffix('.').map(str::to_owned).unwrap_or(line)
}

/// A doc comment as one line ending with a full stop, whichever way clap kept it.
fn sentence(text: &clap::builder::StyledStr) -> String {
    one_line(text) + "."
}

fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_lowercase().chain(chars).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_configuration_reference_matches_the_code() {
        crate::committed::check("docs/configuration.md", &configuration_markdown());
    }

    #[test]
    fn every_setting_has_an_environment_variable_and_every_argument_a_comment() {
        let mut command = Cli::command();
        command.build();
        for arg in documented(&command) {
            assert!(arg.get_env().is_some(), "the setting --{} has no environment variable", arg.get_id());
        }
        fn check(command: &Command) {
            for arg in documented(command) {
                let help = arg.get_long_help().or(arg.get_help()).map(|h| h.to_string()).unwrap_or_default();
                assert!(!help.trim().is_empty(), "`{}` {} has no doc comment", command.get_name(), arg.get_id());
            }
            for sub in command.get_subcommands() {
                check(sub);
            }
        }
        check(&command);
    }

    #[test]
    fn the_template_marks_both_tables_once() {
        for marker in ["{{settings}}", "{{commands}}"] {
            assert_eq!(TEMPLATE.matches(marker).count(), 1, "{marker} in configuration.template.md");
        }
    }

    #[test]
    fn the_reference_names_every_setting_with_its_default() {
        let md = configuration_markdown();
        for (env, default) in [("CONFAB_BIND", "`127.0.0.1:8000`"), ("CONFAB_FANOUT_WINDOW_MS", "`16`"), ("CONFAB_LOG_JSON", "`false`"), ("REDIS_URL", "unset")] {
            let row = md.lines().find(|l| l.starts_with(&format!("| `{env}` |"))).unwrap_or_else(|| panic!("no row for {env}"));
            assert!(row.contains(&format!("| {default} |")), "{env}: {row}");
        }
        assert!(md.contains("### `confab user import`"), "subcommands are listed");
    }
}
