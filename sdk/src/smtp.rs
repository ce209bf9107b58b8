//! Email out through an SMTP relay (`capabilities.smtp` in the manifest lists the relays).
//!
//! The plugin builds the whole RFC 5322 message (headers and MIME body) and hands it over
//! with [`send`]; the host connects, secures the connection, logs in and speaks SMTP.

use crate::bindings::seam::plugin::smtp as host;
pub use crate::bindings::seam::plugin::smtp::{Credentials, Envelope, Relay, Reply, Security, SmtpError};

/// Hands `message` (a complete RFC 5322 message with CRLF line ends) to `relay` for
/// `envelope`'s recipients. `Ok` is the relay's final reply: it has taken the message.
pub fn send(relay: &Relay, envelope: &Envelope, message: &[u8]) -> Result<Reply, SmtpError> {
    host::send(relay, envelope, message)
}

/// `error` in words, for a delivery reason (the generated `Display` shows the variant as
/// debug output).
pub fn describe(error: &SmtpError) -> String {
    match error {
        SmtpError::Denied(m) => format!("relay not allowed: {m}"),
        SmtpError::Invalid(m) => format!("cannot send: {m}"),
        SmtpError::Permanent(reply) => format!("the relay refused ({}): {}", reply.code, reply.text),
        SmtpError::Transient(m) => format!("the relay could not take it now: {m}"),
    }
}
