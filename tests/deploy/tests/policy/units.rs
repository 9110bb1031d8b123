//! The small readers the policy rests on: quantities, Dockerfile instructions, image refs.

use deploy_policy::dockerfile::{exec_form, image_ref, is_sha256_digest, parse};
use deploy_policy::quantity::{cpu_millis, memory_bytes};

#[test]
fn quantities_in_the_units_the_manifests_use() {
    let cpu = [
        ("250m", Some(250)),
        ("1", Some(1000)),
        ("1.5", Some(1500)),
        ("lots", None),
    ];
    for (q, want) in cpu {
        assert_eq!(cpu_millis(q), want, "cpu {q}");
    }
    let memory = [
        ("512Mi", Some(512 << 20)),
        ("1Gi", Some(1 << 30)),
        ("128M", Some(128_000_000)),
        ("1000", Some(1000)),
        ("big", None),
    ];
    for (q, want) in memory {
        assert_eq!(memory_bytes(q), want, "memory {q}");
    }
}

#[test]
fn image_references_split_into_name_tag_and_digest() {
    let cases = [
        ("busybox", "busybox", None, None),
        ("ghcr.io/a/b:1.2", "ghcr.io/a/b", Some("1.2"), None),
        ("localhost:5000/b", "localhost:5000/b", None, None),
        (
            "rust:1.95.0-slim@sha256:ab",
            "rust",
            Some("1.95.0-slim"),
            Some("sha256:ab"),
        ),
    ];
    for (reference, name, tag, digest) in cases {
        let r = image_ref(reference);
        assert_eq!(
            (r.name.as_str(), r.tag.as_deref(), r.digest.as_deref()),
            (name, tag, digest),
            "{reference}"
        );
    }
    assert!(is_sha256_digest(&format!("sha256:{}", "a".repeat(64))));
    assert!(!is_sha256_digest(&format!("sha256:{}", "A".repeat(64))));
    assert!(!is_sha256_digest("sha256:abc"));
}

#[test]
fn dockerfile_instructions_join_continuations_and_group_into_stages() {
    let text = "ARG X=1\nFROM a:1 AS build\n# note\nRUN one \\\n  # inside\n  two\nFROM b:2\nCMD [\"x\", \"y\"]\n";
    let stages = parse(text).expect("parses");
    assert_eq!(stages.len(), 2);
    assert_eq!(stages[0].name.as_deref(), Some("build"));
    assert_eq!(stages[0].instructions[0].args, "one two");
    assert_eq!(stages[0].instructions[0].line, 4);
    assert_eq!(stages[1].image, "b:2");
    assert_eq!(
        exec_form(&stages[1].last("CMD").unwrap().args),
        Some(vec!["x".to_string(), "y".to_string()])
    );
    assert!(
        parse("RUN x\n")
            .unwrap_err()
            .contains("before the first FROM")
    );
    assert!(
        parse("FROM a\nRUN x \\\n")
            .unwrap_err()
            .contains("continuation")
    );
}
