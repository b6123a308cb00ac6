//! The sealed lab each case runs in.
//!
//! A lab is a [`sandbox`] (its own PID, mount, network, UTS and IPC namespaces, a root file system
//! whose every write lands in a per-lab layer, private `/run` and `/var/lib/cni`), whose network
//! namespace is the plugin's "host"; an "outside" namespace reached over an uplink veth; and any
//! number of container namespaces bind-mounted under the lab's private `/run/netns`. Every process
//! started in the lab lives in its PID namespace. When the lab is dropped, or the suite exits even
//! by SIGKILL, the lab's init ends and the kernel frees every namespace, process and file of it.
//! Nothing in the machine's own namespaces or files is touched.
//!
//! ```text
//!  [outside ns] 198.18.0.2/24 (+198.19.0.1/32 on lo) <-- uplink --> 198.18.0.1/24 [lab host ns]
//!                                                                     |-- [container ns ...]
//! ```

pub mod dhcp_server;
pub mod firewall;
mod keep;
pub mod plugin_daemon;
pub mod sandbox;
pub mod service;
pub mod snapshot;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::net::{IpNet, Rtnl};
use crate::ns::{self, NsError};

pub use dhcp_server::{DhcpSegment, DhcpServerSpec};
pub use keep::KeptLab;
pub use plugin_daemon::DaemonSpec;
pub use sandbox::procs::LabProcess;
use sandbox::Sandbox;
pub use service::Service;
pub use snapshot::HostSnapshot;

/// The lab host's address on the uplink.
pub const UPLINK_HOST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The outside namespace's address on the uplink (the lab host's default gateway).
pub const UPLINK_OUTSIDE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// An address behind the outside host, reached only through the lab host's default route.
pub const REMOTE: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
/// Name of the uplink link in the lab host namespace.
pub const UPLINK_IFNAME: &str = "uplink0";
/// Directory (inside the lab) that holds namespace files.
pub const NETNS_DIR: &str = "/run/netns";

