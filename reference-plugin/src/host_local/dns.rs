//! `resolvConf`: the `nameserver`, `domain`, `search` and `options` lines of a resolv.conf file
//! become the result's `dns`. Lines starting with `#` or `;` are comments.

use crate::cni::error::CniError;
use crate::cni::result::Dns;
use std::path::Path;

/// Parse a resolv.conf file.
pub fn parse_resolv_conf(path: &Path) -> Result<Dns, CniError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CniError::io(format!("cannot read resolvConf {}: {e}", path.display())))?;
    Ok(parse_resolv_text(&text))
}

/// Parse the text of a resolv.conf file.
pub fn parse_resolv_text(text: &str) -> Dns {
    let mut dns = Dns::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 2 {
            continue;
        }
        let rest = fields[1..].iter().map(|s| s.to_string());
        match fields[0] {
            "nameserver" => dns.nameservers.push(fields[1].to_string()),
            "domain" => dns.domain = fields[1].to_string(),
            "search" => dns.search.extend(rest),
            "options" => dns.options.extend(rest),
            _ => {}
        }
    }
    dns
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_all_keys() {
        let dns = parse_resolv_text(
            "# c\n; c\nnameserver 1.1.1.1\nnameserver ::1\ndomain example.com\nsearch a b\noptions ndots:2 edns0\nbogus\n",
        );
        assert_eq!(dns.nameservers, ["1.1.1.1", "::1"]);
        assert_eq!(dns.domain, "example.com");
        assert_eq!(dns.search, ["a", "b"]);
        assert_eq!(dns.options, ["ndots:2", "edns0"]);
    }
}
