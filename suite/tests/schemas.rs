//! Tests of the per-version CNI JSON Schemas and of `cni_conformance::schema::validate`.
//!
//! Fixtures live in `tests/fixtures/schemas/`:
//! - `<version>/valid/<kind>-<what>.json` must validate clean against that version's schema;
//! - `<version>/invalid/<kind>-<what>.json` must yield at least one violation, and the messages of
//!   every invalid fixture of a version are pinned in one insta snapshot per version;
//! - `upstream/<version>/<kind>-<what>.json` are real outputs of Debian's upstream plugins,
//!   recorded by `upstream/record.sh`.

use std::fs;
use std::path::{Path, PathBuf};

use cni_conformance::schema::{kinds_in, schema_text, validate, DocKind, SchemaError, VERSIONS};
use rstest::rstest;
use serde_json::{json, Value};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/schemas");

/// File-name prefixes of the fixture kinds, longest first where one prefix contains another.
const KIND_PREFIXES: &[(&str, DocKind)] = &[
    ("add-result-", DocKind::AddResult),
    ("error-", DocKind::Error),
    ("version-result-", DocKind::VersionResult),
    ("plugin-config-", DocKind::PluginConfig),
    ("network-config-list-", DocKind::NetworkConfigList),
    ("gc-input-", DocKind::GcInput),
];

/// Recorded upstream outputs that break their own version's schema. The loopback plugin builds
/// a 1.0.0-shaped result (interfaces[], ips[] without version) and prints it unconverted with
/// the request's cniVersion, so every answer below 1.0.0 has the wrong shape.
const UPSTREAM_KNOWN_BAD: &[&str] = &[
    "0.1.0/add-result-loopback.json",
    "0.2.0/add-result-loopback.json",
    "0.3.0/add-result-loopback.json",
    "0.3.1/add-result-loopback.json",
    "0.4.0/add-result-loopback.json",
];

fn kind_of(path: &Path) -> DocKind {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap();
    KIND_PREFIXES
        .iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map(|(_, kind)| *kind)
        .unwrap_or_else(|| panic!("{}: file name does not start with a kind", path.display()))
}

/// The `<version>` directory a fixture sits in (`<version>/valid/x.json` or `upstream/<version>/x.json`).
fn version_of(path: &Path, levels_up: usize) -> String {
    let mut dir = path.parent().unwrap();
    for _ in 1..levels_up {
        dir = dir.parent().unwrap();
    }
    dir.file_name().unwrap().to_str().unwrap().to_string()
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn render(violations: &[cni_conformance::schema::Violation]) -> String {
    violations
        .iter()
        .map(|v| format!("  {:?}: {}\n", v.path, v.message))
        .collect()
}

// ---------------------------------------------------------------- schema set and lookup errors

#[test]
fn every_version_has_exactly_the_kinds_the_spec_defines() {
    use DocKind::*;
    let expected: &[(&str, &[DocKind])] = &[
        ("0.1.0", &[AddResult, Error, PluginConfig]),
        ("0.2.0", &[AddResult, Error, VersionResult, PluginConfig]),
        (
            "0.3.0",
            &[AddResult, Error, VersionResult, PluginConfig, NetworkConfigList],
        ),
        (
            "0.3.1",
            &[AddResult, Error, VersionResult, PluginConfig, NetworkConfigList],
        ),
        (
            "0.4.0",
            &[AddResult, Error, VersionResult, PluginConfig, NetworkConfigList],
        ),
        (
            "1.0.0",
            &[AddResult, Error, VersionResult, PluginConfig, NetworkConfigList],
        ),
        (
            "1.1.0",
            &[
                AddResult,
                Error,
                VersionResult,
                PluginConfig,
                NetworkConfigList,
                GcInput,
            ],
        ),
    ];
    assert_eq!(VERSIONS, expected.iter().map(|(v, _)| *v).collect::<Vec<_>>());
    for (version, kinds) in expected {
        assert_eq!(kinds_in(version), *kinds, "kinds_in({version})");
    }
    assert!(kinds_in("0.5.0").is_empty());
    assert!(kinds_in("1.0").is_empty());
}

#[test]
fn every_schema_that_should_exist_compiles_and_the_others_are_refused() {
    for version in VERSIONS {
        for kind in DocKind::ALL {
            let result = validate(version, kind, &json!({}));
            if kinds_in(version).contains(&kind) {
                let violations = result.unwrap_or_else(|e| panic!("{version} {kind:?}: {e}"));
                assert!(
                    violations.iter().all(|v| !v.message.contains("internal error")),
                    "{version} {kind:?} does not compile:\n{}",
                    render(&violations)
                );
            } else {
                match result {
                    Err(SchemaError::NotInVersion { kind: k, version: v }) => {
                        assert_eq!((k, v.as_str()), (kind, *version));
                    }
                    other => panic!("{version} {kind:?}: expected NotInVersion, got {other:?}"),
                }
                assert!(matches!(
                    schema_text(version, kind),
                    Err(SchemaError::NotInVersion { .. })
                ));
            }
        }
    }
    assert!(matches!(
        validate("0.1.0", DocKind::VersionResult, &json!({})),
        Err(SchemaError::NotInVersion { .. })
    ));
    assert!(matches!(
        validate("1.0.0", DocKind::GcInput, &json!({})),
        Err(SchemaError::NotInVersion { .. })
    ));
    for unknown in ["", "1.0", "0.5.0", "2.0.0", "1.1.0-rc1", " 1.0.0"] {
        for kind in DocKind::ALL {
            match validate(unknown, kind, &json!({})) {
                Err(SchemaError::UnknownVersion(v)) => assert_eq!(v, unknown),
                other => panic!("{unknown:?} {kind:?}: expected UnknownVersion, got {other:?}"),
            }
        }
    }
}

#[test]
fn every_schema_names_itself_and_says_what_it_is() {
    for version in VERSIONS {
        for kind in kinds_in(version) {
            let schema: Value = serde_json::from_str(schema_text(version, *kind).unwrap()).unwrap();
            assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
            let id = schema["$id"].as_str().unwrap();
            assert!(
                id.ends_with(&format!("/schemas/{version}/{}", kind.file_name())),
                "{version} {kind:?}: $id {id}"
            );
            for key in ["title", "description"] {
                let text = schema[key].as_str().unwrap_or_default();
                assert!(!text.is_empty(), "{version} {kind:?}: no {key}");
            }
            assert!(
                schema["title"].as_str().unwrap().contains(version),
                "{version} {kind:?}: title"
            );
        }
    }
}

/// Every `*.schema.json` under `schemas/`, as (path relative to `schemas/`, parsed document).
fn schema_files_on_disk() -> Vec<(String, Value)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas");
    let mut files = Vec::new();
    for dir in fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for path in json_files(&dir) {
            let rel = path.strip_prefix(&root).unwrap().to_str().unwrap().to_string();
            files.push((rel, read_json(&path)));
        }
    }
    files
}

