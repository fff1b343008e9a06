//! Voicemail mailboxes: PINs under the PIN policy, stored as argon2id hashes.

use crate::{Result, invalid, not_found};
use pbxguard_shield::PinPolicy;
use pbxguard_store::{Backend, Mailbox};

/// A mailbox's PIN and its forced-initialisation switches (`None`: keep the current value, or on for a
/// new mailbox).
pub struct SetPin<'a> {
    pub extension: &'a str,
    pub pin: &'a str,
    pub force_name: Option<bool>,
    pub force_greeting: Option<bool>,
}

pub fn pin_min_length(store: &dyn Backend) -> Result<usize> {
    crate::settings::get(store, "voicemail.pin_min_length")?
        .parse()
        .map_err(|_| invalid!("stored voicemail.pin_min_length is invalid; set it again with `pbxguard settings set`"))
}

/// Sets a mailbox's PIN. A PIN equal to the extension is the one allowed weak PIN: it forces
/// initialisation (new PIN, recorded name and greeting at first login). Returns the stored mailbox.
pub fn set_pin(store: &dyn Backend, req: SetPin<'_>) -> Result<Mailbox> {
    let SetPin { extension, pin, force_name, force_greeting } = req;
    if store.extension(extension)?.is_none() {
        return Err(not_found!(
            "extension {extension} does not exist; add it first with `pbxguard ext add {extension} --generate`"
        ));
    }
    let must_initialise = pin == extension;
    if !must_initialise {
        let v = PinPolicy { min_len: pin_min_length(store)? }.check(pin, extension);
        if !v.is_empty() {
            return Err(invalid!(
                "the PIN for mailbox {extension} does not meet the PIN policy:\n{}\nnothing was changed. \
                 (Setting the PIN to the extension number is allowed: it forces the owner to choose a new PIN \
                 and record a name and greeting at first login.)",
                crate::policy::reasons(&v)
            ));
        }
    }
    let old = store.mailbox(extension)?;
    let m = Mailbox {
        extension: extension.to_owned(),
        pin_hash: crate::admins::hash(pin)?,
        must_initialise,
        force_name: force_name.unwrap_or(old.as_ref().is_none_or(|m| m.force_name)),
        force_greeting: force_greeting.unwrap_or(old.as_ref().is_none_or(|m| m.force_greeting)),
        name_recorded: old.as_ref().is_some_and(|m| m.name_recorded),
        greeting_recorded: old.as_ref().is_some_and(|m| m.greeting_recorded),
        updated_at: crate::clock::now_secs(),
    };
    store.put_mailbox(&m)?;
    Ok(m)
}

pub fn list(store: &dyn Backend) -> Result<Vec<Mailbox>> {
    Ok(store.mailboxes()?)
}

/// One page of mailboxes (1-based), `text` keeping those whose extension contains it.
pub fn page(
    store: &dyn Backend,
    text: Option<&str>,
    page: u64,
    per_page: u64,
) -> Result<crate::extensions::Page<Mailbox>> {
    if !(1..=crate::extensions::MAX_PER_PAGE).contains(&per_page) {
        return Err(invalid!("per page {per_page}: give 1 to {}", crate::extensions::MAX_PER_PAGE));
    }
    if text.is_some_and(|t| t.len() > 64) {
        return Err(invalid!("search text too long: give at most 64 characters"));
    }
    let page = page.max(1);
    let total = store.mailboxes_matching(text)?;
    let items = store.mailboxes_page(text, (page - 1).saturating_mul(per_page), per_page)?;
    Ok(crate::extensions::Page { items, total, page, per_page })
}
