//! Compliance frameworks as data. Each shipped catalogue
//! (`data/compliance/<framework>.json`) lists a framework's control ids with
//! dbaudit's own one-line titles and how far dbaudit covers each; rules
//! name the controls they check (`compliance = { fsbp = ["RDS.27"], … }`),
//! rule loading checks every id against the catalogue, and which rules
//! cover a control is derived from the rules, never written twice. A leaf:
//! it names nothing else of the crate.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// The catalogues, embedded: the framework's key (as rules and
/// `--framework` name it) and its file.
const SOURCES: [(&str, &str); 6] = [
    ("fsbp", include_str!("../data/compliance/fsbp.json")),
    (
        "cis_aws_v5",
        include_str!("../data/compliance/cis_aws_v5.json"),
    ),
    (
        "nist_800_53_r5",
        include_str!("../data/compliance/nist_800_53_r5.json"),
    ),
    (
        "pci_dss_4",
        include_str!("../data/compliance/pci_dss_4.json"),
    ),
    (
        "iso27001_2022",
        include_str!("../data/compliance/iso27001_2022.json"),
    ),
    ("soc2", include_str!("../data/compliance/soc2.json")),
];

/// One framework's controls.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    /// The key rules and `--framework` use (`fsbp`, `cis_aws_v5`, …).
    pub framework: String,
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub note: String,
    pub controls: Vec<Control>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Control {
    pub id: String,
    /// dbaudit's own one-line title.
    pub title: String,
    pub coverage: Coverage,
}

/// How far dbaudit's rules check a control.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Coverage {
    /// A rule checks all of it.
    Automated,
    /// Rules check part of it; the rest needs a person.
    Partial,
    /// No rule: a person checks it.
    Manual,
    /// Does not apply to Aurora/RDS PostgreSQL estates.
    NotApplicable,
}

crate::names::names!(Coverage {
    Automated => "automated",
    Partial => "partial",
    Manual => "manual",
    NotApplicable => "not_applicable",
});

/// Every shipped catalogue, in a fixed order.
pub fn catalogues() -> &'static [Catalogue] {
    static ALL: OnceLock<Vec<Catalogue>> = OnceLock::new();
    ALL.get_or_init(|| {
        SOURCES
            .iter()
            .map(|(key, text)| {
                let c: Catalogue = serde_json::from_str(text).unwrap_or_else(|e| {
                    // A unit test parses every catalogue: this cannot ship.
                    panic!("data/compliance/{key}.json: {e}")
                });
                assert_eq!(c.framework, *key, "data/compliance/{key}.json: `framework`");
                c
            })
            .collect()
    })
}

/// The catalogue of a framework key.
pub fn catalogue(framework: &str) -> Option<&'static Catalogue> {
    catalogues().iter().find(|c| c.framework == framework)
}

/// The framework keys, in order.
pub fn frameworks() -> Vec<&'static str> {
    SOURCES.iter().map(|(k, _)| *k).collect()
}

impl Catalogue {
    pub fn control(&self, id: &str) -> Option<&Control> {
        self.controls.iter().find(|c| c.id == id)
    }

    /// `name version`, for headings.
    pub fn label(&self) -> String {
        format!("{} {}", self.name, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every catalogue parses, names itself, and lists each control once.
    #[test]
    fn catalogues_parse_and_ids_are_unique() {
        assert_eq!(catalogues().len(), SOURCES.len());
        for c in catalogues() {
            let mut ids: Vec<&str> = c.controls.iter().map(|c| c.id.as_str()).collect();
            let n = ids.len();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), n, "{}: duplicate control ids", c.framework);
            assert!(!c.controls.is_empty());
            assert!(c.controls.iter().all(|c| !c.title.trim().is_empty()));
        }
        assert!(
            catalogue("fsbp")
                .and_then(|c| c.control("RDS.27"))
                .is_some()
        );
        assert!(catalogue("nope").is_none());
    }
}