/// Calls `visit` on every object inside `value`.
fn walk_objects(value: &Value, visit: &mut dyn FnMut(&serde_json::Map<String, Value>)) {
    match value {
        Value::Object(map) => {
            visit(map);
            map.values().for_each(|v| walk_objects(v, visit));
        }
        Value::Array(items) => items.iter().for_each(|v| walk_objects(v, visit)),
        _ => {}
    }
}

#[test]
fn every_schema_file_on_disk_is_one_the_validator_embeds() {
    let on_disk = schema_files_on_disk();
    assert!(on_disk.len() > 30, "only {} schema files found", on_disk.len());
    for (rel, _) in &on_disk {
        if rel.starts_with("common/") {
            continue;
        }
        let (version, file) = rel.split_once('/').unwrap();
        let kind = DocKind::ALL.iter().find(|k| k.file_name() == file);
        let kind = kind.unwrap_or_else(|| panic!("schemas/{rel}: not a known kind"));
        assert!(schema_text(version, *kind).is_ok(), "schemas/{rel} is not embedded");
    }
    let embedded: usize = VERSIONS.iter().map(|v| kinds_in(v).len()).sum();
    let versioned = on_disk.iter().filter(|(rel, _)| !rel.starts_with("common/")).count();
    assert_eq!(embedded, versioned, "embedded schemas vs files in schemas/<version>/");
}

/// A version reads on its own: its `$ref`s point into its own directory or to `common/`.
#[test]
fn references_stay_within_the_version_or_common() {
    for (rel, schema) in schema_files_on_disk() {
        let dir = rel.split_once('/').unwrap().0.to_string();
        walk_objects(&schema, &mut |map| {
            let Some(Value::String(target)) = map.get("$ref") else {
                return;
            };
            let file = target.split('#').next().unwrap();
            let ok = file.is_empty()
                || file.starts_with("../common/")
                || (!file.contains('/')
                    && Path::new(env!("CARGO_MANIFEST_DIR"))
                        .join("../schemas")
                        .join(&dir)
                        .join(file)
                        .exists());
            assert!(ok, "schemas/{rel}: $ref {target:?} leaves the version");
        });
    }
}

/// An `errorMessage` keyed by keyword must name a keyword of the same subschema, or the message
/// could never be shown.
#[test]
fn error_messages_belong_to_keywords_that_exist() {
    let mut seen = 0;
    for (rel, schema) in schema_files_on_disk() {
        walk_objects(&schema, &mut |map| match map.get("errorMessage") {
            Some(Value::Object(by_keyword)) => {
                for keyword in by_keyword.keys() {
                    assert!(
                        map.contains_key(keyword),
                        "schemas/{rel}: errorMessage for absent {keyword}"
                    );
                    seen += 1;
                }
            }
            Some(Value::String(_)) => seen += 1,
            Some(other) => panic!("schemas/{rel}: errorMessage {other}"),
            None => {}
        });
    }
    assert!(seen > 50, "only {seen} error messages");
}

