//! Outbound over SMTP: settings, the message as built, and what the relay's answers mean.

use super::*;
use crate::smtp::{SmtpSettings, build_message, message_id};
use mail_parser::MimeHeaders as _;
use seam_sdk::smtp::{Envelope, Relay, Reply, Security, SmtpError};

const NOW: u64 = 1_763_900_000;

fn smtp_config(extra: &[(&str, &str)]) -> Result<SendConfig, String> {
    let mut plain = vec![
        ("send-api", "smtp"),
        ("from", "Acme Support <support@acme.example>"),
        ("smtp-host", "smtp.acme.example"),
        ("smtp-username", "seam"),
    ];
    plain.extend_from_slice(extra);
    SendConfig::from_lookup(lookup(&plain), lookup(&[("smtp-password", "pw-secret-9")]))
}

fn parsed(bytes: &[u8]) -> mail_parser::Message<'_> {
    mail_parser::MessageParser::default().parse(bytes).expect("the built message parses")
}

#[test]
fn smtp_settings_are_read_and_checked() {
    let c = smtp_config(&[]).unwrap();
    let s = c.smtp.clone().unwrap();
    assert_eq!((s.host.as_str(), s.port, s.security), ("smtp.acme.example", 587, Security::Starttls));
    assert_eq!(s.login, Some(("seam".into(), "pw-secret-9".into())));
    assert!(!format!("{c:?}").contains("pw-secret-9"), "the password is not in debug output");
    let port = |security: &str| smtp_config(&[("smtp-security", security)]).unwrap().smtp.unwrap().port;
    assert_eq!((port("tls"), port("none"), port("STARTTLS")), (465, 25, 587));
    let explicit = smtp_config(&[("smtp-port", "2525")]).unwrap().smtp.unwrap();
    assert_eq!(explicit.port, 2525);

    let err = |get: &[(&str, &str)], secret: &[(&str, &str)]| {
        SmtpSettings::from_lookup(lookup(get), lookup(secret)).unwrap_err()
    };
    let host = ("smtp-host", "relay.example");
    assert!(err(&[], &[]).contains("`smtp-host` is not set"));
    assert!(err(&[host, ("smtp-security", "ssl")], &[]).contains("`smtp-security` is `ssl`"));
    assert!(err(&[host, ("smtp-port", "99999")], &[]).contains("`smtp-port` is `99999`"));
    assert!(err(&[host, ("smtp-port", "0")], &[]).contains("not a port"));
    assert!(err(&[host, ("smtp-username", "u")], &[]).contains("`smtp-password` is not set"));
    assert!(err(&[host], &[("smtp-password", "p")]).contains("`smtp-username` is not set"));
    let anonymous = SmtpSettings::from_lookup(lookup(&[host]), lookup(&[])).unwrap();
    assert!(anonymous.login.is_none() && anonymous.relay().credentials.is_none());
}

#[test]
fn message_ids_are_safe_and_on_the_senders_domain() {
    assert_eq!(message_id("01JD2X", "support@acme.example"), "seam.01JD2X@acme.example");
    assert_eq!(message_id("a b<c>@d", "x@y.example"), "seam.a-b-c--d@y.example");
}

#[test]
fn the_message_has_the_headers_a_mail_client_threads_by() {
    let config = smtp_config(&[]).unwrap();
    let mut message = outbound(Some("Здравствуйте! Ваш заказ отправлен.\nСпасибо."));
    message.subject = Some("Re: Проблема с заказом".into());
    message.reply_to = Some("<CAF=abc123@mail.gmail.com>".into());
    let (bytes, id) = build_message(&message, &config, &[], NOW).unwrap();
    assert_eq!(id, "seam.msg-1@acme.example");
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("\r\n"), "CRLF line ends");
    let mail = parsed(&bytes);
    let from = mail.from().and_then(|a| a.first()).unwrap();
    assert_eq!((from.name(), from.address()), (Some("Acme Support"), Some("support@acme.example")));
    assert_eq!(mail.to().and_then(|a| a.first()).and_then(|a| a.address()), Some("anna@example.com"));
    assert_eq!(mail.subject(), Some("Re: Проблема с заказом"));
    assert_eq!(mail.message_id(), Some("seam.msg-1@acme.example"));
    assert_eq!(mail.in_reply_to().as_text(), Some("CAF=abc123@mail.gmail.com"));
    assert_eq!(mail.references().as_text(), Some("CAF=abc123@mail.gmail.com"));
    assert_eq!(mail.date().map(|d| d.to_timestamp()), Some(NOW as i64));
    assert_eq!(mail.header("X-Seam-Message-Id").and_then(|h| h.as_text()), Some("msg-1"));
    assert_eq!(
        mail.body_text(0).as_deref().map(str::trim_end),
        Some("Здравствуйте! Ваш заказ отправлен.\nСпасибо.")
    );
    // A reply-to that is not a Message-ID (a content hash) adds no threading headers.
    message.reply_to = Some("sha256-0f3a".into());
    let (bytes, _) = build_message(&message, &config, &[], NOW).unwrap();
    assert!(parsed(&bytes).in_reply_to().is_empty());
}

