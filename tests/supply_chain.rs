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
