//! JUnit XML: one `<testsuite>` per area, one `<testcase>` per case, `<failure>` for fail,
//! `<skipped>` for skip; warnings pass but carry their finding in `<system-out>`.

use std::fmt::Write;

use super::{CaseReport, Report};
use crate::case::Status;

/// Escapes text for XML attributes and content.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => {}
            c => out.push(c),
        }
    }
    out
}

fn detail(c: &CaseReport) -> String {
    let mut text = format!("{}\nspec: {}\n", c.message, c.spec);
    for link in &c.links {
        let _ = writeln!(text, "see: {link}");
    }
    if let Some(e) = &c.expected {
        let _ = writeln!(text, "expected: {e}");
    }
    if let Some(s) = &c.seen {
        let _ = writeln!(text, "seen: {s}");
    }
    if let Some(rec) = c.blame.and_then(|i| c.invocations.get(i)) {
        let env: Vec<String> = rec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = write!(
            text,
            "invocation: {} {} ({})\nenv: {}\nstdin: {}\nstdout: {}\nstderr: {}\n",
            rec.program,
            rec.command,
            rec.exit,
            env.join(" "),
            rec.stdin,
            rec.stdout,
            rec.stderr
        );
    }
    text
}

/// Renders the report as JUnit XML.
pub fn render(report: &Report) -> String {
    render_many(std::slice::from_ref(report))
}

/// Renders several reports (one per plugin) as one JUnit document; suite names carry the plugin.
pub fn render_many(reports: &[Report]) -> String {
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let tests: usize = reports.iter().map(|r| r.cases.len()).sum();
    let failed: usize = reports.iter().map(|r| r.summary.failed).sum();
    let skipped: usize = reports.iter().map(|r| r.summary.skipped).sum();
    let ms: u64 = reports.iter().map(|r| r.summary.duration_ms).sum();
    let names: Vec<&str> = reports.iter().map(|r| r.plugin.path.as_str()).collect();
    let _ = writeln!(
        x,
        "<testsuites name=\"cni-conformance {}\" tests=\"{tests}\" failures=\"{failed}\" skipped=\"{skipped}\" time=\"{:.3}\">",
        esc(&names.join(", ")),
        ms as f64 / 1000.0
    );
    for r in reports {
        let prefix = if reports.len() > 1 {
            format!("{} ", r.plugin.path)
        } else {
            String::new()
        };
        suites(r, &prefix, &mut x);
        peers(r, &prefix, &mut x);
    }
    x.push_str("</testsuites>\n");
    x
}

fn suites(report: &Report, prefix: &str, x: &mut String) {
    let mut areas: Vec<&str> = Vec::new();
    for c in &report.cases {
        let area = c.id.split('/').next().unwrap_or("");
        if !areas.contains(&area) {
            areas.push(area);
        }
    }
    for area in areas {
        let cases: Vec<&CaseReport> = report
            .cases
            .iter()
            .filter(|c| c.id.split('/').next() == Some(area))
            .collect();
        let failures = cases.iter().filter(|c| c.status == Status::Fail).count();
        let skipped = cases.iter().filter(|c| c.status == Status::Skip).count();
        let time: u64 = cases.iter().map(|c| c.duration_ms).sum();
        let _ = writeln!(
            x,
            "  <testsuite name=\"{}{}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{:.3}\">",
            esc(prefix),
            esc(area),
            cases.len(),
            time as f64 / 1000.0
        );
        for c in cases {
            let _ = write!(
                x,
                "    <testcase classname=\"cni-conformance.{}\" name=\"{} [{:?}] {}\" time=\"{:.3}\"",
                esc(area),
                esc(&c.id),
                c.level,
                esc(&c.title),
                c.duration_ms as f64 / 1000.0
            );
            match c.status {
                Status::Pass => x.push_str("/>\n"),
                Status::Fail => {
                    let _ = writeln!(
                        x,
                        ">\n      <failure message=\"{}\" type=\"{:?}\">{}</failure>\n    </testcase>",
                        esc(&c.message),
                        c.level,
                        esc(&detail(c))
                    );
                }
                Status::Skip => {
                    let _ = writeln!(
                        x,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                        esc(&c.message)
                    );
                }
                Status::Warn => {
                    let _ = writeln!(
                        x,
                        ">\n      <system-out>WARNING: {}</system-out>\n    </testcase>",
                        esc(&detail(c))
                    );
                }
            }
        }
        x.push_str("  </testsuite>\n");
    }
}

/// Peer findings as a suite with no test cases (so no count changes), listed in its
/// `<system-out>`.
fn peers(report: &Report, prefix: &str, x: &mut String) {
    if report.peers.is_empty() {
        return;
    }
    let _ = writeln!(
        x,
        "  <testsuite name=\"{}peers (informational)\" tests=\"0\" failures=\"0\" skipped=\"0\" time=\"0\">",
        esc(prefix)
    );
    let text: Vec<String> = report
        .peers
        .iter()
        .map(|p| format!("{} in {}: {}\nseen: {}", p.peer, p.case, p.message, p.seen))
        .collect();
    let _ = writeln!(x, "    <system-out>{}</system-out>", esc(&text.join("\n\n")));
    x.push_str("  </testsuite>\n");
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_markup_and_control_characters() {
        assert_eq!(esc("<a href=\"x\">&'\u{1}"), "&lt;a href=&quot;x&quot;&gt;&amp;&apos;");
    }
}
