//! Decisions in the log: how the processor appends them and how a restart, a rebuild and a
//! replay read them back.
//!
//! The decisions of consecutive inputs share one log event (`pipeline.decisions`, up to
//! [`GROUP_MAX`] of them or [`GROUP_MAX_BYTES`] of JSON): the log's cost is mostly per
//! stored key (a descent, a node copy, a node split every few appends), and one decision
//! event per input was a third of the keys the log wrote under load. A decision alone in its
//! batch is appended as before, one `pipeline.decided` event with the customer and the
//! conversation in its envelope; logs written before groups hold only those.

use super::effects::{Decision, Effect};
use crate::log::{Envelope, EventLog, LogError, NewEvent, Offset, Origin};
use serde_json::value::RawValue;

/// Event type of one input's decision.
pub const DECIDED: &str = "pipeline.decided";

/// Event type of the decisions of several consecutive inputs, payload `{"decisions": [...]}`.
pub const DECISIONS: &str = "pipeline.decisions";

/// Most decisions in one `pipeline.decisions` event.
pub const GROUP_MAX: usize = 64;

/// Most bytes of decisions' JSON in one event (a decision is ~0.3-1.5 KiB): keeps the log's
/// values, and each event a live stream sends, small.
pub const GROUP_MAX_BYTES: usize = 64 * 1024;

/// Decision events to read at a time while collecting a batch of decisions.
const READ_EVENTS: usize = 64;

/// The decisions of one batch of inputs, as the log events that carry them, in order.
#[derive(Default)]
pub struct Grouper {
    events: Vec<NewEvent>,
    /// The open group: each decision's JSON, and what the first one's event would say of it.
    open: Vec<String>,
    open_bytes: usize,
    first: Option<FirstOfGroup>,
}

/// What a lone decision's event says of its input besides the decision.
struct FirstOfGroup {
    channel: Option<String>,
    customer: Option<String>,
    conversation: Option<String>,
}

impl Grouper {
    /// Adds the decision of `input`.
    pub fn push(&mut self, input: &Envelope, effects: Vec<Effect>, command: bool) {
        let first = FirstOfGroup {
            channel: input.channel.clone(),
            customer: effects.iter().find_map(|e| match e {
                Effect::Recorded { customer, .. } | Effect::AttributesSet { customer, .. } => {
                    Some(customer.clone())
                }
                Effect::CustomersMerged { into, .. } => Some(into.clone()),
                _ => None,
            }),
            conversation: effects.iter().find_map(|e| match e {
                Effect::Recorded { conversation, .. } => conversation.clone(),
                _ => None,
            }),
        };
        let decision = Decision { source: input.offset, effects, command };
        // A decision is plain data (strings, numbers, JSON values): encoding it cannot fail.
        let json = serde_json::to_string(&decision).unwrap_or_else(|_| "{}".into());
        if !self.open.is_empty() && self.open_bytes + json.len() > GROUP_MAX_BYTES {
            self.close();
        }
        self.first.get_or_insert(first);
        self.open_bytes += json.len();
        self.open.push(json);
        if self.open.len() >= GROUP_MAX {
            self.close();
        }
    }

    /// Adds an input the last decision made (a router's reply), after the event that holds
    /// that decision: a crash stores a prefix of an append, so a stored reply's decision is
    /// stored too.
    pub fn push_input(&mut self, event: NewEvent) {
        self.close();
        self.events.push(event);
    }

    /// The events, the open group closed.
    pub fn finish(mut self) -> Vec<NewEvent> {
        self.close();
        self.events
    }

    fn close(&mut self) {
        let Some(first) = self.first.take() else { return };
        let group = std::mem::take(&mut self.open);
        self.open_bytes = 0;
        // A group's inputs may have come through several channels, from several customers.
        let (kind, json, first) = match group.len() {
            1 => (DECIDED, group.concat(), first),
            _ => {
                let json = format!("{{\"decisions\":[{}]}}", group.join(","));
                (DECISIONS, json, FirstOfGroup { channel: None, customer: None, conversation: None })
            }
        };
        let payload = RawValue::from_string(json)
            .unwrap_or_else(|_| RawValue::from_string("{}".into()).unwrap_or_default());
        self.events.push(NewEvent {
            kind: kind.into(),
            origin: Origin::Decision,
            channel: first.channel,
            external_id: None,
            idempotency_key: None,
            customer: first.customer,
            conversation: first.conversation,
            payload,
        });
    }
}

/// The payload of a `pipeline.decisions` event: the decisions of consecutive inputs, in
/// input order.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct DecisionGroup {
    /// The decisions, each as a `pipeline.decided` event's payload.
    pub decisions: Vec<Decision>,
}

