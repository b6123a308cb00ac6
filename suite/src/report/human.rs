//! The human report: one line per case grouped by area, then details of every failure and
//! warning (expected, seen, and the invocation), then the summary.

use std::fmt::Write;

use super::{CaseReport, Report};
use crate::case::Status;
use crate::invocation::NOT_RUN;
use crate::runner::CaseResult;

fn tag(s: Status) -> &'static str {
    match s {
        Status::Pass => "PASS",
        Status::Fail => "FAIL",
        Status::Warn => "WARN",
        Status::Skip => "SKIP",
    }
}

/// One progress line for stderr.
pub fn progress_line(r: &CaseResult, done: usize, total: usize) -> String {
    format!(
        "[{done:>3}/{total}] {} {} ({} ms)",
        tag(r.status),
        r.case.id,
        r.duration_ms
    )
}

fn indent(text: &str, pad: &str) -> String {
    if text.is_empty() {
        return format!("{pad}(empty)\n");
    }
    text.lines().map(|l| format!("{pad}{l}\n")).collect()
}

fn details(c: &CaseReport, out: &mut String) {
    let _ = writeln!(out, "{} {} [{:?}] {}", tag(c.status), c.id, c.level, c.title);
    let _ = writeln!(out, "    spec:     {}", c.spec);
    for link in &c.links {
        let _ = writeln!(out, "    see:      {link}");
    }
    let _ = writeln!(out, "    finding:  {}", c.message);
    if let Some(e) = &c.expected {
        let _ = writeln!(out, "    expected: {e}");
    }
    if let Some(s) = &c.seen {
        let _ = writeln!(out, "    seen:     {s}");
    }
    if let Some(k) = &c.kept_lab {
        let _ = writeln!(out, "    lab kept: {k}");
    }
    if let Some(rec) = c.blame.and_then(|i| c.invocations.get(i)) {
        // A call skipped because its verb already hung was never made: no exit, no time.
        let outcome = if rec.notes.iter().any(|n| n.starts_with(NOT_RUN)) {
            "not run (see note)".to_string()
        } else {
            format!("{} in {} ms", rec.exit, rec.duration_ms)
        };
        let _ = writeln!(out, "    invocation: {} {} -> {outcome}", rec.program, rec.command);
        let env: Vec<String> = rec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(out, "      env:    {}", env.join(" "));
        out.push_str("      stdin:\n");
        out.push_str(&indent(&rec.stdin, "        "));
        out.push_str("      stdout:\n");
        out.push_str(&indent(&rec.stdout, "        "));
        out.push_str("      stderr:\n");
        out.push_str(&indent(&rec.stderr, "        "));
        for n in &rec.notes {
            let _ = writeln!(out, "      note:   {n}");
        }
    }
    out.push('\n');
}

/// Renders the human report. Everything a plugin printed is in it (stdout, stderr, messages), so
/// control characters are escaped: a plugin must not clear the reader's screen, retitle the
/// terminal or hide text behind a carriage return. Newlines and tabs stay.
pub fn render(report: &Report) -> String {
    escape_controls(&render_raw(report))
}

/// `\x1b`-style escapes for every control character except newline and tab.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            c if c.is_control() && (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn render_raw(report: &Report) -> String {
    let mut out = String::new();
    let p = &report.plugin;
    if let Some(cmd) = p.path.strip_prefix("runtime: ") {
        // Runtime mode: the subject is a command, judged through recording plugins.
        let _ = writeln!(
            out,
            "cni-conformance {} judging runtime `{cmd}` ({})",
            report.tool.version, p.profile
        );
        let _ = writeln!(out, "scenario versions: {}\n", p.versions.join(", "));
    } else {
        let _ = writeln!(
            out,
            "cni-conformance {} judging {} ({:?} plugin, {})",
            report.tool.version, p.path, p.kind, p.profile
        );
        let _ = writeln!(
            out,
            "supported versions: {}; cases run at {}\n",
            if p.versions.is_empty() {
                "none reported".into()
            } else {
                p.versions.join(", ")
            },
            p.tested_version.as_deref().unwrap_or("no version")
        );
    }
    let mut area = "";
    for c in &report.cases {
        let a = c.id.split('/').next().unwrap_or("");
        if a != area {
            area = a;
            let _ = writeln!(out, "{area}");
        }
        let note = match c.status {
            Status::Pass => String::new(),
            _ => format!("  — {}", c.message),
        };
        let _ = writeln!(out, "  {} {:<40} {:>6} ms{note}", tag(c.status), c.id, c.duration_ms);
    }
    let problems: Vec<&CaseReport> = report
        .cases
        .iter()
        .filter(|c| matches!(c.status, Status::Fail | Status::Warn))
        .collect();
    if !problems.is_empty() {
        out.push_str("\nfindings\n\n");
        for c in problems {
            details(c, &mut out);
        }
    }
    if !report.peers.is_empty() {
        out.push_str("\npeers (informational: chain members and delegates beside the plugin are not judged)\n\n");
        for p in &report.peers {
            let _ = writeln!(out, "PEER {} in {}: {}", p.peer, p.case, p.message);
            let _ = writeln!(out, "    seen:     {}", p.seen);
        }
    }
    let s = &report.summary;
    let _ = writeln!(
        out,
        "\n{} passed, {} failed, {} warned, {} skipped in {:.1} s",
        s.passed,
        s.failed,
        s.warned,
        s.skipped,
        s.duration_ms as f64 / 1000.0
    );
    out
}

#[cfg(test)]
mod tests {
    use super::escape_controls;

    #[test]
    fn control_characters_are_escaped_newlines_and_tabs_kept() {
        let plugin_said = "clear\x1b[2J\x1b]0;pwned\x07 nul\0 cr\rend\n\ttab \u{9b}csi";
        assert_eq!(
            escape_controls(plugin_said),
            "clear\\x1b[2J\\x1b]0;pwned\\x07 nul\\x00 cr\\x0dend\n\ttab \\x9bcsi"
        );
    }
}
