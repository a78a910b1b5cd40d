//! recnode's wire formats (placeholder until the infra work adds prost-build).
#![deny(missing_docs)]
