//! The kubelet stand-in (`cni-conformance cri`): a CRI v1 client that does for one pod what
//! kubelet does, so runtime mode can judge the CNI calls a CRI runtime makes for a pod.
//!
//! - [`proto`]: the CRI v1 messages used, written by hand for prost.
//! - [`client`]: the gRPC client (tonic), with time limits and errors naming the endpoint.
//! - [`pod`]: the pod asked for, as a CRI request and as the CNI forms derived from it.
//! - [`record`]: the JSON record of what was asked and seen (the evidence contract).
//! - [`standin`]: the sequence of calls.

pub mod client;
pub mod pod;
pub mod proto;
pub mod record;
pub mod standin;
