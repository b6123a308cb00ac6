//! The suite's own reading of CNI documents. It is deliberately lenient (it must describe what a
//! broken plugin printed, not refuse it); strictness lives in the schemas and in the cases.

pub mod path;
pub mod result;

pub use result::{NormalResult, ResultInterface, ResultIp, ResultRoute};

use serde_json::Value;

/// An error object as a plugin printed it.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorDoc {
    /// `code`, when it is a non-negative integer.
    pub code: Option<u64>,
    /// `msg`, when it is a string.
    pub msg: Option<String>,
    /// `details`, when it is a string.
    pub details: Option<String>,
}

impl ErrorDoc {
    /// Reads an error object from stdout text; `None` when stdout is not a JSON object.
    pub fn parse(stdout: &str) -> Option<Self> {
        let v: Value = serde_json::from_str(stdout.trim()).ok()?;
        let o = v.as_object()?;
        Some(ErrorDoc {
            code: o.get("code").and_then(Value::as_u64),
            msg: o.get("msg").and_then(Value::as_str).map(str::to_string),
            details: o.get("details").and_then(Value::as_str).map(str::to_string),
        })
    }
}
