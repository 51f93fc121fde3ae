//! Where the relay publishes: a NATS server (JetStream) or a RabbitMQ broker, from one URL.

use std::fmt;

/// A broker to relay to, parsed from `--to` / `relay.to`.
#[derive(Clone, PartialEq, Eq)]
pub enum Target {
    /// `nats://HOST:PORT` (JetStream must be enabled on the server).
    Nats { url: String },
    /// `amqp://USER:PASS@HOST:PORT/VHOST` (RabbitMQ).
    Amqp { url: String },
}

impl Target {
    /// Parses a broker URL; the scheme picks the broker.
    pub fn parse(url: &str) -> Result<Self, String> {
        let url = url.trim();
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("nats" | "tls") => Ok(Self::Nats {
                url: url.to_owned(),
            }),
            Some("amqp" | "amqps") => Ok(Self::Amqp {
                url: url.to_owned(),
            }),
            _ => Err(format!(
                "relay target {:?}: expected nats://HOST:PORT or amqp://USER:PASS@HOST:PORT/VHOST",
                redact(url)
            )),
        }
    }

    /// `nats` or `rabbitmq`, for logs and metrics.
    pub fn broker(&self) -> &'static str {
        match self {
            Self::Nats { .. } => "nats",
            Self::Amqp { .. } => "rabbitmq",
        }
    }

    /// The URL as given, password included: only for connecting.
    pub fn expose_url(&self) -> &str {
        match self {
            Self::Nats { url } | Self::Amqp { url } => url,
        }
    }
}

pub use crate::config::redact_url as redact;

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(self.expose_url()))
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_pick_the_broker_and_passwords_never_show() {
        let t = Target::parse("amqp://guest:s3cret@127.0.0.1:5672/%2f").unwrap();
        assert_eq!(t.broker(), "rabbitmq");
        assert_eq!(t.to_string(), "amqp://guest:[redacted]@127.0.0.1:5672/%2f");
        assert!(!format!("{t:?}").contains("s3cret"));
        assert_eq!(
            Target::parse("nats://127.0.0.1:4222").unwrap().broker(),
            "nats"
        );
        let err = Target::parse("kafka://user:pw@host").unwrap_err();
        assert!(!err.contains("pw@"), "{err}");
        let t = Target::parse("nats://s3cret-token@127.0.0.1:4222").unwrap();
        assert_eq!(t.to_string(), "nats://[redacted]@127.0.0.1:4222");
        let t = Target::parse("amqp://guest:a/b@c@127.0.0.1:5672/%2f").unwrap();
        assert_eq!(t.to_string(), "amqp://guest:[redacted]@127.0.0.1:5672/%2f");
    }
}
