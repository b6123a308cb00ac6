//! Reference CNI plugins (`bridge` and `host-local`) written in Rust, following spec 1.1.0.
//!
//! The crate is self-contained: it shares no code with the conformance suite, so the suite can
//! judge these plugins exactly like any third-party binary.
//!
//! - [`cni`]: the protocol (environment, configuration, results of every version, errors,
//!   VERSION, delegation) and a dispatcher equivalent to the Go `skel` package.
//! - [`host_local`]: the `host-local` IPAM plugin with an on-disk store that is byte-compatible
//!   with the upstream Go plugin.
//! - [`bridge`]: the `bridge` interface plugin.
//! - [`netlink`]: a small synchronous rtnetlink client used by `bridge`.
//! - [`masq`]: ipMasq through nftables over netlink.
//!
//! # Where they differ from the upstream Go plugins (on purpose)
//! - Validation follows skel's order and codes, but `CNI_NETNS` naming the
//!   plugin's own namespace is refused with code 8 *before* anything is done (ADD, DEL, CHECK);
//!   VERSION echoes the request's `cniVersion`; Errors carry `cniVersion` when it is one we
//!   speak; plugin-specific failures use codes ≥ 100 (see [`cni::error`]) instead of 999.
//! - Results are printed in the exact shape of the requested version (1.1-only fields are
//!   dropped for 1.0.0 and 0.x; `dns` is omitted when empty in 1.x).
//! - host-local: reservations are published with `link(2)` so a killed ADD never leaves an
//!   ownerless file; a failed ADD gives back exactly what it took (and `last_reserved_ip`);
//!   GC and STATUS are implemented; an owner index outside the store keeps ADD/DEL constant
//!   in cost; `CNI_ARGS` `IP` is ignored when `args.cni.ips` is given (CONVENTIONS). A
//!   `gateway` outside its subnet is rejected (newer upstream does too; the Debian
//!   1.1.1 build accepts it).
//! - bridge: DEL also cleans up when the netns is gone or `CNI_NETNS` is empty; CHECK also
//!   verifies MTU, bridge membership, masquerading and macspoofchk; GC and STATUS forward to
//!   IPAM and GC removes stale masquerade entries; `prevResult` on ADD is kept (spec) rather
//!   than ignored; L2-only CHECK works; ipMasq is nftables-only (table `inet
//!   cni_rs_masquerade`, one set element per address, see [`masq`]) — `ipMasqBackend:
//!   "iptables"` is refused with code 2; `isGateway` together with `vlan` puts the gateway on a
//!   `<bridge>.<vlan>` veth gateway port as upstream does (CHECK verifies its addresses).
//! - bridge, for speed: when the IPAM plugin found in `CNI_PATH` is this crate's
//!   `host-local` from the same build (an ELF note with a build fingerprint, see [`builtin`]), it
//!   runs in-process through the same dispatcher instead of being executed
//!   (`CNI_REF_NO_INPROCESS_DELEGATE=1` turns that off). DEL does not wait for the kernel to
//!   unregister the veth pair (10 to 40 ms): it brings the container end down and renames it to
//!   a `cnidel<8 hex>` tombstone, renames the host end (which lost its carrier) and puts it in a
//!   device group, and one forked child deletes that group 30 ms later in one request, batching
//!   the pairs of a burst of DELs; GC deletes tombstones whose child died. The host end has no
//!   IPv6 (a bridge port needs none; it keeps the host's IPv6 table from growing with ports). A
//!   bridge it creates gets a random MAC at creation (pinned from the start); an existing
//!   bridge's MAC is pinned only when ADD puts a new gateway address on it, not on every ADD
//!   (each pin makes the kernel walk every IPv6 route). Veth ends are created with one transmit
//!   and one receive queue.
//! - Set `CNI_REF_TRACE=1` to get phase timings on stderr (`2` also times every netlink
//!   request).
#![deny(missing_docs)]

pub mod bridge;
pub mod builtin;
pub mod cni;
pub(crate) mod hash;
pub mod host_local;
pub mod ipnet;
pub mod masq;
pub mod netlink;