// ---------------------------------------------------------------- hand-written fixtures

#[rstest]
fn valid_fixture_validates_clean(#[files("tests/fixtures/schemas/*/valid/*.json")] path: PathBuf) {
    let version = version_of(&path, 2);
    let violations = validate(&version, kind_of(&path), &read_json(&path)).unwrap();
    assert!(violations.is_empty(), "{}:\n{}", path.display(), render(&violations));
}

#[rstest]
fn invalid_fixture_has_violations(#[files("tests/fixtures/schemas/*/invalid/*.json")] path: PathBuf) {
    let version = version_of(&path, 2);
    let violations = validate(&version, kind_of(&path), &read_json(&path)).unwrap();
    assert!(!violations.is_empty(), "{} validated clean", path.display());
    for v in &violations {
        assert!(
            v.path.is_empty() || v.path.starts_with('/'),
            "not a JSON pointer: {v:?}"
        );
        assert!(
            !v.message.contains("internal error"),
            "{}: {}",
            path.display(),
            v.message
        );
    }
    let mut sorted = violations.clone();
    sorted.sort_by(|a, b| (&a.path, &a.message).cmp(&(&b.path, &b.message)));
    assert_eq!(sorted, violations, "violations are not sorted by path");
}

/// Every kind of every version has valid and invalid fixtures (so the globs above cannot
/// silently match nothing), and the messages of all invalid fixtures are pinned per version.
#[rstest]
fn invalid_fixture_messages(#[values("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")] version: &str) {
    let dir = Path::new(FIXTURES).join(version);
    let valid = json_files(&dir.join("valid"));
    let invalid = json_files(&dir.join("invalid"));
    for kind in kinds_in(version) {
        for (set, files) in [("valid", &valid), ("invalid", &invalid)] {
            assert!(
                files.iter().any(|p| kind_of(p) == *kind),
                "{version}: no {set} fixture for {kind:?}"
            );
        }
    }
    let mut report = String::new();
    for path in &invalid {
        let violations = validate(version, kind_of(path), &read_json(path)).unwrap();
        report.push_str(&format!("{}\n", path.file_name().unwrap().to_str().unwrap()));
        report.push_str(&render(&violations));
    }
    insta::assert_snapshot!(format!("invalid_messages_{version}"), report);
}

// ---------------------------------------------------------------- targeted rules

#[test]
fn interface_index_must_point_into_interfaces() {
    let doc = json!({
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "eth0"}],
        "ips": [{"address": "10.0.0.2/24", "interface": 0}, {"address": "10.0.0.3/24", "interface": 1}]
    });
    let violations = validate("1.0.0", DocKind::AddResult, &doc).unwrap();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].path, "/ips/1/interface");
    assert!(
        violations[0].message.contains("ips[1].interface is 1"),
        "{}",
        violations[0].message
    );

    // Inside prevResult of a plugin configuration the pointer is prefixed.
    let config = json!({"cniVersion": "1.0.0", "name": "n", "type": "bridge", "prevResult": doc});
    let violations = validate("1.0.0", DocKind::PluginConfig, &config).unwrap();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].path, "/prevResult/ips/1/interface");
}

#[test]
fn wrong_version_fields_are_named_with_the_version_that_defines_them() {
    let doc = json!({"cniVersion": "1.0.0", "ips": [{"version": "4", "address": "10.0.0.2/24"}]});
    let violations = validate("1.0.0", DocKind::AddResult, &doc).unwrap();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].path, "/ips/0/version");
    assert_eq!(
        violations[0].message,
        "ips[0].version is a 0.3.x/0.4.0 field; 1.0.0 removed it (the family follows from the address)"
    );

    let doc = json!({"cniVersion": "0.4.0", "ips": [{"address": "10.0.0.2/24"}]});
    let violations = validate("0.4.0", DocKind::AddResult, &doc).unwrap();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].path, "/ips/0");
    assert!(
        violations[0].message.contains("\"version\""),
        "{}",
        violations[0].message
    );
}

#[test]
fn a_malformed_address_gets_one_message_not_a_format_and_a_family_message() {
    let doc = json!({"cniVersion": "0.2.0", "ip4": {"ip": "10.0.0.300/24"}});
    let violations = validate("0.2.0", DocKind::AddResult, &doc).unwrap();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].message.contains("CIDR"), "{}", violations[0].message);
}

