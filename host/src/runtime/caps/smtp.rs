//! `seam:plugin/smtp`: a plugin hands a finished RFC 5322 message to an SMTP relay that its
//! manifest grants (`capabilities.smtp`).
//!
//! The plugin never gets a socket. The host checks the relay like an outbound HTTP
//! destination (granted host and port; a private or loopback address only if named as a
//! literal IP), connects to the address it checked (so a second DNS answer cannot redirect
//! the connection), does TLS (implicit or STARTTLS, against the same roots as outbound https)
//! and AUTH, and speaks SMTP with `lettre`. The relay's replies come back to the plugin:
//! 5xx as `permanent`, everything else that fails as `transient`, so the connector can tell
//! the delivery worker whether to retry.

use crate::runtime::bindings::seam::plugin::smtp::{
    Credentials, Envelope, Host, Relay, Reply, Security, SmtpError,
};
use crate::runtime::caps::http::{HostRule, vet_destination};
use crate::runtime::state::HostState;
use lettre::AsyncTransport as _;
use lettre::transport::smtp::authentication::{Credentials as Login, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncSmtpTransport, Tokio1Executor};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The scheme of `capabilities.smtp` entries, with the port allowed when none is given
/// (587, message submission).
pub const SMTP_SCHEMES: &[(&str, u16)] = &[("smtp", 587)];

/// Largest message a plugin may hand over, in bytes. Relays commonly refuse above 25-50 MB.
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;

/// Most recipients of one message.
pub const MAX_RECIPIENTS: usize = 100;

/// How long one SMTP command may wait for the relay's reply. The plugin's own
/// `limits.timeout-ms` bounds the whole call on top of this.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

impl Host for HostState {
    async fn send(&mut self, relay: Relay, envelope: Envelope, message: Vec<u8>) -> Result<Reply, SmtpError> {
        let started = Instant::now();
        let rules = self.env.smtp_rules.clone();
        let roots = self.env.extra_roots.clone();
        let plugin = self.env.name.clone();
        let result = send(&rules, &roots, relay, envelope, &message).await;
        // Waiting on the relay is not the plugin's CPU time.
        self.http_policy.waited_ns.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        match &result {
            Ok(reply) => tracing::debug!(%plugin, code = reply.code, "smtp: handed over"),
            Err(error) => tracing::info!(%plugin, ?error, "smtp: not handed over"),
        }
        result
    }
}

/// Checks the request, then sends `message` to `relay` for `envelope` in one connection.
async fn send(
    rules: &[HostRule],
    extra_roots: &[Vec<u8>],
    relay: Relay,
    envelope: Envelope,
    message: &[u8],
) -> Result<Reply, SmtpError> {
    let envelope = checked_envelope(&envelope, message)?;
    let (addr, host) = vet_destination(rules, "capabilities.smtp", "smtp", &relay.host, relay.port)
        .await
        .map_err(SmtpError::Denied)?;
    let tls = match relay.security {
        Security::None => Tls::None,
        Security::Tls | Security::Starttls => {
            let mut params = TlsParameters::builder(host.clone());
            for der in extra_roots {
                let cert = Certificate::from_der(der.clone())
                    .map_err(|e| SmtpError::Transient(format!("extra root certificate: {e}")))?;
                params = params.add_root_certificate(cert);
            }
            let params =
                params.build_rustls().map_err(|e| SmtpError::Transient(format!("TLS settings: {e}")))?;
            if relay.security == Security::Tls { Tls::Wrapper(params) } else { Tls::Required(params) }
        }
    };
    // Connect to the checked address; TLS still verifies the certificate against `host`.
    let hello = envelope.from().map_or_else(|| "localhost".to_owned(), |a| a.domain().to_owned());
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(addr.ip().to_string())
        .port(addr.port())
        .tls(tls)
        .hello_name(ClientId::Domain(hello))
        .timeout(Some(COMMAND_TIMEOUT));
    if let Some(Credentials { username, password }) = relay.credentials {
        builder = builder
            .credentials(Login::new(username, password))
            .authentication(vec![Mechanism::Plain, Mechanism::Login]);
    }
    let transport = builder.build::<Tokio1Executor>();
    match transport.send_raw(&envelope, message).await {
        Ok(response) => Ok(Reply {
            code: u16::from(response.code()),
            text: response.message().collect::<Vec<_>>().join(" "),
        }),
        Err(e) => Err(classify(&e, &host, relay.port)),
    }
}

