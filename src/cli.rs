use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Security-first SIP PBX edge.
#[derive(Debug, Parser)]
#[command(name = "pbxguard", version, about)]
pub(crate) struct Cli {
    /// Data directory (database, keys, certificates), shared by the daemon and every command.
    /// Default: ./pbxguard-data (for `run`, the config file's data_dir if set).
    #[arg(long, global = true, env = "PBXGUARD_DATA")]
    pub(crate) data: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the daemon (SIP registrar over UDP, TCP and TLS).
    Run(RunArgs),
    /// Manage extensions (SIP accounts).
    #[command(subcommand)]
    Ext(ExtCommand),
    /// Show registrations.
    #[command(subcommand)]
    Reg(RegCommand),
    /// Run-time settings, stored in the database and applied by a running daemon within a second.
    #[command(subcommand)]
    Settings(SettingsCommand),
    /// Banned addresses: list, add, remove.
    #[command(subcommand)]
    Bans(BansCommand),
    /// Trusted networks: never banned, never flood-limited.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// ACL groups: where extensions may be used from.
    #[command(subcommand)]
    Acl(AclCommand),
    /// VoIP blacklists (voipbl format): import, check, stats.
    #[command(subcommand)]
    Blacklist(BlacklistCommand),
    /// Import extensions and mailboxes (Asterisk/FreePBX configs, CSV).
    #[command(subcommand)]
    Import(ImportCommand),
    /// Export extensions as CSV (number, acl, algorithms, compliant, mailbox, must_initialise). Secrets
    /// exist only as hashes and are never exported.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Voicemail mailboxes (PINs, forced initialisation).
    #[command(subcommand)]
    Vm(VmCommand),
    /// Admin accounts (argon2id); the first is admin/admin and must be changed first.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// API tokens for the REST API and /metrics (bearer tokens; shown once, stored hashed).
    #[command(subcommand)]
    Token(TokenCommand),
    /// The TLS certificate (SIP TLS and the GUI): show, import a chain and key, make a key and CSR,
    /// obtain one by ACME. A running daemon serves a new certificate within two seconds.
    #[command(subcommand)]
    Cert(CertCommand),
    /// How hardened this server is: every check with its severity, evidence and the exact fix, and a
    /// score out of 100. Exits 1 when something critical is found.
    Audit(AuditArgs),
    /// Trunks: upstream SIP gateways for external calls.
    #[command(subcommand)]
    Trunk(TrunkCommand),
    /// Outbound routes: number patterns to trunks, tried in order.
    #[command(subcommand)]
    Route(RouteCommand),
    /// Classes of Service: which categories of numbers an extension may call.
    #[command(subcommand)]
    Cos(CosCommand),
    /// Inbound numbers (DIDs) from trunks to extensions.
    #[command(subcommand)]
    Did(DidCommand),
    /// Calls in progress and recent calls.
    #[command(subcommand)]
    Calls(CallsCommand),
    /// The host firewall (nftables table inet pbxguard): the wizard, render, apply with rollback,
    /// confirm, status, disable.
    #[command(subcommand)]
    Firewall(FirewallCommand),
    /// sshd as pbxguard manages it: status (ports, root login, password authentication, allowed
    /// sources, SSH guard), set (one drop-in, validated by `sshd -t`, then sshd reloaded), confirm.
    #[command(subcommand)]
    Ssh(SshCommand),
    /// Security events (newest last).
    Events {
        /// Keep printing new events as they happen.
        #[arg(long, short)]
        follow: bool,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// How many past events to show first.
        #[arg(long, default_value_t = 50)]
        last: i64,
    },
    /// Write a consistent copy of the database (extensions, settings, bans, trunks, registrations,
    /// events) to FILE, mode 0600; safe while the daemon runs.
    Backup {
        /// The file to write; it must not exist yet.
        file: PathBuf,
    },
    /// Put a backup in place as the database of the data directory (created if missing). Refused while
    /// a daemon runs on it, and for a backup made by a newer pbxguard.
    Restore {
        /// A file written by `pbxguard backup`.
        file: PathBuf,
        /// Replace the data directory's database (it is kept beside, renamed .before-restore-TIME).
        #[arg(long)]
        force: bool,
    },
    /// Print a shell completion script (e.g. `pbxguard completions bash > /etc/bash_completion.d/pbxguard`).
    #[command(hide = true)]
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one page per subcommand into a directory.
    #[command(hide = true)]
    Man {
        /// Write pbxguard.1 and pbxguard-SUBCOMMAND.1 pages into DIR instead of printing pbxguard.1.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum BansCommand {
    /// Bans in force, with reason, evidence, first seen, expiry.
    List {
        /// Print JSON (fields in README, "--json output").
        #[arg(long)]
        json: bool,
    },
    /// Ban an address or network.
    Add {
        /// An IP address or CIDR network (203.0.113.9, 198.51.100.0/24, 2001:db8::/48).
        target: String,
        /// Why (kept with the ban).
        #[arg(long)]
        reason: String,
        /// How long (e.g. 30m, 12h, 7d; at most 3650d, 10 years); default: until removed.
        #[arg(long = "for")]
        duration: Option<String>,
        /// Allow a network wider than /8 (IPv4) or /32 (IPv6), 0.0.0.0/0 included.
        #[arg(long)]
        force: bool,
    },
    /// Lift a ban (it stays lifted across restarts).
    Del {
        /// The banned address or network, as `bans list` shows it.
        target: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TrustCommand {
    /// Trust a network. Bans inside it stay stored, overridden while the trust lasts.
    Add {
        /// An IP address or CIDR network.
        cidr: String,
        /// Why it is trusted (kept with it).
        #[arg(long)]
        note: Option<String>,
        /// Allow a network wider than /8 (IPv4) or /32 (IPv6), 0.0.0.0/0 included.
        #[arg(long)]
        force: bool,
    },
    /// Trusted networks, with their note.
    List {
        /// Print JSON (fields in README, "--json output").
        #[arg(long)]
        json: bool,
    },
    /// Stop trusting a network (bans it overrode apply again).
    Del {
        /// The network, as `trust list` shows it.
        cidr: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AclCommand {
    /// Create or replace a group. Rules: CIDR to allow, !CIDR (or deny:CIDR) to deny; the most specific
    /// match decides, and an address no rule matches is denied.
    Add {
        /// The group's name.
        name: String,
        /// Rules: CIDR to allow, !CIDR or deny:CIDR to deny (e.g. 10.0.0.0/8 !10.9.0.0/16).
        #[arg(required = true, allow_hyphen_values = true)]
        rules: Vec<String>,
        /// Allow an allow rule wider than /8 (IPv4) or /32 (IPv6), 0.0.0.0/0 included.
        #[arg(long)]
        force: bool,
    },
    /// ACL groups with their rules.
    List {
        /// Print JSON (fields in README, "--json output").
        #[arg(long)]
        json: bool,
    },
    /// Delete a group (refused while an extension uses it).
    Del {
        /// The group's name.
        name: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Bootstrap configuration file (TOML; every key optional).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// SIP over UDP listen address (repeat for several; "off" disables). Default 0.0.0.0:5060.
    #[arg(long = "sip-udp")]
    pub(crate) sip_udp: Vec<String>,
    /// SIP over TCP listen address (repeat for several; "off" disables). Default 0.0.0.0:5060.
    #[arg(long = "sip-tcp")]
    pub(crate) sip_tcp: Vec<String>,
    /// SIP over TLS listen address (repeat for several; "off" disables). Default 0.0.0.0:5061.
    #[arg(long = "sip-tls")]
    pub(crate) sip_tls: Vec<String>,
    /// Admin GUI and REST API over HTTPS: listen address, or "off". Default 0.0.0.0:5555 (the
    /// configuration file's `gui.listen`).
    #[arg(long, value_name = "ADDR|off", overrides_with = "gui")]
    pub(crate) gui: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ExtCommand {
    /// Add an extension. The secret is stored only as digest hashes (HA1).
    Add {
        /// The extension number (digits, 1-20, the SIP user name phones register with).
        number: String,
        #[command(flatten)]
        secret: SecretArgs,
        /// Digest algorithms offered to this extension, in order (e.g. "SHA-256,MD5"); default: the
        /// global setting auth.algorithms.
        #[arg(long)]
        algorithms: Option<String>,
        /// ACL group: the extension may only be used from the networks it allows.
        #[arg(long)]
        acl: Option<String>,
        /// Class of Service (default: the CoS named "default" if one exists, else internal, emergency,
        /// local, national and toll-free).
        #[arg(long)]
        cos: Option<String>,
    },
    /// Assign a Class of Service to an extension ("none": the default).
    Cos {
        /// The extension.
        number: String,
        /// A Class of Service name (`cos list`), or "none".
        cos: String,
    },
    /// Re-enable outbound calls of an extension suspended by the toll-fraud limits.
    Enable {
        /// The suspended extension.
        number: String,
    },
    /// Set an extension's own toll-fraud limits ("default": the global fraud.* setting again).
    Limits {
        /// The extension.
        number: String,
        /// Concurrent trunk calls (1-1000).
        #[arg(long)]
        concurrent: Option<String>,
        /// Trunk call attempts in any 60 minutes (1-1000000).
        #[arg(long)]
        per_hour: Option<String>,
        /// Longest trunk call, such as 2h or 90m (1s-7d), or "off" (calls.max_trunk_duration).
        #[arg(long)]
        max_duration: Option<String>,
    },
    /// Assign an ACL group to an extension ("none" removes it).
    Acl {
        /// The extension.
        number: String,
        /// An ACL group name (`acl list`), or "none".
        group: String,
    },
    /// List extensions.
    List {
        /// Print JSON (fields in README, "--json output").
        #[arg(long)]
        json: bool,
    },
    /// Show one extension (as `list` does).
    Show {
        /// The extension.
        number: String,
        /// Print JSON (the fields of `ext list --json`).
        #[arg(long)]
        json: bool,
    },
    /// Change an extension's secret.
    Passwd {
        /// The extension.
        number: String,
        #[command(flatten)]
        secret: SecretArgs,
    },
    /// Delete an extension and its registrations.
    Del {
        /// The extension.
        number: String,
    },
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub(crate) struct SecretArgs {
    /// The secret (visible in the process list and shell history: prefer --generate).
    #[arg(long)]
    pub(crate) secret: Option<String>,
    /// Generate a strong random secret and print it once.
    #[arg(long)]
    pub(crate) generate: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RegCommand {
    /// List current registrations.
    List {
        /// Print JSON (fields in README, "--json output").
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SettingsCommand {
    /// Every setting with its value, default and meaning.
    List {
        /// Print JSON (fields in README, "--json output").
        #[arg(long)]
        json: bool,
    },
    /// One setting's value.
    Get {
        /// The setting's key, such as auth.algorithms (`settings list` shows them all).
        key: String,
    },
    /// Change a setting (validated first; nothing changes on error).
    Set {
        /// The setting's key, such as auth.algorithms (`settings list` shows them all).
        key: String,
        /// The new value; an invalid one is refused with the allowed values named.
        value: String,
        /// For password_policy.*: print fixed extensions and their new secrets as CSV (number,secret).
        #[arg(long)]
        csv: bool,
    },
    /// Put a setting back to its default.
    Reset {
        /// The setting's key.
        key: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum BlacklistCommand {
    /// Import (or replace) a list from a file or an http(s) URL; URL lists are refreshed on a schedule
    /// (setting blacklist.refresh).
    Import {
        /// A file path, or an http(s) URL.
        source: String,
        /// Name of the list (default: the URL's host or the file's name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Which list and entry match an address (and whether a trusted network overrides it).
    Check {
        /// The address to look up.
        ip: std::net::IpAddr,
    },
    /// Lists with their size, source and last refresh.
    Stats {
        /// Print JSON (fields in README, "--json output").
        #[arg(long)]
        json: bool,
    },
    /// Remove a list.
    Del {
        /// The list's name, as `blacklist stats` shows it.
        name: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum YesNo {
    Yes,
    No,
}

#[derive(Debug, Subcommand)]
pub(crate) enum VmCommand {
    /// Set a mailbox PIN. A PIN equal to the extension number forces initialisation at first login.
    Set {
        /// The mailbox's extension.
        extension: String,
        /// The PIN (digits; voicemail.pin_min_length or longer).
        #[arg(long)]
        pin: String,
        /// Require recording a name at initialisation (default yes).
        #[arg(long, value_enum)]
        force_name: Option<YesNo>,
        /// Require recording a greeting at initialisation (default yes).
        #[arg(long, value_enum)]
        force_greeting: Option<YesNo>,
    },
    /// Mailboxes and whether they must be initialised.
    List {
        /// Print JSON (fields in README, "--json output").
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Make a token and print it once (only its hash is kept): send it as
    /// `Authorization: Bearer TOKEN`.
    Add {
        /// A name to tell it apart (1-64 letters, digits, '.', '_' or '-').
        name: String,
        /// read: look only; admin: may change everything an admin can.
        #[arg(long, value_parser = ["read", "admin"])]
        scope: String,
    },
    /// Tokens: name, scope, prefix, created, last used.
    List {
        /// Print JSON (fields in README, "--json output").
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token (it stops working within a second).
    Del {
        /// The token's name, as `token list` shows it.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AdminCommand {
    /// Check an admin's password (read from the first line of standard input) the way every admin
    /// interface does, and log the attempt as a security event. Exit status: 0 accepted, 3 accepted
    /// but the password must be changed before anything else, 1 refused.
    Login {
        /// The admin's name.
        name: String,
        /// Address the attempt came from, for the event log.
        #[arg(long)]
        from: Option<std::net::IpAddr>,
    },
    /// Change an admin password (the password policy applies).
    Passwd {
        /// The admin's name.
        #[arg(default_value = "admin")]
        name: String,
        /// The new password (visible in the process list and shell history: prefer --generate).
        #[arg(long, conflicts_with = "generate")]
        password: Option<String>,
        /// Generate a strong random password and print it once.
        #[arg(long)]
        generate: bool,
    },
    /// Add an admin account (the password policy applies); it must change its password at first login.
    Add {
        /// The new admin's name (letters, digits, '.', '_', '-').
        name: String,
        /// The first password (visible in the process list and shell history: prefer --generate).
        #[arg(long, conflicts_with = "generate")]
        password: Option<String>,
        /// Generate a strong random password and print it once.
        #[arg(long)]
        generate: bool,
    },
    /// Delete an admin account (never the last one).
    Del {
        /// The admin's name.
        name: String,
    },
    /// Admin accounts and whether their password must be changed.
    List {
        /// Print JSON (fields in README, "--json output").
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ImportCommand {
    /// Read pjsip.conf, sip.conf, iax.conf and voicemail.conf (with #include and templates) from DIR.
    Asterisk {
        /// The Asterisk configuration directory (usually /etc/asterisk).
        dir: PathBuf,
        /// Show what would happen, extension by extension, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Read a CSV with a header naming `number` and optionally `secret` and `pin` columns.
    Csv {
        /// The CSV file.
        file: PathBuf,
        /// Show what would happen, line by line, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ExportCommand {
    /// Write the CSV to standard output.
    Csv,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TrunkCommand {
    /// Add a trunk. Inbound calls are recognised by the source address it resolves to, never by headers.
    Add {
        /// The trunk's name (used by routes).
        name: String,
        /// The trunk's host name or IP address.
        #[arg(long)]
        host: String,
        /// The trunk's SIP port.
        #[arg(long, default_value_t = 5060)]
        port: u16,
        /// How to reach it.
        #[arg(long, value_enum, default_value = "udp")]
        transport: TransportArg,
        /// User name for the trunk's digest challenges (with --secret and --realm).
        #[arg(long, requires_all = ["secret", "realm"])]
        username: Option<String>,
        /// The secret; stored only as HA1 for --realm.
        #[arg(long, requires = "username")]
        secret: Option<String>,
        /// The realm the trunk challenges with (HA1 is bound to it).
        #[arg(long, requires = "username")]
        realm: Option<String>,
        /// Register at the trunk (refreshed at half-time) so it sends inbound calls; seconds.
        #[arg(long, value_name = "SECONDS", requires = "username", num_args = 0..=1, default_missing_value = "600")]
        register: Option<u32>,
        /// With --transport tls: PEM file of the certificates the trunk's certificate must chain to
        /// (a private CA, or the trunk's own self-signed certificate), instead of the public roots. Its
        /// content is stored; the file is not needed afterwards.
        #[arg(long, value_name = "FILE")]
        tls_ca: Option<std::path::PathBuf>,
        /// Let extensions send this carrier transfers (REFER, INVITE with Replaces) during its calls;
        /// each REFER target is checked like a new call from the extension. Without it they get 403.
        #[arg(long)]
        allow_refer: bool,
    },
    /// Trunks with their address, transport and registration.
    List {
        /// Print JSON (fields in README, "--json output").
        #[arg(long)]
        json: bool,
    },
    /// Delete a trunk (refused while a route or DID uses it).
    Del {
        /// The trunk's name.
        name: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum TransportArg {
    Udp,
    Tcp,
    Tls,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RouteCommand {
    /// Append a route. PATTERN: a number, an Asterisk pattern (_NXXNXXXXXX, _011., X Z N [1-5] . !)
    /// or a regular expression starting with ^.
    Add {
        /// The number pattern.
        #[arg(allow_hyphen_values = true)]
        pattern: String,
        /// The trunk calls matching it go to.
        #[arg(long)]
        trunk: String,
        /// Leading digits to remove before sending to the trunk.
        #[arg(long, default_value_t = 0)]
        strip: u32,
        /// Digits to add in front after stripping.
        #[arg(long, default_value = "")]
        prepend: String,
    },
    /// Routes in the order they are tried, with their ID.
    List {
        /// Print JSON (fields in README, "--json output").
        #[arg(long)]
        json: bool,
    },
    /// Delete a route by the ID `route list` shows.
    Del {
        /// The route's ID.
        id: i64,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum CosCommand {
    /// Create a Class of Service. Categories: internal, emergency, local, national, mobile, toll-free,
    /// international, premium-rate (emergency is always allowed).
    Add {
        /// The Class of Service's name ("default" applies to extensions without one).
        name: String,
        /// Comma-separated categories it may call (see above).
        #[arg(long)]
        allow: String,
        /// With international in --allow: only to these E.164 country codes (44,49,33; 1 is the North
        /// American Numbering Plan).
        #[arg(long, value_name = "CODES")]
        countries: Option<String>,
    },
    /// Classes of Service with what they allow.
    List {
        /// Print JSON (fields in README, "--json output").
        #[arg(long)]
        json: bool,
    },
    /// Delete a Class of Service (refused while an extension uses it).
    Del {
        /// The Class of Service's name.
        name: String,
    },
    /// Which category a number falls in under the current numbering plan (and its country code, for
    /// an international number).
    Classify {
        /// The dialled number.
        number: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DidCommand {
    /// Send calls from a trunk to NUMBER to an extension.
    Add {
        /// The inbound number as the trunk sends it.
        number: String,
        /// The extension that rings.
        #[arg(long)]
        ext: String,
    },
    /// Inbound numbers and their extensions.
    List {
        /// Print JSON (fields in README, "--json output").
        #[arg(long)]
        json: bool,
    },
    /// Delete an inbound number.
    Del {
        /// The inbound number.
        number: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum CallsCommand {
    /// Calls in progress first, then the most recent.
    List {
        /// Print JSON (fields in README, "--json output").
        #[arg(long)]
        json: bool,
        /// How many recent calls to show.
        #[arg(long, default_value_t = 50)]
        last: u32,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SshCommand {
    /// Ports, root login, password authentication, allowed sources and the SSH guard's state.
    Status {
        /// Print JSON (fields in README, "--json output").
        #[arg(long)]
        json: bool,
    },
    /// Change sshd through pbxguard's drop-in (settings ssh.dropin, ssh.config, ssh.sshd,
    /// ssh.pid_file): checked with `sshd -t` first (a refused change changes nothing), then sshd is
    /// reloaded. A new port is opened beside the old one, which stays until `ssh confirm`.
    Set {
        /// Port sshd listens on.
        #[arg(long)]
        port: Option<u16>,
        /// Networks (CIDRs) that may log in (AllowUsers *@CIDR); the firewall's SSH service follows.
        #[arg(long, value_name = "CIDR", num_args = 1..)]
        allow: Vec<String>,
        /// PermitRootLogin.
        #[arg(long = "root-login", value_name = "no|prohibit-password")]
        root_login: Option<String>,
        /// PasswordAuthentication.
        #[arg(long = "password-auth", value_name = "yes|no")]
        password_auth: Option<String>,
    },
    /// Close the old port after a port change (run it from a login on the new port: that proves it works).
    Confirm,
}

#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// One JSON object: score, critical, findings (check, severity, title, evidence, fix, auto_fix),
    /// passed, skipped.
    #[arg(long)]
    pub(crate) json: bool,
    /// Apply the safe fixes (settings back to safe values, file permissions) after confirmation, and list
    /// what changed. Passwords and secrets are never changed behind your back.
    #[arg(long)]
    pub(crate) fix: bool,
    /// With --fix: do not ask.
    #[arg(long, requires = "fix")]
    pub(crate) yes: bool,
    /// The shadow file whose root entry is checked for well-known default passwords.
    #[arg(long, value_name = "FILE", default_value = "/etc/shadow")]
    pub(crate) shadow: PathBuf,
}

/// Options shared by the firewall commands that build the ruleset.
#[derive(Debug, Args)]
pub(crate) struct FirewallSource {
    /// pbxguard's bootstrap configuration, for the SIP ports when no daemon is running (a running
    /// daemon's listen.json has the ports it actually serves, and wins).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// sshd's configuration, for the SSH port (default: the setting ssh.config, /etc/ssh/sshd_config,
    /// with its Includes; the same reading as `pbxguard ssh status`).
    #[arg(long, value_name = "FILE", env = "PBXGUARD_SSHD_CONFIG")]
    pub(crate) sshd_config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum FirewallCommand {
    /// Choose what the firewall opens (SSH, GUI, SIP over UDP/TCP/TLS, IAX2, RTP, MGCP) and to whom,
    /// see the ruleset diff, then apply it with a rollback unless confirmed.
    Wizard {
        /// Do not ask: take the flags (and defaults) and apply.
        #[arg(long)]
        yes: bool,
        /// Networks (CIDRs) or ACL group names that may reach SSH; default the networks sshd's own
        /// AllowUsers admits (`pbxguard ssh set --allow`), else anyone.
        #[arg(long = "ssh-from", value_name = "CIDR", num_args = 1..)]
        ssh_from: Vec<String>,
        /// Networks (CIDRs) or ACL group names that may reach the admin GUI; default anyone.
        #[arg(long = "gui-from", value_name = "CIDR", num_args = 1..)]
        gui_from: Vec<String>,
        /// RTP port range (default 10000-20000).
        #[arg(long, value_name = "LO-HI")]
        rtp: Option<String>,
        /// Open MGCP (2727/udp).
        #[arg(long)]
        mgcp: bool,
        /// Roll back unless `firewall confirm` arrives within this time (0: no rollback).
        #[arg(long = "rollback-after", value_name = "DURATION", default_value = "60s")]
        rollback_after: String,
        #[command(flatten)]
        source: FirewallSource,
    },
    /// Print the ruleset that `apply` would load.
    Render {
        #[command(flatten)]
        source: FirewallSource,
    },
    /// Load the ruleset (checked with `nft -c` first). The running daemon keeps the previous one and
    /// restores it unless `firewall confirm` arrives in time, even if this SSH session is cut.
    Apply {
        /// Roll back unless confirmed within this time (e.g. 60s, 5m; 0: no rollback, no daemon needed).
        #[arg(long = "rollback-after", value_name = "DURATION", default_value = "60s")]
        rollback_after: String,
        #[command(flatten)]
        source: FirewallSource,
    },
    /// Keep the applied ruleset (run it from a new SSH login: that proves you can still get in).
    Confirm,
    /// Whether the ruleset is loaded, a rollback pending, per-rule counters and set sizes.
    Status {
        /// Print JSON (fields in README, "--json output").
        #[arg(long)]
        json: bool,
    },
    /// Delete table inet pbxguard (only it) and turn kernel enforcement off (firewall.enabled=false).
    Disable,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CertCommand {
    /// The certificate in use: subject, names, issuer, serial, validity, key type, and a pending CSR.
    Show {
        /// Print JSON (fields in README, "--json output").
        #[arg(long)]
        json: bool,
    },
    /// Install a PEM certificate chain (server certificate first, then its issuers) and its key,
    /// after checking that the key matches, the chain is complete and nothing has expired. Without
    /// KEY, the key of the pending CSR (`cert csr`) is used.
    Import {
        /// PEM file: the certificate, then the intermediate certificate(s).
        chain: PathBuf,
        /// PEM file: its private key (PKCS#8, SEC1 or PKCS#1, not encrypted).
        key: Option<PathBuf>,
        /// Print JSON (fields in README, "--json output").
        #[arg(long)]
        json: bool,
    },
    /// Make a new key (ECDSA P-256, kept in the data directory) and print a CSR to send to a CA;
    /// then `cert import` the CA's certificate alone.
    Csr {
        /// A DNS name or IP address for the certificate; repeat for more (the first is the subject).
        #[arg(long = "name", required = true)]
        names: Vec<String>,
        /// Write the CSR to this file instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Obtain a certificate now from the ACME CA in the settings (acme.directory, acme.domains,
    /// acme.email, acme.ca_file), answering HTTP-01 on acme.http_port. The daemon renews it by itself.
    Acme {
        /// Print JSON (fields in README, "--json output").
        #[arg(long)]
        json: bool,
    },
}
