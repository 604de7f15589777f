//! hello-buildinfo: what `--version` says, worked out by a binary package's build script
//! (and, with [`commit`], the code a `cargo xtask bench` run measured).
//!
//! Built from a git checkout, the version line names the commit and says whether the
//! sources the binary is built from differed from it: `0.1.0 (git 6b999e1a2b3c)`, or
//! `0.1.0 (git 6b999e1a2b3c, dirty)`. Built from anything else (a tarball, a crate, a
//! machine without git) it is the version alone: `0.1.0`. The build script hands it to
//! the compiler as the `HELLO_VERSION` environment variable, read with `env!`, so it
//! costs nothing at run time.
//!
//! The build script runs again only when the answer can change: the commit (`HEAD`, the
//! branch it points to, `packed-refs`) or the files of the sources (the package's own
//! folder and the ones it names). Not the index: `git status` and `git add` rewrite it
//! without changing a source, and would rebuild the binaries for nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the version stands in git: the commit, abbreviated, and whether the sources
/// differed from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// `git rev-parse --short=12 HEAD`.
    pub id: String,
    /// A tracked file among the sources was changed, or an untracked one added.
    pub dirty: bool,
}

/// The version line: `VERSION`, then the commit in brackets when there is one.
pub fn describe(version: &str, commit: Option<&Commit>) -> String {
    match commit {
        Some(Commit { id, dirty: false }) => format!("{version} (git {id})"),
        Some(Commit { id, dirty: true }) => format!("{version} (git {id}, dirty)"),
        None => version.to_string(),
    }
}

/// Runs git in `dir` and returns what it printed, or `None` if git is missing or failed.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        // Never take the index lock or rewrite the index: a build reads, it does not write.
        .arg("--no-optional-locks")
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).ok()
}

/// The commit `dir` is checked out at, if `dir` is a tracked folder of a git checkout
/// (a tarball unpacked inside someone else's checkout is not), and whether any of
/// `sources` (paths relative to `dir`, `.` for `dir` itself) differ from it.
pub fn commit(dir: &Path, sources: &[&str]) -> Option<Commit> {
    let tracked = git(dir, &["ls-files", "--", "."])?;
    if tracked.trim().is_empty() {
        return None;
    }
    let id = git(dir, &["rev-parse", "--short=12", "HEAD"])?.trim().to_string();
    let mut status = vec!["status", "--porcelain", "--"];
    status.extend_from_slice(sources);
    let dirty = !git(dir, &status)?.trim().is_empty();
    Some(Commit { id, dirty })
}

/// The files whose change can change the commit of `dir`: `HEAD`, the loose branch ref
/// it points to (or, while there is none, the folder it would be created in), and
/// `packed-refs` — those that exist (cargo reruns every time for a missing one).
fn git_files(dir: &Path) -> Vec<PathBuf> {
    let path = |name: &str| git(dir, &["rev-parse", "--git-path", name]).map(|p| dir.join(p.trim()));
    let mut files: Vec<PathBuf> = ["HEAD", "packed-refs"].iter().filter_map(|n| path(n)).collect();
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        let mut loose = path(branch.trim());
        // A branch packed and not yet committed to: a commit creates its file here.
        while let Some(p) = loose.take_if(|p| !p.exists()) {
            loose = p.parent().map(Path::to_path_buf);
        }
        files.extend(loose);
    }
    files.retain(|f| f.exists());
    files
}

/// The build script's work: sets `HELLO_VERSION` for the package's code and tells cargo
/// when to run again. `sources` are the other folders and files the package's binaries
/// are built from, relative to the package (its own folder always counts).
pub fn emit(sources: &[&str]) {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let mut all = vec!["."];
    all.extend_from_slice(sources);
    let commit = commit(&dir, &all);
    println!(
        "cargo:rustc-env=HELLO_VERSION={}",
        describe(&version, commit.as_ref())
    );
    if commit.is_some() {
        for file in git_files(&dir) {
            println!("cargo:rerun-if-changed={}", file.display());
        }
        for source in all {
            let path = if source == "." {
                dir.clone()
            } else {
                dir.join(source)
            };
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    } else {
        // Outside a checkout the answer is the version, which only the manifest changes.
        println!("cargo:rerun-if-changed=build.rs");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_line_names_the_commit_and_a_dirty_tree() {
        let clean = Commit {
            id: "6b999e1a2b3c".into(),
            dirty: false,
        };
        let dirty = Commit {
            dirty: true,
            ..clean.clone()
        };
        assert_eq!(describe("0.1.0", None), "0.1.0");
        assert_eq!(describe("0.1.0", Some(&clean)), "0.1.0 (git 6b999e1a2b3c)");
        assert_eq!(describe("0.1.0", Some(&dirty)), "0.1.0 (git 6b999e1a2b3c, dirty)");
    }

    /// A fresh folder under the system's temporary one, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("hello-buildinfo-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("pkg/src")).unwrap();
            std::fs::write(dir.join("pkg/src/lib.rs"), "// one\n").unwrap();
            std::fs::write(dir.join("notes.txt"), "notes\n").unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn run_git(dir: &Path, args: &[&str]) -> bool {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@example.invalid",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    }

    #[test]
    fn outside_a_checkout_there_is_no_commit() {
        let scratch = Scratch::new("plain");
        // A folder that is not in a repository: the version alone.
        if run_git(&scratch.0, &["rev-parse", "--git-dir"]) {
            eprintln!("SKIP the temporary folder is inside a git checkout");
            return;
        }
        assert_eq!(commit(&scratch.0.join("pkg"), &["."]), None);
    }

    #[test]
    fn a_checkout_gives_its_commit_and_dirty_only_for_the_sources() {
        let scratch = Scratch::new("repo");
        let root = &scratch.0;
        if !run_git(root, &["init", "-q"]) {
            eprintln!("SKIP no git on this machine: the commit in --version is not checked");
            return;
        }
        let pkg = root.join("pkg");
        // Inside the repository but not tracked (a tarball unpacked in a checkout).
        assert_eq!(commit(&pkg, &["."]), None);
        assert!(run_git(root, &["add", "."]) && run_git(root, &["commit", "-q", "-m", "one"]));
        let head = git(root, &["rev-parse", "--short=12", "HEAD"]).unwrap();
        let clean = commit(&pkg, &["."]).unwrap();
        assert_eq!(
            clean,
            Commit {
                id: head.trim().to_string(),
                dirty: false
            }
        );
        assert!(!git_files(&pkg).is_empty(), "HEAD at least is watched");
        // A change outside the sources leaves the binary's sources clean.
        std::fs::write(root.join("notes.txt"), "more notes\n").unwrap();
        assert!(!commit(&pkg, &["."]).unwrap().dirty);
        // A change, or a new file, among them makes them dirty.
        std::fs::write(pkg.join("src/lib.rs"), "// two\n").unwrap();
        assert!(commit(&pkg, &["."]).unwrap().dirty);
        assert!(
            commit(&pkg, &["../notes.txt"]).unwrap().dirty,
            "another source named"
        );
        assert!(run_git(root, &["checkout", "-q", "--", "."]));
        std::fs::write(pkg.join("src/new.rs"), "// new\n").unwrap();
        assert!(commit(&pkg, &["."]).unwrap().dirty);
    }
}
