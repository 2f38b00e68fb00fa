//! JUnit XML: a test suite per account, a test case per (rule, resource).
//! Failures and errors as such; waived failures as skipped with the reason.
//!
//! Written as a stream of XML events (quick-xml, the writer quick-junit
//! uses, with the same layout), one test case at a time: building
//! quick-junit's report model first held a second copy of every finding —
//! 180 MB and 3 s for the 800,000 findings of 1,000 accounts
//! (docs/performance.md). The suite and total counts come from the report.

use std::io::{self, Write};

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, Event};

use super::{Counts, Outcome, Report};

pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let mut w = Writer::new_with_indent(io::BufWriter::new(out), b' ', 4);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let by_account = report.findings.by_account();
    // The accounts' counts, as the report holds them (every finding is an
    // account's).
    let mut total = Counts::default();
    for a in &report.accounts {
        total.absorb(a.counts);
    }
    let mut suites = BytesStart::new("testsuites");
    suites.extend_attributes([
        ("name", "dbaudit"),
        ("tests", &tests(&total).to_string()),
        ("skipped", &total.waived.to_string()),
        ("failures", &total.fail.to_string()),
        ("errors", &total.error.to_string()),
    ]);
    w.write_event(Event::Start(suites))?;
    let docs = report.rule_docs();
    for account in &report.accounts {
        let findings = by_account.get(account.name.as_str())?;
        let mut c = Counts::default();
        for f in findings.iter() {
            c.add(f.outcome);
        }
        let mut suite = BytesStart::new("testsuite");
        suite.extend_attributes([
            (
                "name",
                &*clean(&format!(
                    "{} ({}, {})",
                    account.name, account.environment, account.account_id
                )),
            ),
            ("tests", &tests(&c).to_string()),
            ("skipped", &c.waived.to_string()),
            ("errors", &c.error.to_string()),
            ("failures", &c.fail.to_string()),
        ]);
        w.write_event(Event::Start(suite))?;
        // The gate's verdict and reason (which baseline, and why), as every
        // other format carries it.
        w.write_event(Event::Start(BytesStart::new("properties")))?;
        let mut gate = BytesStart::new("property");
        gate.extend_attributes([
            ("name", "dbaudit.gate"),
            (
                "value",
                &*clean(&format!(
                    "{} (exit {}): {}",
                    report.gate.status.as_str(),
                    report.gate.exit_code,
                    report.gate.reason
                )),
            ),
        ]);
        w.write_event(Event::Empty(gate))?;
        w.write_event(Event::End(BytesEnd::new("properties")))?;
        // The test cases are most of the file (800,000 at 1,000 accounts):
        // written straight into the stream, in the layout and escaping the
        // writer gives an event (each a whole element at the suite's inner
        // level, after which the writer's indentation state is as before),
        // instead of an event with its own buffers per element.
        let out = w.get_mut();
        let mut name = String::new();
        for f in findings.iter() {
            name.clear();
            name.push_str(&f.rule_id);
            name.push(' ');
            name.push_str(&f.resource_id);
            out.write_all(b"\n        <testcase name=\"")?;
            attr(out, &clean(&name))?;
            out.write_all(b"\" classname=\"")?;
            attr(out, &clean(&f.rule_id))?;
            let status = match f.outcome {
                Outcome::Pass => None,
                Outcome::Fail => Some(("failure", Some(f.severity.as_str()))),
                Outcome::Error => Some(("error", Some("error"))),
                Outcome::Unknown => Some(("error", Some("unknown"))),
                Outcome::Waived => Some(("skipped", None)),
            };
            let Some((tag, ty)) = status else {
                out.write_all(b"\"/>")?;
                continue;
            };
            out.write_all(b"\">")?;
            // The compliance controls the failing rule checks, one property
            // per framework (docs/compliance.md).
            let controls = docs
                .get(&*f.rule_id)
                .map(|d| &d.compliance)
                .filter(|c| !c.is_empty());
            if let Some(controls) = controls {
                out.write_all(b"\n            <properties>")?;
                for (framework, ids) in controls {
                    out.write_all(b"\n                <property name=\"compliance.")?;
                    attr(out, framework)?;
                    out.write_all(b"\" value=\"")?;
                    attr(out, &ids.join(", "))?;
                    out.write_all(b"\"/>")?;
                }
                out.write_all(b"\n            </properties>")?;
            }
            write!(out, "\n            <{tag} message=\"")?;
            match f.outcome {
                Outcome::Waived => {
                    let reason = f.waiver.as_ref().map(|w| w.reason.as_str());
                    attr(
                        out,
                        &clean(&format!("waived: {}", reason.unwrap_or_default())),
                    )?;
                }
                _ => attr(out, &clean(&f.message))?,
            }
            out.write_all(b"\"")?;
            if let Some(ty) = ty {
                out.write_all(b" type=\"")?;
                attr(out, ty)?;
                out.write_all(b"\"")?;
            }
            out.write_all(b"/>\n        </testcase>")?;
        }
        w.write_event(Event::End(BytesEnd::new("testsuite")))?;
    }
    w.write_event(Event::End(BytesEnd::new("testsuites")))?;
    w.write_indent()?;
    let mut out = w.into_inner();
    out.write_all(b"\n")?;
    out.flush()
}

