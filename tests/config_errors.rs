//! A bad configuration stops start-up with a non-zero exit and a message naming the
//! offending key and where it came from.

mod common;

use std::time::Duration;

use common::{recnode_command, run_to_exit};

const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn unknown_key_in_config_file_fails_start_up_naming_the_key_and_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("recnode.toml");
    std::fs::write(
        &file,
        "[http]\nlisten = \"127.0.0.1:0\"\nlisen_backlog = 5\n",
    )
    .expect("write config");

    let mut command = recnode_command(dir.path());
    command.arg("--config").arg(&file);
    let output = run_to_exit(command, EXIT_TIMEOUT);

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "must fail; stderr: {stderr}");
    assert!(
        stderr.contains("lisen_backlog"),
        "stderr names the key: {stderr}"
    );
    assert!(
        stderr.contains("recnode.toml"),
        "stderr names the file: {stderr}"
    );
    assert!(
        !dir.path().join("recordings").exists(),
        "nothing created on failure"
    );
}

#[test]
fn unknown_override_variable_fails_start_up_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = recnode_command(dir.path());
    command.env("RECNODE_RECORDER__SEGMENT_SECS", "4");
    let output = run_to_exit(command, EXIT_TIMEOUT);

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "must fail; stderr: {stderr}");
    assert!(
        stderr.contains("RECNODE_RECORDER__SEGMENT_SECS"),
        "{stderr}"
    );
    assert!(stderr.contains("segment_secs"), "{stderr}");
}

#[test]
fn unknown_storage_type_fails_start_up_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("recnode.toml");
    std::fs::write(&file, "[recorder.storage]\ntype = \"ftp\"\n").expect("write config");

    let mut command = recnode_command(dir.path());
    command.arg("--config").arg(&file);
    let output = run_to_exit(command, EXIT_TIMEOUT);

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "must fail; stderr: {stderr}");
    assert!(stderr.contains("ftp"), "{stderr}");
    assert!(stderr.contains("recorder.storage"), "{stderr}");
}

#[test]
fn a_missing_cluster_tls_file_fails_start_up_naming_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("node-a.pem");
    let mut command = recnode_command(dir.path());
    command
        .env("RECNODE_CLUSTER__ENABLED", "true")
        .env("RECNODE_CLUSTER__NODE_NAME", "a")
        .env("RECNODE_CLUSTER__COOKIE", "c00kie")
        .env("RECNODE_CLUSTER__TLS__CERT", &missing)
        .env("RECNODE_CLUSTER__TLS__KEY", dir.path().join("node-a.key"))
        .env("RECNODE_CLUSTER__TLS__CA", dir.path().join("ca.pem"));
    let output = run_to_exit(command, EXIT_TIMEOUT);

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "must fail; stderr: {stderr}");
    assert!(
        stderr.contains(&missing.display().to_string()),
        "stderr names the file: {stderr}"
    );
    assert!(stderr.contains("cluster.tls.cert"), "{stderr}");
    assert!(
        !dir.path().join("recordings").exists(),
        "nothing created on failure"
    );
}