/// Errors while building or using a lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A namespace operation failed.
    #[error(transparent)]
    Ns(#[from] NsError),
    /// A netlink request failed.
    #[error("lab network setup: {0}")]
    Net(#[from] crate::net::NetError),
    /// Reading packet-filter state failed.
    #[error("lab firewall snapshot: {0}")]
    Firewall(#[from] firewall::FirewallError),
    /// A container name was used twice or is unknown.
    #[error("container namespace {0:?}: {1}")]
    Container(String, &'static str),
    /// The sandbox could not be built.
    #[error(transparent)]
    Sandbox(#[from] sandbox::SandboxError),
    /// Something else (a file in the lab, a process).
    #[error("{0}")]
    Other(String),
}

/// A container network namespace inside the lab.
#[derive(Debug)]
pub struct ContainerNs {
    /// Short name given by the case.
    pub name: String,
    /// Path of the namespace file inside the lab (the `CNI_NETNS` value).
    pub path: PathBuf,
    /// The suite's handle; dropped when the namespace is removed so the kernel can free it.
    fd: Mutex<Option<OwnedFd>>,
}

impl ContainerNs {
    /// A fresh handle to the namespace (the caller drops it when done, so nothing pins a removed
    /// namespace); an error once the namespace was removed.
    pub fn fd(&self) -> Result<OwnedFd, LabError> {
        let guard = self
            .fd
            .lock()
            .map_err(|_| LabError::Other("namespace handle poisoned".into()))?;
        let fd = guard
            .as_ref()
            .ok_or_else(|| LabError::Container(self.name.clone(), "was removed"))?;
        fd.try_clone()
            .map_err(|e| LabError::Other(format!("dup namespace handle: {e}")))
    }
}

/// One sealed lab. Fields drop in order: services before the sandbox, whose end kills the rest.
#[derive(Debug)]
pub struct Lab {
    /// Processes started for the lab's life; dropped (killed and reaped) with it.
    services: Mutex<Vec<Service>>,
    /// The DHCP segment, when the profile needs one.
    dhcp: OnceLock<DhcpSegment>,
    outside: OwnedFd,
    containers: Mutex<HashMap<String, Arc<ContainerNs>>>,
    /// Invocations running in the lab right now (a leftover sweep waits for none).
    running: AtomicUsize,
    /// Directories the profile names as the plugin's data places, besides `/run` and
    /// `/var/lib/cni` (e.g. host-local's `dataDir`).
    data_dirs: Mutex<Vec<PathBuf>>,
    sandbox: Sandbox,
}

impl Lab {
    /// Builds a new lab: the sandbox, outside host and uplink.
    pub fn new() -> Result<Self, LabError> {
        let sandbox = Sandbox::start()?;
        ns::run_in(Some(sandbox.net()), None, ns::bring_lo_up)?;
        let mnt = sandbox.mnt();
        ns::run_in(None, Some(mnt), || {
            std::fs::create_dir_all(NETNS_DIR).map_err(ns::io_err(format!("mkdir {NETNS_DIR}")))
        })?;
        let outside = ns::create_netns_file(mnt, &Path::new(NETNS_DIR).join("outside"))?;
        let lab = Lab {
            services: Mutex::new(Vec::new()),
            dhcp: OnceLock::new(),
            outside,
            containers: Mutex::new(HashMap::new()),
            running: AtomicUsize::new(0),
            data_dirs: Mutex::new(Vec::new()),
            sandbox,
        };
        lab.wire_uplink()?;
        Ok(lab)
    }

    fn wire_uplink(&self) -> Result<(), LabError> {
        let host = self.host_rtnl()?;
        host.create_veth(UPLINK_IFNAME, "eth0", Some(self.outside.as_fd()))?;
        let up = host
            .link_by_name(UPLINK_IFNAME)?
            .ok_or_else(|| crate::net::NetError::NoSuchLink(UPLINK_IFNAME.into()))?;
        host.add_address(up.index, net(IpAddr::V4(UPLINK_HOST), 24))?;
        host.set_up(up.index, true)?;
        host.add_route(None, Some(IpAddr::V4(UPLINK_OUTSIDE)), Some(up.index))?;

        let out = self.outside_rtnl()?;
        let eth0 = out
            .link_by_name("eth0")?
            .ok_or_else(|| crate::net::NetError::NoSuchLink("eth0".into()))?;
        out.add_address(eth0.index, net(IpAddr::V4(UPLINK_OUTSIDE), 24))?;
        out.set_up(eth0.index, true)?;
        let lo = out
            .link_by_name("lo")?
            .ok_or_else(|| crate::net::NetError::NoSuchLink("lo".into()))?;
        out.add_address(lo.index, net(IpAddr::V4(REMOTE), 32))?;
        Ok(())
    }

    /// The lab host's network namespace (where the plugin runs).
    pub fn host_net(&self) -> BorrowedFd<'_> {
        self.sandbox.net()
    }

    /// The lab's mount namespace.
    pub fn mnt(&self) -> BorrowedFd<'_> {
        self.sandbox.mnt()
    }

    /// The lab's sandbox (PID namespace, writable layer).
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// The outside namespace.
    pub fn outside_net(&self) -> BorrowedFd<'_> {
        self.outside.as_fd()
    }

    /// A netlink socket in the lab host namespace.
    pub fn host_rtnl(&self) -> Result<Rtnl, LabError> {
        Ok(Rtnl::in_netns(self.host_net())?)
    }

    /// A netlink socket in the outside namespace.
    pub fn outside_rtnl(&self) -> Result<Rtnl, LabError> {
        Ok(Rtnl::in_netns(self.outside_net())?)
    }

    /// Creates the container namespace `name` (file `/run/netns/<name>` in the lab).
    pub fn add_container(&self, name: &str) -> Result<Arc<ContainerNs>, LabError> {
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(LabError::Container(name.into(), "names are letters, digits, - and _"));
        }
        let mut map = self
            .containers
            .lock()
            .map_err(|_| LabError::Other("container map poisoned".into()))?;
        if map.contains_key(name) {
            return Err(LabError::Container(name.into(), "already exists"));
        }
        let path = Path::new(NETNS_DIR).join(name);
        let fd = ns::create_netns_file(self.mnt(), &path)?;
        let c = Arc::new(ContainerNs {
            name: name.into(),
            path,
            fd: Mutex::new(Some(fd)),
        });
        map.insert(name.into(), Arc::clone(&c));
        Ok(c)
    }

    /// Deletes a container namespace file, as a runtime does when a container dies. Handles that
    /// are still open keep the namespace itself alive until they close.
    pub fn remove_container(&self, name: &str) -> Result<(), LabError> {
        let mut map = self
            .containers
            .lock()
            .map_err(|_| LabError::Other("container map poisoned".into()))?;
        let c = map
            .remove(name)
            .ok_or_else(|| LabError::Container(name.into(), "unknown"))?;
        ns::remove_netns_file(self.mnt(), &c.path)?;
        if let Ok(mut fd) = c.fd.lock() {
            fd.take();
        }
        Ok(())
    }

    /// A netlink socket inside a container namespace.
    pub fn container_rtnl(&self, c: &ContainerNs) -> Result<Rtnl, LabError> {
        Ok(Rtnl::in_netns(c.fd()?.as_fd())?)
    }

    /// Snapshot of the lab host: links, addresses, routes, sysctls, packet filter, data dirs.
    pub fn snapshot(&self) -> Result<HostSnapshot, LabError> {
        snapshot::take(self)
    }

    /// Keeps the lab alive after the suite exits (for `--keep`) and says how to enter it.
    pub fn keep(&mut self) -> Result<KeptLab, LabError> {
        keep::keep(&mut self.sandbox)
    }

    /// Starts a DHCP server on a segment of its own (see [`dhcp_server`]); at most once per lab.
    pub fn start_dhcp_server(&self, spec: &DhcpServerSpec) -> Result<(), LabError> {
        if self.dhcp.get().is_some() {
            return Err(LabError::Other("the lab already has a DHCP server".into()));
        }
        let segment = DhcpSegment::start(&self.sandbox, spec)?;
        self.dhcp
            .set(segment)
            .map_err(|_| LabError::Other("the lab already has a DHCP server".into()))
    }

    /// Gives a container a link `ifname` on the DHCP segment (what an interface plugin would
    /// have made before calling its IPAM delegate).
    pub fn plug_into_dhcp_segment(&self, c: &ContainerNs, ifname: &str) -> Result<(), LabError> {
        let segment = self
            .dhcp
            .get()
            .ok_or_else(|| LabError::Other("the lab has no DHCP segment".into()))?;
        segment.plug(c.fd()?.as_fd(), ifname)
    }

    /// The DHCP server's active leases, one line each (empty without a DHCP server).
    pub fn dhcp_leases(&self) -> Result<Vec<String>, LabError> {
        let Some(segment) = self.dhcp.get() else {
            return Ok(Vec::new());
        };
        let text = self.read_file(segment.lease_file())?.unwrap_or_default();
        Ok(dhcp_server::parse_leases(&String::from_utf8_lossy(&text)))
    }

    /// Starts a plugin's daemon in the lab host (see [`plugin_daemon`]) and waits until it serves.
    pub fn start_plugin_daemon(&self, spec: &DaemonSpec) -> Result<(), LabError> {
        let service = plugin_daemon::start(&self.sandbox, spec)?;
        self.services
            .lock()
            .map_err(|_| LabError::Other("service list poisoned".into()))?
            .push(service);
        Ok(())
    }

    /// Lab pids of the lab's own services (plugin daemons, DHCP server): they live in the lab by
    /// design and are not the plugin's leftovers.
    pub fn service_pids(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = match self.services.lock() {
            Ok(list) => list.iter().map(Service::lab_pid).collect(),
            Err(_) => Vec::new(),
        };
        if let Some(seg) = self.dhcp.get() {
            pids.push(seg.server().lab_pid());
        }
        pids
    }

    /// Processes running in the lab other than its init and its services.
    pub fn processes(&self) -> Result<Vec<LabProcess>, LabError> {
        Ok(sandbox::procs::list(&self.sandbox, &self.service_pids())?)
    }

    /// Marks an invocation as running in the lab until the guard drops.
    pub fn running(&self) -> RunningGuard<'_> {
        self.running.fetch_add(1, Ordering::SeqCst);
        RunningGuard(self)
    }

    /// Waits up to `grace` for processes left in the lab (other than its services) to end, kills
    /// the rest and returns them. Does nothing while an invocation runs in the lab (a
    /// concurrent call's processes are not leftovers); the last one to finish sweeps.
    pub fn sweep_leftovers(&self, grace: std::time::Duration) -> Result<Vec<LabProcess>, LabError> {
        let until = std::time::Instant::now() + grace;
        loop {
            if self.running.load(Ordering::SeqCst) > 0 {
                return Ok(Vec::new());
            }
            let left = self.processes()?;
            if left.is_empty() {
                return Ok(left);
            }
            if std::time::Instant::now() >= until {
                let pids: Vec<i32> = left.iter().map(|p| p.pid).collect();
                sandbox::procs::kill(&self.sandbox, &pids)?;
                return Ok(left);
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Adds a directory the plugin keeps its data in (its files are data, like `/var/lib/cni`).
    pub fn add_data_dir(&self, dir: PathBuf) {
        if let Ok(mut dirs) = self.data_dirs.lock() {
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }

    /// The plugin's data places: `/var/lib/cni`, `/run` and the profile's data directories.
    pub fn data_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = snapshot::DATA_DIRS.iter().map(PathBuf::from).collect();
        if let Ok(extra) = self.data_dirs.lock() {
            dirs.extend(extra.iter().cloned());
        }
        dirs
    }

    /// The last lines each lab service (plugin daemon, DHCP server) printed, as
    /// `name (pid N): lines` — for findings about plugins that work through them.
    pub fn service_logs(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Ok(list) = self.services.lock() {
            for s in list.iter() {
                out.push(format!(
                    "{} (pid {}): {}",
                    s.name(),
                    s.pid(),
                    service::read_tail(self.mnt(), s.log_path())
                ));
            }
        }
        if let Some(seg) = self.dhcp.get() {
            let s = seg.server();
            out.push(format!(
                "{} (pid {}): {}",
                s.name(),
                s.pid(),
                service::read_tail(self.mnt(), s.log_path())
            ));
        }
        out
    }

    /// Reads a file inside the lab's mount namespace (e.g. a plugin's data file).
    pub fn read_file(&self, path: &Path) -> Result<Option<Vec<u8>>, LabError> {
        let path = path.to_path_buf();
        Ok(ns::run_in(None, Some(self.mnt()), move || {
            match std::fs::read(&path) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(NsError::Sys {
                    op: format!("read {}", path.display()),
                    source: e,
                }),
            }
        })?)
    }
}

fn net(addr: IpAddr, prefix: u8) -> IpNet {
    IpNet { addr, prefix }
}

/// Holds one running invocation's place in the lab's count.
#[derive(Debug)]
pub struct RunningGuard<'a>(&'a Lab);

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}
