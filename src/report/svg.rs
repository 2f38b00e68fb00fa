//! Plain SVG for the HTML report: bar and line charts and the topology
//! diagram, written as text. No fonts are embedded or fetched (the page's
//! `font-family` applies), no script, no external reference. Every value
//! is written as a label too: colour is never the only signal.

use std::fmt::Write;

/// XML text and attribute escaping.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A label cut to `n` characters (the whole text stays in a `<title>`).
pub fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// The severity's colour class and marker; the name is always written too.
pub fn severity_style(sev: &str) -> (&'static str, &'static str) {
    match sev {
        "critical" => ("s-critical", "▲"),
        "high" => ("s-high", "■"),
        "medium" => ("s-medium", "◆"),
        "low" => ("s-low", "●"),
        _ => ("s-info", "○"),
    }
}

/// A severity as a bar label.
pub fn severity_short(sev: &str) -> &str {
    match sev {
        "critical" => "crit",
        "medium" => "med",
        s => s,
    }
}

/// Dash patterns per series, so lines differ without colour.
const DASHES: [&str; 5] = ["", "8 4", "2 3", "10 3 2 3", "4 4"];

/// One bar: its label, value and colour class.
pub type Bar = (String, usize, String);

/// Grouped vertical bars: (group label, its bars).
pub fn bars(title: &str, groups: &[(String, Vec<Bar>)]) -> String {
    // Wide enough for the longest bar label under it.
    let longest = groups
        .iter()
        .flat_map(|(_, b)| b.iter().map(|x| x.0.chars().count()))
        .max()
        .unwrap_or(0);
    let bar_w = (longest as f64 * 6.5 + 8.0).max(34.0);
    let gap = 26.0;
    let left = 44.0;
    let top = 28.0;
    let plot_h = 150.0;
    let max = groups
        .iter()
        .flat_map(|(_, b)| b.iter().map(|x| x.1))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let n_bars: usize = groups.iter().map(|(_, b)| b.len().max(1)).sum();
    let width = left + n_bars as f64 * bar_w + groups.len() as f64 * gap + 20.0;
    let height = top + plot_h + 58.0;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" role="img" viewBox="0 0 {width:.0} {height:.0}" width="{width:.0}" height="{height:.0}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        esc(title)
    );
    let base = top + plot_h;
    let _ = write!(
        s,
        r#"<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{base}"/><line class="axis" x1="{left}" y1="{base}" x2="{:.0}" y2="{base}"/><text class="tick" x="{:.0}" y="{:.0}" text-anchor="end">{}</text><text class="tick" x="{:.0}" y="{base}" text-anchor="end">0</text>"#,
        width - 10.0,
        left - 4.0,
        top + 4.0,
        max as usize,
        left - 4.0
    );
    let mut x = left + gap / 2.0;
    for (label, bars) in groups {
        let start = x;
        if bars.is_empty() {
            let _ = write!(
                s,
                r#"<text class="tick" x="{:.0}" y="{:.0}" text-anchor="middle">none</text>"#,
                x + bar_w / 2.0,
                base - 6.0
            );
            x += bar_w;
        }
        for (name, value, class) in bars {
            let h = (*value as f64 / max) * plot_h;
            let _ = write!(
                s,
                r#"<g><title>{}: {} {}</title><rect class="{}" x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}"/><text class="value" x="{:.1}" y="{:.1}" text-anchor="middle">{value}</text><text class="tick" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text></g>"#,
                esc(label),
                value,
                esc(name),
                esc(class),
                base - h,
                bar_w - 4.0,
                x + (bar_w - 4.0) / 2.0,
                base - h - 4.0,
                x + (bar_w - 4.0) / 2.0,
                base + 14.0,
                esc(name),
            );
            x += bar_w;
        }
        let _ = write!(
            s,
            r#"<text class="group" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            (start + x - 4.0) / 2.0,
            base + 34.0,
            esc(&cut(label, 18))
        );
        x += gap;
    }
    s.push_str("</svg>");
    s
}

