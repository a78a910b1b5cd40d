//! Generates the prost types from `schema/*.proto` with the vendored `protoc`, so no
//! system `protoc` is needed, and their canonical proto3 JSON (serde) impls with
//! pbjson-build from the same descriptors.
//!
//! `schema/test/atm0s_hook.proto` is compiled too, into its own file; only the crate's
//! tests include it (see `tests/atm0s_compat.rs`).

use std::error::Error;
use std::path::PathBuf;

const SCHEMAS: &[&str] = &["schema/hook.proto", "schema/cluster.proto"];
const TEST_SCHEMAS: &[&str] = &["schema/test/atm0s_hook.proto"];

fn main() -> Result<(), Box<dyn Error>> {
    // The vendored binary is used even when a system protoc exists, so every machine
    // generates the same code.
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // prost-build finds protoc through PROTOC. Setting it here is sound: this build
    // script is single-threaded (set_var must not race other threads' env access).
    std::env::set_var("PROTOC", protoc);

    for schema in SCHEMAS.iter().chain(TEST_SCHEMAS) {
        println!("cargo:rerun-if-changed={schema}");
    }
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptors = out_dir.join("recnode_descriptors.bin");
    prost_build::Config::new()
        .file_descriptor_set_path(&descriptors)
        .compile_protos(SCHEMAS, &["schema"])?;
    // Canonical proto3 JSON: lowerCamelCase names, 64-bit integers as strings, enums
    // by name, defaults omitted; parsers accept both camelCase and the proto names.
    pbjson_build::Builder::new()
        .register_descriptors(&std::fs::read(&descriptors)?)?
        .build(&[".recnode"])?;

    prost_build::Config::new().compile_protos(TEST_SCHEMAS, &["schema/test"])?;
    Ok(())
}
