//! The command line: a fixed contract (options, formats and exit codes are what scripts rely on).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Text for people, with progress on stderr.
    Human,
    /// The JSON report.
    Json,
    /// JUnit XML.
    Junit,
}

/// Judges a CNI plugin binary (or a runtime) against the CNI specification, inside private network
/// namespaces.
#[derive(Debug, Parser)]
#[command(name = "cni-conformance", version, about, long_about = None, args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Cli {
    /// `runtime`, `invoke` or `cri`; without one, the command judges a plugin.
    #[command(subcommand)]
    pub mode: Option<Mode>,
    /// Plugin-mode arguments.
    #[command(flatten)]
    pub plugin: PluginArgs,
}

/// The command's modes besides judging a plugin.
#[derive(Debug, Subcommand)]
pub enum Mode {
    /// Judge how a runtime invokes plugins: cni-conformance runtime [OPTIONS] -- CMD...
    Runtime(RuntimeArgs),
    /// Run a plugin or network configuration by hand, like libcni: invoke add|check|del|gc|status ...
    Invoke(InvokeArgs),
    /// Do what kubelet does for one pod over the CRI: cri --endpoint unix:///run/containerd/containerd.sock
    Cri(CriArgs),
}

/// Arguments of runtime mode.
#[derive(Debug, Args)]
pub struct RuntimeArgs {
    /// Report format on stdout.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Also write the report to this file.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// `should` failures and spec/reference differences fail the run.
    #[arg(long)]
    pub strict: bool,
    /// Limit for one run of the runtime command (one scenario), in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 120.0)]
    pub timeout: f64,
    /// The runtime is a CRI runtime: judge the kubernetes/* rules even when no plugin call
    /// carries K8S_POD_* arguments (they are also judged whenever a CRI record or K8S_POD_*
    /// arguments are seen).
    #[arg(long)]
    pub cri: bool,
    /// The QEMU VM options (`--vm` runs the same command in a guest that sees the host's files
    /// read-only).
    #[command(flatten)]
    pub vm: VmArgs,
    /// The runtime command, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// The verbs of `invoke`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InvokeVerb {
    /// ADD the attachment (prints the result).
    Add,
    /// CHECK the attachment.
    Check,
    /// DEL the attachment.
    Del,
    /// GC the network (stale cached attachments are deleted).
    Gc,
    /// STATUS of the network's plugins.
    Status,
}

/// Arguments of `invoke`.
#[derive(Debug, Args)]
pub struct InvokeArgs {
    /// The verb.
    #[arg(value_enum)]
    pub verb: InvokeVerb,
    /// The network configuration (a conflist, or a single plugin object).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// CNI_NETNS: the container's network namespace path (required for add and check).
    #[arg(long, value_name = "PATH")]
    pub netns: Option<String>,
    /// CNI_CONTAINERID (required for add, check and del).
    #[arg(long, value_name = "ID")]
    pub container_id: Option<String>,
    /// CNI_IFNAME.
    #[arg(long, value_name = "NAME", default_value = "eth0")]
    pub ifname: String,
    /// Colon-separated CNI_PATH (default: $CNI_PATH, else /opt/cni/bin:/usr/lib/cni).
    #[arg(long, value_name = "DIRS")]
    pub cni_path: Option<String>,
    /// Result cache directory.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/cni")]
    pub cache_dir: PathBuf,
    /// CNI_ARGS as K=V;K=V.
    #[arg(long, value_name = "K=V;...")]
    pub args: Option<String>,
    /// Capability arguments, a JSON object (e.g. '{"portMappings":[...]}').
    #[arg(long, value_name = "JSON")]
    pub capability_args: Option<String>,
    /// For gc: the attachments still valid, a JSON array of {"containerID","ifname"} (default:
    /// none is valid, so every cached attachment of the network is deleted, like cnitool).
    #[arg(long, value_name = "JSON")]
    pub valid_attachments: Option<String>,
    /// Limit for one plugin invocation, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub timeout: f64,
}

