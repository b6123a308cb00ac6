//! The result cache, in libcni's layout:
//! `<cacheDir>/results/<network>-<containerID>-<ifname>`, a `cniCacheV1` JSON document, directory
//! mode 0700 and file mode 0600. Legacy files holding only a result are still read.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::convert::{convert, ConvertError};

/// Default cache directory.
pub const DEFAULT_CACHE_DIR: &str = "/var/lib/cni";

/// Errors reading or writing the cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A file operation failed.
    #[error("result cache {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a usable cache entry.
    #[error("result cache {path}: {problem}")]
    Corrupt {
        /// The file.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// The cached result cannot be converted to the list's version.
    #[error("result cache {path}: {source}")]
    Convert {
        /// The file.
        path: String,
        /// The conversion error.
        source: ConvertError,
    },
}

/// One cached attachment.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Container ID.
    pub container_id: String,
    /// Interface name.
    pub ifname: String,
    /// Network name.
    pub network: String,
    /// Netns path used on ADD.
    pub netns: String,
    /// `CNI_ARGS` pairs.
    pub cni_args: Vec<(String, String)>,
    /// Capability arguments.
    pub capability_args: Map<String, Value>,
    /// The final ADD result, when one was cached.
    pub result: Option<Value>,
}

/// The cache under one directory.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl Cache {
    /// The cache rooted at `dir` (`/var/lib/cni` by default).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Cache { dir: dir.into() }
    }

    /// Path of an attachment's file.
    pub fn path(&self, network: &str, container_id: &str, ifname: &str) -> PathBuf {
        self.dir
            .join("results")
            .join(format!("{network}-{container_id}-{ifname}"))
    }

    /// Fails unless an entry can be stored: the `results` directory exists (it is created) and a
    /// file can be created in it. Checked before ADD runs any plugin, so an unwritable cache
    /// never leaves an attachment the cache does not know of.
    pub fn ensure_writable(&self) -> Result<(), CacheError> {
        let results = self.dir.join("results");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&results)
            .map_err(io(&results))?;
        let probe = results.join(format!(".write-test-{}", std::process::id()));
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&probe)
            .map_err(io(&probe))?;
        std::fs::remove_file(&probe).map_err(io(&probe))
    }

    /// Stores the final ADD result with the attachment's parameters and the config bytes.
    pub fn write(&self, e: &Entry, config: &[u8]) -> Result<(), CacheError> {
        let results = self.dir.join("results");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&results)
            .map_err(io(&results))?;
        let mut doc = Map::new();
        doc.insert("kind".into(), json!("cniCacheV1"));
        doc.insert("containerId".into(), json!(e.container_id));
        doc.insert("config".into(), json!(base64(config)));
        doc.insert("ifName".into(), json!(e.ifname));
        doc.insert("networkName".into(), json!(e.network));
        if !e.netns.is_empty() {
            doc.insert("netns".into(), json!(e.netns));
        }
        if !e.cni_args.is_empty() {
            let pairs: Vec<Value> = e.cni_args.iter().map(|(k, v)| json!([k, v])).collect();
            doc.insert("cniArgs".into(), Value::Array(pairs));
        }
        if !e.capability_args.is_empty() {
            doc.insert("capabilityArgs".into(), Value::Object(e.capability_args.clone()));
        }
        if let Some(r) = &e.result {
            doc.insert("result".into(), r.clone());
        }
        let path = self.path(&e.network, &e.container_id, &e.ifname);
        let tmp = path.with_extension("tmp");
        let text = serde_json::to_vec(&Value::Object(doc)).map_err(|err| CacheError::Corrupt {
            path: path.display().to_string(),
            problem: err.to_string(),
        })?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        f.write_all(&text).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))
    }

    /// The cached result of an attachment converted to `version`; `Ok(None)` when there is no file.
    pub fn result(
        &self,
        network: &str,
        container_id: &str,
        ifname: &str,
        version: &str,
    ) -> Result<Option<Value>, CacheError> {
        let path = self.path(network, container_id, ifname);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        let corrupt = |problem: String| CacheError::Corrupt {
            path: path.display().to_string(),
            problem,
        };
        let doc: Value = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        let result = if doc.get("kind").and_then(Value::as_str) == Some("cniCacheV1") {
            match doc.get("result") {
                Some(r) => r.clone(),
                None => return Ok(None),
            }
        } else {
            doc
        };
        convert(&result, version, version)
            .map(Some)
            .map_err(|source| CacheError::Convert {
                path: path.display().to_string(),
                source,
            })
    }

    /// Removes an attachment's file (absent is fine).
    pub fn delete(&self, network: &str, container_id: &str, ifname: &str) -> Result<(), CacheError> {
        let path = self.path(network, container_id, ifname);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&path)(e)),
            _ => Ok(()),
        }
    }

    /// Every readable `cniCacheV1` entry of `network`, sorted by file name.
    pub fn entries(&self, network: &str) -> Vec<Entry> {
        let Ok(dir) = std::fs::read_dir(self.dir.join("results")) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = dir.filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        files
            .iter()
            .filter_map(|f| std::fs::read(f).ok())
            .filter_map(|b| serde_json::from_slice::<Value>(&b).ok())
            .filter(|d| d.get("kind").and_then(Value::as_str) == Some("cniCacheV1"))
            .filter_map(|d| entry_of(&d))
            .filter(|e| e.network == network)
            .collect()
    }
}

fn entry_of(d: &Value) -> Option<Entry> {
    let text = |k: &str| d.get(k).and_then(Value::as_str).map(str::to_string);
    let ifname = text("ifName").filter(|s| !s.is_empty())?;
    let network = text("networkName").filter(|s| !s.is_empty())?;
    let cni_args = d
        .get("cniArgs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|p| Some((p.get(0)?.as_str()?.to_string(), p.get(1)?.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    Some(Entry {
        container_id: text("containerId").unwrap_or_default(),
        ifname,
        network,
        netns: text("netns").unwrap_or_default(),
        cni_args,
        capability_args: d
            .get("capabilityArgs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        result: d.get("result").cloned(),
    })
}

/// Standard base64 with padding.
fn base64(data: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn writes_reads_lists_and_deletes() {
        let dir = std::env::temp_dir().join(format!("cni-conformance-cache-{}", std::process::id()));
        let cache = Cache::new(&dir);
        let e = Entry {
            container_id: "c1".into(),
            ifname: "eth0".into(),
            network: "net".into(),
            netns: "/run/netns/x".into(),
            cni_args: vec![("K".into(), "V".into())],
            capability_args: Map::new(),
            result: Some(json!({"cniVersion":"1.0.0","ips":[{"address":"10.0.0.2/24"}]})),
        };
        cache.write(&e, b"{}").unwrap();
        let r = cache.result("net", "c1", "eth0", "0.4.0").unwrap().unwrap();
        assert_eq!(r["cniVersion"], "0.4.0");
        assert_eq!(cache.entries("net"), vec![e]);
        assert!(cache.entries("other").is_empty());
        cache.delete("net", "c1", "eth0").unwrap();
        assert!(cache.result("net", "c1", "eth0", "1.0.0").unwrap().is_none());
        let _ = std::fs::remove_dir_all(dir);
    }
}
