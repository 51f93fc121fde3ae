//! Publishing to NATS JetStream: a stream created if missing, one subject per event type, and
//! `Nats-Msg-Id` = the event id, so that JetStream's duplicate window turns a republished event
//! (a crash between publish and ack) into no second copy.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishAckFuture, stream};
use bytes::Bytes;

use super::{PublishError, RelaySettings};
use crate::store::outbox::Event;

/// A JetStream publisher.
pub struct NatsPublisher {
    js: jetstream::Context,
    prefix: String,
}

impl NatsPublisher {
    /// Connects and makes sure the stream exists (created with `relay.nats_stream`, subjects
    /// `<relay.subject_prefix>.>` and the configured duplicate window when missing).
    pub async fn connect(url: &str, settings: &RelaySettings) -> Result<Self, PublishError> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            // A lost connection is the relay's to handle: it republishes the batch on a new one.
            .max_reconnects(Some(3))
            .connect(url)
            .await
            .map_err(|e| PublishError::new(format!("connecting to NATS: {e}")))?;
        let js = jetstream::new(client);
        let config = stream::Config {
            name: settings.nats_stream.clone(),
            subjects: vec![format!("{}.>", settings.subject_prefix)],
            duplicate_window: Duration::from_secs(settings.nats_duplicate_window_secs),
            storage: stream::StorageType::File,
            ..Default::default()
        };
        js.get_or_create_stream(config)
            .await
            .map_err(|e| PublishError::new(format!("creating the JetStream stream: {e}")))?;
        Ok(Self {
            js,
            prefix: settings.subject_prefix.clone(),
        })
    }

    /// The subject of an event: `<prefix>.<type>`, and since every type starts with its
    /// aggregate type, `<prefix>.<aggregatetype>.<what happened>`.
    pub fn subject(prefix: &str, event: &Event) -> String {
        format!("{prefix}.{}", event.event_type)
    }

    /// Publishes events whose aggregates are all different, all at once, and waits until
    /// JetStream has stored every one.
    pub async fn publish_wave(&mut self, events: &[&Event]) -> Result<(), PublishError> {
        let mut acks: Vec<PublishAckFuture> = Vec::with_capacity(events.len());
        for event in events {
            let mut headers = HeaderMap::new();
            let id = event.id.to_string();
            headers.insert("Nats-Msg-Id", id.as_str());
            headers.insert("Rotessa-Event-Id", id.as_str());
            headers.insert("Rotessa-Type", event.event_type.as_str());
            headers.insert("Rotessa-Aggregate-Type", event.aggregatetype.as_str());
            headers.insert("Rotessa-Aggregate-Id", event.aggregateid.as_str());
            headers.insert(
                "Rotessa-Occurred-At",
                event.occurred_at.to_rfc3339().as_str(),
            );
            let body = Bytes::from(event.payload.to_string());
            let ack = self
                .js
                .publish_with_headers(Self::subject(&self.prefix, event), headers, body)
                .await
                .map_err(|e| PublishError::new(format!("publishing to JetStream: {e}")))?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await
                .map_err(|e| PublishError::new(format!("JetStream did not store: {e}")))?;
        }
        Ok(())
    }
}