#[test]
fn files_are_attached_as_mime_parts() {
    let config = smtp_config(&[]).unwrap();
    let files = [
        OutgoingFile {
            file_name: "счёт.pdf".into(),
            mime_type: "application/pdf".into(),
            content: b"%PDF-1.4".to_vec(),
        },
        OutgoingFile {
            file_name: "photo.jpg".into(),
            mime_type: "image/jpeg".into(),
            content: vec![0xff, 0xd8, 0, 1],
        },
    ];
    let (bytes, _) = build_message(&outbound(None), &config, &files, NOW).unwrap();
    let mail = parsed(&bytes);
    assert_eq!(mail.attachment_count(), 2);
    let first = mail.attachment(0).unwrap();
    assert_eq!((first.attachment_name(), first.contents()), (Some("счёт.pdf"), &b"%PDF-1.4"[..]));
    assert_eq!(mail.attachment(1).unwrap().contents(), &[0xff, 0xd8, 0, 1]);
    assert_eq!(mail.body_text(0).as_deref().map(str::trim_end), Some("Attached: счёт.pdf, photo.jpg"));
}

#[test]
fn deliver_hands_the_message_to_the_relay_and_maps_its_answer() {
    let message = outbound(Some("hello"));
    let no_http = |_: &Request| -> Result<Response, HttpError> { panic!("no HTTP request expected") };
    let send = |answer: Result<Reply, SmtpError>| {
        let mut seen = None;
        let result = deliver(
            &message,
            smtp_config(&[("smtp-port", "2525"), ("smtp-security", "none")]),
            no_http,
            |relay: &Relay, envelope: &Envelope, bytes: &[u8]| {
                seen = Some((relay.clone(), envelope.clone(), bytes.to_vec()));
                answer
            },
            NOW,
        );
        (result, seen.expect("the relay was called"))
    };
    let ok = Reply { code: 250, text: "2.0.0 Ok: queued as 4C1F2".into() };
    let (result, (relay, envelope, bytes)) = send(Ok(ok));
    same(result, DeliveryResult::Accepted("seam.msg-1@acme.example".into()));
    assert_eq!(
        (relay.host.as_str(), relay.port, relay.security),
        ("smtp.acme.example", 2525, Security::None)
    );
    let login = relay.credentials.unwrap();
    assert_eq!((login.username.as_str(), login.password.as_str()), ("seam", "pw-secret-9"));
    assert_eq!(envelope.sender.as_deref(), Some("support@acme.example"), "bounces go to the sender");
    assert_eq!(envelope.recipients, vec!["anna@example.com".to_owned()]);
    assert_eq!(parsed(&bytes).subject(), Some("Your order"));

    let refused = Reply { code: 550, text: "5.1.1 <anna@example.com>: Recipient address rejected".into() };
    same(
        send(Err(SmtpError::Permanent(refused))).0,
        DeliveryResult::Rejected(
            "the SMTP relay refused (550): 5.1.1 <anna@example.com>: Recipient address rejected".into(),
        ),
    );
    let (later, _) = send(Err(SmtpError::Transient("451 4.3.0 try again, login pw-secret-9 failed".into())));
    match later {
        DeliveryResult::RetryLater(hint) => {
            assert!(
                hint.reason.contains("451 4.3.0") && !hint.reason.contains("pw-secret-9"),
                "{}",
                hint.reason
            );
        }
        other => panic!("expected RetryLater, got {other:?}"),
    }
    let (denied, _) =
        send(Err(SmtpError::Denied("smtp://smtp.acme.example:2525 is not in capabilities.smtp".into())));
    assert!(
        matches!(denied, DeliveryResult::Rejected(r) if r.contains("smtp.acme.example:2525 is not allowed"))
    );
}