/// The decisions a decision event of the log carries, in order.
pub fn decisions_of(event: &Envelope) -> Result<Vec<Decision>, LogError> {
    let corrupt = |reason: String| LogError::Corrupt { offset: event.offset, reason };
    match event.kind.as_str() {
        DECIDED => Ok(vec![Decision::from_event(event)?]),
        DECISIONS => serde_json::from_str::<DecisionGroup>(event.payload.get())
            .map(|g| g.decisions)
            .map_err(|e| corrupt(e.to_string())),
        other => Err(corrupt(format!("`{other}` is not a decision event"))),
    }
}

/// A decision read from the log, with the time its event was appended.
pub struct Logged {
    /// When its event was appended, ms.
    pub time: i64,
    /// The decision.
    pub decision: Decision,
}

/// At least `want` decisions after offset `after` (fewer at the end of the log, or at
/// `head`), in order, and the last offset examined, to read on from.
pub fn read(
    log: &dyn EventLog,
    after: Offset,
    head: Offset,
    want: usize,
) -> Result<(Vec<Logged>, Offset), LogError> {
    let mut out = Vec::new();
    let mut at = after;
    loop {
        let (events, last) = log.read_origin(at, READ_EVENTS, Origin::Decision)?;
        for event in &events {
            out.extend(
                decisions_of(event)?.into_iter().map(|decision| Logged { time: event.time, decision }),
            );
        }
        let done = last == at || last >= head;
        at = last;
        if done || out.len() >= want {
            return Ok((out, at));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{SledLog, SledLogOptions};

    fn input(offset: Offset) -> Envelope {
        serde_json::from_value(serde_json::json!({
            "v": 1, "offset": offset, "id": "x", "time": 1, "type": "message.received",
            "origin": "input", "channel": "tg", "payload": {}
        }))
        .unwrap()
    }

    fn effects(customer: &str, text: &str) -> Vec<Effect> {
        vec![
            Effect::Rejected { reason: text.into() },
            Effect::CustomerCreated { customer: customer.into(), at: 1 },
        ]
    }

    #[test]
    fn groups_close_at_their_bounds_and_before_a_reply() {
        let mut g = Grouper::default();
        g.push(&input(1), effects("a", "x"), false);
        let lone = g.finish();
        assert_eq!((lone.len(), lone[0].kind.as_str()), (1, DECIDED));

        let mut g = Grouper::default();
        for i in 0..GROUP_MAX as u64 + 1 {
            g.push(&input(i + 1), effects("a", "x"), false);
        }
        g.push_input(NewEvent::input("message.send-requested", RawValue::from_string("{}".into()).unwrap()));
        g.push(&input(100), effects("a", "x"), false);
        let kinds: Vec<_> = g.finish().into_iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [DECISIONS, DECIDED, "message.send-requested", DECIDED]);

        // Big decisions close a group by size.
        let mut g = Grouper::default();
        let big = "y".repeat(GROUP_MAX_BYTES / 3);
        for i in 0..4 {
            g.push(&input(i + 1), effects("a", &big), false);
        }
        let sizes: Vec<_> = g.finish().iter().map(|e| decisions_of_new(e).len()).collect();
        assert_eq!(sizes, [2, 2]);
    }

    fn decisions_of_new(e: &NewEvent) -> Vec<Decision> {
        let mut envelope = input(1);
        envelope.kind = e.kind.clone();
        envelope.payload = e.payload.clone();
        decisions_of(&envelope).unwrap()
    }

    #[tokio::test]
    async fn read_returns_every_decision_in_order_from_single_and_grouped_events() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let log = SledLog::open(&db, SledLogOptions::default()).unwrap();
        let mut g = Grouper::default();
        for i in 0..150u64 {
            g.push(&input(i + 1), effects(&format!("c{i}"), "x"), i % 7 == 0);
            if i == 0 || i == 10 {
                g.push_input(NewEvent::input(
                    "message.send-requested",
                    RawValue::from_string("{}".into()).unwrap(),
                ));
            }
        }
        let events = g.finish();
        assert!(events.iter().any(|e| e.kind == DECISIONS) && events.iter().any(|e| e.kind == DECIDED));
        log.append(events).await.unwrap();
        let head = log.head();
        let (mut all, mut after) = (Vec::new(), 0);
        loop {
            let (read, last) = read(&log, after, head, 40).unwrap();
            all.extend(read);
            if last == after || last >= head {
                break;
            }
            after = last;
        }
        let sources: Vec<_> = all.iter().map(|l| l.decision.source).collect();
        assert_eq!(sources, (1..=150).collect::<Vec<_>>());
        assert!(all.iter().all(|l| l.decision.command == ((l.decision.source - 1) % 7 == 0)));
    }

    #[test]
    fn an_event_of_another_type_is_not_read_as_decisions() {
        let mut e = input(3);
        e.kind = "message.received".into();
        let err = decisions_of(&e).err().unwrap().to_string();
        assert!(err.contains("message.received") && err.contains('3'), "{err}");
    }
}
