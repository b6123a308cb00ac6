//! `connectivity/*`: real packets through what the plugin built (DESIGN §2).

use std::os::fd::AsFd;
use std::time::Duration;

use crate::case::{Applies, Case, Ctx, Level, Verdict};
use crate::cni::NormalResult;
use crate::probe;
use crate::profile::PluginKind;
use crate::version::SpecVersion;

const ALWAYS: SpecVersion = SpecVersion(0, 1, 0);

/// The cases of this area.
pub const CASES: &[Case] = &[Case {
    id: "connectivity/container-to-gateway",
    title: "the container reaches every gateway in its ADD result with ICMP echo",
    level: Level::Must,
    spec: "SPEC §5 Success (ips[].gateway is the subnet's gateway)",
    applies: Applies {
        kinds: &[PluginKind::Interface],
        since: ALWAYS,
    },
    body: container_to_gateway,
}];

fn container_to_gateway(ctx: &mut Ctx) -> Result<(), Verdict> {
    let att = ctx.attachment()?;
    let out = ctx.add(&att)?;
    ctx.blame = Some(out.record);
    let r = NormalResult::parse(&out.result).map_err(|e| Verdict::fail(format!("result unreadable: {e}")))?;
    let gateways: Vec<_> = r.ips.iter().filter_map(|ip| ip.gateway).collect();
    if gateways.is_empty() {
        return Err(Verdict::Skip("the ADD result names no gateway".into()));
    }
    let mut failures = Vec::new();
    for gw in gateways {
        if let Err(e) = probe::icmp_echo(att.container.fd()?.as_fd(), gw, 56, false, Duration::from_secs(3)) {
            failures.push(format!("{gw}: {e}"));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Verdict::violation(
            "the gateway does not answer from inside the container",
            "an echo reply from each gateway",
            failures.join("; "),
        ))
    }
}
