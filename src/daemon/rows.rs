//! Conversions between what the services hold in memory and the store's rows, in both directions, in
//! one place: a field added to one side shows up here once.

use pbxguard_pbx::Binding;
use pbxguard_shield::{Ban, BanReason, Prefix};
use pbxguard_store::BanRow;

pub(crate) fn binding_to_row(ext: &str, b: &Binding) -> pbxguard_store::Binding {
    pbxguard_store::Binding {
        extension: ext.to_owned(),
        uri: b.uri.clone(),
        contact: b.contact.clone(),
        expires_at: b.expires_at as i64,
        call_id: b.call_id.clone(),
        cseq: b.cseq,
        q: b.q.map(f64::from),
        source: b.source.to_string(),
        transport: b.transport.to_owned(),
        user_agent: b.user_agent.clone(),
        updated_at: b.updated_at as i64,
    }
}

/// A stored registration back in memory; `None` if the row is unreadable (it is then skipped).
pub(crate) fn binding_from_row(b: pbxguard_store::Binding) -> Option<(String, Binding)> {
    let source = b.source.parse().ok()?;
    let transport = match b.transport.as_str() {
        "tcp" => "tcp",
        "tls" => "tls",
        _ => "udp",
    };
    let binding = Binding {
        uri: b.uri,
        contact: b.contact,
        expires_at: b.expires_at as u64,
        call_id: b.call_id,
        cseq: b.cseq,
        q: b.q.map(|q| q as f32),
        source,
        transport,
        user_agent: b.user_agent,
        updated_at: b.updated_at as u64,
    };
    Some((b.extension, binding))
}

pub(crate) fn ban_to_row(b: &Ban) -> BanRow {
    BanRow {
        target: b.target.to_string(),
        reason: b.reason.as_str().to_owned(),
        evidence: b.evidence.clone(),
        first_seen_ms: b.first_seen_ms as i64,
        created_ms: b.created_ms as i64,
        expires_ms: b.expires_ms.map(|e| e as i64),
        offence: b.offence,
        note: b.note.clone(),
    }
}

pub(crate) fn ban_from_row(r: &pbxguard_store::BanRow) -> Option<Ban> {
    Some(Ban {
        target: Prefix::parse_lenient(&r.target).ok()?,
        reason: BanReason::parse(&r.reason)?,
        evidence: r.evidence.clone(),
        first_seen_ms: r.first_seen_ms as u64,
        created_ms: r.created_ms as u64,
        expires_ms: r.expires_ms.map(|e| e as u64),
        offence: r.offence,
        note: r.note.clone(),
    })
}
