//! The plugin main loop: the same checks, in the same order and with the same codes, as the Go
//! `skel` package, with three deliberate differences:
//!
//! - VERSION reads stdin and echoes the request's `cniVersion` (the spec rule; skel prints its
//!   library version);
//! - `CNI_NETNS` naming the plugin's own namespace is refused with code 8 *before* the operation
//!   runs (skel checks after ADD/DEL already changed things); it applies to ADD, DEL and CHECK
//!   and is skipped with `CNI_NETNS_OVERRIDE=1|true`;
//! - Error objects carry `cniVersion` once the request's version is known (spec 1.1 §5).
//!
//! Order: env (code 4) → read stdin (5) → JSON object with a string `name` (6) → `name` present
//! (7) and well-formed (7) → known verb (4) → `cniVersion` is a string (6) → the verb's version
//! gate (1, or 6 for CHECK/GC/STATUS with an unparseable version) → own-netns (8) → the plugin.

use super::config::NetConf;
use super::env::{is_valid_identifier, Command, Environment};
use super::error::{self, CniError};
use super::result::CniResult;
use super::version::{self, SpecVersion};
use std::io::{Read, Write};

/// One validated invocation.
#[derive(Debug, Clone)]
pub struct Request {
    /// The environment.
    pub env: Environment,
    /// stdin, unchanged (delegates get exactly these bytes).
    pub stdin: Vec<u8>,
    /// The parsed common configuration.
    pub conf: NetConf,
}

/// What a plugin implements. GC and STATUS are only called for configurations ≥ 1.1.0, CHECK
/// for ≥ 0.4.0.
pub trait Plugin {
    /// The line printed on stderr when `CNI_COMMAND` is empty.
    fn about(&self) -> String;
    /// ADD: the result to print in the request's version.
    fn add(&self, req: &Request) -> Result<CniResult, CniError>;
    /// DEL.
    fn del(&self, req: &Request) -> Result<(), CniError>;
    /// CHECK.
    fn check(&self, req: &Request) -> Result<(), CniError>;
    /// GC.
    fn gc(&self, req: &Request) -> Result<(), CniError>;
    /// STATUS.
    fn status(&self, req: &Request) -> Result<(), CniError>;
}

/// Run `plugin` against the process environment and stdio, then exit.
/// The process entry of a plugin binary that skips Rust's runtime start-up (the binary is
/// `#![no_main]`, see [`crate::plugin_main`]). That start-up asks glibc for the main thread's
/// stack (`pthread_getattr_np`, which reads and parses `/proc/self/maps`) to install a stack
/// overflow guard with an alternate signal stack: about 0.1 ms per invocation here (a VERSION
/// call, spawn to exit: 0.99 → 0.88–0.95 ms side by side) and 0.2 MiB of peak memory. What of
/// it a plugin needs is done here: descriptors 0–2 opened on
/// `/dev/null` when the caller left one closed (so no file this process opens takes the place
/// of stdout), SIGPIPE ignored (a closed stdout is a write error, not a silent death). A panic
/// still prints its message and exits with 101, as with Rust's own entry; a stack overflow is a
/// plain SIGSEGV instead of a message.
pub fn start(plugin: &dyn Plugin) -> ! {
    for fd in 0..3 {
        let mut pfd = libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        };
        // SAFETY: a valid pollfd; poll with a zero timeout only inspects the descriptor.
        let closed = unsafe { libc::poll(&mut pfd, 1, 0) } == 1 && pfd.revents & libc::POLLNVAL != 0;
        if closed {
            // SAFETY: open(2) with a NUL-terminated path; the lowest free descriptor is `fd`.
            unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        }
    }
    // SAFETY: setting a signal's disposition to "ignore" before any other thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // `main` only comes back by panicking; nothing is used after that but the exit status.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| main(plugin)));
    std::process::exit(101)
}

/// Runs `plugin` on this process's environment, stdin and stdout, and exits with its status.
pub fn main(plugin: &dyn Plugin) -> ! {
    super::trace::mark("main");
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let code = dispatch(
        plugin,
        &|k| std::env::var(k).ok(),
        &mut read_process_stdin,
        &mut stdout.lock(),
        &mut stderr.lock(),
    );
    super::trace::mark("exit");
    std::process::exit(code)
}

