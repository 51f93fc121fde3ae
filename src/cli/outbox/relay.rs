//! `outbox relay`: the relay on its own (a systemd unit or a Deployment of its own), serving
//! `/livez`, `/readyz` and `/metrics` on `http.listen` like the daemon.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{Failure, connect};
use crate::config::Settings;
use crate::http::{self, Health, Role};
use crate::relay::{self, Target};

/// Arguments of `outbox relay`.
#[derive(Debug, Args)]
pub struct RelayArgs {
    /// The broker: nats://HOST:PORT (JetStream) or amqp://USER:PASS@HOST:PORT/VHOST (RabbitMQ).
    /// Default: relay.to.
    #[arg(long, value_name = "URL")]
    pub to: Option<String>,
    /// The registered outbox consumer to read as (registered from the first event if new).
    /// Default: relay.consumer.
    #[arg(long, value_name = "NAME")]
    pub consumer: Option<String>,
}

/// Relays until SIGTERM or SIGINT.
pub async fn run(settings: &Settings, args: RelayArgs) -> Result<ExitCode, Failure> {
    let url = match (&args.to, &settings.relay.to) {
        (Some(url), _) => url.clone(),
        (None, Some(url)) => url.expose().to_owned(),
        (None, None) => {
            return Err(Failure::Usage(
                "no broker: pass --to nats://HOST:PORT or amqp://USER:PASS@HOST:PORT/VHOST (or set relay.to)"
                    .into(),
            ));
        }
    };
    let target = Target::parse(&url).map_err(Failure::Usage)?;
    let mut relay_settings = settings.relay.clone();
    if let Some(name) = args.consumer {
        if name.is_empty() {
            return Err(Failure::Usage("the consumer name is empty".into()));
        }
        relay_settings.consumer = name;
    }
    let metrics = crate::telemetry::install_metrics()
        .map_err(|e| tracing::warn!(error = %e, "metrics disabled"))
        .ok();
    let store = connect(settings).await?;
    let health = Health::new(store.clone(), metrics);
    let stop = CancellationToken::new();
    tokio::spawn(crate::daemon::stop_on_signal(stop.clone(), health.clone()));
    let listener = TcpListener::bind(&settings.http.listen)
        .await
        .with_context(|| format!("listening on {}", settings.http.listen))?;
    let bound = listener
        .local_addr()
        .map_or_else(|_| settings.http.listen.clone(), |a| a.to_string());
    tracing::info!(addr = %bound, "serving /livez, /startupz, /readyz and /metrics");
    let http_stop = CancellationToken::new();
    let server = tokio::spawn(http::serve(
        listener,
        http::router(health.clone(), None),
        http_stop.clone(),
    ));
    health.set_role(Role::Standby);
    let result = relay::run(
        store.pool().clone(),
        &settings.outbox,
        &relay_settings,
        target,
        Duration::from_secs(settings.lease.ttl_secs),
        stop,
    )
    .await;
    http_stop.cancel();
    let _ = server.await;
    result.context("relaying the outbox")?;
    tracing::info!("relay stopped");
    Ok(ExitCode::SUCCESS)
}
