//! Generates the prost types from `schema/*.proto` with the vendored `protoc`, so no
//! system `protoc` is needed.

use std::error::Error;

const SCHEMAS: &[&str] = &["schema/hook.proto", "schema/cluster.proto"];

fn main() -> Result<(), Box<dyn Error>> {
    // The vendored binary is used even when a system protoc exists, so every machine
    // generates the same code.
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // prost-build finds protoc through PROTOC. Setting it here is sound: this build
    // script is single-threaded (set_var must not race other threads' env access).
    std::env::set_var("PROTOC", protoc);

    for schema in SCHEMAS {
        println!("cargo:rerun-if-changed={schema}");
    }
    prost_build::Config::new().compile_protos(SCHEMAS, &["schema"])?;
    Ok(())
}
