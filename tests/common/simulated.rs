//! Syncing from an in-process simulator: a syncer on the simulator's clock, and one pass of
//! every stream.

use std::sync::Arc;

use rotessa_recon::config::Settings;
use rotessa_recon::rotessa::Client;
use rotessa_recon::sim::SimServer;
use rotessa_recon::store::Store;
use rotessa_recon::sync::{Clock, PassOptions, RunOutcome, Stream, Syncer};
use sqlx::PgPool;

use super::API_KEY;

/// A syncer over `pool` reading `sim` (whose API key must be [`API_KEY`]), on the simulator's
/// clock, with `extra` settings on top.
pub fn sim_syncer(pool: &PgPool, sim: &SimServer, extra: &[(&str, &str)]) -> Syncer {
    let mut env = vec![
        ("RECON_ROTESSA__BASE_URL".to_owned(), sim.base_url()),
        ("RECON_ROTESSA__API_KEY".to_owned(), API_KEY.to_owned()),
        (
            "RECON_ROTESSA__RETRY__INITIAL_BACKOFF_MS".to_owned(),
            "1".to_owned(),
        ),
    ];
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let settings = Settings::load_from(None, &env.into_iter().collect()).expect("settings");
    let client = Client::new(&settings.rotessa, settings.api_key().expect("key")).expect("client");
    Syncer::new(Store::from_pool(pool.clone()), client, Arc::new(settings))
        .with_clock(Clock::Dynamic(sim.handle().clock()))
}

/// One pass of every stream, in `sync --stream all` order; every run must succeed.
pub async fn sync_all(syncer: &Syncer) {
    for stream in Stream::ALL {
        sync_stream(syncer, stream).await;
    }
}

/// One pass of `stream`; every run must succeed.
pub async fn sync_stream(syncer: &Syncer, stream: Stream) {
    for r in syncer.run(stream, &PassOptions::default()).await {
        assert_eq!(r.outcome, RunOutcome::Succeeded, "{r:?}");
    }
}