/// Lines over runs: x = runs (labels), series = (name, class, values).
pub fn lines(title: &str, xs: &[String], series: &[(String, String, Vec<usize>)]) -> String {
    let left = 44.0;
    let top = 20.0;
    let plot_w = (xs.len().max(2) as f64 * 48.0).clamp(260.0, 620.0);
    let plot_h = 150.0;
    let legend_w = 130.0;
    let width = left + plot_w + legend_w + 20.0;
    let height = top + plot_h + 48.0;
    let max = series
        .iter()
        .flat_map(|(_, _, v)| v.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let step = if xs.len() > 1 {
        plot_w / (xs.len() - 1) as f64
    } else {
        0.0
    };
    let px = |i: usize| {
        left + if xs.len() > 1 {
            i as f64 * step
        } else {
            plot_w / 2.0
        }
    };
    let py = |v: usize| top + plot_h - (v as f64 / max) * plot_h;
    let base = top + plot_h;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" role="img" viewBox="0 0 {width:.0} {height:.0}" width="{width:.0}" height="{height:.0}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        esc(title)
    );
    let _ = write!(
        s,
        r#"<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{base}"/><line class="axis" x1="{left}" y1="{base}" x2="{:.0}" y2="{base}"/><text class="tick" x="{:.0}" y="{:.0}" text-anchor="end">{}</text><text class="tick" x="{:.0}" y="{base}" text-anchor="end">0</text>"#,
        left + plot_w,
        left - 4.0,
        top + 4.0,
        max as usize,
        left - 4.0
    );
    // First, last (and a middle) run on the axis.
    let mut ticks = vec![0, xs.len().saturating_sub(1)];
    if xs.len() > 4 {
        ticks.push(xs.len() / 2);
    }
    ticks.dedup();
    for i in ticks {
        if let Some(label) = xs.get(i) {
            let _ = write!(
                s,
                r#"<text class="tick" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                px(i),
                base + 16.0,
                esc(label)
            );
        }
    }
    for (k, (name, class, values)) in series.iter().enumerate() {
        let (_, marker) = severity_style(name);
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", px(i), py(*v)))
            .collect();
        let _ = write!(
            s,
            r#"<g class="{}"><title>{}: {}</title><polyline class="line" fill="none" stroke-dasharray="{}" points="{}"/>"#,
            esc(class),
            esc(name),
            values
                .iter()
                .zip(xs)
                .map(|(v, x)| format!("{x}: {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            DASHES[k % DASHES.len()],
            points.join(" ")
        );
        for (i, v) in values.iter().enumerate() {
            let _ = write!(
                s,
                r#"<text class="marker" x="{:.1}" y="{:.1}" text-anchor="middle">{marker}</text>"#,
                px(i),
                py(*v) + 4.0
            );
        }
        let ly = top + 10.0 + k as f64 * 20.0;
        let lx = left + plot_w + 16.0;
        let _ = write!(
            s,
            r#"<line class="line" x1="{lx:.0}" y1="{ly:.0}" x2="{:.0}" y2="{ly:.0}" stroke-dasharray="{}"/><text class="legend" x="{:.0}" y="{:.0}">{marker} {} ({})</text></g>"#,
            lx + 22.0,
            DASHES[k % DASHES.len()],
            lx + 26.0,
            ly + 4.0,
            esc(name),
            values.last().copied().unwrap_or(0)
        );
    }
    s.push_str("</svg>");
    s
}

/// A node of the topology diagram.
pub struct Node {
    pub id: String,
    pub label: String,
    /// Second line (kind, "public"/"private", counts).
    pub note: String,
    pub title: String,
    pub bad: bool,
}

/// An edge between two nodes (ids), with a label for its `<title>`.
pub struct Edge {
    pub from: String,
    pub to: String,
    pub title: String,
    pub bad: bool,
}

/// Columns of nodes, left to right, with edges between them.
pub fn topology(title: &str, headers: &[&str], columns: &[Vec<Node>], edges: &[Edge]) -> String {
    let col_w = 210.0;
    let node_w = 180.0;
    let node_h = 34.0;
    let row_h = 44.0;
    let top = 34.0;
    let rows = columns.iter().map(Vec::len).max().unwrap_or(0).max(1);
    let width = 10.0 + columns.len() as f64 * col_w;
    let height = top + rows as f64 * row_h + 10.0;
    let mut pos = std::collections::HashMap::new();
    for (c, col) in columns.iter().enumerate() {
        for (r, n) in col.iter().enumerate() {
            pos.insert(
                n.id.as_str(),
                (10.0 + c as f64 * col_w, top + r as f64 * row_h),
            );
        }
    }
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="topology" role="img" viewBox="0 0 {width:.0} {height:.0}" width="{width:.0}" height="{height:.0}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        esc(title)
    );
    for (c, h) in headers.iter().enumerate() {
        let _ = write!(
            s,
            r#"<text class="colhead" x="{:.0}" y="18">{}</text>"#,
            10.0 + c as f64 * col_w,
            esc(h)
        );
    }
    // Edges first, so nodes are drawn over them; bad edges last, on top.
    let mut ordered: Vec<&Edge> = edges.iter().filter(|e| !e.bad).collect();
    ordered.extend(edges.iter().filter(|e| e.bad));
    for e in ordered {
        let (Some(&(x1, y1)), Some(&(x2, y2))) = (pos.get(e.from.as_str()), pos.get(e.to.as_str()))
        else {
            continue;
        };
        let (x1, y1) = (x1 + node_w, y1 + node_h / 2.0);
        let y2 = y2 + node_h / 2.0;
        let mid = (x1 + x2) / 2.0;
        let class = if e.bad { "edge bad" } else { "edge" };
        let _ = write!(
            s,
            r#"<path class="{class}" d="M{x1:.0},{y1:.0} C{mid:.0},{y1:.0} {mid:.0},{y2:.0} {x2:.0},{y2:.0}"><title>{}{}</title></path>"#,
            if e.bad { "VIOLATION: " } else { "" },
            esc(&e.title)
        );
        if e.bad {
            let _ = write!(
                s,
                r#"<text class="badmark" x="{mid:.0}" y="{:.0}" text-anchor="middle">⚠</text>"#,
                (y1 + y2) / 2.0 + 5.0
            );
        }
    }
    for col in columns {
        for n in col {
            let (x, y) = pos[n.id.as_str()];
            let class = if n.bad { "node bad" } else { "node" };
            let mark = if n.bad { "✗ " } else { "" };
            let _ = write!(
                s,
                r#"<g class="{class}"><title>{}</title><rect x="{x:.0}" y="{y:.0}" width="{node_w}" height="{node_h}" rx="4"/><text class="label" x="{:.0}" y="{:.0}">{mark}{}</text><text class="note" x="{:.0}" y="{:.0}">{}</text></g>"#,
                esc(&n.title),
                x + 6.0,
                y + 14.0,
                esc(&cut(&n.label, 26)),
                x + 6.0,
                y + 28.0,
                esc(&cut(&n.note, 30))
            );
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_cut() {
        assert_eq!(
            esc(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
    }

    #[test]
    fn charts_write_every_value_as_text() {
        let svg = bars(
            "t",
            &[(
                "prod".into(),
                vec![("critical".into(), 3, "s-critical".into())],
            )],
        );
        assert!(svg.contains(">3</text>"), "{svg}");
        assert!(svg.contains("critical"));
        let svg = lines(
            "t",
            &["a".into(), "b".into()],
            &[("high".into(), "s-high".into(), vec![1, 4])],
        );
        assert!(svg.contains("high (4)"), "{svg}");
    }
}
