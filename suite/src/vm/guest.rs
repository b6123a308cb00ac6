//! The guest side: its init script, and the channel protocol it speaks (written by `vm/init.sh`,
//! read here).
//!
//! Lines on the channel: `B <uptime>` init started; `M <uptime>` modules loaded and the suite
//! starting; `P <line>` a line of the suite's stderr; `X <status> <uptime>` the suite's exit
//! status; then a line `J`, the suite's stdout verbatim, and a line `E`. `C <cpu line of
//! /proc/stat>` before and after the suite gives the guest's CPU use.

use std::time::Instant;

use super::qemu::Flow;

/// The guest's PID 1 (busybox sh).
pub const INIT: &str = include_str!("../../../vm/init.sh");

/// The module list shipped in `vm/`.
pub const MODULES_LIST: &str = include_str!("../../../vm/modules.list");

/// Modules loaded first when the guest mounts the host's root: the virtio PCI transport, 9p over
/// virtio, and overlayfs (the writable layer in guest memory).
pub const SHARE_MODULES: &[&str] = &["virtio_pci", "9pnet_virtio", "9p", "overlay"];

/// Modules to load at boot and modules to pack for autoloading, from a list in the format of
/// `vm/modules.list`.
pub fn module_lists(text: &str) -> (Vec<String>, Vec<String>) {
    let (mut load, mut auto) = (Vec::new(), Vec::new());
    let mut loading = false;
    for line in text.lines().map(str::trim) {
        match line {
            "" => {}
            l if l.starts_with('#') => {}
            "[load]" => loading = true,
            "[autoload]" => loading = false,
            name if loading => load.push(name.to_string()),
            name => auto.push(name.to_string()),
        }
    }
    (load, auto)
}

/// What the guest said, as it says it.
#[derive(Debug, Default)]
pub struct Transcript {
    /// When `B` arrived (host clock).
    pub booted: Option<Instant>,
    /// Guest uptime at `B`, seconds.
    pub boot_uptime: Option<f64>,
    /// When `M` arrived.
    pub ready: Option<Instant>,
    /// When `X` arrived.
    pub finished: Option<Instant>,
    /// The suite's exit status.
    pub status: Option<i32>,
    /// The suite's stderr lines.
    pub stderr: Vec<String>,
    /// The suite's stdout, once `E` arrived.
    pub stdout: Option<String>,
    /// The guest's `/proc/stat` CPU counters (busy, idle jiffies) before and after the suite.
    pub cpu: Vec<(u64, u64)>,
    in_stdout: Option<String>,
}

impl Transcript {
    /// The fraction of the guest's CPU time that was busy while the suite ran (0 to 1).
    pub fn busy(&self) -> Option<f64> {
        let (first, last) = (self.cpu.first()?, self.cpu.last()?);
        let busy = last.0.checked_sub(first.0)? as f64;
        let idle = last.1.checked_sub(first.1)? as f64;
        (busy + idle > 0.0).then(|| busy / (busy + idle))
    }

    /// Takes one channel line; returns the stderr line to show, if it was one, and whether the
    /// guest is done.
    pub fn feed(&mut self, line: &str) -> (Option<String>, Flow) {
        if let Some(buf) = self.in_stdout.as_mut() {
            if line == "E" {
                let mut text = self.in_stdout.take().unwrap_or_default();
                // The guest adds one newline before `E` in case the output lacked a final one.
                if text.ends_with("\n\n") || text == "\n" {
                    text.pop();
                }
                self.stdout = Some(text);
                return (None, Flow::Done);
            }
            buf.push_str(line);
            buf.push('\n');
            return (None, Flow::Continue);
        }
        let (tag, rest) = line.split_once(' ').unwrap_or((line, ""));
        match tag {
            "B" => {
                self.booted = Some(Instant::now());
                self.boot_uptime = rest.trim().parse().ok();
            }
            "M" => self.ready = Some(Instant::now()),
            "P" => {
                self.stderr.push(rest.to_string());
                return (Some(rest.to_string()), Flow::Continue);
            }
            "X" => {
                self.finished = Some(Instant::now());
                self.status = rest.split_whitespace().next().and_then(|s| s.parse().ok());
            }
            "J" => self.in_stdout = Some(String::new()),
            "C" => {
                // "cpu user nice system idle iowait irq softirq steal ...": idle and iowait are
                // the idle time; the rest is busy.
                let n: Vec<u64> = rest.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
                if n.len() >= 5 {
                    let idle = n[3] + n[4];
                    self.cpu.push((n.iter().sum::<u64>() - idle, idle));
                }
            }
            _ => {}
        }
        (None, Flow::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transcript_follows_the_protocol() {
        let mut t = Transcript::default();
        for l in ["B 1.93", "noise from nowhere", "M 2.40"] {
            assert_eq!(t.feed(l), (None, Flow::Continue));
        }
        assert_eq!(
            t.feed("P [  1/3] PASS a/b (5 ms)").0.as_deref(),
            Some("[  1/3] PASS a/b (5 ms)")
        );
        t.feed("C cpu 10 0 10 100 0 0 0 0 0 0");
        t.feed("C cpu 40 0 40 140 20 0 0 0 0 0");
        t.feed("X 1 40.2");
        t.feed("J");
        t.feed("{");
        t.feed("  \"x\": \"P not progress\"");
        t.feed("}");
        t.feed("");
        assert_eq!(t.feed("E").1, Flow::Done);
        assert_eq!(t.status, Some(1));
        assert_eq!(t.boot_uptime, Some(1.93));
        assert_eq!(t.stdout.as_deref(), Some("{\n  \"x\": \"P not progress\"\n}\n"));
        assert_eq!(t.stderr.len(), 1);
        assert_eq!(
            t.busy(),
            Some(0.5),
            "60 busy and 60 idle jiffies (iowait counts as idle)"
        );
    }

    #[test]
    fn shipped_module_list_loads_the_link_kinds_the_cases_need() {
        let (load, auto) = module_lists(MODULES_LIST);
        for m in ["veth", "bridge", "8021q", "ipvlan", "macvlan"] {
            assert!(load.iter().any(|l| l == m), "{m} not loaded at boot");
        }
        assert!(auto.iter().any(|a| a == "dummy"));
        assert!(INIT.starts_with("#!/bin/sh\n"));
    }
}