/// Read the process's stdin. For VERSION it is read only while data arrives promptly, so a
/// runtime that leaves stdin open (skel never reads it) does not hang the plugin.
fn read_process_stdin(for_version: bool) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    if !for_version {
        std::io::stdin().lock().read_to_end(&mut data)?;
        return Ok(data);
    }
    let mut buf = [0u8; 4096];
    loop {
        let mut pfd = libc::pollfd {
            fd: 0,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: pfd is a valid pollfd for the duration of the call.
        let ready = unsafe { libc::poll(&mut pfd, 1, 200) };
        if ready <= 0 {
            return Ok(data);
        }
        // SAFETY: buf is valid for buf.len() bytes.
        let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            return Ok(data);
        }
        data.extend_from_slice(&buf[..n as usize]);
        if data.len() > 1 << 20 {
            return Ok(data);
        }
    }
}

/// The testable core of [`main`]: returns the exit status.
pub fn dispatch(
    plugin: &dyn Plugin,
    lookup: &dyn Fn(&str) -> Option<String>,
    read_stdin: &mut dyn FnMut(bool) -> std::io::Result<Vec<u8>>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let env = match Environment::from_lookup(lookup) {
        Ok(Some(env)) => env,
        Ok(None) => {
            let _ = writeln!(err, "{}", plugin.about());
            let _ = writeln!(
                err,
                "CNI protocol versions supported: {}",
                version::SUPPORTED_VERSIONS.join(", ")
            );
            return 0;
        }
        Err(e) => return fail(out, &e, None),
    };

    if env.command == Command::Version {
        let stdin = read_stdin(true).unwrap_or_default();
        let requested = serde_json::from_slice::<serde_json::Value>(&stdin)
            .ok()
            .and_then(|v| v.get("cniVersion").and_then(|s| s.as_str()).map(str::to_string));
        let answer = version::version_answer(requested.as_deref());
        if let Err(e) = out.write_all(answer.as_bytes()).and_then(|_| out.flush()) {
            let _ = writeln!(err, "writing the VERSION answer: {e}");
            return 1;
        }
        return 0;
    }

    let stdin = match read_stdin(false) {
        Ok(data) => data,
        Err(e) => {
            let e = CniError::new(error::IO_FAILURE, format!("error reading from stdin: {e}"));
            return fail(out, &e, None);
        }
    };
    let (request, version) = match validate(env, stdin) {
        Ok(ok) => ok,
        Err((e, v)) => return fail(out, &e, v.as_deref()),
    };

    let outcome = match request.env.command {
        Command::Add => plugin.add(&request).and_then(|result| {
            // Ending with a newline makes the line-buffered stdout hand the whole result to
            // the kernel in one write, so the runtime reading it wakes up once.
            let mut text = result.to_json(&version)?;
            text.push('\n');
            out.write_all(text.as_bytes())
                .and_then(|_| out.flush())
                .map_err(|e| CniError::io(format!("writing the result: {e}")))
        }),
        Command::Del => plugin.del(&request),
        Command::Check => plugin.check(&request),
        Command::Gc => plugin.gc(&request),
        Command::Status => plugin.status(&request),
        Command::Version | Command::Unknown(_) => Ok(()),
    };
    match outcome {
        Ok(()) => 0,
        Err(e) => fail(out, &e, Some(&version)),
    }
}

fn fail(out: &mut dyn Write, e: &CniError, version: Option<&str>) -> i32 {
    // Only a version we speak is "the protocol version in use"; garbage is not echoed.
    let version = version.filter(|v| version::is_supported(v));
    let _ = out.write_all(e.to_json(version).as_bytes());
    let _ = out.write_all(b"\n");
    let _ = out.flush();
    1
}

type Rejected = (CniError, Option<String>);

