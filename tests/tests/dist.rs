//! What `cargo xtask dist` ships, unpacked as a user would: the tarball holds the
//! binaries, the bash, zsh and fish completions, the man pages, the README, ARCHITECTURE.md,
//! the docs (every link of README's leads somewhere in it) and the licenses; each man page renders and names every option the program's `--help` lists;
//! the bash completion loads in bash and completes `--model`'s values. The tarball is
//! packed from the debug binaries (`dist --bins`), so no release build is needed here.

// Test code: a panic with a message is how it reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use hello_tests::{bins, run_bounded, skip, which, workspace_root};

/// The programs shipped.
const PROGRAMS: [&str; 3] = ["hello-server", "hello-client", "hello-load"];

/// Packs the tarball once per test process and unpacks it; returns the tarball and the
/// folder it unpacked to (`hello-sockets-<version>-<target>/`).
fn unpacked() -> &'static (PathBuf, PathBuf) {
    static DIST: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    DIST.get_or_init(|| {
        let bin_dir = bins()
            .server
            .parent()
            .expect("the binaries' folder")
            .to_path_buf();
        let out = bin_dir.join("dist-test");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let output = Command::new(cargo)
            .current_dir(workspace_root())
            .args(["run", "--quiet", "-p", "xtask", "--", "dist", "--bins"])
            .arg(&bin_dir)
            .arg("--out")
            .arg(&out)
            .output()
            .expect("run cargo xtask dist");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "cargo xtask dist failed: {}\n{stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        // Its last line names the tarball.
        let tarball = PathBuf::from(stdout.lines().last().expect("dist prints the tarball"));
        let name = tarball.file_name().and_then(|n| n.to_str()).expect("a file name");
        let name = name.strip_suffix(".tar.gz").expect("a .tar.gz").to_string();
        let prefix = format!("hello-sockets-{}-", env!("CARGO_PKG_VERSION"));
        assert!(name.starts_with(&prefix), "{name} names the version");
        assert!(name.contains(std::env::consts::ARCH), "{name} names the target");
        let into = out.join("unpacked");
        let _ = std::fs::remove_dir_all(&into);
        std::fs::create_dir_all(&into).unwrap();
        let (status, _, err) =
            run_bounded(Command::new("tar").arg("-xzf").arg(&tarball).arg("-C").arg(&into));
        assert!(
            status.success(),
            "tar -xzf failed: {}",
            String::from_utf8_lossy(&err)
        );
        (tarball.clone(), into.join(name))
    })
}

