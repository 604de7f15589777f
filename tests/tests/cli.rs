//! The command lines as a user meets them: `--help` of each program ends with examples,
//! and each example is a command line the program accepts (parsed with the very clap
//! definition the binary uses); `--version` names the git commit the binary was built
//! from, and whether its sources differed from it; every option has its row, with its
//! default, in the option tables of docs/contract.md.

// Test code: a panic with a message is how it reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use hello_tests::{bins, run_bounded, skip, workspace_root};

/// What `program ARG` printed on stdout, which must be all it printed.
fn stdout_of(program: &Path, arg: &str) -> String {
    let (status, out, err) = run_bounded(Command::new(program).arg(arg));
    assert!(
        status.success() && err.is_empty(),
        "{} {arg}: {status} {}",
        program.display(),
        String::from_utf8_lossy(&err)
    );
    String::from_utf8(out).unwrap()
}

/// The example command lines at the end of a `--help`, split as the shell would (single
/// quotes only; a trailing `&` dropped), each with what it must contain.
fn examples(help: &str) -> Vec<Vec<String>> {
    let (_, section) = help
        .rsplit_once("\nExamples:\n")
        .expect("--help ends with an Examples section");
    let mut found = Vec::new();
    for line in section
        .lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with("hello-"))
    {
        // Two spaces part the command from what it does.
        let command = line.split("  ").next().unwrap().trim().trim_end_matches('&');
        let mut words = Vec::new();
        for (i, part) in command.split('\'').enumerate() {
            if i % 2 == 1 {
                words.push(part.to_string());
            } else {
                words.extend(part.split_whitespace().map(String::from));
            }
        }
        found.push(words);
    }
    found
}

/// Checks that `program`'s `--help` and `-h` end with examples that `command` accepts,
/// and that they show each of `must_show`.
fn check_examples(program: &Path, command: fn() -> clap::Command, must_show: &[&str]) {
    let name = command().get_name().to_string();
    let help = stdout_of(program, "--help");
    assert_eq!(
        examples(&stdout_of(program, "-h")),
        examples(&help),
        "-h and --help show the same examples"
    );
    let found = examples(&help);
    assert!(found.len() >= 4, "{name}: {found:?}");
    for shown in must_show {
        assert!(
            found.iter().any(|w| w.join(" ").contains(shown)),
            "{name}'s examples do not show {shown:?}: {found:?}"
        );
    }
    for words in found {
        let (parse, targets) = match words[0].as_str() {
            "hello-server" => (hello_server::cli::command(), false),
            "hello-client" => (hello_client::cli::command(), true),
            "hello-load" => (hello_client::load::cli::command(), false),
            other => panic!("{name}'s examples run {other}"),
        };
        let matches = parse
            .try_get_matches_from(&words)
            .unwrap_or_else(|e| panic!("{words:?}: {e}"));
        if targets {
            // hello-client's own rule for HOST PORT and HOST:PORT... (its main's next step).
            let given: Vec<String> = matches.get_many::<String>("targets").unwrap().cloned().collect();
            assert!(
                hello_client::args::parse(&given).is_ok(),
                "{words:?}: the targets are not accepted"
            );
        }
    }
}

#[test]
fn every_help_ends_with_examples_the_program_accepts() {
    let b = bins();
    check_examples(
        &b.server,
        hello_server::cli::command,
        &[
            "hello-server 9190",
            "--service echo",
            "--udp",
            "--trace --lang ko",
            "hello-client --wait",
        ],
    );
    check_examples(
        &b.client,
        hello_client::cli::command,
        &[
            "hello-client 127.0.0.1 9190",
            "-m hello",
            "--udp",
            "--trace --lang ko",
            "--wait 10s --expect",
            " -q ",
            "127.0.0.1:9190 [::1]:9191",
            "--json",
        ],
    );
    check_examples(
        &b.load,
        hello_client::load::cli::command,
        &["-n 20000 -c 64", "--rate", "--udp", "--wait"],
    );
}

#[test]
fn the_definitions_are_consistent() {
    for command in [
        hello_server::cli::command(),
        hello_client::cli::command(),
        hello_client::load::cli::command(),
    ] {
        command.debug_assert();
    }
}

