//! The README's catalogue table stays in step with the catalogue: one row per area of
//! `cni-conformance --list`, in the same order, with that area's `must` and `should` counts, a
//! description, and a total row. `suite/scripts/readme-catalogue.sh` rewrites the counts.

mod harness;

use std::collections::BTreeMap;
use std::path::Path;

use harness::Test;

/// The lines that open and close the generated table in README.md.
const BEGIN: &str = "<!-- catalogue begin";
const END: &str = "<!-- catalogue end -->";
/// What the script writes for an area the table did not describe yet.
const PLACEHOLDER: &str = "TODO";

/// One row of the table: area (or "total"), must, should, description.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    area: String,
    must: usize,
    should: usize,
    what: String,
}

/// The areas of `--list` in catalogue order, with their counts, and the total.
fn listed() -> (Vec<Row>, Row) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cni-conformance"))
        .arg("--list")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut rows: Vec<Row> = Vec::new();
    let mut total = Row {
        area: "total".into(),
        must: 0,
        should: 0,
        what: String::new(),
    };
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let mut fields = line.split_whitespace();
        let (Some(id), Some(level)) = (fields.next(), fields.next()) else {
            panic!("--list printed a line without id and level: {line:?}");
        };
        let area = id.split('/').next().unwrap();
        if rows.last().is_none_or(|r| r.area != area) {
            assert!(
                rows.iter().all(|r| r.area != area),
                "--list shows area {area} in two places; the table wants each area once"
            );
            rows.push(Row {
                area: area.into(),
                must: 0,
                should: 0,
                what: String::new(),
            });
        }
        let row = rows.last_mut().unwrap();
        match level {
            "must" => (row.must += 1, total.must += 1),
            "should" => (row.should += 1, total.should += 1),
            other => panic!("--list printed level {other:?} for {id}"),
        };
    }
    (rows, total)
}

/// The rows between the markers of README.md: `| `area` | must | should | what |`, then
/// `| total | must | should | ... |`.
fn documented(readme: &str) -> Result<(Vec<Row>, Option<Row>), String> {
    let start = readme
        .lines()
        .position(|l| l.starts_with(BEGIN))
        .ok_or_else(|| format!("README.md has no line starting with {BEGIN:?}"))?;
    let block: Vec<&str> = readme
        .lines()
        .skip(start + 1)
        .take_while(|l| !l.starts_with(END))
        .collect();
    if start + 1 + block.len() >= readme.lines().count() {
        return Err(format!("README.md has no {END:?} line after the table"));
    }
    let mut rows = Vec::new();
    let mut total = None;
    for line in block.iter().filter(|l| l.starts_with('|')) {
        let cells: Vec<String> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().replace(['`', '*'], ""))
            .collect();
        let [area, must, should, what] = cells.as_slice() else {
            return Err(format!("a table row without four cells: {line}"));
        };
        let (Ok(must), Ok(should)) = (must.parse(), should.parse()) else {
            continue; // the header and its rule
        };
        let row = Row {
            area: area.clone(),
            must,
            should,
            what: what.clone(),
        };
        if row.area == "total" {
            total = Some(row);
        } else {
            rows.push(row);
        }
    }
    Ok((rows, total))
}

/// The table as it should read, keeping the descriptions README.md already has.
fn expected_table(listed: &[Row], total: &Row, described: &BTreeMap<String, String>) -> String {
    let mut t = String::from("| area | must | should | what it judges |\n|---|---|---|---|\n");
    for r in listed {
        let what = described
            .get(&r.area)
            .cloned()
            .unwrap_or_else(|| format!("{PLACEHOLDER}: what the {} cases judge", r.area));
        t.push_str(&format!("| `{}` | {} | {} | {} |\n", r.area, r.must, r.should, what));
    }
    t.push_str(&format!(
        "| total | {} | {} | {} cases |\n",
        total.must,
        total.should,
        total.must + total.should
    ));
    t
}

fn readme_catalogue_table_matches_list() -> Result<(), String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let readme = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (want, want_total) = listed();
    let (have, have_total) = documented(&readme)?;

    let mut problems = Vec::new();
    let want_areas: Vec<&str> = want.iter().map(|r| r.area.as_str()).collect();
    let have_areas: Vec<&str> = have.iter().map(|r| r.area.as_str()).collect();
    if want_areas != have_areas {
        problems.push(format!(
            "areas: --list has {want_areas:?}, the table has {have_areas:?}"
        ));
    }
    for w in &want {
        if let Some(h) = have.iter().find(|h| h.area == w.area) {
            if (h.must, h.should) != (w.must, w.should) {
                problems.push(format!(
                    "{}: the table says must {} should {}, --list has must {} should {}",
                    w.area, h.must, h.should, w.must, w.should
                ));
            }
            if h.what.is_empty() || h.what.starts_with(PLACEHOLDER) {
                problems.push(format!("{}: say in the table what its cases judge", w.area));
            }
        }
    }
    match &have_total {
        Some(h) if (h.must, h.should) == (want_total.must, want_total.should) => {}
        Some(h) => problems.push(format!(
            "total: the table says must {} should {}, --list has must {} should {}",
            h.must, h.should, want_total.must, want_total.should
        )),
        None => problems.push("the table has no total row".into()),
    }
    if problems.is_empty() {
        return Ok(());
    }
    let described: BTreeMap<String, String> = have.into_iter().map(|r| (r.area, r.what)).collect();
    Err(format!(
        "README.md's catalogue table is out of step with `cni-conformance --list`:\n  - {}\n\
         Fix: `cargo build --release && sh suite/scripts/readme-catalogue.sh` rewrites the rows between \
         the catalogue markers from --list (keeping each area's description); describe any new area \
         where it says {PLACEHOLDER}. The table should read:\n\n{}",
        problems.join("\n  - "),
        expected_table(&want, &want_total, &described)
    ))
}

fn main() {
    harness::run(vec![Test::fallible(
        "readme_catalogue_table_matches_list",
        readme_catalogue_table_matches_list,
    )])
}
