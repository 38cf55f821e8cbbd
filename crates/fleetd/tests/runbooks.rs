//! Every `fleetd …` command the runbooks show exists: its subcommands are fleetd's, and every
//! `--flag` on the line is one that subcommand takes.

use std::path::Path;

use clap::CommandFactory;

const RUNBOOKS: [&str; 5] = [
    "docs/PLATFORM_OVERVIEW.md",
    "docs/DATA_FLOW.md",
    "docs/CONNECTIONS.md",
    "docs/OPERATIONS_MANUAL.md",
    "docs/SCALING.md",
];

/// The code in a Markdown text: fenced blocks whole, elsewhere the `backtick spans`.
fn code(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            out.push(line.to_owned());
        } else {
            out.extend(line.split('`').skip(1).step_by(2).map(str::to_owned));
        }
    }
    out
}

/// The `fleetd …` invocations in code: from each `fleetd ` to the end of the code, or a shell
/// operator.
fn invocations(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for piece in code(text) {
        let mut from = 0;
        while let Some(i) = piece[from..].find("fleetd ") {
            let at = from + i;
            from = at + "fleetd ".len();
            // a command starts the code or follows a shell operator; anything else is an
            // argument (`useradd … fleetd`, `-p fleetd`) or a word in a longer name
            let before = piece[..at].trim_end();
            if !(before.is_empty() || before.ends_with(['|', '&', ';', '('])) {
                continue;
            }
            let after = &piece[from..];
            let end =
                after.find(['|', '&', ';', '#', '(', ')', '─', '┐', '│']).unwrap_or(after.len());
            let words: Vec<&str> = after[..end].split_whitespace().collect();
            if !words.is_empty() {
                out.push(words.join(" "));
            }
        }
    }
    out
}

#[test]
fn every_fleetd_command_in_the_runbooks_exists_with_its_flags() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cli = fleetd::cli::Cli::command();
    let mut checked = 0;
    for doc in RUNBOOKS {
        let text = std::fs::read_to_string(root.join(doc)).unwrap_or_else(|e| panic!("{doc}: {e}"));
        for inv in invocations(&text) {
            let words: Vec<&str> = inv.split_whitespace().collect();
            let Some(first) = words.first() else { continue };
            if first.starts_with("--") {
                // top-level flags only (`fleetd --help`, `fleetd --version`)
                assert!(
                    ["--help", "--version", "--config"].contains(first),
                    "{doc}: `fleetd {inv}`"
                );
                continue;
            }
            let Some(mut cmd) = cli.find_subcommand(first) else {
                panic!("{doc}: `fleetd {inv}` is not a fleetd command");
            };
            for w in &words[1..] {
                if let Some(sub) = cmd.find_subcommand(w) {
                    cmd = sub;
                }
            }
            for flag in words.iter().filter(|w| w.starts_with("--")) {
                let name = flag.trim_start_matches("--").split('=').next().unwrap_or("");
                let known = name == "help"
                    || cmd.get_arguments().any(|a| a.get_long() == Some(name))
                    || cli.get_arguments().any(|a| a.get_long() == Some(name));
                assert!(known, "{doc}: `fleetd {inv}`: {} takes no --{name}", cmd.get_name());
            }
            checked += 1;
        }
    }
    assert!(checked > 15, "the runbooks show fleetd commands ({checked} checked)");
}

#[test]
fn the_invocation_scanner_finds_commands_and_skips_prose() {
    let found = invocations(
        "run `fleetd backup --dir /x` or `fleetd audit --json | jq`; fleetd processes share\n```\n/usr/local/bin/fleetd serve\nuseradd -r fleetd -s x\nprintf x | fleetd restore F --yes\n```",
    );
    assert_eq!(found, ["backup --dir /x", "audit --json", "restore F --yes"]);
}

#[test]
fn the_operations_manual_documents_every_audit_check() {
    let manual = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/OPERATIONS_MANUAL.md"),
    )
    .expect("manual");
    for id in fleet_ops::audit::CHECKS {
        assert!(manual.contains(&format!("| `{id}` |")), "OPERATIONS_MANUAL lacks the check {id}");
    }
}