/// The files under `root`, as paths relative to it.
fn files_under(root: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                found.insert(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    found
}

#[test]
fn the_tarball_holds_the_binaries_completions_man_pages_units_docs_and_licenses() {
    let (_, root) = unpacked();
    let mut expected: BTreeSet<String> = [
        "README.md",
        "ARCHITECTURE.md",
        "LICENSE-MIT",
        "LICENSE-APACHE",
        "lib/systemd/system/hello-server.socket",
        "lib/systemd/system/hello-server.service",
    ]
    .map(String::from)
    .into();
    for p in PROGRAMS {
        expected.extend([
            format!("bin/{p}"),
            format!("share/man/man1/{p}.1"),
            format!("share/bash-completion/completions/{p}"),
            format!("share/zsh/site-functions/_{p}"),
            format!("share/fish/vendor_completions.d/{p}.fish"),
        ]);
    }
    let docs: Vec<String> = files_under(&workspace_root().join("docs"))
        .into_iter()
        .map(|f| format!("docs/{f}"))
        .collect();
    assert!(docs.contains(&"docs/contract.md".to_owned()), "{docs:?}");
    expected.extend(docs.iter().cloned());
    assert_eq!(files_under(root), expected);
    let mut shipped_as_they_are = vec![
        ("README.md", "README.md"),
        ("ARCHITECTURE.md", "ARCHITECTURE.md"),
        ("LICENSE-MIT", "LICENSE-MIT"),
        ("LICENSE-APACHE", "LICENSE-APACHE"),
        (
            "lib/systemd/system/hello-server.socket",
            "dist/systemd/hello-server.socket",
        ),
        (
            "lib/systemd/system/hello-server.service",
            "dist/systemd/hello-server.service",
        ),
    ];
    shipped_as_they_are.extend(docs.iter().map(|d| (d.as_str(), d.as_str())));
    // README's relative links lead somewhere in the tarball.
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut links = 0;
    for target in readme.split("](").skip(1).filter_map(|r| r.split(')').next()) {
        let file = target.split('#').next().unwrap_or_default();
        if file.is_empty() || file.contains("://") {
            continue;
        }
        links += 1;
        assert!(
            root.join(file).exists(),
            "README links to {file}, not in the tarball"
        );
    }
    assert!(links > 5, "README's links were read: {links}");
    for (shipped, source) in shipped_as_they_are {
        assert_eq!(
            std::fs::read(root.join(shipped)).unwrap(),
            std::fs::read(workspace_root().join(source)).unwrap(),
            "{shipped} as {source} in the project"
        );
    }
    // The binaries are the programs, and run from where they were unpacked.
    for p in PROGRAMS {
        let (status, out, _) = run_bounded(Command::new(root.join("bin").join(p)).arg("--version"));
        assert!(status.success(), "{p} --version: {status}");
        let out = String::from_utf8(out).unwrap();
        assert!(out.starts_with(&format!("{p} ")), "{p} --version printed {out:?}");
    }
}

/// The long options `program -h` lists, one per option line (`-b, --bind <ADDR>  ...`).
fn options_in_help(program: &Path) -> Vec<String> {
    let (status, out, _) = run_bounded(Command::new(program).arg("-h"));
    assert!(status.success());
    let help = String::from_utf8(out).unwrap();
    help.lines()
        .map(str::trim_start)
        .filter(|l| l.starts_with('-'))
        .filter_map(|l| l.split([' ', ',', '[', '=']).find(|w| w.starts_with("--")))
        .map(String::from)
        .collect()
}

/// The page as a reader sees it: rendered by `man -l`, or groff where man is missing,
/// in plain ASCII, with no hyphenation (which could split an option's name); `None` when
/// neither is installed.
fn render(page: &Path) -> Option<String> {
    let out = if which("man").is_some() {
        Command::new("man")
            .arg("-l")
            .arg(page)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .env("MANROFFOPT", "-rHY=0")
            .env("LC_ALL", "C")
            .output()
    } else if which("groff").is_some() {
        Command::new("groff")
            .args(["-man", "-Tascii", "-rHY=0"])
            .arg(page)
            .output()
    } else {
        return None;
    }
    .expect("run man or groff");
    assert!(
        out.status.success() && !out.stdout.is_empty(),
        "{} does not render: {}\n{}",
        page.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{} renders with warnings: {}",
        page.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    // Bold and underline as a terminal's overstrikes (`x\bx`, `_\bx`) become plain text.
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut plain = String::new();
    for c in text.chars() {
        if c == '\u{8}' {
            plain.pop();
        } else {
            plain.push(c);
        }
    }
    Some(plain)
}

#[test]
fn every_man_page_renders_and_names_every_option() {
    let (_, root) = unpacked();
    for p in PROGRAMS {
        let page = root.join(format!("share/man/man1/{p}.1"));
        let Some(text) = render(&page) else {
            skip(
                "neither man nor groff on this machine: the man pages were not rendered (apt-get install man-db)",
            );
            return;
        };
        for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXAMPLES"] {
            assert!(
                text.lines().any(|l| l == section),
                "{p}.1 has no {section} section:\n{text}"
            );
        }
        let options = options_in_help(&root.join("bin").join(p));
        assert!(
            options.len() >= 8 && options.contains(&"--version".to_string()),
            "{p}: {options:?}"
        );
        for option in options {
            assert!(text.contains(&option), "{p}.1 does not mention {option}:\n{text}");
        }
        assert!(
            text.contains(&format!("{p} --")),
            "{p}.1's examples show the program run:\n{text}"
        );
    }
}

/// What bash completes for `words` (the last one being completed), with the script
/// `script` loaded the way bash-completion loads it, through `complete -p`.
fn bash_completes(script: &Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = words[0];
    let code = format!(
        "source '{script}' || exit 3
         spec=$(complete -p {program}) || exit 4
         fn=${{spec##*-F }}; fn=${{fn%% *}}
         COMP_WORDS=({words}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
         COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}
         \"$fn\" {program} \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script = script.display(),
        words = quoted.join(" "),
    );
    let (status, out, err) = run_bounded(Command::new("bash").args(["--norc", "--noprofile", "-c", &code]));
    assert!(
        status.success(),
        "bash {words:?}: {status}: {}",
        String::from_utf8_lossy(&err)
    );
    assert!(
        err.is_empty(),
        "bash {words:?} complained: {}",
        String::from_utf8_lossy(&err)
    );
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn the_bash_completion_loads_and_completes_model_values() {
    if which("bash").is_none() {
        skip("no bash on this machine: the bash completion was not loaded");
        return;
    }
    let (_, root) = unpacked();
    let completions = root.join("share/bash-completion/completions");
    let server = completions.join("hello-server");
    let mut models = bash_completes(&server, &["hello-server", "--model", ""]);
    models.sort();
    assert_eq!(
        models,
        ["epoll", "fork", "iterative", "select", "threads", "uring"]
    );
    assert_eq!(
        bash_completes(&server, &["hello-server", "--model", "th"]),
        ["threads"]
    );
    assert_eq!(
        bash_completes(&server, &["hello-server", "--serv"]),
        ["--service"]
    );
    assert_eq!(
        bash_completes(&server, &["hello-server", "--service", ""]),
        ["hello", "echo"]
    );
    let client = completions.join("hello-client");
    assert_eq!(
        bash_completes(&client, &["hello-client", "--lang", ""]),
        ["en", "ko"]
    );
    assert!(bash_completes(&client, &["hello-client", "--"]).contains(&"--expect".to_string()));
    let load = completions.join("hello-load");
    assert!(bash_completes(&load, &["hello-load", "--"]).contains(&"--rate".to_string()));
}

#[test]
fn the_zsh_and_fish_completions_parse_and_fish_completes_model_values() {
    let (_, root) = unpacked();
    let shells = [
        ("zsh", "share/zsh/site-functions/_", "", vec!["-n"]),
        (
            "fish",
            "share/fish/vendor_completions.d/",
            ".fish",
            vec!["--no-execute"],
        ),
    ];
    for (shell, dir, ext, check) in shells {
        if which(shell).is_none() {
            skip(&format!(
                "no {shell} on this machine: its completions were not parsed (apt-get install {shell})"
            ));
            continue;
        }
        for p in PROGRAMS {
            let script = root.join(format!("{dir}{p}{ext}"));
            let (status, _, err) = run_bounded(Command::new(shell).args(&check).arg(&script));
            assert!(
                status.success(),
                "{shell} cannot parse {}: {}",
                script.display(),
                String::from_utf8_lossy(&err)
            );
        }
    }
    if which("fish").is_some() {
        let script = root.join("share/fish/vendor_completions.d/hello-server.fish");
        let code = format!(
            "source '{}'; complete -C 'hello-server --model '",
            script.display()
        );
        let (status, out, err) = run_bounded(Command::new("fish").args(["--no-config", "-c", &code]));
        let (out, err) = (String::from_utf8(out).unwrap(), String::from_utf8_lossy(&err));
        assert!(status.success() && err.is_empty(), "fish: {status}: {err}");
        let mut models: Vec<&str> = out.lines().filter_map(|l| l.split('\t').next()).collect();
        models.sort();
        assert_eq!(
            models,
            ["epoll", "fork", "iterative", "select", "threads", "uring"],
            "{out}"
        );
    }
}