fn tests(c: &Counts) -> usize {
    c.pass + c.fail + c.error + c.waived
}

/// An attribute's value as the XML writer writes it: `<`, `>`, `&`, `'`
/// and `"` escaped (quick-xml's own escaping, which copies only when there
/// is something to escape).
fn attr(out: &mut dyn Write, s: &str) -> io::Result<()> {
    out.write_all(quick_xml::escape::escape(s).as_bytes())
}

/// Text XML 1.0 can hold: control characters other than tab, newline and
/// carriage return are dropped (a message quoting an AWS error could carry
/// one, and a JUnit reader would reject the whole file).
fn clean(s: &str) -> std::borrow::Cow<'_, str> {
    let allowed = |c: &char| !c.is_control() || matches!(c, '\t' | '\n' | '\r');
    // Nearly every string is clean already: borrowed, not copied.
    if s.chars().all(|c| allowed(&c)) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(s.chars().filter(allowed).collect())
}

#[cfg(test)]
mod tests {
    use super::{attr, clean};
    use std::borrow::Cow;

    /// Attributes are written with the escaping the XML writer gives an
    /// event's attributes, so that the file is the same as when each test
    /// case was an event.
    #[test]
    fn attributes_are_escaped_as_the_writer_escapes_them() {
        for s in [
            "",
            "plain",
            "a < b > c & d 'e' \"f\"",
            "&&<<>>''\"\"",
            "waived: ünïcødé ✓ & done",
            "tab\tnewline\nreturn\r",
        ] {
            let mut out = b"<t a=\"".to_vec();
            attr(&mut out, s).unwrap();
            out.extend_from_slice(b"\"/>");
            // The same attribute as an event through the XML writer.
            let mut w = quick_xml::Writer::new(Vec::new());
            let mut e = quick_xml::events::BytesStart::new("t");
            e.push_attribute(("a", s));
            w.write_event(quick_xml::events::Event::Empty(e)).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                String::from_utf8(w.into_inner()).unwrap(),
                "{s}"
            );
        }
    }

    #[test]
    fn clean_drops_what_xml_cannot_hold_and_copies_only_then() {
        assert!(matches!(clean("orders: port 5432\tok\n"), Cow::Borrowed(_)));
        let dirty = clean("bell\u{7} escape\u{1b}[0m end\r\n");
        assert!(matches!(dirty, Cow::Owned(_)));
        assert_eq!(dirty, "bell escape[0m end\r\n");
    }
}