/// Arguments of `cri`, the kubelet stand-in: one pod through `RunPodSandbox`,
/// `PodSandboxStatus`, `StopPodSandbox` and `RemovePodSandbox`.
#[derive(Debug, Args)]
pub struct CriArgs {
    /// The CRI endpoint: unix:///path/to.sock (or a bare socket path), tcp://host:port.
    #[arg(long, value_name = "URL")]
    pub endpoint: String,
    /// Pod name (default: cni-conformance-<scenario> under runtime mode, else cni-conformance).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Pod namespace.
    #[arg(long, value_name = "NS", default_value = "cni-conformance")]
    pub namespace: String,
    /// Pod UID (default: a fresh one).
    #[arg(long, value_name = "UID")]
    pub uid: Option<String>,
    /// Port mapping [HOSTIP:]HOSTPORT:CONTAINERPORT[/tcp|udp|sctp] (repeatable).
    #[arg(long = "port", value_name = "MAPPING", default_values = ["8080:80/tcp", "8053:53/udp"])]
    pub ports: Vec<String>,
    /// The kubernetes.io/ingress-bandwidth annotation ("" for none).
    #[arg(long, value_name = "QUANTITY", default_value = "1M")]
    pub ingress_bandwidth: String,
    /// The kubernetes.io/egress-bandwidth annotation ("" for none).
    #[arg(long, value_name = "QUANTITY", default_value = "2M")]
    pub egress_bandwidth: String,
    /// DNS server of the pod (repeatable).
    #[arg(long, value_name = "IP", default_values = ["10.96.0.10"])]
    pub dns_server: Vec<String>,
    /// DNS search domain of the pod (repeatable).
    #[arg(long, value_name = "DOMAIN", default_values = ["cluster.local"])]
    pub dns_search: Vec<String>,
    /// resolv.conf option of the pod (repeatable).
    #[arg(long, value_name = "OPT", default_values = ["ndots:5"])]
    pub dns_option: Vec<String>,
    /// Parent cgroup of the sandbox (default: the runtime's choice).
    #[arg(long, value_name = "PATH", default_value = "")]
    pub cgroup_parent: String,
    /// Runtime handler (RuntimeClass; default: the runtime's default).
    #[arg(long, value_name = "NAME", default_value = "")]
    pub runtime_handler: String,
    /// Limit for connecting and for each CRI call, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub timeout: f64,
    /// Write what was asked and seen as JSON to FILE (default: $CNI_CONFORMANCE_CRI_RECORD, set
    /// by runtime mode).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Where the runtime keeps named network namespaces (listed before and after, to see what
    /// is left).
    #[arg(long, value_name = "DIR", default_value = "/var/run/netns")]
    pub netns_dir: PathBuf,
}

/// Arguments of plugin mode.
#[derive(Debug, Args)]
pub struct PluginArgs {
    /// The plugin binary to judge (default: the reference bridge and host-local built next to
    /// this command).
    pub plugin: Option<PathBuf>,

    /// Network configuration to use: a plugin object, or a conflist whose last plugin is the one
    /// under test (default: the built-in profile for the plugin's file name).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Colon-separated CNI_PATH (default: the plugin's directory, /opt/cni/bin, /usr/lib/cni).
    #[arg(long, value_name = "DIRS")]
    pub cni_path: Option<String>,

    /// Report format on stdout.
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,

    /// Also write the report to this file.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Print the case ids and titles, one per line, and exit.
    #[arg(long)]
    pub list: bool,

    /// Run only cases whose id or title matches (regular expression; repeatable).
    #[arg(long, value_name = "PAT")]
    pub filter: Vec<String>,

    /// Do not run cases whose id or title matches (regular expression; repeatable).
    #[arg(long, value_name = "PAT")]
    pub skip: Vec<String>,

    /// Limit for one plugin invocation, in seconds; a plugin past it is killed (ADDs run at once
    /// get up to 4 times as long when they outnumber the CPUs).
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub timeout: f64,

    /// Cases in parallel (default: number of CPUs).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,

    /// `should` failures and spec/reference differences fail the run.
    #[arg(long)]
    pub strict: bool,

    /// Keep the lab of a failed case for inspection and print how to enter it.
    #[arg(long)]
    pub keep: bool,

    /// The QEMU VM options (`--vm`).
    #[command(flatten)]
    pub vm: VmArgs,
}

/// Kernel package `--vm` fetches in plugin mode when none is named.
pub const PLUGIN_KERNEL_PACKAGE: &str = "linux-image-cloud-amd64";
/// Kernel package `--vm` fetches in runtime mode: the guest mounts the host's files over 9p under
/// an overlay, which the cloud kernel cannot do.
pub const RUNTIME_KERNEL_PACKAGE: &str = "linux-image-amd64";

/// Options of `--vm`, the same in plugin and runtime mode.
#[derive(Debug, Args)]
pub struct VmArgs {
    /// Run the same command inside a QEMU VM.
    #[arg(long)]
    pub vm: bool,

    /// Kernel image for --vm (default: a Debian kernel fetched with apt and cached).
    #[arg(long, value_name = "FILE", requires = "vm")]
    pub kernel: Option<PathBuf>,

    /// Module directory of --kernel (.../lib/modules/<release>; default: beside the image, then
    /// /lib/modules/<release>).
    #[arg(long, value_name = "DIR", requires = "kernel")]
    pub modules: Option<PathBuf>,

    /// Debian kernel package --vm fetches with apt when no --kernel is given (default:
    /// linux-image-cloud-amd64 for a plugin, linux-image-amd64 in runtime mode, which needs 9p
    /// and overlayfs).
    #[arg(long, value_name = "PKG", requires = "vm", conflicts_with = "kernel")]
    pub kernel_package: Option<String>,

    /// Limit for the whole --vm guest, in seconds; QEMU is killed past it.
    #[arg(long, value_name = "SECS", default_value_t = 1200)]
    pub vm_timeout: u64,

    /// Accelerator for --vm: KVM when a probe boot works (auto), or always kvm or tcg.
    #[arg(long, value_enum, default_value = "auto")]
    pub vm_accel: VmAccel,

    /// Print progress lines on stderr whatever the format (what --vm runs inside the guest).
    #[arg(long, hide = true)]
    pub progress: bool,
}

/// Accelerator choice for `--vm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VmAccel {
    /// KVM when a probe boot under KVM works (the verdict is cached), TCG otherwise.
    Auto,
    /// Always KVM.
    Kvm,
    /// Always TCG (software emulation).
    Tcg,
}