#[test]
fn validation_survives_hostile_documents() {
    let mut deep = json!("leaf");
    for _ in 0..200 {
        deep = json!({"ips": [deep]});
    }
    let long = "x".repeat(100_000);
    let docs = [
        Value::Null,
        json!(true),
        json!(-1),
        json!(1.5e300),
        json!(long),
        json!([]),
        json!({"ips": "nope", "interfaces": 5}),
        json!({"ips": [null, 1, {"interface": 18446744073709551615u64}, {"interface": -5}]}),
        json!({"ips": [{"interface": 1}], "interfaces": {"0": {}}}),
        json!({"cniVersion": long, "name": long, "type": long, "prevResult": {"ips": [{"interface": 9}]}}),
        json!({"\u{0}/~01": {"~": [{"/": 1}]}}),
        deep,
    ];
    // Deeper than serde_json's parser allows, under keys whose value every version rejects or
    // checks, so messages would have to render it.
    let mut very_deep = json!(0);
    for _ in 0..3_000 {
        very_deep = json!([very_deep]);
    }
    let docs: Vec<Value> = docs
        .into_iter()
        .chain([
            json!({"ip4": very_deep.clone(), "ips": very_deep.clone(), "cniVersion": very_deep.clone()}),
            json!({"name": very_deep.clone(), "plugins": [very_deep.clone()], "code": very_deep}),
        ])
        .collect();
    for version in VERSIONS {
        for kind in kinds_in(version) {
            for doc in &docs {
                let violations = validate(version, *kind, doc).unwrap();
                for v in &violations {
                    assert!(v.message.chars().count() < 1_000, "message too long: {}", v.message);
                }
            }
        }
    }
}

// ---------------------------------------------------------------- recorded upstream outputs

struct Recorded {
    /// `<version>/<file>` under `upstream/`.
    name: String,
    version: String,
    kind: DocKind,
    doc: Value,
}

fn recorded() -> Vec<Recorded> {
    let root = Path::new(FIXTURES).join("upstream");
    let mut all = Vec::new();
    for version in VERSIONS {
        let dir = root.join(version);
        if !dir.exists() {
            continue;
        }
        for path in json_files(&dir) {
            let name = format!("{version}/{}", path.file_name().unwrap().to_str().unwrap());
            all.push(Recorded {
                name,
                version: version.to_string(),
                kind: kind_of(&path),
                doc: read_json(&path),
            });
        }
    }
    all
}

#[test]
fn upstream_recordings_cover_every_plugin_version_and_error() {
    let all = recorded();
    let count = |kind: DocKind| all.iter().filter(|r| r.kind == kind).count();
    let plugins = fs::read_dir(Path::new(FIXTURES).join("upstream/1.0.0"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_str()
                .unwrap()
                .starts_with("version-result-")
        })
        .count();
    assert_eq!(count(DocKind::VersionResult), plugins);
    assert!(plugins >= 16, "VERSION answers of {plugins} plugins");
    for version in ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"] {
        for what in [
            "bridge-host-local",
            "ptp-host-local",
            "host-local",
            "host-local-dual-stack",
            "loopback",
            "static",
        ] {
            let name = format!("{version}/add-result-{what}.json");
            assert!(all.iter().any(|r| r.name == name), "missing recording {name}");
        }
    }
    assert!(
        count(DocKind::Error) >= 5,
        "only {} error recordings",
        count(DocKind::Error)
    );
}

#[test]
fn upstream_outputs_validate_against_their_own_version() {
    let mut failures = String::new();
    for r in recorded() {
        if UPSTREAM_KNOWN_BAD.contains(&r.name.as_str()) {
            continue;
        }
        match r.kind {
            DocKind::AddResult | DocKind::VersionResult => {
                assert_eq!(r.doc["cniVersion"], r.version.as_str(), "{}: cniVersion", r.name);
            }
            DocKind::Error => assert!(r.doc.get("cniVersion").is_none(), "{}", r.name),
            other => panic!("{}: unexpected kind {other:?}", r.name),
        }
        let violations = validate(&r.version, r.kind, &r.doc).unwrap();
        if !violations.is_empty() {
            failures.push_str(&format!("{}\n{}", r.name, render(&violations)));
        }
    }
    assert!(failures.is_empty(), "upstream outputs break their schema:\n{failures}");
}

#[test]
fn upstream_loopback_below_1_0_is_caught_with_its_wrong_shape() {
    let all = recorded();
    let mut report = String::new();
    for name in UPSTREAM_KNOWN_BAD {
        let r = all
            .iter()
            .find(|r| r.name == *name)
            .unwrap_or_else(|| panic!("{name} not recorded"));
        let violations = validate(&r.version, r.kind, &r.doc).unwrap();
        assert!(!violations.is_empty(), "{name} validated clean");
        report.push_str(&format!("{name}\n{}", render(&violations)));
    }
    insta::assert_snapshot!("upstream_loopback_defects", report);
}
