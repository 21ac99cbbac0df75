//! The `cfa` binary (being built).
fn main() {}
