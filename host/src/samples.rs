//! Sample values of the WIT types, for tests, benchmarks and examples (the SDK's test
//! harness re-exports them).

use crate::runtime::bindings::{routing, types};

/// A route context for a text message from one Telegram customer, in an open conversation,
/// with no queues and no agents.
pub fn message_context(text: &str) -> routing::RouteContext {
    let sender = types::Identity { kind: "telegram".into(), value: "1001".into() };
    routing::RouteContext {
        trigger: routing::Trigger::Event,
        event: Some(types::Event::Message(types::InboundMessage {
            external_id: "m1".into(),
            sender: sender.clone(),
            sender_name: Some("Test Customer".into()),
            text: Some(text.into()),
            attachments: Vec::new(),
            reply_to: None,
            thread: None,
            sent_at: Some(1_700_000_000_000),
            extras: None,
        })),
        channel: "telegram".into(),
        channel_kind: "telegram".into(),
        customer: routing::CustomerSummary {
            id: "c1".into(),
            identities: vec![sender],
            attributes: Vec::new(),
            channels: vec!["telegram".into()],
            last_agent: None,
            previous_conversations: 0,
        },
        conversation: routing::ConversationSummary {
            id: "v1".into(),
            status: routing::ConversationStatus::Open,
            channels: vec!["telegram".into()],
            queue: None,
            assignee: None,
            tags: Vec::new(),
            message_count: 1,
            opened_at: 1_700_000_000_000,
            waiting_since: None,
        },
        queues: Vec::new(),
        agents: Vec::new(),
        now: 1_700_000_000_000,
        proposed: None,
    }
}

/// A `message.received` input on channel `telegram`: message `id` from Telegram user
/// `sender` with `text`, as the channel's connector would have produced it.
pub fn telegram_input(id: &str, sender: u64, text: &str) -> crate::log::NewEvent {
    let message = types::InboundMessage {
        external_id: id.to_owned(),
        sender: types::Identity { kind: "telegram".into(), value: sender.to_string() },
        sender_name: Some("Load".into()),
        text: Some(text.to_owned()),
        attachments: Vec::new(),
        reply_to: None,
        thread: None,
        sent_at: Some(1_700_000_000_000),
        extras: None,
    };
    crate::channels::input_event("telegram", &types::Event::Message(message))
}
