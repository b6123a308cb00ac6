//! Helpers shared by the integration tests: temporary directories and running a plugin binary
//! with a CNI environment, the way a runtime does.
#![allow(dead_code)]

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let path = std::env::temp_dir().join(format!("cni-ref-{tag}-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A per-process directory for host-local's owner index (so tests never write to the host's
/// /run), removed when the test process exits.
pub fn index_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("cni-ref-index-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        extern "C" fn cleanup() {
            let dir = std::env::temp_dir().join(format!("cni-ref-index-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(dir);
        }
        // SAFETY: registering a plain extern "C" function.
        unsafe { libc::atexit(cleanup) };
        dir
    })
}

/// What a plugin invocation produced.
#[derive(Debug)]
pub struct Outcome {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?} / stderr {:?}", self.stdout, self.stderr))
    }

    /// Asserts success and returns the parsed stdout (or Null when empty).
    pub fn ok(&self) -> Value {
        assert_eq!(self.status, 0, "expected success, got {self:?}");
        if self.stdout.trim().is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }

    /// Asserts failure with an Error object and returns it.
    pub fn err(&self) -> Value {
        assert_ne!(self.status, 0, "expected failure, got {self:?}");
        let e = self.json();
        assert!(e["code"].is_u64(), "error without numeric code: {e}");
        assert!(e["msg"].is_string(), "error without msg: {e}");
        e
    }

    pub fn code(&self) -> u64 {
        self.err()["code"].as_u64().unwrap()
    }
}

/// An invocation being built.
#[derive(Clone)]
pub struct Call {
    pub binary: PathBuf,
    pub env: Vec<(String, String)>,
    pub stdin: Vec<u8>,
}

impl Call {
    pub fn new(binary: impl Into<PathBuf>, command: &str) -> Call {
        Call {
            binary: binary.into(),
            env: vec![("CNI_COMMAND".into(), command.into())],
            stdin: Vec::new(),
        }
    }

    /// ADD/DEL/CHECK-style environment for one attachment.
    pub fn attachment(binary: impl Into<PathBuf>, command: &str, cid: &str, ifname: &str) -> Call {
        Call::new(binary, command)
            .env("CNI_CONTAINERID", cid)
            .env("CNI_NETNS", "/var/run/netns/cni-ref-test-does-not-exist")
            .env("CNI_IFNAME", ifname)
            .env("CNI_PATH", "/usr/lib/cni")
    }

    pub fn env(mut self, k: &str, v: &str) -> Call {
        self.env.retain(|(key, _)| key != k);
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn unset(mut self, k: &str) -> Call {
        self.env.retain(|(key, _)| key != k);
        self
    }

    pub fn stdin(mut self, config: &Value) -> Call {
        self.stdin = serde_json::to_vec(config).unwrap();
        self
    }

    pub fn raw_stdin(mut self, bytes: &[u8]) -> Call {
        self.stdin = bytes.to_vec();
        self
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("CNI_REF_HOST_LOCAL_INDEX_DIR", index_dir())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Starts the call with its stdin written and closed, and returns the running child (for
    /// tests that kill it).
    #[allow(dead_code)]
    pub fn spawn(&self) -> std::process::Child {
        let mut child = self
            .command()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", self.binary));
        let mut input = child.stdin.take().unwrap();
        let _ = input.write_all(&self.stdin);
        drop(input);
        child
    }

    pub fn run(&self) -> Outcome {
        let mut child = self
            .command()
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", self.binary));
        let mut input = child.stdin.take().unwrap();
        let _ = input.write_all(&self.stdin);
        drop(input);
        let out = child.wait_with_output().unwrap();
        Outcome {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Every file below `root`: (relative path, mode, content), sorted.
pub fn tree(root: &Path) -> Vec<(String, u32, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            let rel = entry.path().strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.is_dir() {
                out.push((format!("{rel}/"), mode, Vec::new()));
                stack.push(entry.path());
            } else {
                out.push((rel, mode, std::fs::read(entry.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}
