//! A complete outbox consumer: prints the id of each event it handled, one per line.
//!
//! ```sh
//! DATABASE_URL=postgres://... cargo run -p rotessa-outbox --example consume -- NAME [--until-caught-up]
//! ```
//!
//! The consumer name is the first argument, or `CONSUMER`; it is registered (from the beginning)
//! if it is not yet. With `--until-caught-up` it exits once nothing is left to deliver; without,
//! it follows the outbox until Ctrl-C.

use std::io::Write;
use std::process::ExitCode;

use rotessa_outbox::{Consumer, Event, Handler, StartFrom};
use sqlx::postgres::PgPoolOptions;

/// Prints each event id to stdout.
struct PrintIds;

impl Handler for PrintIds {
    type Error = std::io::Error;

    async fn handle(&self, event: &Event) -> Result<(), Self::Error> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", event.id)?;
        out.flush()
    }
}

const USAGE: &str =
    "usage: consume [NAME] [--until-caught-up]  (DATABASE_URL required; NAME or CONSUMER)";

#[tokio::main]
async fn main() -> ExitCode {
    let mut until_caught_up = false;
    let mut name = std::env::var("CONSUMER").ok();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--until-caught-up" => until_caught_up = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            a if a.starts_with('-') => {
                eprintln!("unknown option {a}\n{USAGE}");
                return ExitCode::from(2);
            }
            a => name = Some(a.to_owned()),
        }
    }
    let (Some(name), Ok(url)) = (name, std::env::var("DATABASE_URL")) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    match consume(&url, &name, until_caught_up).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("consume: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn consume(
    url: &str,
    name: &str,
    until_caught_up: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let pool = PgPoolOptions::new().max_connections(2).connect(url).await?;
    let consumer = Consumer::new(pool, name);
    if consumer.register(StartFrom::Beginning).await? {
        eprintln!("registered consumer {name}");
    }
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let stats = if until_caught_up {
        consumer.run_until_caught_up(&PrintIds, stop).await?
    } else {
        consumer.run(&PrintIds, stop).await?
    };
    eprintln!(
        "handled {}, parked {}, replayed {}",
        stats.handled, stats.parked, stats.replayed
    );
    Ok(())
}
