//! Gives `--version` the git commit and whether the sources were changed (see
//! hello-buildinfo), from the package and the crates and manifests it is built with.

fn main() {
    hello_buildinfo::emit(&["../proto", "../buildinfo", "../../Cargo.toml", "../../Cargo.lock"]);
}
