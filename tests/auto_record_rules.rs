//! End to end on one node: auto-record rules made through `/api/rules` record the
//! streams published afterwards whose names match, and no others; a deleted rule records
//! nothing more; bad rules and bodies get JSON 4xx answers and the API needs the admin
//! token; rules are persisted and apply again after a restart.

mod common;
#[path = "../media/tests/common/mod.rs"]
mod media;

use common::*;
use serde_json::Value;
use std::time::Duration;

/// How long a publish may take to be seen live.
const LIVE_WAIT: Duration = Duration::from_secs(30);
/// How long a publish of the short source may take.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(40);
/// The admin token of the auth test.
const TOKEN: &str = "rules-s3cret";

/// `PUT /api/rules/{id}` with `{"pattern": pattern}`.
fn put_rule(node: &Node, id: &str, pattern: &str) -> HttpResponse {
    let body = serde_json::json!({ "pattern": pattern }).to_string();
    node.api("PUT", &format!("/api/rules/{id}"), Some(&body))
}

/// The `(id, pattern)` of every rule `GET /api/rules` lists.
fn rules(node: &Node) -> Vec<(String, String)> {
    let r = node.api("GET", "/api/rules", None);
    assert_eq!(r.status, 200, "GET /api/rules: {r:?}");
    let body = r.json();
    (body["rules"].as_array().expect("rules is an array").iter())
        .map(|r| {
            let field = |k: &str| r[k].as_str().unwrap_or_default().to_string();
            (field("id"), field("pattern"))
        })
        .collect()
}

/// Waits until `stream` is live and returns its `GET /api/record/{stream}`. Auto-record
/// is decided before the stream takes any media or call, so this status is final.
fn live_status(node: &Node, stream: &str) -> Value {
    wait_for(&format!("{stream} to be live"), LIVE_WAIT, || {
        let r = node.api("GET", &format!("/api/record/{stream}"), None);
        (r.status == 200).then(|| r.json())
    })
}

#[test]
fn a_rule_put_through_the_api_records_the_streams_it_matches_and_no_others() {
    let node = Node::start();
    let r = put_rule(&node, "web", "web-*");
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.json()["pattern"], "web-*", "{r:?}");
    // Putting it again replaces it.
    let r = put_rule(&node, "web", "web-*");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(rules(&node), [("web".to_string(), "web-*".to_string())]);
    let listed = node.api("GET", "/api/rules", None).json();
    assert_eq!(listed["config_auto_streams"], serde_json::json!([]));

    let src = av_source(node.cwd.path(), "src.flv", 4);
    let mut web = Publisher::start(&src, &node.rtmp_url("web-1"), node.cwd.path());
    let mut other = Publisher::start(&src, &node.rtmp_url("other"), node.cwd.path());
    assert_eq!(live_status(&node, "web-1")["recording"], true);
    assert_eq!(live_status(&node, "other")["recording"], false);
    web.wait_success(PUBLISH_TIMEOUT);
    other.wait_success(PUBLISH_TIMEOUT);
    let dirs = wait_for_finished_recordings(&node, "web-1", Duration::from_secs(60));
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert_eq!(
        media::decode_errors(&dirs[0].join("manifest.mpd")),
        "",
        "{}",
        dirs[0].display()
    );
    assert!(record_dirs(&node.recordings(), "other").is_empty());

    // Without the rule, a new stream is not recorded.
    let r = node.api("DELETE", "/api/rules/web", None);
    assert_eq!(r.status, 204, "{r:?}");
    assert!(rules(&node).is_empty());
    let _web2 = Publisher::start(&src, &node.rtmp_url("web-2"), node.cwd.path());
    assert_eq!(live_status(&node, "web-2")["recording"], false);
}

#[test]
fn bad_rules_and_bodies_get_json_errors_and_the_rules_api_needs_the_admin_token() {
    let node = Node::start_with(&[("RECNODE_AUTH__ADMIN_TOKEN", TOKEN)]);
    let call = |method: &str, path: &str, body: Option<&str>| {
        node.api_with_token(method, path, body, Some(TOKEN))
    };
    let long = format!(r#"{{"pattern":"{}"}}"#, "x".repeat(129));
    let cases: [(&str, &str, Option<&str>, u16, &str); 11] = [
        (
            "PUT",
            "/api/rules/web",
            Some(r#"{"pattern":"a/b"}"#),
            400,
            "invalid_rule",
        ),
        (
            "PUT",
            "/api/rules/web",
            Some(r#"{"pattern":""}"#),
            400,
            "invalid_rule",
        ),
        (
            "PUT",
            "/api/rules/web",
            Some(r#"{"pattern":"web *"}"#),
            400,
            "invalid_rule",
        ),
        ("PUT", "/api/rules/web", Some(&long), 400, "invalid_rule"),
        (
            "PUT",
            "/api/rules/bad$id",
            Some(r#"{"pattern":"*"}"#),
            400,
            "invalid_rule",
        ),
        (
            "PUT",
            "/api/rules/web",
            Some("{not json"),
            400,
            "invalid_body",
        ),
        (
            "PUT",
            "/api/rules/web",
            Some(r#"{"pattern":1}"#),
            400,
            "invalid_body",
        ),
        (
            "PUT",
            "/api/rules/web",
            Some(r#"{"pattern":"*","x":1}"#),
            400,
            "invalid_body",
        ),
        ("PUT", "/api/rules/web", None, 400, "invalid_body"),
        ("DELETE", "/api/rules/ghost", None, 404, "rule_not_found"),
        ("DELETE", "/api/rules/bad$id", None, 400, "invalid_rule"),
    ];
    for (method, path, body, status, code) in cases {
        let r = call(method, path, body);
        assert_eq!(
            (r.status, r.error_code().as_deref()),
            (status, Some(code)),
            "{method} {path} {body:?}: {r:?}"
        );
    }
    for (method, path, body) in [
        ("GET", "/api/rules", None),
        ("PUT", "/api/rules/web", Some(r#"{"pattern":"*"}"#)),
        ("DELETE", "/api/rules/web", None),
    ] {
        let r = node.api(method, path, body);
        assert_eq!(
            (r.status, r.error_code().as_deref()),
            (401, Some("unauthorized")),
            "{method} {path} without the token: {r:?}"
        );
    }
    let listed = call("GET", "/api/rules", None);
    assert_eq!(listed.status, 200, "{listed:?}");
    assert_eq!(
        listed.json()["rules"],
        serde_json::json!([]),
        "nothing stored"
    );
}

#[test]
fn rules_are_persisted_and_record_again_after_a_restart() {
    let node = Node::start();
    assert_eq!(put_rule(&node, "cams", "cam*").status, 201);
    assert_eq!(put_rule(&node, "gone", "gone-*").status, 201);
    assert_eq!(node.api("DELETE", "/api/rules/gone", None).status, 204);

    let node = node.kill_9_and_restart();
    assert_eq!(rules(&node), [("cams".to_string(), "cam*".to_string())]);
    let src = av_source(node.cwd.path(), "src.flv", 4);
    let _cam = Publisher::start(&src, &node.rtmp_url("cam-1"), node.cwd.path());
    let _gone = Publisher::start(&src, &node.rtmp_url("gone-1"), node.cwd.path());
    assert_eq!(live_status(&node, "cam-1")["recording"], true);
    assert_eq!(live_status(&node, "gone-1")["recording"], false);
}
