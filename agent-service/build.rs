//! Embeds the git sha of the build so `/v1/info` and `agent_build_info` can name it.
use std::process::Command;

fn main() {
    let sha = std::env::var("GIT_SHA")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        });
    println!(
        "cargo:rustc-env=AGENT_GIT_SHA={}",
        sha.unwrap_or_else(|| "unknown".into())
    );
    println!("cargo:rerun-if-env-changed=GIT_SHA");
    // Re-run when the checkout's HEAD moves to another branch. Git names the file: in a
    // `git worktree` `.git` is a file, and a path that does not exist would make cargo
    // re-run this script, and rebuild the crate, on every build. Without git (a container
    // build passes GIT_SHA) nothing else needs watching.
    let head = Command::new("git")
        .args(["rev-parse", "--path-format=absolute", "--git-path", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|p| std::path::Path::new(p).is_file());
    println!(
        "cargo:rerun-if-changed={}",
        head.as_deref().unwrap_or("build.rs")
    );
}