/// The envelope as lettre's, after the checks that need no network: at least one and at
/// most [`MAX_RECIPIENTS`] recipients, every address valid, the message not empty nor over
/// [`MAX_MESSAGE_BYTES`].
fn checked_envelope(envelope: &Envelope, message: &[u8]) -> Result<lettre::address::Envelope, SmtpError> {
    if message.is_empty() {
        return Err(SmtpError::Invalid("the message is empty".into()));
    }
    if message.len() > MAX_MESSAGE_BYTES {
        return Err(SmtpError::Invalid(format!(
            "the message is {} bytes, over the limit of {MAX_MESSAGE_BYTES}",
            message.len()
        )));
    }
    if envelope.recipients.is_empty() || envelope.recipients.len() > MAX_RECIPIENTS {
        return Err(SmtpError::Invalid(format!(
            "{} recipients: give 1 to {MAX_RECIPIENTS}",
            envelope.recipients.len()
        )));
    }
    let address = |what: &str, value: &str| {
        value
            .parse::<Address>()
            .map_err(|e| SmtpError::Invalid(format!("{what} `{value}` is not an email address: {e}")))
    };
    let sender = envelope.sender.as_deref().map(|s| address("sender", s)).transpose()?;
    let recipients =
        envelope.recipients.iter().map(|r| address("recipient", r)).collect::<Result<Vec<_>, _>>()?;
    lettre::address::Envelope::new(sender, recipients).map_err(|e| SmtpError::Invalid(e.to_string()))
}

/// What a failed send means for the plugin: a 5xx reply is permanent, anything else
/// (a 4xx reply, a refused or dropped connection, TLS, login, timeout) transient.
fn classify(error: &lettre::transport::smtp::Error, host: &str, port: u16) -> SmtpError {
    let text = format!("{host}:{port}: {error}");
    match error.status() {
        Some(code) if error.is_permanent() => SmtpError::Permanent(Reply { code: u16::from(code), text }),
        _ => SmtpError::Transient(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(host: &str, port: u16) -> Relay {
        Relay { host: host.into(), port, security: Security::None, credentials: None }
    }

    fn envelope(to: &[&str]) -> Envelope {
        Envelope {
            sender: Some("support@acme.example".into()),
            recipients: to.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn rules(list: &[&str]) -> Vec<HostRule> {
        list.iter().map(|r| HostRule::parse_with(r, SMTP_SCHEMES).unwrap()).collect()
    }

    #[test]
    fn grants_default_to_the_submission_port() {
        assert!(HostRule::parse_with("smtp://smtp.example.com", SMTP_SCHEMES).is_ok());
        let err = HostRule::parse_with("https://smtp.example.com", SMTP_SCHEMES).unwrap_err();
        assert!(err.contains("scheme must be smtp"), "{err}");
    }

    #[tokio::test]
    async fn ungranted_relays_and_unnamed_private_addresses_are_denied() {
        let msg = b"Subject: x\r\n\r\nhi\r\n";
        let denied = send(
            &rules(&["smtp://smtp.example.com"]),
            &[],
            relay("127.0.0.1", 25),
            envelope(&["a@b.example"]),
            msg,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&denied, SmtpError::Denied(m) if m.contains("not in capabilities.smtp")),
            "{denied:?}"
        );
        // The port is part of the grant.
        let denied = send(
            &rules(&["smtp://127.0.0.1:2525"]),
            &[],
            relay("127.0.0.1", 25),
            envelope(&["a@b.example"]),
            msg,
        )
        .await
        .unwrap_err();
        assert!(matches!(denied, SmtpError::Denied(_)));
        // A name that resolves to loopback needs the literal address granted.
        let denied = send(
            &rules(&["smtp://localhost:2525"]),
            &[],
            relay("localhost", 2525),
            envelope(&["a@b.example"]),
            msg,
        )
        .await
        .unwrap_err();
        assert!(matches!(&denied, SmtpError::Denied(m) if m.contains("non-public")), "{denied:?}");
    }

    #[tokio::test]
    async fn bad_envelopes_and_messages_are_invalid_before_any_connection() {
        let ok_rules = rules(&["smtp://127.0.0.1:*"]);
        let msg = b"Subject: x\r\n\r\nhi\r\n";
        for (env, message, want) in [
            (envelope(&[]), &msg[..], "0 recipients"),
            (envelope(&["not an address"]), &msg[..], "recipient `not an address`"),
            (envelope(&["a@b.example\r\nRCPT TO:<c@d.example>"]), &msg[..], "is not an email address"),
            (envelope(&["a@b.example"]), &b""[..], "empty"),
        ] {
            let err = send(&ok_rules, &[], relay("127.0.0.1", 9), env, message).await.unwrap_err();
            assert!(matches!(&err, SmtpError::Invalid(m) if m.contains(want)), "want {want:?}, got {err:?}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_relay_is_transient() {
        // Port 9 (discard) on loopback: nothing listens, the connection is refused.
        let err = send(
            &rules(&["smtp://127.0.0.1:9"]),
            &[],
            relay("127.0.0.1", 9),
            envelope(&["a@b.example"]),
            b"x",
        )
        .await
        .unwrap_err();
        assert!(matches!(&err, SmtpError::Transient(m) if m.contains("127.0.0.1:9")), "{err:?}");
    }
}
