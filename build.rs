//! Records the git commit the binary is built from (`dbaudit --version`,
//! every report's `tool.commit`); "unknown" outside a git checkout. And in
//! release builds for x86_64 Linux, lays out the functions a scan runs
//! side by side (`link/scan-symbols.txt`; docs/build.md).

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=DBAUDIT_GIT_COMMIT={commit}");
    println!("cargo:rerun-if-changed=build.rs");
    // Rebuilt when HEAD moves (a commit, a checkout), not on every edit.
    // Only paths that exist are named: cargo reruns a build script on
    // every build while a named path is missing (a checkout without
    // packed-refs is common). HEAD lives in the worktree's git directory,
    // the refs in the common one (they differ in a `git worktree`).
    let mut watch: Vec<PathBuf> = Vec::new();
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        watch.push(PathBuf::from(dir).join("HEAD"));
    }
    if let Some(common) = git(&["rev-parse", "--git-common-dir"]) {
        let common = PathBuf::from(common);
        watch.push(common.join("refs").join("heads"));
        watch.push(common.join("packed-refs"));
    }
    for path in watch.into_iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    link_order();
}

/// The functions `dbaudit scan` runs, recorded from a profiled scan
/// (`scripts/link-order`), are placed together by the linker: a scan then
/// touches about 15 MB fewer pages of the binary's code (`scan --json` at
/// 500 clusters: 63 MB → 48 MB peak RSS; docs/performance.md). Only for
/// release builds of x86_64 Linux, and only when the linker this build
/// uses takes the option: rust-lld (the default of rustup's toolchains
/// since 1.90) does, GNU ld (which a distribution's rustc may use) does
/// not, so a tiny program is linked with it first. Off with
/// `DBAUDIT_LINK_ORDER=0`, or when `CARGO_TARGET_…_LINKER` names another
/// linker. Names the build does not have (the code changed since the
/// file was recorded) are skipped: the file goes stale gently, never
/// breaks a build.
fn link_order() {
    println!("cargo:rerun-if-env-changed=DBAUDIT_LINK_ORDER");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER");
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let order = PathBuf::from(env("CARGO_MANIFEST_DIR")).join("link/scan-symbols.txt");
    if !order.exists()
        || env("PROFILE") != "release"
        || env("TARGET") != "x86_64-unknown-linux-gnu"
        || env("DBAUDIT_LINK_ORDER") == "0"
        || !env("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_empty()
    {
        return;
    }
    println!("cargo:rerun-if-changed={}", order.display());
    let args = [
        format!("link-arg=-Wl,--symbol-ordering-file={}", order.display()),
        "link-arg=-Wl,--no-warn-symbol-ordering".to_string(),
    ];
    if links_with(&args) {
        for a in &args {
            println!("cargo:rustc-link-arg-bins={}", &a["link-arg=".len()..]);
        }
    }
}

/// Whether an empty program links for the target with these `-C` options
/// and the build's own `RUSTFLAGS` (which may choose the linker).
fn links_with(options: &[String]) -> bool {
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let out = PathBuf::from(env("OUT_DIR"));
    let source = out.join("link-probe.rs");
    if std::fs::write(&source, "fn main() {}\n").is_err() {
        return false;
    }
    let mut rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()));
    rustc
        .arg("--target")
        .arg(env("TARGET"))
        .arg("-o")
        .arg(out.join("link-probe"))
        .arg(&source);
    for flag in env("CARGO_ENCODED_RUSTFLAGS")
        .split('\x1f')
        .filter(|f| !f.is_empty())
    {
        rustc.arg(flag);
    }
    for o in options {
        rustc.arg("-C").arg(o);
    }
    rustc
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
