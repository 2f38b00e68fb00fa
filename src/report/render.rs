//! The renderer contract: every output format is one [`Renderer`] over the
//! complete [`Report`], beside a [`RenderContext`] for what is not part of
//! the report itself.
//!
//! The report carries everything the built-in formats show (rule docs,
//! resolved repository locations, baseline state, typed statuses), so a
//! renderer never needs the rule set or the config. What the next formats
//! need goes into the context, not into each renderer's signature: the
//! audited snapshot (an HTML report draws the estate's topology from it),
//! and later the findings history. Renderers write to a `dyn Write` and can
//! report limits they applied as warnings.

use std::cell::RefCell;
use std::io::{self, Write};

use serde::Serialize;

use super::Report;
use crate::snapshot::Snapshot;

/// Output formats (`--format`, `--report FORMAT[=PATH]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Sarif,
    Junit,
    Markdown,
    /// One self-contained HTML page (no external references).
    Html,
    /// AWS Security Finding Format (Security Hub CSPM), a JSON array.
    Asff,
    /// OCSF 1.5.0 Compliance Findings (class 2003), one per line.
    Ocsf,
    /// OCSF 1.5.0 Detection Findings (class 2004), one per line.
    OcsfDetection,
}

crate::names::names!(Format {
    Table => "table",
    Json => "json",
    Sarif => "sarif",
    Junit => "junit",
    Markdown => "markdown",
    Html => "html",
    Asff => "asff",
    Ocsf => "ocsf",
    OcsfDetection => "ocsf-detection",
});

/// What a renderer may use besides the report.
#[derive(Default)]
pub struct RenderContext<'a> {
    /// The audited snapshot, when the report comes from one in this run
    /// (not when a saved report is rendered again).
    pub snapshot: Option<&'a Snapshot>,
    /// The findings history, when the run records into one (`--history`).
    pub history: Option<HistoryView>,
    /// Limits a renderer applied, for stderr (e.g. SARIF's upload limits).
    pub warnings: RefCell<Vec<String>>,
}

/// What the findings history adds to a report: trends and ages, read from
/// the store after this run was recorded (it is the newest point).
#[derive(Debug, Clone, Default, Serialize)]
pub struct HistoryView {
    /// The store, for the reader (a path, or a URL without its password).
    pub store: String,
    /// Open failing findings per environment and severity over the last runs.
    pub trend: Vec<TrendPoint>,
    /// Open findings by age at this run.
    pub ages: Vec<AgeBucket>,
    /// Fingerprint → when its open period began (`at` of the run that
    /// opened it) and its age in days.
    pub open_since: std::collections::HashMap<String, (String, f64)>,
}

/// Open failing findings at one run, per environment and severity.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TrendPoint {
    pub seq: i64,
    pub at: String,
    pub environment: String,
    pub severity: String,
    pub open: usize,
}

/// Open findings of an age range.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AgeBucket {
    pub label: &'static str,
    pub open: usize,
}

impl<'a> RenderContext<'a> {
    pub fn new(snapshot: Option<&'a Snapshot>) -> Self {
        RenderContext {
            snapshot,
            history: None,
            warnings: RefCell::new(Vec::new()),
        }
    }

    pub fn warn(&self, message: String) {
        self.warnings.borrow_mut().push(message);
    }
}

pub trait Renderer {
    fn render(&self, report: &Report, ctx: &RenderContext, out: &mut dyn Write) -> io::Result<()>;
}

pub struct Json;
pub struct Sarif;
pub struct Junit;
pub struct Markdown;
/// The terminal table, in a style fitted to where it goes.
pub struct Table(pub super::table::Style);

impl Renderer for Json {
    fn render(&self, report: &Report, _: &RenderContext, out: &mut dyn Write) -> io::Result<()> {
        super::json::render(report, out)
    }
}

impl Renderer for Sarif {
    fn render(&self, report: &Report, ctx: &RenderContext, out: &mut dyn Write) -> io::Result<()> {
        for w in super::sarif::render(report, out)? {
            ctx.warn(w);
        }
        Ok(())
    }
}

impl Renderer for Junit {
    fn render(&self, report: &Report, _: &RenderContext, out: &mut dyn Write) -> io::Result<()> {
        super::junit::render(report, out)
    }
}

impl Renderer for Markdown {
    fn render(&self, report: &Report, _: &RenderContext, out: &mut dyn Write) -> io::Result<()> {
        super::markdown::render(report, out)
    }
}

pub struct Html;
pub struct Asff;
pub struct Ocsf(pub super::ocsf::Class);

impl Renderer for Ocsf {
    fn render(&self, report: &Report, _: &RenderContext, out: &mut dyn Write) -> io::Result<()> {
        super::ocsf::render(report, self.0, out)
    }
}

impl Renderer for Asff {
    fn render(&self, report: &Report, ctx: &RenderContext, out: &mut dyn Write) -> io::Result<()> {
        for w in super::asff::render(report, out)? {
            ctx.warn(w);
        }
        Ok(())
    }
}

impl Renderer for Html {
    fn render(&self, report: &Report, ctx: &RenderContext, out: &mut dyn Write) -> io::Result<()> {
        super::html::render(report, ctx, out)
    }
}

impl Renderer for Table {
    fn render(&self, report: &Report, _: &RenderContext, out: &mut dyn Write) -> io::Result<()> {
        super::table::render(report, out, self.0)
    }
}

/// The renderer of a format; `table` is the table's style (the other
/// formats have none).
pub fn renderer(format: Format, table: super::table::Style) -> Box<dyn Renderer> {
    match format {
        Format::Table => Box::new(Table(table)),
        Format::Json => Box::new(Json),
        Format::Sarif => Box::new(Sarif),
        Format::Junit => Box::new(Junit),
        Format::Markdown => Box::new(Markdown),
        Format::Html => Box::new(Html),
        Format::Asff => Box::new(Asff),
        Format::Ocsf => Box::new(Ocsf(super::ocsf::Class::Compliance)),
        Format::OcsfDetection => Box::new(Ocsf(super::ocsf::Class::Detection)),
    }
}
