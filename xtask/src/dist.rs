//! `cargo xtask dist`: what is shipped. The release binaries, shell completions (bash,
//! zsh, fish) and a man page for each program, generated from the same clap definitions
//! the binaries parse (`hello_server::cli`, `hello_client::cli`,
//! `hello_client::load::cli`), the README, ARCHITECTURE.md, `docs/` and the license
//! texts, the systemd units (`dist/systemd/`, under `lib/systemd/system/`), laid out as an
//! install prefix and packed into `target/dist/hello-sockets-<version>-<target>.tar.gz`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap_complete::Shell;

use crate::process::{build_dist, host_triple, target_dir};
use crate::project_root;

/// The programs shipped: name, command line, and the examples that end its `--help`.
fn programs() -> [(&'static str, clap::Command, &'static str); 3] {
    [
        (
            "hello-server",
            hello_server::cli::command(),
            hello_server::cli::EXAMPLES,
        ),
        (
            "hello-client",
            hello_client::cli::command(),
            hello_client::cli::EXAMPLES,
        ),
        (
            "hello-load",
            hello_client::load::cli::command(),
            hello_client::load::cli::EXAMPLES,
        ),
    ]
}

/// Files of the project shipped as they are, at the top of the tarball.
const TEXTS: [&str; 4] = ["README.md", "ARCHITECTURE.md", "LICENSE-MIT", "LICENSE-APACHE"];

/// The folder of documentation shipped whole beside them, so that README's links to its
/// pages (and theirs to the pictures and measured runs) lead somewhere in the tarball.
const DOCS: &str = "docs";

/// The systemd units, shipped as they are from `dist/systemd/` to `lib/systemd/system/`
/// (where a prefix's units go: `/usr/lib/systemd/system/` for `/usr`).
pub const UNITS: [&str; 2] = ["hello-server.socket", "hello-server.service"];

/// `cargo xtask dist`'s command line.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Take the binaries from DIR instead of building them (a quick check with the debug
    /// ones: --bins target/debug).
    #[arg(long, value_name = "DIR")]
    bins: Option<PathBuf>,
    /// Write the install prefix and the tarball into DIR [default: target/dist].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// `cargo xtask dist [--bins DIR] [--out DIR]`: builds the release binaries (or takes
/// them from `--bins`, for a quick check with the debug ones), writes everything into
/// `OUT/hello-sockets-<version>-<target>/` and packs it. OUT is `target/dist`.
pub fn run(args: Args) -> Result<()> {
    let out = args.out.unwrap_or_else(|| target_dir().join("dist"));
    let bins = match args.bins {
        Some(dir) => dir,
        None => build_dist()?,
    };
    let name = format!("hello-sockets-{}-{}", env!("CARGO_PKG_VERSION"), host_triple()?);
    let tarball = package(&bins, &out, &name)?;
    let root = out.join(&name);
    for (program, _, _) in programs() {
        println!("{}", root.join("bin").join(program).display());
    }
    println!("{}", tarball.display());
    Ok(())
}

/// Lays out `OUT/NAME/` as an install prefix — `bin/`, `share/man/man1/`, the
/// completions where bash-completion, zsh and fish look for them, the systemd units in
/// `lib/systemd/system/` — plus the README, ARCHITECTURE.md, `docs/` and the licenses, and
/// packs it as `OUT/NAME.tar.gz`, which it returns.
fn package(bins: &Path, out: &Path, name: &str) -> Result<PathBuf> {
    let root = out.join(name);
    if root.exists() {
        fs::remove_dir_all(&root).with_context(|| format!("cannot empty {}", root.display()))?;
    }
    let bin = root.join("bin");
    fs::create_dir_all(&bin).with_context(|| format!("cannot create {}", bin.display()))?;
    for (program, _, _) in programs() {
        let from = bins.join(program);
        fs::copy(&from, bin.join(program)).with_context(|| format!("cannot copy {}", from.display()))?;
    }
    for text in TEXTS {
        let from = project_root().join(text);
        fs::copy(&from, root.join(text)).with_context(|| format!("cannot copy {}", from.display()))?;
    }
    copy_tree(&project_root().join(DOCS), &root.join(DOCS))?;
    let units = root.join("lib/systemd/system");
    fs::create_dir_all(&units).with_context(|| format!("cannot create {}", units.display()))?;
    for unit in UNITS {
        let from = project_root().join("dist/systemd").join(unit);
        fs::copy(&from, units.join(unit)).with_context(|| format!("cannot copy {}", from.display()))?;
    }
    write_docs(&root.join("share"))?;
    let tarball = out.join(format!("{name}.tar.gz"));
    // The tar command, not the tar and flate2 crates: every Linux has it (and gzip), and
    // two dependencies would be compiled into every `cargo xtask` for one line here.
    // Entries sorted and owned by root, so that the same tree packs the same way.
    let mut tar = Command::new("tar");
    tar.arg("--create")
        .arg("--gzip")
        .arg("--file")
        .arg(&tarball)
        .arg("--directory")
        .arg(out)
        .args(["--sort=name", "--owner=0", "--group=0", "--numeric-owner"]);
    if let Ok(epoch) = std::env::var("SOURCE_DATE_EPOCH") {
        tar.arg(format!("--mtime=@{epoch}"));
    }
    let status = tar.arg(name).status().context("cannot run tar")?;
    if !status.success() {
        bail!("tar failed ({status}) packing {}", root.display());
    }
    Ok(tarball)
}

/// Writes each program's man page and completions under `share` (a prefix's `share/`).
fn write_docs(share: &Path) -> Result<()> {
    for (program, cmd, examples) in programs() {
        let files = [
            (format!("man/man1/{program}.1"), man_page(cmd.clone(), examples)?),
            (
                format!("bash-completion/completions/{program}"),
                completion(Shell::Bash, cmd.clone()),
            ),
            (
                format!("zsh/site-functions/_{program}"),
                completion(Shell::Zsh, cmd.clone()),
            ),
            (
                format!("fish/vendor_completions.d/{program}.fish"),
                completion(Shell::Fish, cmd),
            ),
        ];
        for (path, text) in files {
            let path = share.join(path);
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            }
            fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    Ok(())
}

/// The completion script of `cmd` for `shell`.
fn completion(shell: Shell, mut cmd: clap::Command) -> Vec<u8> {
    let name = cmd.get_name().to_string();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut script);
    script
}

/// The man page of `cmd`: clap_mangen's sections, with the examples that end `--help` as
/// an EXAMPLES section (clap_mangen would print them under EXTRA).
fn man_page(cmd: clap::Command, examples: &str) -> Result<Vec<u8>> {
    let man = clap_mangen::Man::new(cmd);
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    page.extend_from_slice(examples_section(examples).as_bytes());
    // No VERSION section: the title line at the foot of each page has the version.
    Ok(page)
}

/// The examples text as a roff section: kept as laid out (`.nf`), every character
/// literal (a backslash escaped, a line never read as a request, `-` a real minus).
fn examples_section(examples: &str) -> String {
    let mut section = String::from(".SH EXAMPLES\n.nf\n");
    for line in examples.lines().skip_while(|l| l.trim_end().ends_with(':')) {
        let line = line.replace('\\', "\\e").replace('-', "\\-");
        section.push_str("\\&");
        section.push_str(&line);
        section.push('\n');
    }
    section.push_str(".fi\n");
    section
}

/// Copies the folder `from` to `to`, files and folders (no links; the docs have none).
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    let entries = fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", from.display()))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if entry.file_type()?.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            fs::copy(&src, &dst).with_context(|| format!("cannot copy {}", src.display()))?;
        }
    }
    Ok(())
}
