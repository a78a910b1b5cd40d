//! The recnode binary (placeholder until the infra work lands).
fn main() {}
