//! Transfers towards trunks. During a call through a carrier, a phone can send a REFER (RFC 3515) or
//! an INVITE with Replaces (RFC 3891); a carrier that honours them places the new call itself, billed
//! to the PBX, where Class of Service and the fraud limits never see it. So a transfer that would reach
//! a trunk is refused (403 and a `call-refused` event) unless the trunk accepts transfers
//! (`trunk add --allow-refer`); then the REFER's target is checked like a new call from the extension.
//! Transfers between extensions, and those a trunk sends to an extension, are not touched: what they
//! lead to is a new INVITE through this proxy, checked as usual.

use crate::dialplan::{dialled, number};
use crate::proxy::Party;
use crate::service::{Handled, Incoming, Service};
use pbxguard_shield::Category;
use pbxguard_sip::{Message, Method, NameAddr, Scheme};

/// Longest piece of a Refer-To value repeated in an event when it names no number.
const MAX_SHOWN: usize = 100;

impl Service {
    /// Judges an in-dialog REFER, or INVITE with Replaces, that goes to the trunk side of a call from
    /// its extension side. `Err`: the 403 to answer (the event is pushed). Anything else, and requests
    /// not from the dialog's parties (refused by the relay), pass through untouched.
    pub(crate) fn transfer_check(&mut self, inc: Incoming<'_, '_>) -> Result<(), Handled> {
        let Incoming { msg, req, source, now_ms, .. } = inc;
        let what = match req.method {
            Method::Refer => "REFER",
            Method::Invite if has_replaces(msg) => "INVITE with Replaces",
            _ => return Ok(()),
        };
        let Some((to, info)) = self.proxy.addressed_party(req, source.ip()) else { return Ok(()) };
        let Some((side, trunk)) = info.trunk.as_ref().filter(|(side, _)| *side == to) else { return Ok(()) };
        // A call has at most one trunk: the sender, the other party, is an extension.
        let ext = match side {
            Party::Callee => info.caller.clone(),
            Party::Caller => info.callee.clone(),
        };
        let trunk = trunk.clone();
        let target = if req.method == Method::Refer {
            refer_target(msg)
        } else {
            dialled(&req.uri).ok_or_else(|| shown(req.uri.raw))
        };
        let shown_number = target.clone().unwrap_or_else(|raw| raw);
        // A trunk that vanished from the dial plan accepts nothing (fail closed).
        let accepts = self.dialplan.trunks.iter().any(|t| t.name == trunk && t.allow_refer);
        if !accepts {
            return Err(self.refuse(inc, &ext, &shown_number, refused_transfer(&trunk, what)));
        }
        if req.method != Method::Refer {
            // An INVITE with Replaces inside the dialog names no new number: the carrier's own call
            // continues. (A new INVITE with Replaces was checked as a new call.)
            return Ok(());
        }
        let Ok(number) = target else {
            let rule = format!("transfer through trunk {trunk}: the Refer-To names no number");
            return Err(self.refuse(inc, &ext, &shown_number, rule));
        };
        let category = match self.authorise(&ext, &number) {
            Ok(c) => c,
            Err(rule) => return Err(self.refuse(inc, &ext, &number, format!("transfer: {rule}"))),
        };
        if category != Category::Internal {
            // Counted like a new trunk call (hourly limits, international cap, and the concurrent limit
            // with this call still up), then released at once: the carrier places that call, so
            // this proxy would never see it end.
            match self.count_trunk_call(&ext, &number, category, now_ms) {
                Ok(Some(counted)) => self.proxy.fraud.end(&counted, now_ms),
                Ok(None) => {}
                Err(rule) => return Err(self.refuse(inc, &ext, &number, format!("transfer: {rule}"))),
            }
        }
        Ok(())
    }
}

/// Whether a request carries a Replaces header (RFC 3891 §6; it has no compact form).
pub(crate) fn has_replaces(msg: &Message<'_>) -> bool {
    msg.headers.iter().any(|h| h.name.as_str().eq_ignore_ascii_case("Replaces"))
}

