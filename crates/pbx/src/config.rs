use pbxguard_sip::Algorithm;

/// Run-time registrar settings (stored in the database, documented in the settings reference).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrarConfig {
    /// Digest realm; HA1 values are bound to it.
    pub realm: String,
    /// Algorithms offered, in order, to extensions without their own list. SIPp and many phones only
    /// answer the first challenge and only MD5, hence MD5 first by default.
    pub algorithms: Vec<Algorithm>,
    /// Seconds a nonce stays valid before answers to it get `stale=true`.
    pub nonce_ttl: u64,
    /// Shortest accepted registration, seconds (shorter ones get 423 Interval Too Brief).
    pub min_expires: u32,
    /// Longest registration granted, seconds (longer requests are shortened).
    pub max_expires: u32,
    /// Expiry when the request names none, seconds.
    pub default_expires: u32,
    /// Contacts kept per extension; registering one more drops the oldest.
    pub max_contacts: usize,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        Self {
            realm: "pbxguard".into(),
            algorithms: vec![Algorithm::Md5, Algorithm::Sha256],
            nonce_ttl: 300,
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            max_contacts: 10,
        }
    }
}
