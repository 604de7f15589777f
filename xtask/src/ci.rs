//! `cargo xtask ci`: every check CI runs, in order, stopping at the first failure. This is
//! the one list: `.ci/run` calls it, and so can a developer before pushing.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{cargo, project_root};

/// One check: a name, cargo's arguments, and an environment variable to set.
type Check = (
    &'static str,
    &'static [&'static str],
    Option<(&'static str, &'static str)>,
);

/// Runs fmt, clippy, the tests and the docs, each with warnings denied, then the demo.
pub fn run() -> Result<()> {
    let steps: [Check; 5] = [
        ("format", &["fmt", "--all", "--check"], None),
        (
            "clippy",
            &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"],
            None,
        ),
        ("tests", &["test", "--workspace"], None),
        (
            "docs",
            &["doc", "--workspace", "--no-deps"],
            Some(("RUSTDOCFLAGS", "-D warnings")),
        ),
        // The README's main command, as a user runs it; its output is the demo itself.
        ("demo", &["xtask", "demo"], None),
    ];
    for (name, args, env) in steps {
        eprintln!("xtask ci: {name}: cargo {}", args.join(" "));
        let mut cmd = Command::new(cargo());
        cmd.current_dir(project_root()).args(args);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let status = cmd
            .status()
            .with_context(|| format!("cannot run cargo for {name}"))?;
        if !status.success() {
            bail!("{name} failed ({status})");
        }
    }
    eprintln!("xtask ci: all checks passed");
    Ok(())
}