/// The rule named when a trunk does not accept transfers.
pub(crate) fn refused_transfer(trunk: &str, what: &str) -> String {
    format!("trunk {trunk} does not accept transfers ({what}); pbxguard trunk add --allow-refer allows them")
}

/// The number a REFER transfers to: the user of a SIP Refer-To URI, or a tel: number (RFC 3966),
/// without visual separators. `Err`: there is none, with what to show in the event instead. Escaped or
/// parameterised numbers are kept as written, so they match no category and are refused: what the
/// carrier would make of them is its own business (fail closed).
fn refer_target(msg: &Message<'_>) -> Result<String, String> {
    let mut values = msg
        .headers
        .iter()
        .filter(|h| ["Refer-To", "r"].iter().any(|n| h.name.as_str().eq_ignore_ascii_case(n)))
        .map(|h| h.value);
    // RFC 3515 §2.4.1: exactly one Refer-To.
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err("(no single Refer-To)".into());
    };
    let Some(to) = NameAddr::parse(value) else { return Err(shown(value)) };
    let user = match to.uri.scheme {
        Scheme::Sip | Scheme::Sips => to.uri.user,
        Scheme::Tel => to.uri.raw.get(4..),
        Scheme::Other(_) => None,
    };
    user.and_then(number).ok_or_else(|| shown(value))
}

/// Attacker-supplied text, bounded before it goes into an event.
fn shown(raw: &str) -> String {
    raw.chars().take(MAX_SHOWN).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pbxguard_sip::Limits;

    fn refer(headers: &str) -> Vec<u8> {
        format!(
            "REFER sip:x@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10;branch=z9hG4bKr\r\nFrom: <sip:a@x>;tag=1\r\n\
             To: <sip:b@x>;tag=2\r\nCall-ID: c\r\nCSeq: 3 REFER\r\n{headers}Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn refer_targets() {
        let cases: [(&str, Result<&str, &str>); 9] = [
            ("Refer-To: <sip:011441632960000@carrier.example>\r\n", Ok("011441632960000")),
            ("r: sip:+44-1632-960000@carrier.example\r\n", Ok("+441632960000")),
            ("Refer-To: \"Boss\" <sips:2125551234@c.example;user=phone?Replaces=abc%40x>\r\n", Ok("2125551234")),
            ("Refer-To: <tel:+441632960000>\r\n", Ok("+441632960000")),
            ("Refer-To: <sip:%30%31%31@c.example>\r\n", Ok("%30%31%31")),
            ("Refer-To: <sip:carrier.example>\r\n", Err("<sip:carrier.example>")),
            ("Refer-To: <mailto:x@y>\r\n", Err("<mailto:x@y>")),
            ("", Err("(no single Refer-To)")),
            ("Refer-To: <sip:1@a>\r\nRefer-To: <sip:2@a>\r\n", Err("(no single Refer-To)")),
        ];
        for (headers, want) in cases {
            let raw = refer(headers);
            let msg = Message::parse(&raw, &Limits::default()).unwrap();
            assert_eq!(refer_target(&msg), want.map(str::to_owned).map_err(str::to_owned), "{headers}");
        }
        let long = format!("Refer-To: <sip:{}.example>\r\n", "a".repeat(300));
        let raw = refer(&long);
        assert_eq!(refer_target(&Message::parse(&raw, &Limits::default()).unwrap()).unwrap_err().len(), MAX_SHOWN);
    }

    #[test]
    fn replaces_is_found_in_any_case() {
        for (headers, want) in [("Replaces: a;to-tag=1;from-tag=2\r\n", true), ("replaces: x\r\n", true), ("", false)] {
            let raw = refer(headers);
            assert_eq!(has_replaces(&Message::parse(&raw, &Limits::default()).unwrap()), want, "{headers}");
        }
    }
}
