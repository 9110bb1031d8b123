//! deploy/Dockerfile, its build context and the shared build script.

use deploy_policy::dockerfile::{Stage, exec_form, image_ref, is_sha256_digest, parse};
use deploy_policy::policy::PORT;

use crate::deploy_text;

fn stages() -> Vec<Stage> {
    parse(&deploy_text("Dockerfile")).unwrap_or_else(|e| panic!("deploy/Dockerfile: {e}"))
}

fn runtime() -> Stage {
    stages().pop().expect("at least one stage")
}

fn repo_text(relative: &str) -> String {
    deploy_policy::read(&deploy_policy::repo_root().join(relative))
        .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_base_image_is_pinned_by_tag_and_digest() {
    let stages = stages();
    assert!(
        stages.len() >= 2,
        "a multi-stage build: builder and runtime"
    );
    for s in &stages {
        let r = image_ref(&s.image);
        assert!(
            r.tag.as_deref().is_some_and(|t| t != "latest"),
            "FROM {}: pin a version tag",
            s.image
        );
        assert!(
            r.digest.as_deref().is_some_and(is_sha256_digest),
            "FROM {}: pin the sha256 digest",
            s.image
        );
    }
}

#[test]
fn the_builder_runs_the_shared_build_script_with_the_pinned_toolchain() {
    let toolchain: toml::Value =
        toml::from_str(&repo_text("rust-toolchain.toml")).expect("rust-toolchain.toml");
    let channel = toolchain["toolchain"]["channel"]
        .as_str()
        .expect("toolchain.channel");
    let stages = stages();
    let builder = stages
        .iter()
        .find(|s| {
            s.all("RUN")
                .any(|r| r.args.contains("scripts/build-service.sh"))
        })
        .expect("a stage RUNs scripts/build-service.sh (the build step CI runs too)");
    let r = image_ref(&builder.image);
    assert_eq!(r.name, "rust", "the builder is the official Rust image");
    assert!(
        r.tag
            .as_deref()
            .is_some_and(|t| t == channel || t.starts_with(&format!("{channel}-"))),
        "builder {} must match rust-toolchain.toml's channel {channel}",
        builder.image
    );
    let script = repo_text("scripts/build-service.sh");
    assert!(
        script.contains("cargo build --release --locked -p agent-service"),
        "scripts/build-service.sh must be the locked release build of agent-service"
    );
}

#[test]
fn the_runtime_image_is_small_non_root_and_health_checked() {
    let s = runtime();
    let r = image_ref(&s.image);
    assert!(
        r.name.starts_with("gcr.io/distroless/"),
        "runtime {} should be distroless (no shell, no package manager)",
        s.image
    );
    assert_eq!(
        s.all("RUN").count(),
        0,
        "the runtime stage has no shell to RUN anything"
    );

    let user = s.last("USER").expect("USER").args.clone();
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("USER {user} must be numeric"));
    assert!(uid > 0, "USER {user} must not be root");

    let expose = s.last("EXPOSE").expect("EXPOSE").args.clone();
    assert_eq!(expose, PORT.to_string(), "EXPOSE");
    assert_eq!(s.last("STOPSIGNAL").expect("STOPSIGNAL").args, "SIGTERM");
    let env: String = s
        .all("ENV")
        .map(|i| i.args.clone())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        env.contains(&format!("BIND_ADDR=0.0.0.0:{PORT}")),
        "ENV BIND_ADDR must listen on every interface: {env}"
    );

    let entrypoint = exec_form(&s.last("ENTRYPOINT").expect("ENTRYPOINT").args)
        .expect("ENTRYPOINT in exec form");
    assert_eq!(entrypoint, ["/usr/local/bin/agent-service"]);
    assert_eq!(
        exec_form(&s.last("CMD").expect("CMD").args),
        Some(vec!["serve".to_string()])
    );

    let healthcheck = s.last("HEALTHCHECK").expect("HEALTHCHECK").args.clone();
    let cmd = healthcheck
        .split_once("CMD ")
        .expect("HEALTHCHECK … CMD [...]")
        .1;
    let argv = exec_form(cmd).expect("HEALTHCHECK CMD in exec form (there is no shell)");
    let copied: Vec<String> = s
        .all("COPY")
        .filter_map(|c| c.args.split_whitespace().last().map(String::from))
        .collect();
    assert!(
        copied.contains(&argv[0]),
        "HEALTHCHECK runs {} which no COPY puts into the image ({copied:?})",
        argv[0]
    );
    assert_eq!(
        argv.last().map(String::as_str),
        Some(format!("http://127.0.0.1:{PORT}/healthz").as_str())
    );

    let labels: String = s
        .all("LABEL")
        .map(|i| i.args.clone())
        .collect::<Vec<_>>()
        .join(" ");
    for key in ["title", "description", "licenses", "version", "revision"] {
        assert!(
            labels.contains(&format!("org.opencontainers.image.{key}=")),
            "LABEL org.opencontainers.image.{key}"
        );
    }
}

/// The compose healthcheck and the image's HEALTHCHECK run the same command.
pub fn healthcheck_argv() -> Vec<String> {
    let s = runtime();
    let healthcheck = s.last("HEALTHCHECK").expect("HEALTHCHECK").args.clone();
    exec_form(healthcheck.split_once("CMD ").expect("CMD").1).expect("exec form")
}

/// The USER of the runtime image.
pub fn runtime_user() -> String {
    runtime().last("USER").expect("USER").args.clone()
}

#[test]
fn the_build_context_keeps_out_what_the_build_does_not_need() {
    let ignore = deploy_text("Dockerfile.dockerignore");
    let patterns: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for must in [".git", "**/target", "**/node_modules", ".local"] {
        assert!(
            patterns.contains(&must),
            "Dockerfile.dockerignore must exclude {must}"
        );
    }
    let manifest: toml::Value = toml::from_str(&repo_text("Cargo.toml")).expect("Cargo.toml");
    let mut needed: Vec<String> = manifest["workspace"]["members"]
        .as_array()
        .expect("workspace.members")
        .iter()
        .filter_map(|m| m.as_str().map(String::from))
        .collect();
    needed.extend(
        [
            "Cargo.toml",
            "Cargo.lock",
            "rust-toolchain.toml",
            "scripts/build-service.sh",
            "migrations",
        ]
        .map(String::from),
    );
    for path in &needed {
        for pattern in &patterns {
            let anywhere = pattern.strip_prefix("**/");
            let excluded = match anywhere {
                Some(name) => path.split('/').any(|part| part == name),
                None => {
                    path == pattern || path.starts_with(&format!("{pattern}/")) || *pattern == "*"
                }
            };
            assert!(
                !excluded,
                "Dockerfile.dockerignore pattern {pattern:?} keeps {path} (needed by the build) out of the context"
            );
        }
    }
}