/// Steps 5 onward of the skel order, ending with the own-netns refusal.
fn validate(env: Environment, stdin: Vec<u8>) -> Result<(Request, String), Rejected> {
    let value: serde_json::Value = serde_json::from_slice(&stdin).map_err(|e| {
        (
            CniError::new(error::DECODING_FAILURE, format!("error unmarshall network config: {e}")),
            None,
        )
    })?;
    let serde_json::Value::Object(raw) = value else {
        return Err((
            CniError::new(
                error::DECODING_FAILURE,
                "error unmarshall network config: the configuration must be a JSON object",
            ),
            None,
        ));
    };
    let name = match raw.get("name") {
        None | Some(serde_json::Value::Null) => "",
        Some(serde_json::Value::String(s)) => s.as_str(),
        Some(other) => {
            return Err((
                CniError::new(
                    error::DECODING_FAILURE,
                    format!(
                        "error unmarshall network config: \"name\" must be a string, found {}",
                        super::json::kind(other)
                    ),
                ),
                None,
            ))
        }
    };
    if name.is_empty() {
        return Err((
            CniError::new(error::INVALID_NETWORK_CONFIG, "missing network name"),
            None,
        ));
    }
    if !is_valid_identifier(name) {
        return Err((
            CniError::with_details(
                error::INVALID_NETWORK_CONFIG,
                "invalid characters found in network name",
                name,
            ),
            None,
        ));
    }
    if let Command::Unknown(verb) = &env.command {
        return Err((
            CniError::new(
                error::INVALID_ENVIRONMENT_VARIABLES,
                format!("unknown CNI_COMMAND: {verb}"),
            ),
            None,
        ));
    }
    let version = match raw.get("cniVersion") {
        None | Some(serde_json::Value::Null) => version::DEFAULT_WHEN_MISSING.to_string(),
        Some(serde_json::Value::String(s)) if s.is_empty() => version::DEFAULT_WHEN_MISSING.to_string(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => {
            return Err((
                CniError::new(
                    error::DECODING_FAILURE,
                    format!(
                        "decoding version from network config: \"cniVersion\" must be a string, found {}",
                        super::json::kind(other)
                    ),
                ),
                None,
            ))
        }
    };
    let gate = match env.command {
        Command::Check => Some(("CHECK", SpecVersion::new(0, 4, 0))),
        Command::Gc => Some(("GC", SpecVersion::new(1, 1, 0))),
        Command::Status => Some(("STATUS", SpecVersion::new(1, 1, 0))),
        _ => None,
    };
    let with_version = |e: CniError| (e, Some(version.clone()));
    if let Some((verb, minimum)) = gate {
        let parsed =
            SpecVersion::parse(&version).map_err(|e| with_version(CniError::new(error::DECODING_FAILURE, e)))?;
        if parsed < minimum {
            return Err(with_version(CniError::with_details(
                error::INCOMPATIBLE_CNI_VERSION,
                format!("config version does not allow {verb}"),
                format!("{verb} needs cniVersion {minimum} or later, the configuration has {version:?}"),
            )));
        }
        let plugin_max = SpecVersion::parse(version::LATEST).unwrap_or(minimum);
        if plugin_max < parsed {
            return Err(with_version(CniError::new(
                error::INCOMPATIBLE_CNI_VERSION,
                format!("plugin version does not allow {verb}"),
            )));
        }
    }
    if !version::is_supported(&version) {
        return Err(with_version(CniError::with_details(
            error::INCOMPATIBLE_CNI_VERSION,
            "incompatible CNI versions",
            format!(
                "config is {version:?}, plugin supports {:?}",
                version::SUPPORTED_VERSIONS
            ),
        )));
    }
    if matches!(env.command, Command::Add | Command::Del | Command::Check)
        && !env.netns_override
        && super::netns::is_own_netns(&env.netns)
    {
        return Err(with_version(CniError::with_details(
            error::INVALID_NETNS,
            "plugin's netns and netns from CNI_NETNS should not be the same",
            format!(
                "CNI_NETNS {:?} is the namespace the plugin runs in; refusing to touch it",
                env.netns
            ),
        )));
    }
    let conf = NetConf::parse(raw).map_err(with_version)?;
    Ok((Request { env, stdin, conf }, version))
}
