//! The release's supply chain: every GitHub Actions step of the release
//! workflow and the recipes is pinned to a full commit SHA (a tag, `main`
//! or `latest` can be moved to other code: a 2026 compromise of a popular
//! scanner rewrote release tags), with the tag it was as a comment; the
//! release Dockerfile is the one at the repository root, and the recipes
//! point at it. Lints with actionlint and hadolint run in .ci/run
//! (scripts/lint-release).

mod support;

use support::root;

/// Workflow files: the release workflow and the recipes' workflows.
fn workflows() -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for dir in [".github/workflows", "docs/recipes"] {
        for e in std::fs::read_dir(root().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yml" || x == "yaml")
                && std::fs::read_to_string(&p).unwrap().contains("runs-on:")
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// `uses: owner/repo[/path]@REF # tag`: REF must be 40 hex digits.
fn unpinned(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.trim().trim_start_matches("- ").strip_prefix("uses:") else {
            continue;
        };
        let spec = rest.split('#').next().unwrap_or_default().trim();
        if spec.starts_with("./") || spec.starts_with("docker://") && spec.contains("@sha256:") {
            continue;
        }
        let reference = spec.rsplit_once('@').map(|(_, r)| r).unwrap_or_default();
        let pinned = reference.len() == 40 && reference.bytes().all(|b| b.is_ascii_hexdigit());
        let commented = rest.contains("# v");
        if !pinned || !commented {
            out.push(line.trim().to_string());
        }
    }
    out
}

#[test]
fn every_action_is_pinned_by_commit_sha() {
    let files = workflows();
    assert!(
        files
            .iter()
            .any(|f| f.ends_with(".github/workflows/release.yml")),
        "{files:?}"
    );
    let mut bad = Vec::new();
    for f in &files {
        for l in unpinned(&std::fs::read_to_string(f).unwrap()) {
            bad.push(format!("{}: {l}", f.display()));
        }
    }
    assert!(
        bad.is_empty(),
        "actions not pinned by SHA:\n{}",
        bad.join("\n")
    );
}

/// The check itself: a tag, a branch and a short SHA are refused.
#[test]
fn the_pin_check_refuses_tags_and_branches() {
    let text = "      - uses: actions/checkout@v4\n      - uses: a/b@main\n      - uses: a/b@3d3c42e # v1\n      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1\n      - uses: ./local\n";
    assert_eq!(unpinned(text).len(), 3, "{:?}", unpinned(text));
}

/// One release Dockerfile, at the root; the recipes build from it, and it
/// runs as a numeric non-root user.
#[test]
fn the_release_dockerfile_is_the_one_the_recipes_use() {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("USER 65532:65532"), "{dockerfile}");
    assert!(!root().join("docs/recipes/Dockerfile").exists());
    let readme = std::fs::read_to_string(root().join("docs/recipes/README.md")).unwrap();
    assert!(readme.contains("`Dockerfile` (at the repository root)"));
    let release = std::fs::read_to_string(root().join(".github/workflows/release.yml")).unwrap();
    assert!(release.contains("file: Dockerfile"));
}

/// Every container image a recipe or workflow runs is named by digest
/// (`name[:tag]@sha256:…`): `latest`, `main` or a version tag alone can be
/// moved to another image.
#[test]
fn every_image_is_pinned_by_digest() {
    let mut checked = 0;
    let mut bad = Vec::new();
    for dir in [".github/workflows", "docs/recipes"] {
        for e in std::fs::read_dir(root().join(dir)).unwrap() {
            let p = e.unwrap().path();
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            for image in images(&text) {
                checked += 1;
                if !by_digest(&image) {
                    bad.push(format!("{}: {image}", p.display()));
                }
            }
        }
    }
    assert!(checked >= 5, "the recipes name their images ({checked})");
    assert!(
        bad.is_empty(),
        "images not pinned by digest:\n{}",
        bad.join("\n")
    );
    // The check itself.
    assert!(!by_digest("ghcr.io/dbaudit/dbaudit:latest"));
    assert!(!by_digest("ghcr.io/dbaudit/dbaudit:0.1.0"));
    assert!(!by_digest("ghcr.io/dbaudit/dbaudit@sha256:abc"));
    assert!(by_digest(&format!(
        "ghcr.io/dbaudit/dbaudit:0.1.0@sha256:{}",
        "a".repeat(64)
    )));
}

