//! Publishing to RabbitMQ: a durable topic exchange, routing key = the event type
//! (`<aggregatetype>.<what happened>`), persistent messages with `message_id` = the event id,
//! and publisher confirms: an event counts as relayed once the broker confirmed it. Messages
//! are `mandatory`: one that no queue is bound to take comes back, and the batch is retried
//! instead of being confirmed into nowhere.

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};

use super::{PublishError, RelaySettings};
use crate::store::outbox::Event;

/// A RabbitMQ publisher on a confirming channel.
pub struct AmqpPublisher {
    _connection: Connection,
    channel: Channel,
    exchange: String,
}

impl AmqpPublisher {
    /// Connects, declares the exchange (durable, topic) and turns publisher confirms on.
    pub async fn connect(url: &str, settings: &RelaySettings) -> Result<Self, PublishError> {
        let connection = tokio::time::timeout(
            super::BROKER_TIMEOUT,
            Connection::connect(url, ConnectionProperties::default()),
        )
        .await
        .map_err(|_| PublishError::new("connecting to RabbitMQ: no answer in time".into()))?
        .map_err(|e| PublishError::new(format!("connecting to RabbitMQ: {e}")))?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| PublishError::new(format!("opening a RabbitMQ channel: {e}")))?;
        channel
            .exchange_declare(
                settings.amqp_exchange.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| PublishError::new(format!("declaring the exchange: {e}")))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| PublishError::new(format!("enabling publisher confirms: {e}")))?;
        Ok(Self {
            _connection: connection,
            channel,
            exchange: settings.amqp_exchange.clone(),
        })
    }

    /// Publishes events whose aggregates are all different, all at once, and waits until the
    /// broker confirmed every one.
    pub async fn publish_wave(&mut self, events: &[&Event]) -> Result<(), PublishError> {
        let mut confirms = Vec::with_capacity(events.len());
        for event in events {
            let mut headers = FieldTable::default();
            let text = |s: &str| AMQPValue::LongString(s.into());
            headers.insert("rotessa-type".into(), text(&event.event_type));
            headers.insert("rotessa-aggregate-type".into(), text(&event.aggregatetype));
            headers.insert("rotessa-aggregate-id".into(), text(&event.aggregateid));
            headers.insert(
                "rotessa-occurred-at".into(),
                text(&event.occurred_at.to_rfc3339()),
            );
            let properties = BasicProperties::default()
                .with_message_id(ShortString::from(event.id.to_string()))
                .with_type(ShortString::from(event.event_type.as_str()))
                .with_content_type("application/json".into())
                .with_delivery_mode(2)
                .with_timestamp(event.occurred_at.timestamp().max(0) as u64)
                .with_headers(headers);
            let body = event.payload.to_string();
            let confirm = self
                .channel
                .basic_publish(
                    self.exchange.as_str().into(),
                    event.event_type.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    body.as_bytes(),
                    properties,
                )
                .await
                .map_err(|e| PublishError::new(format!("publishing to RabbitMQ: {e}")))?;
            confirms.push(confirm);
        }
        for confirm in confirms {
            let confirmation = confirm
                .await
                .map_err(|e| PublishError::new(format!("RabbitMQ did not confirm: {e}")))?;
            if confirmation.is_nack() {
                return Err(PublishError::new(
                    "RabbitMQ refused a message (nack)".to_owned(),
                ));
            }
            if confirmation.take_message().is_some() {
                return Err(PublishError::new(format!(
                    "no queue is bound to exchange {:?} for this event type: bind one",
                    self.exchange
                )));
            }
        }
        Ok(())
    }
}
