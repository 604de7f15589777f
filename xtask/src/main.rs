//! `cargo xtask`: the project's tasks (demo, ci, bench).
fn main() {}
