//! [`Rtnl`]: one `NETLINK_ROUTE` socket bound to one network namespace, and the request
//! plumbing every operation shares.

use std::os::fd::BorrowedFd;

use super::error::{Error, Result};
use super::netns::run_in_netns;
use super::socket::{NlSocket, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};
use super::wire::{MsgBuf, NlMsg};

/// A route-netlink client bound to one network namespace.
///
/// Every method is one request and its answer (a few are two); nothing is cached. The socket
/// keeps talking to the namespace it was opened in, whichever thread uses it later.
pub struct Rtnl {
    pub(crate) sock: NlSocket,
}

impl Rtnl {
    /// Opens a client in the calling thread's network namespace.
    pub fn new() -> Result<Self> {
        let sock = NlSocket::open(libc::NETLINK_ROUTE, true).map_err(|e| Error::io("open NETLINK_ROUTE socket", e))?;
        Ok(Self { sock })
    }

    /// Opens a client bound to the network namespace `netns` (an open namespace file), from a
    /// short-lived thread; the calling thread does not move.
    pub fn in_netns(netns: BorrowedFd<'_>) -> Result<Self> {
        run_in_netns(netns, Rtnl::new)?
    }

    /// Starts a request message in `buf` and returns its sequence number.
    pub(crate) fn begin(&self, buf: &mut MsgBuf, msg_type: u16, flags: u16) -> u32 {
        let seq = self.sock.next_seq();
        buf.begin(msg_type, NLM_F_REQUEST | flags, seq);
        seq
    }

    /// Sends a finished request that wants only an acknowledgement.
    pub(crate) fn ack(&self, buf: &mut MsgBuf, seq: u32, op: impl FnOnce() -> String) -> Result<()> {
        buf.finish();
        self.sock
            .transact(buf.bytes(), seq, |_| {})
            .map_err(|f| f.into_error(op()))
    }

    /// Sends a finished request and hands each reply message to `on_msg`.
    pub(crate) fn collect(
        &self,
        buf: &mut MsgBuf,
        seq: u32,
        on_msg: impl FnMut(&NlMsg<'_>),
        op: impl FnOnce() -> String,
    ) -> Result<()> {
        buf.finish();
        self.sock
            .transact(buf.bytes(), seq, on_msg)
            .map_err(|f| f.into_error(op()))
    }

    /// Flags for a dump request.
    pub(crate) const DUMP: u16 = NLM_F_DUMP;
    /// Flags for a request that wants an acknowledgement.
    pub(crate) const ACK: u16 = NLM_F_ACK;
}
