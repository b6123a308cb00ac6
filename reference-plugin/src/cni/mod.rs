//! The CNI protocol as a plugin sees it.
//!
//! One module per job:
//! - [`error`]: the Error object and its well-known codes;
//! - [`version`]: version strings, the supported list and the VERSION answer;
//! - [`env`](mod@env): the `CNI_*` environment, validated in the order `skel` uses;
//! - [`args`]: the `CNI_ARGS` `K=V;K=V` string;
//! - [`json`]: typed access to JSON configuration with error messages that name the field;
//! - [`config`]: the keys common to every plugin configuration;
//! - [`result`]: the Success result of every spec version and the conversions between them;
//! - [`netns`]: the "is `CNI_NETNS` my own namespace?" test;
//! - [`delegate`]: running a delegated (IPAM) plugin found through `CNI_PATH`;
//! - [`dispatch`]: the skel-equivalent main loop a plugin binary calls;
//! - [`trace`]: phase timings on stderr when `CNI_REF_TRACE=1`.

pub mod args;
pub mod config;
pub mod delegate;
pub mod dispatch;
pub mod env;
pub mod error;
pub mod json;
pub mod netns;
pub mod result;
pub mod trace;
pub mod version;

pub use config::NetConf;
pub use error::CniError;
