//! ipMasq through nftables over netlink (work in progress).
