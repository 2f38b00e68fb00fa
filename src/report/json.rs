//! JSON: the report model itself.

use std::io::{self, Write};

use super::Report;

pub fn render(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    // The serialiser makes many small writes (a key, a quote, two spaces
    // of indentation per level): into a buffer of a known type they are
    // inlined copies, where through `dyn Write` each was a call.
    let mut out = io::BufWriter::with_capacity(1 << 16, out);
    serde_json::to_writer_pretty(&mut out, report)?;
    out.write_all(b"\n")?;
    out.flush()
}
