use pbxguard_sip::Algorithm;
use std::collections::HashMap;

/// What authentication needs to know about one extension.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtensionAuth {
    /// HA1 in hex for MD5, SHA-256 and SHA-512-256, in [`Algorithm::ALL`] order.
    pub ha1: [String; 3],
    /// Algorithms offered to this extension, in order; `None` follows the global setting.
    pub algorithms: Option<Vec<Algorithm>>,
    /// Where this extension may be used from; `None`: anywhere.
    pub acl: Option<std::sync::Arc<pbxguard_shield::AclGroup>>,
    /// Class of Service name; `None`: the default CoS.
    pub cos: Option<String>,
    /// Suspended by the toll-fraud limits or an operator: no outbound calls until re-enabled.
    pub suspended: bool,
    /// Its own toll-fraud limits, where the operator set them.
    pub limits: pbxguard_shield::ExtensionLimits,
    /// Its own longest trunk call, ms, where the operator set one (`Some(0)`: no limit); `None`
    /// follows [`crate::DialPlan::max_trunk_call_ms`].
    pub max_trunk_call_ms: Option<u64>,
}

impl ExtensionAuth {
    pub fn ha1(&self, alg: Algorithm) -> &str {
        let i = Algorithm::ALL.iter().position(|a| *a == alg).unwrap_or(0);
        &self.ha1[i]
    }
}

/// A snapshot of the extensions, swapped whole when the operator changes something.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    extensions: HashMap<String, ExtensionAuth>,
}

impl Directory {
    pub fn new(extensions: HashMap<String, ExtensionAuth>) -> Self {
        Self { extensions }
    }

    pub fn get(&self, number: &str) -> Option<&ExtensionAuth> {
        self.extensions.get(number)
    }

    pub fn contains(&self, number: &str) -> bool {
        self.extensions.contains_key(number)
    }

    pub fn len(&self) -> usize {
        self.extensions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.extensions.is_empty()
    }
}