/// `git ARGS` in the workspace, if git is there and the workspace is a checkout.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .current_dir(workspace_root())
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn version_names_the_commit_and_a_dirty_tree_when_built_from_a_checkout() {
    let b = bins();
    let version = env!("CARGO_PKG_VERSION");
    let head = git(&["rev-parse", "--short=12", "HEAD"]);
    if head.is_none() {
        skip("the workspace is not a git checkout (or git is missing): --version is the version alone");
    }
    let package = [(&b.server, "server"), (&b.client, "client"), (&b.load, "client")];
    for (program, crate_dir) in package {
        let name = program.file_name().unwrap().to_str().unwrap();
        let line = stdout_of(program, "--version");
        let Some(head) = &head else {
            assert_eq!(line, format!("{name} {version}\n"));
            continue;
        };
        // The sources a binary is built from, as its build script names them.
        let own = format!("crates/{crate_dir}");
        let sources = [
            own.as_str(),
            "crates/proto",
            "crates/buildinfo",
            "Cargo.toml",
            "Cargo.lock",
        ];
        let mut status = vec!["status", "--porcelain", "--"];
        status.extend(sources);
        let dirty = !git(&status).unwrap().is_empty();
        let expected = if dirty {
            format!("{name} {version} (git {head}, dirty)\n")
        } else {
            format!("{name} {version} (git {head})\n")
        };
        assert_eq!(line, expected);
    }
}

/// The long options of a command with their clap defaults (none, one, or several), `--help`
/// and `--version` left out (every program has them, and the tables say so once).
fn long_options(command: &clap::Command) -> Vec<(String, Vec<String>)> {
    command
        .get_arguments()
        .filter_map(|arg| arg.get_long().map(|long| (long, arg)))
        .filter(|(long, _)| !matches!(*long, "help" | "version"))
        .map(|(long, arg)| {
            let defaults = arg
                .get_default_values()
                .iter()
                .map(|d| d.to_string_lossy().into_owned())
                .collect();
            (format!("--{long}"), defaults)
        })
        .collect()
}

/// The row of a Markdown table in `doc` that names `option` in its first cell, if any.
fn row_for<'a>(doc: &'a str, option: &str) -> Option<&'a str> {
    doc.lines().find(|line| {
        line.strip_prefix('|')
            .and_then(|l| l.split(" |").next())
            .is_some_and(|cell| {
                cell.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                    .any(|word| word == option)
            })
    })
}

/// The last cell of a Markdown table row: the default, in the option tables.
fn last_cell(row: &str) -> &str {
    let row = row.trim_end().trim_end_matches('|');
    row.rsplit_once(" | ").map_or(row, |(_, cell)| cell).trim()
}

/// Whether a default cell of the tables states `default` (a whole word of it: `text`, not
/// the `text` of `context`; `0s` must not pass for `10s`).
fn states_default(cell: &str, default: &str) -> bool {
    cell.match_indices(default).any(|(i, _)| {
        let word = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
        !cell[..i].ends_with(word) && !cell[i + default.len()..].starts_with(word)
    })
}

/// The part of `doc` under the heading `heading` (a whole line, `## …` or `### …`), to the
/// next heading of the same or a higher level.
fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let level = heading.bytes().take_while(|b| *b == b'#').count();
    let start = doc
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("no heading {heading:?}"))
        + heading.len()
        + 2;
    let rest = &doc[start..];
    let end = rest
        .match_indices("\n#")
        .find(|(i, _)| {
            let hashes = rest[i + 1..].bytes().take_while(|b| *b == b'#').count();
            hashes <= level && rest[i + 1 + hashes..].starts_with(' ')
        })
        .map_or(rest.len(), |(i, _)| i);
    &rest[..end]
}

#[test]
fn the_default_cell_test_takes_whole_words_only() {
    assert!(states_default("`10s`", "10s"));
    assert!(!states_default("`10s`", "0s"));
    assert!(states_default("off, `text`, from the locale", "text"));
    assert!(!states_default("`textual`", "text"));
    assert_eq!(last_cell("| `--a` | x \\| y | `5s` |"), "`5s`");
}

#[test]
fn every_option_has_a_row_in_the_contract_with_its_default() {
    // The option tables of docs/contract.md, each program's own: the one home of the
    // options and their defaults (docs/reference.md links to them).
    let contract = std::fs::read_to_string(workspace_root().join("docs/contract.md")).unwrap();
    let mut wrong = Vec::new();
    for (program, command, heading) in [
        ("hello-server", hello_server::cli::command(), "### Server options"),
        ("hello-client", hello_client::cli::command(), "### Client options"),
        ("hello-load", hello_client::load::cli::command(), "## hello-load"),
    ] {
        let table = section(&contract, heading);
        let options = long_options(&command);
        assert!(options.len() > 5, "{program}: {options:?}");
        for (option, defaults) in options {
            let Some(row) = row_for(table, &option) else {
                wrong.push(format!("{program} {option}: no row in contract.md {heading}"));
                continue;
            };
            for default in defaults {
                if !states_default(last_cell(row), &default) {
                    wrong.push(format!(
                        "{program} {option}: the default is {default:?}, contract.md says {:?}",
                        last_cell(row)
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the option tables of docs/contract.md and the command lines disagree:\n{}",
        wrong.join("\n")
    );
}
