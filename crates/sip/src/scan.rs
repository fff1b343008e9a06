//! Low-level scanning shared by the typed header parsers. Values may contain folded line breaks, so CR and
//! LF count as linear white space everywhere here (RFC 3261 §25.1: LWS = [*WSP CRLF] 1*WSP).
//!
//! Every search here is by byte, never by `char`: the delimiters are ASCII, so a byte found is always
//! on a character boundary, and a byte loop over the short values of a SIP header costs a fraction of
//! `str`'s UTF-8-aware searchers (which the daemon's profile showed as its largest parser cost).

/// A 256-entry membership table, built at compile time.
pub(crate) const fn byte_table(members: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < members.len() {
        t[members[i] as usize] = true;
        i += 1;
    }
    t
}

const fn token_table() -> [bool; 256] {
    let mut t = byte_table(b"-.!%*_+`'~");
    let mut b = 0;
    while b < 256 {
        if (b as u8).is_ascii_alphanumeric() {
            t[b] = true;
        }
        b += 1;
    }
    t
}

/// token characters (RFC 3261 §25.1).
static TOKEN: [bool; 256] = token_table();

pub(crate) fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

pub(crate) fn is_token_byte(b: u8) -> bool {
    TOKEN[usize::from(b)]
}

/// The first `b` in `s`: for the short runs of a header value, a plain byte loop.
pub(crate) fn find_byte(s: &str, b: u8) -> Option<usize> {
    s.as_bytes().iter().position(|&c| c == b)
}

/// `str::split_once` for an ASCII delimiter.
pub(crate) fn split_once_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    find_byte(s, b).map(|i| (&s[..i], &s[i + 1..]))
}

pub(crate) fn trim_lws(s: &str) -> &str {
    let b = s.as_bytes();
    let Some(start) = b.iter().position(|&c| !is_lws(c)) else { return "" };
    let end = b.iter().rposition(|&c| !is_lws(c)).map_or(start, |e| e + 1);
    &s[start..end]
}

/// Bytes that can change [`split_commas`]' state; every other byte is skipped without a decision.
static COMMA_SPECIAL: [bool; 256] = byte_table(b",\"<>\\");

/// Splits a list header value on commas that are outside quoted strings and angle brackets. Empty
/// elements are yielded (trimmed to ""), so callers can refuse `a,,b` where the grammar forbids it.
pub fn split_commas(s: &str) -> impl Iterator<Item = &str> {
    let bytes = s.as_bytes();
    let mut pos = 0;
    let mut done = s.is_empty();
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let start = pos;
        let (mut quoted, mut angle) = (false, false);
        while pos < bytes.len() {
            let b = bytes[pos];
            if !COMMA_SPECIAL[usize::from(b)] {
                pos += 1;
                continue;
            }
            if quoted {
                match b {
                    // A quoted-pair: whatever follows the backslash is taken as is.
                    b'\\' => pos += 1,
                    b'"' => quoted = false,
                    _ => {}
                }
            } else {
                match b {
                    b'"' => quoted = true,
                    b'<' => angle = true,
                    b'>' => angle = false,
                    b',' if !angle => break,
                    _ => {}
                }
            }
            pos += 1;
        }
        // A backslash as the last byte skipped one past the end.
        pos = pos.min(bytes.len());
        let item = trim_lws(&s[start..pos]);
        if pos >= bytes.len() {
            done = true;
        } else {
            pos += 1;
        }
        Some(item)
    })
}

/// Writes a header value with each folded line break (and the white space around it) replaced by one space.
pub(crate) fn write_unfolded(value: &str, out: &mut Vec<u8>) {
    let b = value.as_bytes();
    let mut i = 0;
    // Folding is rare: copy whole runs up to the next line break.
    while let Some(off) = memchr::memchr2(b'\r', b'\n', &b[i..]) {
        out.extend_from_slice(&b[i..i + off]);
        i += off;
        while out.last().is_some_and(|&c| c == b' ' || c == b'\t') {
            out.pop();
        }
        while i < b.len() && is_lws(b[i]) {
            i += 1;
        }
        out.push(b' ');
    }
    out.extend_from_slice(&b[i..]);
}

/// A cursor over a header value.
pub(crate) struct Cursor<'a> {
    pub(crate) s: &'a str,
    pub(crate) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(s: &'a str) -> Self {
        Self { s, pos: 0 }
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    /// Skips LWS; returns whether any was skipped.
    pub(crate) fn skip_lws(&mut self) -> bool {
        let start = self.pos;
        while self.peek().is_some_and(is_lws) {
            self.pos += 1;
        }
        self.pos > start
    }

    pub(crate) fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Takes bytes while `f` holds; `None` if there are none.
    pub(crate) fn take_while(&mut self, f: impl Fn(u8) -> bool) -> Option<&'a str> {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        (self.pos > start).then(|| &self.s[start..self.pos])
    }

    pub(crate) fn token(&mut self) -> Option<&'a str> {
        self.take_while(is_token_byte)
    }

    /// A quoted-string (RFC 3261 §25.1); returns the text between the quotes, escapes left in place.
    /// `None` if unterminated.
    pub(crate) fn quoted(&mut self) -> Option<&'a str> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.pos;
        let b = self.s.as_bytes();
        while self.pos < b.len() {
            match b[self.pos] {
                b'\\' => self.pos += 2,
                b'"' => {
                    let inner = &self.s[start..self.pos];
                    self.pos += 1;
                    return Some(inner);
                }
                _ => self.pos += 1,
            }
        }
        None
    }
}

/// Removes quoted-pair escapes (`\"` → `"`). Borrowed when there are none, which is nearly always.
pub(crate) fn unescape(s: &str) -> std::borrow::Cow<'_, str> {
    if find_byte(s, b'\\').is_none() {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_respect_quotes_and_brackets() {
        let v: Vec<_> = split_commas(r#""a,b" <sip:x@y;p=1,2>;q=1 , <sip:z@w>"#).collect();
        assert_eq!(v, [r#""a,b" <sip:x@y;p=1,2>;q=1"#, "<sip:z@w>"]);
        let v: Vec<_> = split_commas("a;;,;,,").collect();
        assert_eq!(v, ["a;;", ";", "", ""]);
        assert_eq!(split_commas("").count(), 0);
    }

    #[test]
    fn unfolds() {
        let mut out = Vec::new();
        write_unfolded("0009\r\n  INVITE", &mut out);
        assert_eq!(out, b"0009 INVITE");
    }
}