/// The values of `image:` (YAML) and `"image": "…"` (JSON) lines.
fn images(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim().trim_start_matches("- ");
            l.strip_prefix("image:")
                .or_else(|| l.strip_prefix("\"image\":"))
                .map(|v| v.trim().trim_end_matches(',').trim_matches('"').to_string())
        })
        .filter(|v| !v.is_empty())
        .collect()
}

fn by_digest(image: &str) -> bool {
    image
        .rsplit_once("@sha256:")
        .is_some_and(|(_, d)| d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The crate's include list holds every file the sources embed
/// (`include_str!`), so the packaged crate builds (.ci/run builds it from
/// its packaged form with `cargo package`).
#[test]
fn the_packaged_crate_holds_what_the_sources_embed() {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let doc: toml::Table = manifest.parse().unwrap();
    let include: Vec<&str> = doc["package"]["include"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let covered = |path: &str| {
        include.iter().any(|i| {
            let i = i.trim_start_matches('/');
            path == i || (i.ends_with('/') && path.starts_with(i))
        })
    };
    let mut embedded = 0;
    let mut stack = vec![root().join("src")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            for part in text.split("include_str!(\"").skip(1) {
                let rel = part.split('"').next().unwrap();
                let file = p.parent().unwrap().join(rel);
                let file = file
                    .canonicalize()
                    .unwrap_or_else(|_| panic!("{} embeds {rel}, which is missing", p.display()));
                let path = file
                    .strip_prefix(root().canonicalize().unwrap())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                assert!(
                    covered(&path),
                    "{} embeds {path}, which Cargo.toml's include leaves out",
                    p.display()
                );
                embedded += 1;
            }
        }
    }
    assert!(embedded >= 10, "{embedded}");
    for needed in ["LICENSE", "README.md", "build.rs"] {
        assert!(covered(needed), "{needed}");
    }
}

/// The release's archive as README.md tells users to check it: the SBOM
/// the release workflow makes (cargo-cyclonedx, the same flags) validates
/// against CycloneDX 1.5's schema and lists the dependencies;
/// scripts/package-release (the workflow's packaging step) archives the
/// tested binary; README's `sha256sum -c` line accepts the archive and
/// refuses a tampered one; the unpacked binary runs. Needs the tools of
/// scripts/setup-sbom (scripts/test exports DBAUDIT_SBOM_TOOLS); without
/// them it is skipped loudly, and with CI=true it fails.
#[test]
fn the_release_archive_verifies_as_the_readme_says() {
    use std::process::Command;
    let Ok(tools) = std::env::var("DBAUDIT_SBOM_TOOLS") else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true and no SBOM tools: scripts/test installs them (scripts/setup-sbom)");
        }
        #[allow(clippy::print_stderr)]
        {
            eprintln!(
                "\n*** SKIPPED the_release_archive_verifies_as_the_readme_says: DBAUDIT_SBOM_TOOLS is not set (run the tests with scripts/test) ***\n"
            );
        }
        return;
    };
    let tools = std::path::PathBuf::from(tools);
    let dir = support::tempdir("release-archive");
    let target = "x86_64-unknown-linux-gnu";
    let release = std::fs::read_to_string(root().join(".github/workflows/release.yml")).unwrap();
    let flags = "cyclonedx --format json --spec-version 1.5 --target";
    assert!(
        release.contains(&format!("cargo {flags}")),
        "the workflow's SBOM step changed: update this test"
    );
    assert!(release.contains("run: scripts/package-release "));

    // The SBOM, with the workflow's flags (written beside Cargo.toml, then
    // moved out).
    let name = format!("sbom-test-{}", std::process::id());
    let mut cmd = Command::new(tools.join("bin/cargo-cyclonedx"));
    cmd.args(flags.split(' '))
        .args([target, "--override-filename", &name, "--manifest-path"])
        .arg(root().join("Cargo.toml"));
    let o = cmd.output().unwrap();
    let written = root().join(format!("{name}.json"));
    assert!(
        o.status.success() && written.exists(),
        "{}",
        support::text(&o.stderr)
    );
    let sbom = dir.join("dbaudit.cdx.json");
    std::fs::rename(&written, &sbom).unwrap();
    let doc: serde_json::Value = support::read_json(&sbom);
    assert_eq!(doc["specVersion"], "1.5");
    assert_eq!(doc["metadata"]["component"]["name"], "dbaudit");
    assert_eq!(
        doc["metadata"]["component"]["version"],
        env!("CARGO_PKG_VERSION")
    );
    let names: Vec<&str> = doc["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for dep in ["aws-sdk-rds", "tokio-postgres", "rustls", "serde"] {
        assert!(names.contains(&dep), "the SBOM lacks {dep}");
    }
    let validate = |path: &std::path::Path| -> (bool, String) {
        let o = Command::new(tools.join("venv/bin/python"))
            .arg("-c")
            .arg(
                "import json,sys\n\
                 from cyclonedx.validation.json import JsonStrictValidator\n\
                 from cyclonedx.schema import SchemaVersion\n\
                 text=open(sys.argv[1]).read()\n\
                 e=JsonStrictValidator(SchemaVersion.from_version(json.loads(text)['specVersion'])).validate_str(text)\n\
                 print(e or 'valid'); sys.exit(1 if e else 0)",
            )
            .arg(path)
            .output()
            .unwrap();
        (
            o.status.success(),
            support::text(&o.stdout) + &support::text(&o.stderr),
        )
    };
    let (ok, why) = validate(&sbom);
    assert!(ok, "the SBOM is not valid CycloneDX 1.5: {why}");
    // The validator is not vacuous: a component without its type is refused.
    let mut broken = doc.clone();
    broken["components"][0]["type"] = serde_json::json!("not-a-type");
    let broken_path = dir.join("broken.cdx.json");
    std::fs::write(&broken_path, broken.to_string()).unwrap();
    assert!(
        !validate(&broken_path).0,
        "the validator accepted a broken SBOM"
    );

    // The archive, as the workflow packages it.
    let version = format!("v{}-test", env!("CARGO_PKG_VERSION"));
    let dist = dir.join("dist");
    let o = Command::new(root().join("scripts/package-release"))
        .args([&version, target, env!("CARGO_BIN_EXE_dbaudit")])
        .arg(&sbom)
        .arg(&dist)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", support::text(&o.stderr));
    // README's verify line, run as written with VERSION filled in.
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let verify = readme
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("sha256sum -c dbaudit-VERSION-"))
        .expect("README shows how to check the sums")
        .replace("VERSION", &version);
    let check = |in_dir: &std::path::Path| {
        Command::new("sh")
            .args(["-c", &verify])
            .current_dir(in_dir)
            .output()
            .unwrap()
    };
    let o = check(&dist);
    assert!(
        o.status.success(),
        "{verify}: {}{}",
        support::text(&o.stdout),
        support::text(&o.stderr)
    );
    let archive = dist.join(format!("dbaudit-{version}-{target}.tar.gz"));
    let o = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", support::text(&o.stderr));
    let unpacked = dir.join(format!("dbaudit-{version}-{target}"));
    for f in ["README.md", "LICENSE"] {
        assert!(unpacked.join(f).exists(), "{f}");
    }
    let o = Command::new(unpacked.join("dbaudit"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(support::text(&o.stdout).contains(env!("CARGO_PKG_VERSION")));
    // A changed byte fails the check.
    let mut bytes = std::fs::read(&archive).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&archive, bytes).unwrap();
    assert!(
        !check(&dist).status.success(),
        "sha256sum -c accepted a tampered archive"
    );
}
