//! The nodes file: one address per line, in PNN order.  A line starting
//! with '#' is a deleted node (it keeps its PNN slot); blank lines are skipped.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// TCP port of the node transport (the "ctdb" service).
pub const CTDB_PORT: u16 = 4379;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub pnn: u32,
    pub addr: SocketAddr,
    pub deleted: bool,
}

/// The nodes of the nodes file at `path`: an error when it cannot be read,
/// does not parse, or lists no node that is not deleted.
pub fn read(path: &std::path::Path) -> Result<Vec<Node>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("Failed to read nodes file \"{}\": {}", path.display(), e))?;
    let nodes = parse(&text)?;
    if nodes.iter().all(|n| n.deleted) {
        return Err(format!("No nodes in nodes file \"{}\"", path.display()));
    }
    Ok(nodes)
}

pub fn parse(text: &str) -> Result<Vec<Node>, String> {
    let mut lines: Vec<&str> = text.lines().collect();
    while lines.last() == Some(&"") {
        lines.pop();
    }
    let mut nodes = Vec::new();
    for line in lines {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let pnn = nodes.len() as u32;
        if line.starts_with('#') {
            nodes.push(Node {
                pnn,
                addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), CTDB_PORT),
                deleted: true,
            });
            continue;
        }
        let ip: IpAddr = line
            .parse()
            .map_err(|_| format!("Invalid node address \"{line}\""))?;
        nodes.push(Node {
            pnn,
            addr: SocketAddr::new(ip, CTDB_PORT),
            deleted: false,
        });
    }
    Ok(nodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_deleted_and_blank_lines() {
        let n = parse("127.0.0.1\n\n#127.0.0.2\n  127.0.0.3  \n\n").unwrap();
        assert_eq!(n.len(), 3);
        assert_eq!(n[0].addr, "127.0.0.1:4379".parse().unwrap());
        assert!(n[1].deleted);
        assert_eq!(n[2].pnn, 2);
        assert!(parse("nonsense\n").is_err());
    }
}
