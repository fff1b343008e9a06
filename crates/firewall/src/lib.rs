//! The host firewall of pbxguard, pure: what the daemon and the CLI need to know about nftables
//! without doing any I/O here. The daemon sends what this crate builds (`nft -f` text, nfnetlink
//! batches) and feeds back what it reads.
//!
//! Everything pbxguard owns lives in one table, `inet pbxguard`; other tables (firewalld, ufw, docker,
//! an operator's own) are never touched.

pub mod bans;
pub mod model;
pub mod netlink;
pub mod ranges;
pub mod render;

/// The one table pbxguard owns.
pub const TABLE: &str = "pbxguard";
/// The table's family: one table for IPv4 and IPv6.
pub const FAMILY: &str = "inet";

/// The sets, by name, as the rules and the enforcer know them.
pub mod sets {
    pub const BANNED4: &str = "banned4";
    pub const BANNED6: &str = "banned6";
    pub const BLACKLIST4: &str = "blacklist4";
    pub const BLACKLIST6: &str = "blacklist6";
    pub const TRUSTED4: &str = "trusted4";
    pub const TRUSTED6: &str = "trusted6";
}
