use crate::scan;

/// A SIP method (RFC 3261 §7.1, plus the extension methods a PBX meets). Unknown methods keep their text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method<'a> {
    Register,
    Invite,
    Ack,
    Cancel,
    Bye,
    Options,
    Subscribe,
    Notify,
    Message,
    Info,
    Update,
    Refer,
    Prack,
    Publish,
    Other(&'a str),
}

impl<'a> Method<'a> {
    /// Methods are case-sensitive (RFC 3261 §7.1).
    pub fn from_token(s: &'a str) -> Self {
        match s {
            "REGISTER" => Self::Register,
            "INVITE" => Self::Invite,
            "ACK" => Self::Ack,
            "CANCEL" => Self::Cancel,
            "BYE" => Self::Bye,
            "OPTIONS" => Self::Options,
            "SUBSCRIBE" => Self::Subscribe,
            "NOTIFY" => Self::Notify,
            "MESSAGE" => Self::Message,
            "INFO" => Self::Info,
            "UPDATE" => Self::Update,
            "REFER" => Self::Refer,
            "PRACK" => Self::Prack,
            "PUBLISH" => Self::Publish,
            other => Self::Other(other),
        }
    }

    pub fn as_str(&self) -> &'a str {
        match self {
            Self::Register => "REGISTER",
            Self::Invite => "INVITE",
            Self::Ack => "ACK",
            Self::Cancel => "CANCEL",
            Self::Bye => "BYE",
            Self::Options => "OPTIONS",
            Self::Subscribe => "SUBSCRIBE",
            Self::Notify => "NOTIFY",
            Self::Message => "MESSAGE",
            Self::Info => "INFO",
            Self::Update => "UPDATE",
            Self::Refer => "REFER",
            Self::Prack => "PRACK",
            Self::Publish => "PUBLISH",
            Self::Other(s) => s,
        }
    }
}

/// First line of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartLine<'a> {
    Request {
        method: Method<'a>,
        uri: &'a str,
        /// The version token as sent; [`crate::check_request`] refuses anything but `SIP/2.0`.
        version: &'a str,
    },
    Response {
        code: u16,
        reason: &'a [u8],
    },
}

/// Header names the core looks at, classified once while splitting lines; compact forms
/// (RFC 3261 §7.3.3) map to the same variant as the long form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderName<'a> {
    Via,
    From,
    To,
    CallId,
    CSeq,
    Contact,
    ContentLength,
    ContentType,
    MaxForwards,
    Expires,
    Authorization,
    ProxyAuthorization,
    UserAgent,
    Require,
    ProxyRequire,
    Supported,
    Date,
    Route,
    RecordRoute,
    Other(&'a str),
}

impl<'a> HeaderName<'a> {
    pub fn classify(name: &'a str) -> Self {
        let eq = |s: &str| name.eq_ignore_ascii_case(s);
        match name.len() {
            1 => match name.as_bytes()[0].to_ascii_lowercase() {
                b'v' => Self::Via,
                b'f' => Self::From,
                b't' => Self::To,
                b'i' => Self::CallId,
                b'm' => Self::Contact,
                b'l' => Self::ContentLength,
                b'c' => Self::ContentType,
                b'k' => Self::Supported,
                _ => Self::Other(name),
            },
            2 if eq("To") => Self::To,
            3 if eq("Via") => Self::Via,
            4 if eq("From") => Self::From,
            4 if eq("CSeq") => Self::CSeq,
            4 if eq("Date") => Self::Date,
            5 if eq("Route") => Self::Route,
            7 if eq("Call-ID") => Self::CallId,
            7 if eq("Contact") => Self::Contact,
            7 if eq("Expires") => Self::Expires,
            7 if eq("Require") => Self::Require,
            9 if eq("Supported") => Self::Supported,
            10 if eq("User-Agent") => Self::UserAgent,
            12 if eq("Max-Forwards") => Self::MaxForwards,
            12 if eq("Content-Type") => Self::ContentType,
            12 if eq("Record-Route") => Self::RecordRoute,
            13 if eq("Authorization") => Self::Authorization,
            13 if eq("Proxy-Require") => Self::ProxyRequire,
            14 if eq("Content-Length") => Self::ContentLength,
            19 if eq("Proxy-Authorization") => Self::ProxyAuthorization,
            _ => Self::Other(name),
        }
    }

