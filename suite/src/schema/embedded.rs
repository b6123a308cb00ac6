//! The schema files of `schemas/`, compiled into the binary, and their `$id`s.

/// Where the schemas' `$id`s live; a file's `$id` is this prefix plus its path under `schemas/`.
pub(super) const BASE_URI: &str = "https://cni-conformance.invalid/schemas/";

macro_rules! embed {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/", $path)))),*]
    };
}

/// Every schema file as `(path under schemas/, text)`.
pub(super) const FILES: &[(&str, &str)] = embed![
    "common/defs.schema.json",
    "0.1.0/add-result.schema.json",
    "0.1.0/error.schema.json",
    "0.1.0/plugin-config.schema.json",
    "0.2.0/add-result.schema.json",
    "0.2.0/error.schema.json",
    "0.2.0/version-result.schema.json",
    "0.2.0/plugin-config.schema.json",
    "0.3.0/add-result.schema.json",
    "0.3.0/error.schema.json",
    "0.3.0/version-result.schema.json",
    "0.3.0/plugin-config.schema.json",
    "0.3.0/network-config-list.schema.json",
    "0.3.1/add-result.schema.json",
    "0.3.1/error.schema.json",
    "0.3.1/version-result.schema.json",
    "0.3.1/plugin-config.schema.json",
    "0.3.1/network-config-list.schema.json",
    "0.4.0/add-result.schema.json",
    "0.4.0/error.schema.json",
    "0.4.0/version-result.schema.json",
    "0.4.0/plugin-config.schema.json",
    "0.4.0/network-config-list.schema.json",
    "1.0.0/add-result.schema.json",
    "1.0.0/error.schema.json",
    "1.0.0/version-result.schema.json",
    "1.0.0/plugin-config.schema.json",
    "1.0.0/network-config-list.schema.json",
    "1.1.0/add-result.schema.json",
    "1.1.0/error.schema.json",
    "1.1.0/version-result.schema.json",
    "1.1.0/plugin-config.schema.json",
    "1.1.0/network-config-list.schema.json",
    "1.1.0/gc-input.schema.json",
];
