use thiserror::Error;

/// Why a buffer is not a SIP message this parser accepts. Each variant is one rule of RFC 3261 §7 / §25
/// or one of our hard limits, so the daemon can count and log them precisely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ParseError {
    /// The buffer is larger than `Limits::max_message`.
    #[error("message exceeds the size limit")]
    TooLarge,
    /// No empty line ends the header section (a truncated or non-SIP datagram).
    #[error("header section is not terminated by an empty line")]
    Incomplete,
    /// A line in the header section is longer than `Limits::max_line`.
    #[error("line exceeds the length limit")]
    LineTooLong,
    /// More header lines than `Limits::max_headers`.
    #[error("too many header fields")]
    TooManyHeaders,
    /// The first line is neither a Request-Line nor a Status-Line (RFC 3261 §7.1, §7.2).
    #[error("malformed start line")]
    BadStartLine,
    /// A Status-Line whose code is not three digits.
    #[error("malformed status code")]
    BadStatusCode,
    /// A header line without a colon or with a non-token name.
    #[error("malformed header line")]
    BadHeaderLine,
    /// The header section is not valid UTF-8 (RFC 3261 §25: TEXT-UTF8).
    #[error("header section is not valid UTF-8")]
    NotUtf8,
    /// Content-Length is not a number, is negative or does not fit 32 bits.
    #[error("malformed Content-Length")]
    BadContentLength,
    /// More than one Content-Length header (RFC 4475 §3.3.9).
    #[error("several Content-Length values")]
    DuplicateContentLength,
    /// Content-Length promises more bytes than the datagram holds (RFC 4475 §3.1.2.2).
    #[error("Content-Length larger than the message")]
    ContentLengthExceedsMessage,
    /// A stream message without Content-Length cannot be framed (RFC 3261 §18.3).
    #[error("Content-Length required on stream transports")]
    MissingContentLength,
}

/// Crate-wide error type.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Sanity(#[from] crate::SanityError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
