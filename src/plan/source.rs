//! Where a planned resource is declared: the `resource` block in the .tf
//! files of its module (followed through the plan's module calls with a
//! local `source`), and the line of the attribute the change sets. The
//! files are parsed with `hcl-edit`, which keeps the spans Terraform's
//! JSON plan does not carry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hcl_edit::Span;

use super::apply::Planned;
use super::format::PlanJson;
use crate::error::{Error, Location};
use crate::finding::RepoLocation;

/// One parsed `.tf` file: its path relative to the repository root, its
/// text (for line numbers) and its `resource` blocks.
struct TfFile {
    rel: String,
    text: String,
    /// `(type, name)` → the block's byte offset and its attributes' (key,
    /// offset), in source order (nested blocks by their name too).
    blocks: BTreeMap<(String, String), Block>,
}

/// A block's byte offset and its attributes' (key, byte offset).
type Block = (usize, Vec<(String, usize)>);

/// The .tf sources of a plan's modules.
pub struct Sources {
    root: PathBuf,
    repo_root: PathBuf,
    /// Parsed directories, by path.
    dirs: BTreeMap<PathBuf, Vec<TfFile>>,
}

impl Sources {
    /// Reads the root module's directory. `repo_root` is what SARIF paths
    /// are relative to (GitHub resolves them from the repository root).
    pub fn new(tf_dir: &Path, repo_root: &Path) -> Result<Sources, Error> {
        let root = tf_dir.canonicalize().map_err(|error| Error::Io {
            path: tf_dir.to_path_buf(),
            error,
        })?;
        let repo_root = repo_root.canonicalize().map_err(|error| Error::Io {
            path: repo_root.to_path_buf(),
            error,
        })?;
        if !root.starts_with(&repo_root) {
            return Err(Error::Usage(format!(
                "--tf-dir {} is not inside the repository root {} (--repo-root): SARIF paths must be relative to it",
                tf_dir.display(),
                repo_root.display()
            )));
        }
        let mut s = Sources {
            root: root.clone(),
            repo_root,
            dirs: BTreeMap::new(),
        };
        s.load_dir(&root)?;
        Ok(s)
    }

    fn load_dir(&mut self, dir: &Path) -> Result<(), Error> {
        if self.dirs.contains_key(dir) {
            return Ok(());
        }
        let mut files = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(|error| Error::Io {
            path: dir.to_path_buf(),
            error,
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "tf"))
            .collect();
        paths.sort();
        for path in paths {
            let text = crate::error::read_to_string(&path)?;
            let body = hcl_edit::parser::parse_body(&text).map_err(|e| Error::Input {
                location: Location::new(&path, e.location().line(), e.location().column()),
                message: format!("not valid HCL: {}", e.message()),
            })?;
            let mut blocks = BTreeMap::new();
            for b in body.get_blocks("resource") {
                let labels: Vec<String> = b.labels.iter().map(|l| l.as_str().to_string()).collect();
                let [t, n] = labels.as_slice() else { continue };
                let start = b.span().map_or(0, |s| s.start);
                let mut attrs = Vec::new();
                for st in b.body.iter() {
                    match st {
                        hcl_edit::structure::Structure::Attribute(a) => attrs.push((
                            a.key.as_str().to_string(),
                            a.span().map_or(start, |s| s.start),
                        )),
                        hcl_edit::structure::Structure::Block(inner) => attrs.push((
                            inner.ident.as_str().to_string(),
                            inner.span().map_or(start, |s| s.start),
                        )),
                    }
                }
                blocks.insert((t.clone(), n.clone()), (start, attrs));
            }
            let rel = path
                .strip_prefix(&self.repo_root)
                .unwrap_or(&path)
                .to_string_lossy()
                .replace('\\', "/");
            files.push(TfFile { rel, text, blocks });
        }
        self.dirs.insert(dir.to_path_buf(), files);
        Ok(())
    }

    /// The directory of a module path, when every call on the way has a
    /// local source (`./…` or `../…`); registry and git modules are not in
    /// the repository.
    fn module_dir(&self, plan: &PlanJson, path: &[String]) -> Option<PathBuf> {
        let sources = plan.module_sources(path)?;
        let mut dir = self.root.clone();
        for s in sources {
            if !(s.starts_with("./") || s.starts_with("../")) {
                return None;
            }
            dir = dir.join(s);
        }
        dir.canonicalize().ok()
    }

    /// Where a planned change is declared: its block, or the line of the
    /// first attribute it changes when it updates an existing resource.
    pub fn locate(&mut self, plan: &PlanJson, p: &Planned) -> Option<RepoLocation> {
        let dir = self.module_dir(plan, &p.module_path)?;
        if !dir.starts_with(&self.repo_root) {
            return None;
        }
        self.load_dir(&dir).ok()?;
        let (t, n) = p.local_address.split_once('.')?;
        let key = (t.to_string(), n.to_string());
        for f in self.dirs.get(&dir)? {
            let Some((start, attrs)) = f.blocks.get(&key) else {
                continue;
            };
            let offset = match p.action {
                super::format::Action::Update | super::format::Action::Replace => attrs
                    .iter()
                    .find(|(k, _)| p.changed.contains(k))
                    .map_or(*start, |(_, o)| *o),
                // An instance of a block that stays: the `count` or
                // `for_each` that dropped it.
                super::format::Action::Delete => attrs
                    .iter()
                    .find(|(k, _)| k == "count" || k == "for_each")
                    .map_or(*start, |(_, o)| *o),
                _ => *start,
            };
            let line = f.text[..offset.min(f.text.len())].matches('\n').count() + 1;
            return Some(RepoLocation {
                path: f.rel.clone(),
                line,
            });
        }
        None
    }
}
