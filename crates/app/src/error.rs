use pbxguard_store::StoreError;

/// Why an operation failed, worded for the operator. The kind tells an interface how to present it
/// (the HTTP API maps them to 400, 404, 409 and 500); the message says what is wrong and how to fix it.
/// An operation that fails has changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input breaks a rule (a bad CIDR, a weak password, an unknown setting).
    #[error("{0}")]
    Invalid(String),
    /// What the operation names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// It exists already, or another object's state forbids the change.
    #[error("{0}")]
    Conflict(String),
    /// Reading a file or the database failed.
    #[error("{0}")]
    Io(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ExtensionExists(_) | StoreError::InUse(_) => Self::Conflict(e.to_string()),
            StoreError::NoSuchExtension(_) => Self::NotFound(e.to_string()),
            e => Self::Store(e),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `invalid!("...")`: an [`Error::Invalid`] with a formatted message.
#[macro_export]
macro_rules! invalid {
    ($($t:tt)*) => { $crate::Error::Invalid(format!($($t)*)) };
}

#[macro_export]
macro_rules! not_found {
    ($($t:tt)*) => { $crate::Error::NotFound(format!($($t)*)) };
}

#[macro_export]
macro_rules! conflict {
    ($($t:tt)*) => { $crate::Error::Conflict(format!($($t)*)) };
}
