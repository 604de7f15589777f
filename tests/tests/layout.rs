//! Repository checks of the layout ARCHITECTURE.md promises: the pure modules of
//! `hello-proto` do no I/O, and only `hello_proto::sys` makes system calls and traces them;
//! the start-up lines are parsed and programs signalled only through `hello-harness`;
//! and of the files around the code: the CI workflow checks Cargo.toml's minimum Rust
//! version and installs what `.ci/run` installs, and the license files are the ones
//! Cargo.toml names; every test ARCHITECTURE.md names as a guard exists, every code name
//! of its glossary too; the docs list the server's models, all of them; every crate and
//! module has its place in the maps; and every relative link of the docs leads somewhere.

// Test code: a panic with a message is how it reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use hello_tests::workspace_root;

/// The file's code without its `#[cfg(test)]` items (unit tests may use what they like):
/// each such item is skipped to the line where its braces balance again. A file of test
/// code alone (`#![cfg(test)]` after its `//!` lines: the tests' fixtures) has none.
fn code_of(path: &str) -> String {
    let text = std::fs::read_to_string(workspace_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    let test_only = text
        .lines()
        .find(|l| !l.starts_with("//!") && !l.trim().is_empty())
        .is_some_and(|l| l.trim() == "#![cfg(test)]");
    if test_only {
        return String::new();
    }
    let mut code = String::new();
    let mut skipping = false;
    let mut depth = 0i64;
    for line in text.lines() {
        if !skipping && line.trim_start().starts_with("#[cfg(test)]") {
            skipping = true;
            depth = 0;
            continue;
        }
        if skipping {
            depth += line.matches('{').count() as i64 - line.matches('}').count() as i64;
            if depth <= 0 && (line.contains('}') || line.trim_end().ends_with(';')) {
                skipping = false;
            }
            code.push('\n');
            continue;
        }
        code.push_str(line);
        code.push('\n');
    }
    code
}

/// The files of module `name` under `dir`: `name.rs`, or every `.rs` file of the folder
/// `name/` (a module split into files), read from the disk so that a file added to the
/// folder is covered without a change here.
fn module_files(dir: &str, name: &str) -> Vec<String> {
    let single = format!("{dir}/{name}.rs");
    if workspace_root().join(&single).exists() {
        return vec![single];
    }
    let folder = format!("{dir}/{name}");
    let mut files: Vec<String> = std::fs::read_dir(workspace_root().join(&folder))
        .unwrap_or_else(|e| panic!("{single} and {folder}/ are gone ({e}): update this test"))
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|f| f.ends_with(".rs"))
        .map(|f| format!("{folder}/{f}"))
        .collect();
    files.sort();
    assert!(files.len() > 1, "{folder}/ holds {files:?}: update this test");
    files
}

/// Lines of `path`'s code that hold any of `banned`, comments left out.
fn offending(path: &str, banned: &[&str]) -> Vec<String> {
    code_of(path)
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
        .filter(|(_, line)| banned.iter().any(|b| line.contains(b)))
        .map(|(i, line)| format!("{path}:{}: {}", i + 1, line.trim()))
        .collect()
}

