//! Gratuitous ARP, prepared in one process and sent from a forked child.
//!
//! What `arp_notify` makes the kernel send when a link comes up: for each IPv4 address, a
//! broadcast ARP request whose sender and target address are that address and whose sender
//! hardware address is the link's MAC, so neighbours that cached the address under another MAC
//! (an address reused by a new container) learn the new one.
//!
//! The kernel sends it in the context of the request that brings the link up. When the bridge
//! port already forwards (the veth is created up and on the bridge in one request), that
//! broadcast is copied to every port and handed to every container's ARP code before the request
//! returns: with 1,000 ports that is ~2–3 ms of softirq work charged to ADD. (In upstream's
//! order, host end enslaved first and container end brought up after, the port does not forward
//! yet when the kernel sends it, and the bridge drops it: no neighbour hears it; seen on Linux
//! 6.18.) Sending the same frames from a child that ADD forks before it exits announces the
//! address every time and takes the flood's cost off the runtime's wait.

use super::error::{Error, Result};
use super::netns::run_in_netns;
use super::types::Mac;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `ETH_P_ARP`.
const ETH_P_ARP: u16 = 0x0806;
/// `ETH_P_IP`.
const ETH_P_IP: u16 = 0x0800;
/// `ARPHRD_ETHER`.
const ARPHRD_ETHER: u16 = 1;
/// `ARPOP_REQUEST`.
const ARPOP_REQUEST: u16 = 1;
/// An Ethernet header (14 bytes) followed by an Ethernet/IPv4 ARP packet (28 bytes).
pub const FRAME_LEN: usize = 42;

/// The frame announcing `ip` at `mac`: broadcast destination, ARP request with sender and
/// target protocol address `ip`, sender hardware address `mac`, target hardware address zero.
pub fn frame(mac: Mac, ip: Ipv4Addr) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&mac.0);
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    f[14..16].copy_from_slice(&ARPHRD_ETHER.to_be_bytes());
    f[16..18].copy_from_slice(&ETH_P_IP.to_be_bytes());
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&ARPOP_REQUEST.to_be_bytes());
    f[22..28].copy_from_slice(&mac.0);
    f[28..32].copy_from_slice(&ip.octets());
    // Target hardware address stays zero.
    f[38..42].copy_from_slice(&ip.octets());
    f
}

/// `SIOCGIFNAME`: the name of the link with a given index.
const SIOCGIFNAME: libc::c_ulong = 0x8910;
/// `SIOCGIFHWADDR`: the hardware address of the link with a given name.
const SIOCGIFHWADDR: libc::c_ulong = 0x8927;

/// `struct ifreq`: a link name and a 24-byte union (here an index, or a `sockaddr` whose
/// `sa_data` starts with the MAC).
#[repr(C)]
struct IfReq {
    name: [u8; 16],
    data: [u8; 24],
}

/// Gratuitous ARP frames for one link, with a send-only packet socket opened in the link's
/// namespace. Nothing is sent until [`Announcement::send_in_forked_child`].
pub struct Announcement {
    sock: OwnedFd,
    ifindex: i32,
    mac: Mac,
    frames: Vec<[u8; FRAME_LEN]>,
}

impl Announcement {
    /// Prepares the announcement of `addrs` at `mac` on link `ifindex` of `netns`. The socket
    /// is opened with protocol 0, so it never receives anything.
    pub fn prepare(netns: BorrowedFd<'_>, ifindex: u32, mac: Mac, addrs: &[Ipv4Addr]) -> Result<Self> {
        let ifindex = i32::try_from(ifindex).map_err(|_| Error::invalid("announce", "link index out of range"))?;
        let sock = run_in_netns(netns, || {
            // SAFETY: plain socket(2); the descriptor is owned right away.
            let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
            if fd < 0 {
                Err(Error::io("open a packet socket", std::io::Error::last_os_error()))
            } else {
                // SAFETY: `fd` is a fresh descriptor nothing else owns.
                Ok(unsafe { OwnedFd::from_raw_fd(fd) })
            }
        })??;
        Ok(Self {
            sock,
            ifindex,
            mac,
            frames: addrs.iter().map(|ip| frame(mac, *ip)).collect(),
        })
    }

    /// Whether the link still exists and still has the MAC the frames carry (a later plugin of
    /// the chain may have changed it; the kernel then announced the new one, `arp_notify` being
    /// set). Two ioctls on the packet socket, which resolves names in the link's namespace.
    unsafe fn mac_unchanged(&self) -> bool {
        let mut req = IfReq {
            name: [0; 16],
            data: [0; 24],
        };
        req.data[..4].copy_from_slice(&self.ifindex.to_ne_bytes());
        let fd = self.sock.as_raw_fd();
        if libc::ioctl(fd, SIOCGIFNAME, &mut req as *mut IfReq) != 0 {
            return false;
        }
        req.data = [0; 24];
        if libc::ioctl(fd, SIOCGIFHWADDR, &mut req as *mut IfReq) != 0 {
            return false;
        }
        // sa_family (2 bytes), then the address.
        req.data[2..8] == self.mac.0
    }

    /// Sends every frame once, unless the link is gone or its MAC changed meanwhile; returns
    /// how many the kernel took.
    ///
    /// # Safety
    /// Meant for a freshly forked child of a single-threaded process: it makes raw system
    /// calls only and allocates nothing. (Also safe to call from an ordinary process.)
    pub unsafe fn send_in_forked_child(&self) -> usize {
        if !self.mac_unchanged() {
            return 0;
        }
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = ETH_P_ARP.to_be();
        addr.sll_ifindex = self.ifindex;
        addr.sll_halen = 6;
        addr.sll_addr[..6].copy_from_slice(&[0xff; 6]);
        let mut sent = 0;
        for frame in &self.frames {
            let rc = libc::sendto(
                self.sock.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            );
            if rc == FRAME_LEN as isize {
                sent += 1;
            }
        }
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_is_an_arp_request_for_its_own_address() {
        let mac = Mac([0x02, 0x11, 0x22, 0x33, 0x44, 0x55]);
        let f = frame(mac, Ipv4Addr::new(10, 1, 2, 3));
        assert_eq!(&f[0..6], &[0xff; 6], "broadcast");
        assert_eq!(&f[6..12], &mac.0, "source MAC");
        assert_eq!(&f[12..14], &[0x08, 0x06], "ethertype ARP");
        assert_eq!(&f[14..22], &[0, 1, 0x08, 0, 6, 4, 0, 1], "Ethernet/IPv4 request");
        assert_eq!(&f[22..28], &mac.0, "sender MAC");
        assert_eq!(&f[28..32], &[10, 1, 2, 3], "sender IP");
        assert_eq!(&f[32..38], &[0; 6], "target MAC");
        assert_eq!(&f[38..42], &[10, 1, 2, 3], "target IP");
    }
}