    /// The canonical long form, used when printing.
    pub fn as_str(&self) -> &'a str {
        match self {
            Self::Via => "Via",
            Self::From => "From",
            Self::To => "To",
            Self::CallId => "Call-ID",
            Self::CSeq => "CSeq",
            Self::Contact => "Contact",
            Self::ContentLength => "Content-Length",
            Self::ContentType => "Content-Type",
            Self::MaxForwards => "Max-Forwards",
            Self::Expires => "Expires",
            Self::Authorization => "Authorization",
            Self::ProxyAuthorization => "Proxy-Authorization",
            Self::UserAgent => "User-Agent",
            Self::Require => "Require",
            Self::ProxyRequire => "Proxy-Require",
            Self::Supported => "Supported",
            Self::Date => "Date",
            Self::Route => "Route",
            Self::RecordRoute => "Record-Route",
            Self::Other(s) => s,
        }
    }
}

/// One header line. `value` is the raw text after the colon, trimmed, and may still contain folded
/// line breaks; every scanner in this crate treats CR and LF as linear white space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    pub name: HeaderName<'a>,
    pub value: &'a str,
}

/// A framed SIP message borrowing from the receive buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    pub start: StartLine<'a>,
    pub headers: Vec<Header<'a>>,
    pub body: &'a [u8],
}

impl<'a> Message<'a> {
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    pub fn method(&self) -> Option<Method<'a>> {
        match self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    pub fn request_uri(&self) -> Option<&'a str> {
        match self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The first header with this name.
    pub fn header(&self, name: HeaderName<'_>) -> Option<&'a str> {
        self.headers.iter().find(|h| h.name == name).map(|h| h.value)
    }

    /// Every line of this header, in order.
    pub fn header_all<'s>(&'s self, name: HeaderName<'s>) -> impl Iterator<Item = &'a str> + 's {
        self.headers.iter().filter(move |h| h.name == name).map(|h| h.value)
    }

    /// Every element of a list header, across all its lines (RFC 3261 §7.3.1).
    pub fn header_values<'s>(&'s self, name: HeaderName<'s>) -> impl Iterator<Item = &'a str> + 's {
        self.header_all(name).flat_map(scan::split_commas)
    }

    pub fn count(&self, name: HeaderName<'_>) -> usize {
        self.headers.iter().filter(|h| h.name == name).count()
    }

    pub fn call_id(&self) -> Option<&'a str> {
        self.header(HeaderName::CallId)
    }

    pub fn user_agent(&self) -> Option<&'a str> {
        self.header(HeaderName::UserAgent)
    }

    /// Prints the message in canonical form: long header names, one line per header as received, folds
    /// replaced by a single space. Parsing the output gives the same message (tested by proptest).
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self.start {
            StartLine::Request { method, uri, version } => {
                out.extend_from_slice(method.as_str().as_bytes());
                out.push(b' ');
                out.extend_from_slice(uri.as_bytes());
                out.push(b' ');
                out.extend_from_slice(version.as_bytes());
            }
            StartLine::Response { code, reason } => {
                out.extend_from_slice(b"SIP/2.0 ");
                out.extend_from_slice(code.to_string().as_bytes());
                out.push(b' ');
                out.extend_from_slice(reason);
            }
        }
        out.extend_from_slice(b"\r\n");
        for h in &self.headers {
            out.extend_from_slice(h.name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            scan::write_unfolded(h.value, out);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(self.body);
    }
}