#[test]
fn pure_modules_do_no_io() {
    let banned = [
        "Instant::now",
        "SystemTime::now",
        "TcpStream",
        "TcpListener",
        "UdpSocket",
        "socket2",
        "stderr()",
        "stdout()",
        "print!",
        "println!",
        "unsafe",
        "to_socket_addrs",
        "crate::sys",
    ];
    let mut found = Vec::new();
    let files: Vec<String> = [
        "conn", "proxy", "wire", "addr", "error", "trace", "kernel", "utc", "startup", "words",
    ]
    .iter()
    .flat_map(|m| module_files("crates/proto/src", m))
    .collect();
    for path in &files {
        found.extend(offending(path, &banned));
    }
    // A libc constant (an errno) is vocabulary; a libc function is a system call.
    for path in &files {
        for line in code_of(path).lines() {
            if let Some(i) = line.find("libc::") {
                let rest = &line[i + 6..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if name.chars().any(|c| c.is_lowercase()) {
                    found.push(format!("{path}: calls libc::{name}"));
                }
            }
        }
    }
    assert!(found.is_empty(), "I/O in a pure module:\n{}", found.join("\n"));
}

/// The lesson's parsing, ordering and drawing are pure too (and its packet parser, pcap
/// writer and packet listing, and the textbook's calls paired with the real ones): only
/// `run`, `scenario`, `observe`, `step` and `textbook` start processes, open sockets or
/// write files.
#[test]
fn the_lessons_timeline_and_pictures_do_no_io() {
    let banned = [
        "std::fs",
        "Command",
        "Instant::now",
        "SystemTime::now",
        "TcpStream",
        "UdpSocket",
        "sys::",
        "print!",
        "println!",
        "stderr()",
        "stdout()",
        "unsafe",
        "libc::",
        "thread::",
    ];
    let mut found = Vec::new();
    for module in [
        "line",
        "timeline",
        "text",
        "page",
        "pairing",
        "packets",
        "pcap",
        "wire_view",
    ] {
        for path in module_files("crates/lesson/src", module) {
            found.extend(offending(&path, &banned));
        }
    }
    assert!(
        found.is_empty(),
        "I/O in a pure lesson module:\n{}",
        found.join("\n")
    );
}

/// Every `.rs` file under `dir` (a folder of the workspace), sorted, as workspace paths:
/// a new file is checked without anyone adding it to a list.
fn rust_files(dir: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo = vec![workspace_root().join(dir)];
    while let Some(folder) = todo.pop() {
        for entry in std::fs::read_dir(&folder).unwrap_or_else(|e| panic!("{}: {e}", folder.display())) {
            let path = entry.expect("a folder entry").path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(workspace_root()).expect("inside the workspace");
                found.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    found.sort();
    found
}

/// The calls of `libc` functions in `path`'s code (a constant, an errno, is vocabulary).
fn libc_calls(path: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in code_of(path)
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
    {
        for (i, _) in line.match_indices("libc::") {
            let name: String = line[i + 6..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if name.chars().any(|c| c.is_lowercase()) {
                found.push(format!("{path}: calls libc::{name}"));
            }
        }
    }
    found
}

#[test]
fn only_sys_makes_system_calls_and_trace_lines() {
    // The server crate, every file of it: a system call (libc's, socket2's, or std's
    // that only `sys` may make), or a trace event, anywhere else is a finding.
    let server_banned = [
        ".emit(",
        "Event::",
        "SockRef",
        "socket2::",
        "mio::net",
        "UnixStream::pair",
        ".set_nonblocking(",
        "TcpStream::connect",
        "TcpListener::bind",
        "UdpSocket::bind",
    ];
    let server = rust_files("crates/server/src");
    assert!(
        server.len() >= 20 && server.iter().any(|p| p.ends_with("/uring.rs")),
        "the server crate's files were not found: {server:?}"
    );
    let mut found = Vec::new();
    for path in &server {
        found.extend(offending(path, &server_banned));
        found.extend(libc_calls(path));
    }
    let banned = ["libc::", ".emit(", "Event::", "SockRef", "mio::net"];
    let files = [
        "crates/client/src/lib.rs",
        "crates/client/src/cli.rs",
        "crates/client/src/load/cli.rs",
        "crates/client/src/main.rs",
        "crates/client/src/args.rs",
        "crates/client/src/output.rs",
        "crates/client/src/textbook.rs",
        "crates/client/src/load/mod.rs",
        "crates/client/src/load/worker.rs",
        "crates/client/src/load/summary.rs",
        "crates/client/src/bin/hello-load.rs",
    ];
    for path in files {
        assert!(
            Path::new(&workspace_root().join(path)).exists(),
            "{path} is gone: update this test"
        );
        found.extend(offending(path, &banned));
    }
    assert!(
        found.is_empty(),
        "a system call or trace event outside hello_proto::sys:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_the_harness_reads_start_up_lines_and_signals_programs() {
    // The tests, xtask and the lesson start programs through hello-harness: the start-up
    // lines are parsed by `hello_proto::startup` (their writer), and signals and the
    // parent-death signal go through `hello_proto::sys::process`. A copy anywhere else is
    // a finding. (Tests that check the line's exact text compare whole lines instead.)
    let banned = [
        "strip_prefix(\"listening on",
        "strip_prefix(\"agent on",
        "strip_prefix(\"metrics on",
        "libc::kill(",
        "PR_SET_PDEATHSIG",
    ];
    let files: Vec<String> = ["tests/src", "tests/tests", "xtask/src", "crates/lesson/src"]
        .iter()
        .flat_map(|dir| rust_files(dir))
        .filter(|path| path != "tests/tests/layout.rs")
        .collect();
    assert!(
        files.iter().any(|p| p == "xtask/src/bench/live.rs")
            && files.iter().any(|p| p == "crates/lesson/src/run.rs"),
        "the harness's users were not found: {files:?}"
    );
    let found: Vec<String> = files.iter().flat_map(|path| offending(path, &banned)).collect();
    assert!(
        found.is_empty(),
        "a start-up line parsed or a signal sent outside hello-harness and hello_proto:\n{}",
        found.join("\n")
    );
}

#[test]
fn no_model_knows_what_the_service_is() {
    let banned = ["Service::", "EchoRequest", "greeting"];
    let mut found = Vec::new();
    for model in [
        "iterative",
        "threads",
        "event_loop",
        "uring",
        "select",
        "fork",
        "blocking",
        "drive",
        "exchanges",
        "timers",
        "accept",
        "slots",
        "metrics",
        "exporter",
    ] {
        found.extend(offending(&format!("crates/server/src/{model}.rs"), &banned));
    }
    assert!(
        found.is_empty(),
        "a model that knows the service:\n{}",
        found.join("\n")
    );
}

/// The text of a file of the project.
fn text_of(path: &str) -> String {
    std::fs::read_to_string(workspace_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The quoted value of `key = "..."` in the workspace's Cargo.toml.
fn cargo_toml_value(key: &str) -> String {
    let manifest = text_of("Cargo.toml");
    let line = manifest
        .lines()
        .find_map(|l| {
            l.strip_prefix(key)
                .map(str::trim_start)
                .and_then(|l| l.strip_prefix('='))
        })
        .unwrap_or_else(|| panic!("Cargo.toml has no {key}"));
    line.trim().trim_matches('"').to_string()
}

#[test]
fn the_ci_workflow_checks_the_msrv_of_cargo_toml_and_runs_what_ci_runs() {
    let workflow = text_of(".github/workflows/ci.yml");
    let msrv = cargo_toml_value("rust-version");
    let toolchains: Vec<&str> = workflow
        .lines()
        .filter_map(|l| l.split("dtolnay/rust-toolchain@").nth(1))
        .map(str::trim)
        .collect();
    assert!(
        toolchains.contains(&"stable"),
        "the checks run on stable: {toolchains:?}"
    );
    let pinned: Vec<&&str> = toolchains.iter().filter(|t| **t != "stable").collect();
    assert_eq!(
        pinned,
        [&msrv.as_str()],
        "the MSRV job's toolchain is Cargo.toml's rust-version"
    );
    for needed in [
        "push:",
        "pull_request:",
        "cargo xtask ci",
        "cargo check --workspace --all-targets",
        "rust-cache",
    ] {
        assert!(workflow.contains(needed), "the workflow has no {needed:?}");
    }
    // Every package .ci/run installs for the tests, the workflow installs too.
    let run = text_of(".ci/run");
    let packages: Vec<&str> = run
        .lines()
        .filter_map(|l| l.split("missing=\"$missing ").nth(1))
        .map(|p| p.trim_end_matches('"'))
        .collect();
    assert!(packages.len() >= 4, "{packages:?}");
    // Whole words: `fonts-nanum-coding` is not `fonts-nanum`.
    let words: Vec<&str> = workflow
        .split_whitespace()
        .map(|w| w.trim_end_matches(';'))
        .collect();
    for package in packages {
        assert!(
            words.contains(&package),
            "the workflow does not install {package}, which .ci/run does"
        );
    }
}

#[test]
fn the_license_files_are_the_ones_cargo_toml_names() {
    assert_eq!(cargo_toml_value("license"), "MIT OR Apache-2.0");
    let mit = text_of("LICENSE-MIT");
    assert!(mit.starts_with("MIT License\n") && mit.contains("Copyright (c) the hello-sockets authors"));
    let apache = text_of("LICENSE-APACHE");
    assert!(apache.contains("Apache License") && apache.contains("Version 2.0, January 2004"));
    assert!(apache.contains("END OF TERMS AND CONDITIONS"), "the whole text");
}

/// Every file git tracks, as paths relative to the workspace root.
fn tracked_files() -> Vec<String> {
    let out = std::process::Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(workspace_root())
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .split('\0')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

#[test]
fn nothing_reaches_outside_the_repository() {
    let files = tracked_files();
    if files.is_empty() {
        eprintln!("SKIP nothing_reaches_outside_the_repository: not a git checkout (or no git)");
        return;
    }
    // Built so that this file does not hold the string it looks for.
    let outside = format!("..{}shared", '/');
    let mut found = Vec::new();
    for path in &files {
        let Ok(text) = std::fs::read_to_string(workspace_root().join(path)) else {
            continue; // binary files, or a file deleted in the work tree
        };
        for (i, line) in text.lines().enumerate() {
            if line.contains(&outside) {
                found.push(format!("{path}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "the project must stand on its own, yet these lines refer to {outside}:\n{}",
        found.join("\n")
    );
}

/// The backquoted words of `text` that look like a test's name: snake_case of four words
/// or more (`no_model_holds_more_clients_than_max_conns`).
fn test_like_names(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| {
            w.split('_').count() >= 4
                && w.split('_').all(|part| {
                    !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                })
        })
        .map(str::to_owned)
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn every_test_architecture_md_names_exists() {
    // What ARCHITECTURE.md says guards an invariant must be there: a name is a function
    // (`fn NAME`) or, for a metric's or a constant's name, a string some code holds.
    let code: String = ["crates", "tests", "xtask", "fuzz"]
        .iter()
        .filter(|dir| workspace_root().join(dir).is_dir())
        .flat_map(|dir| rust_files(dir))
        .map(|path| text_of(&path))
        .collect::<Vec<_>>()
        .join("\n");
    let doc = text_of("ARCHITECTURE.md");
    let names = test_like_names(&doc);
    assert!(
        names
            .iter()
            .any(|n| n == "no_model_holds_more_clients_than_max_conns"),
        "the names are read from ARCHITECTURE.md's backquotes"
    );
    let missing: Vec<&String> = names
        .iter()
        .filter(|name| !code.contains(&format!("fn {name}(")) && !code.contains(&format!("\"{name}")))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names what no code defines (a test renamed or removed?): {missing:?}"
    );
    // And the files it points to exist.
    let mut absent = Vec::new();
    for word in doc.split('`').skip(1).step_by(2) {
        let path = word.split_whitespace().next().unwrap_or_default();
        if (path.starts_with("tests/") || path.starts_with("crates/") || path.starts_with("xtask/"))
            && path.ends_with(".rs")
            && !workspace_root().join(path).is_file()
        {
            absent.push(path.to_owned());
        }
    }
    assert!(
        absent.is_empty(),
        "ARCHITECTURE.md names files that do not exist: {absent:?}"
    );
}

/// The Markdown pages whose links must hold: README.md, ARCHITECTURE.md and every page
/// under docs/ (the benchmark runs' folders in docs/bench/ are records, left as written).
fn markdown_pages() -> Vec<String> {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = format!("{rel}/{name}");
            if entry.path().is_dir() {
                if path != "docs/bench" {
                    walk(&entry.path(), &path, out);
                }
            } else if name.ends_with(".md") {
                out.push(path);
            }
        }
    }
    let mut pages = vec!["README.md".to_owned(), "ARCHITECTURE.md".to_owned()];
    walk(&workspace_root().join("docs"), "docs", &mut pages);
    pages.sort();
    pages
}

/// The page's text outside fenced code blocks, as blocks (paragraphs, tables, lists) with
/// their code spans taken out: what GitHub reads links and headings from.
fn prose_blocks(text: &str) -> Vec<String> {
    let mut blocks = vec![String::new()];
    let mut fence: Option<&str> = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(open) = fence {
            if trimmed.starts_with(open) {
                fence = None;
            }
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fence = Some(&trimmed[..3]);
            blocks.push(String::new());
            continue;
        }
        if trimmed.is_empty() {
            blocks.push(String::new());
            continue;
        }
        let block = blocks.last_mut().unwrap();
        block.push_str(line);
        block.push('\n');
    }
    blocks
        .iter()
        .filter(|b| !b.is_empty())
        .map(|b| b.split('`').step_by(2).collect::<Vec<_>>().join(" "))
        .collect()
}

/// GitHub's anchor for a heading: lowercase, every character but a letter, a digit, `_`,
/// `-` and a space dropped (Hangul is letters, kept), each space a `-`.
fn github_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a Markdown page's headings; a repeated heading's anchor gets `-1`, `-2`…,
/// as on GitHub.
fn heading_anchors(text: &str) -> Vec<String> {
    let mut anchors: Vec<String> = Vec::new();
    let mut in_fence = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        let level = trimmed.bytes().take_while(|b| *b == b'#').count();
        if in_fence || level == 0 || level > 6 || !trimmed[level..].starts_with(' ') {
            continue;
        }
        let base = github_anchor(trimmed[level..].trim_end_matches('#'));
        let mut anchor = base.clone();
        let mut n = 0;
        while anchors.contains(&anchor) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
        anchors.push(anchor);
    }
    anchors
}

/// The targets of the inline links and images of a block: `[text](target)` and
/// `![alt](target)`, without a title.
fn link_targets(block: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = block;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let end = rest.find(')').unwrap_or(rest.len());
        let target = rest[..end].split_whitespace().next().unwrap_or_default();
        targets.push(target.trim_matches(|c| c == '<' || c == '>').to_owned());
        rest = &rest[end..];
    }
    targets
}

/// Every relative link of `page` that does not resolve: a file that is not there, or an
/// `#anchor` that no heading of the page it names makes.
fn broken_links(page: &str) -> Vec<String> {
    let text = text_of(page);
    let dir = Path::new(page).parent().unwrap_or(Path::new(""));
    let mut broken = Vec::new();
    for target in prose_blocks(&text).iter().flat_map(|b| link_targets(b)) {
        if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (file, anchor) = match target.split_once('#') {
            Some((file, anchor)) => (file, Some(anchor)),
            None => (target.as_str(), None),
        };
        let file_path = if file.is_empty() {
            page.to_owned()
        } else {
            dir.join(file).to_string_lossy().into_owned()
        };
        let on_disk = workspace_root().join(&file_path);
        if !on_disk.exists() {
            broken.push(format!("{page}: ({target}): no file {file_path}"));
            continue;
        }
        if let Some(anchor) = anchor {
            let anchors = if file_path.ends_with(".md") {
                heading_anchors(&text_of(&file_path))
            } else {
                Vec::new()
            };
            if !anchors.iter().any(|a| a == anchor) {
                broken.push(format!(
                    "{page}: ({target}): {file_path} has no heading #{anchor}"
                ));
            }
        }
    }
    broken
}

#[test]
fn every_relative_link_of_the_docs_resolves_to_a_file_and_a_heading() {
    assert_eq!(
        github_anchor("The textbook's program, call for call"),
        "the-textbooks-program-call-for-call"
    );
    assert_eq!(
        github_anchor("hello-load `--connect-only` beside the hello exchange"),
        "hello-load---connect-only-beside-the-hello-exchange"
    );
    assert_eq!(
        github_anchor("교재의 프로그램 그대로: `--textbook`"),
        "교재의-프로그램-그대로---textbook"
    );
    assert_eq!(
        github_anchor("io_uring: fewer system calls"),
        "io_uring-fewer-system-calls"
    );
    assert_eq!(
        link_targets("see [a](x.md#y) and ![b](<p.png> \"t\")"),
        ["x.md#y", "p.png"]
    );
    let pages = markdown_pages();
    assert!(pages.iter().any(|p| p == "docs/contract.md"), "{pages:?}");
    let readme_links: Vec<String> = prose_blocks(&text_of("README.md"))
        .iter()
        .flat_map(|b| link_targets(b))
        .collect();
    assert!(
        readme_links.iter().any(|t| t == "docs/contract.md"),
        "the links are read: {readme_links:?}"
    );
    let broken: Vec<String> = pages.iter().flat_map(|p| broken_links(p)).collect();
    assert!(
        broken.is_empty(),
        "links that lead nowhere:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_platform_page_quotes_the_build_error_of_other_systems_as_the_code_has_it() {
    // The `compile_error!` of hello-proto, its string's line continuations and escapes undone.
    let code = text_of("crates/proto/src/lib.rs");
    let literal = code
        .split("compile_error!(")
        .nth(1)
        .and_then(|rest| rest.split(");").next())
        .expect("hello-proto has a compile_error! for other systems");
    let message: String = literal
        .trim()
        .trim_matches('"')
        .split("\\\n")
        .map(str::trim_start)
        .collect::<String>()
        .replace("\\\"", "\"");
    assert!(
        message.starts_with("hello-sockets builds on Linux only"),
        "{message}"
    );
    let page = text_of("docs/development.md");
    assert!(
        page.lines().any(|l| l == format!("error: {message}")),
        "docs/development.md's Platform quotes the build error as: {message}"
    );
    // And the place it sends the reader to is there.
    assert!(
        message.contains("docs/development.md, \"Platform\"") && page.contains("\n## Platform\n"),
        "{message}"
    );
}

/// Whether `text` holds `word` as a whole identifier (no letter, digit or `_` either side).
fn has_identifier(text: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        !text[..i].chars().next_back().is_some_and(is_ident)
            && !text[i + word.len()..].chars().next().is_some_and(is_ident)
    })
}

/// The rows of the Markdown table under `heading` in `doc`, each as its cells (an escaped
/// `\|` inside a cell kept as `|`).
fn table_rows(doc: &str, heading: &str) -> Vec<Vec<String>> {
    let start = doc
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?}: update this test"));
    doc[start..]
        .lines()
        .skip(1)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter(|l| !l.starts_with("|---"))
        .skip(1)
        .map(|l| {
            l.replace("\\|", "\u{0}")
                .trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().replace('\u{0}', "|"))
                .collect()
        })
        .collect()
}

#[test]
fn glossary_names_are_the_codes() {
    // Each name the glossary gives a word in the code exists in the code: a rename that
    // forgets the glossary fails here.
    let code: String = rust_files("crates")
        .iter()
        .map(|path| code_of(path))
        .collect::<Vec<_>>()
        .join("\n");
    let rows = table_rows(&text_of("ARCHITECTURE.md"), "## Glossary");
    assert!(rows.len() >= 10, "the glossary's rows: {rows:?}");
    let mut missing = Vec::new();
    for row in &rows {
        let names = row.last().expect("a row has cells");
        assert!(names.contains('`'), "a word without its code name: {row:?}");
        for name in names.split('`').skip(1).step_by(2) {
            for part in name.split("::") {
                if !has_identifier(&code, part) {
                    missing.push(format!("{} ({})", part, row[0]));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's glossary names what the code does not have: {missing:?}"
    );
}

#[test]
fn the_docs_list_the_servers_models_and_no_other() {
    use clap::ValueEnum;
    use hello_server::Model;
    // The module of each model: a new model does not compile here until it is given one.
    let module = |m: &Model| match m {
        Model::Iterative => "iterative",
        Model::Threads => "threads",
        Model::Epoll => "event_loop",
        Model::Select => "select",
        Model::Fork => "fork",
        Model::Uring => "uring",
    };
    let mut models: Vec<String> = Model::value_variants()
        .iter()
        .filter_map(|m| Some(m.to_possible_value()?.get_name().to_owned()))
        .collect();
    models.sort();
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let contract = text_of("docs/contract.md");
    // The option's row: `--model a\|b\|…`.
    let option = contract
        .lines()
        .find_map(|l| l.strip_prefix("| `--model "))
        .and_then(|rest| rest.split('`').next())
        .expect("docs/contract.md's --model row");
    let listed: Vec<String> = option.split("\\|").map(str::to_owned).collect();
    assert_eq!(sorted(listed), models, "docs/contract.md's --model row");
    // The models' tables: the contract's, and the one docs/models.md opens with.
    let first_words = |doc: &str, heading: &str| -> Vec<String> {
        let rows = table_rows(doc, heading)
            .iter()
            .map(|row| row[0].split('`').nth(1).unwrap_or_default().to_owned())
            .collect();
        sorted(rows)
    };
    assert_eq!(
        first_words(&contract, "## Server models and limits"),
        models,
        "docs/contract.md's table of models"
    );
    assert_eq!(
        first_words(&text_of("docs/models.md"), "# Server models"),
        models,
        "docs/models.md's table of models"
    );
    // ARCHITECTURE.md's code map has a row for each model's module, its diagram draws
    // it, and the server's crate docs link it.
    let architecture = text_of("ARCHITECTURE.md");
    let diagram = architecture
        .split("```")
        .nth(1)
        .expect("ARCHITECTURE.md's diagram");
    let lib = text_of("crates/server/src/lib.rs");
    for model in Model::value_variants() {
        let m = module(model);
        assert!(
            architecture.contains(&format!("| `{m}` |")),
            "ARCHITECTURE.md's code map has no row for `{m}`"
        );
        assert!(
            has_identifier(diagram, m),
            "ARCHITECTURE.md's diagram leaves out {m}"
        );
        assert!(
            lib.contains(&format!("[`{m}`]")),
            "crates/server/src/lib.rs's docs leave out {m}"
        );
    }
}

/// The modules a file declares in files of their own (`mod name;`, `pub mod name;`).
fn declared_modules(code: &str) -> Vec<&str> {
    code.lines()
        .filter_map(|line| {
            line.strip_prefix("pub mod ")
                .or_else(|| line.strip_prefix("mod "))
        })
        .filter_map(|rest| rest.strip_suffix(';'))
        .collect()
}

#[test]
fn every_crate_and_module_has_its_place_in_the_maps() {
    // A crate or a module added without a word in the maps fails here (the harness crate
    // once had its section in ARCHITECTURE.md and no row in docs/development.md's layout).
    let architecture = text_of("ARCHITECTURE.md");
    let layout: Vec<String> = table_rows(&text_of("docs/development.md"), "## Layout")
        .into_iter()
        .map(|row| row[0].clone())
        .collect();
    let mut crates: Vec<String> = std::fs::read_dir(workspace_root().join("crates"))
        .expect("crates/")
        .map(|e| {
            e.expect("a folder entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    crates.sort();
    assert!(crates.len() >= 5, "the crates: {crates:?}");
    let mut missing = Vec::new();
    for name in &crates {
        let path = format!("crates/{name}");
        if !architecture.contains(&format!("### `{path}`")) {
            missing.push(format!("ARCHITECTURE.md has no section `### `{path}``"));
        }
        if !layout.contains(&format!("`{path}`")) {
            missing.push(format!("docs/development.md's layout has no row for `{path}`"));
        }
        // Each module the crate's lib.rs declares has a row in the code map.
        let Ok(lib) = std::fs::read_to_string(workspace_root().join(&path).join("src/lib.rs")) else {
            continue;
        };
        for module in declared_modules(&lib) {
            if !architecture.contains(&format!("| `{module}` |")) {
                missing.push(format!(
                    "ARCHITECTURE.md's code map has no row for {path}'s `{module}`"
                ));
            }
        }
    }
    // A module split into a folder names its files in its row (`sys`: `stream`, `tracer`…).
    for path in rust_files("crates")
        .iter()
        .filter(|p| p.ends_with("/mod.rs") && p.contains("/src/"))
    {
        for module in declared_modules(&text_of(path)) {
            if !architecture.contains(&format!("`{module}`")) {
                missing.push(format!("ARCHITECTURE.md does not name {path}'s `{module}`"));
            }
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}
