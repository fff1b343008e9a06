//! Changing a run-time setting, with what the change sets off: turning the password policy on (or
//! changing it) reviews every extension's secret, and with auto-fix on replaces the non-compliant ones.

use crate::Result;
use crate::policy::Reviewed;
use pbxguard_store::Backend;

/// What changing a setting did besides storing it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Changed {
    /// Present when the change concerned the password policy and it is enforced.
    pub review: Option<Review>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Review {
    /// The non-compliant secrets were replaced (each new one is in its row, shown once).
    pub fixed: bool,
    pub extensions: Vec<Reviewed>,
}

/// Validates and stores a setting, or explains what is wrong and changes nothing.
pub fn set(store: &mut dyn Backend, key: &str, value: &str) -> Result<Changed> {
    crate::settings::set(store, key, value)?;
    let review = if key.starts_with("password_policy.") && crate::policy::enforced(store)? {
        let fixed = crate::settings::get(store, "password_policy.autofix")? == "true";
        Some(Review { fixed, extensions: crate::policy::review(store, fixed)? })
    } else {
        None
    };
    Ok(Changed { review })
}

/// Puts a setting back to its default (for `sip.realm`, the host name, under the same rule as `set`);
/// returns the value now in force and what the change set off.
pub fn reset(store: &mut dyn Backend, key: &str) -> Result<(String, Changed)> {
    let value = crate::settings::default_value(key)?;
    let changed = set(store, key, &value)?;
    Ok((value, changed))
}

/// A setting as the operator sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SettingView {
    pub key: &'static str,
    pub value: String,
    /// "(computed)" when the default is fixed at first start.
    pub default: &'static str,
    pub doc: &'static str,
}

pub fn list(store: &dyn Backend) -> Result<Vec<SettingView>> {
    crate::settings::SETTINGS
        .iter()
        .map(|d| {
            Ok(SettingView {
                key: d.key,
                value: crate::settings::get(store, d.key)?,
                default: d.default.unwrap_or("(computed)"),
                doc: d.doc,
            })
        })
        .collect()
}
