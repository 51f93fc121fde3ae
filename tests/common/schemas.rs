//! The event contract as data (`schemas/`): every JSON Schema loaded, relative `$ref`s resolved
//! among the files themselves (never over the network), and every row of `rotessa.outbox`
//! checked against the schema of its type and `event_version`, and against `envelope.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jsonschema::{Registry, Validator};
use rotessa_recon::outbox::Event;
use serde_json::Value;
use sqlx::PgPool;

/// The base the schemas' relative `$id`s and `$ref`s resolve against. Only a name: every file
/// is registered under it beforehand, and the validators are built offline.
pub const BASE: &str = "https://rotessa-recon.invalid/schemas/";

/// The schema files that are not the payload of one event type and version.
const SHARED: [&str; 2] = ["definitions.json", "envelope.json"];

/// The `schemas/` directory of the repository.
pub fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

/// Every JSON file of `schemas/`, by file name, parsed.
pub fn files() -> BTreeMap<String, Value> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir()).expect("read schemas/") {
        let path = entry.expect("a schemas/ entry").path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if !name.ends_with(".json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let value: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
        files.insert(name.to_owned(), value);
    }
    files
}

/// `(event type, version)` of a payload schema's file name: `transaction.removed.v1.json`.
pub fn type_and_version(file: &str) -> Option<(String, u32)> {
    let stem = file.strip_suffix(".json")?;
    let (event_type, version) = stem.rsplit_once(".v")?;
    Some((event_type.to_owned(), version.parse().ok()?))
}

/// The compiled schemas: one validator per event type and version, and the envelope's.
pub struct Schemas {
    payloads: BTreeMap<(String, u32), Validator>,
    envelope: Validator,
}

impl Schemas {
    /// Loads and compiles every schema of `schemas/`; panics on a file that is not a valid
    /// draft 2020-12 schema, a `$ref` that does not resolve among the files, or a file name
    /// that is neither shared nor `<type>.v<version>.json`.
    pub fn load() -> Self {
        let files = files();
        let registry = Registry::new()
            .extend(
                files
                    .iter()
                    .map(|(name, schema)| (format!("{BASE}{name}"), schema.clone())),
            )
            .expect("schema URIs")
            .prepare()
            .expect("the schemas resolve among themselves");
        let compile = |name: &str, schema: &Value| {
            assert_eq!(
                schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
                "{name}: draft 2020-12"
            );
            assert_eq!(schema["$id"], name, "{name}: its $id is its file name");
            jsonschema::options()
                .offline()
                .with_registry(&registry)
                .with_base_uri(BASE)
                .should_validate_formats(true)
                .should_ignore_unknown_formats(false)
                .build(schema)
                .unwrap_or_else(|e| panic!("{name} does not compile: {e}"))
        };
        let mut payloads = BTreeMap::new();
        for (name, schema) in &files {
            if SHARED.contains(&name.as_str()) {
                continue;
            }
            let key = type_and_version(name)
                .unwrap_or_else(|| panic!("schemas/{name}: expected <type>.v<version>.json"));
            payloads.insert(key, compile(name, schema));
        }
        let envelope = compile("envelope.json", &files["envelope.json"]);
        Self { payloads, envelope }
    }

    /// The event types and versions that have a schema.
    pub fn versions(&self) -> impl Iterator<Item = &(String, u32)> {
        self.payloads.keys()
    }

    /// Why `payload` does not match the schema of `event_type` at its `event_version` (empty
    /// when it does): a type or version without a schema is a problem too.
    pub fn payload_errors(&self, event_type: &str, payload: &Value) -> Vec<String> {
        let Some(version) = payload["event_version"]
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
        else {
            return vec![format!(
                "no integer event_version: {}",
                payload["event_version"]
            )];
        };
        let Some(validator) = self.payloads.get(&(event_type.to_owned(), version)) else {
            return vec![format!(
                "no schema for {event_type} version {version} (schemas/{event_type}.v{version}.json)"
            )];
        };
        errors(validator, payload)
    }

    /// Why `event` (as `outbox tail` prints it) does not match `envelope.json`.
    pub fn envelope_errors(&self, event: &Value) -> Vec<String> {
        errors(&self.envelope, event)
    }

    /// Every problem of one event: its payload against its type's schema, then the envelope.
    pub fn event_errors(&self, event: &Event) -> Vec<String> {
        let mut problems = self.payload_errors(&event.event_type, &event.payload);
        if problems.is_empty() {
            let json = serde_json::to_value(event).expect("an event serializes");
            problems.extend(
                self.envelope_errors(&json)
                    .into_iter()
                    .map(|e| format!("envelope: {e}")),
            );
        }
        problems
    }
}

fn errors(validator: &Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("at {:?}: {e}", e.instance_path().to_string()))
        .collect()
}

/// `at "/path"` of an error line (see [`errors`]), or the whole line.
fn location(error: &str) -> &str {
    error.split_once(": ").map_or(error, |(at, _)| at)
}

/// What checking an outbox found.
#[derive(Debug, Default)]
pub struct Checked {
    /// Events checked, per type.
    pub by_type: BTreeMap<String, usize>,
    /// One line per event that does not match: id, type, errors.
    pub problems: Vec<String>,
    /// How many events fail where: `(type, location)` of each error.
    pub failing: BTreeMap<(String, String), usize>,
}

/// Checks every row of `rotessa.outbox` (all of them, committed, in `seq` order; not behind the
/// visibility fence, so another session's open transaction hides nothing).
pub async fn check_outbox(pool: &PgPool, schemas: &Schemas) -> Checked {
    const PAGE: i64 = 10_000;
    let mut checked = Checked::default();
    let mut after: i64 = 0;
    loop {
        #[allow(clippy::type_complexity)]
        let rows: Vec<(
            uuid::Uuid,
            String,
            String,
            String,
            Value,
            chrono::DateTime<chrono::Utc>,
            i64,
            String,
        )> = sqlx::query_as(
            "select id, aggregatetype, aggregateid, type, payload, occurred_at, seq, txid::text
             from rotessa.outbox where seq > $1 order by seq limit $2",
        )
        .bind(after)
        .bind(PAGE)
        .fetch_all(pool)
        .await
        .expect("read rotessa.outbox");
        let Some(last) = rows.last() else { break };
        after = last.6;
        for (id, aggregatetype, aggregateid, event_type, payload, occurred_at, seq, txid) in rows {
            let event = Event {
                id,
                aggregatetype,
                aggregateid,
                event_type,
                payload,
                occurred_at,
                seq,
                txid: txid.parse().expect("txid is a number"),
            };
            *checked.by_type.entry(event.event_type.clone()).or_default() += 1;
            let problems = schemas.event_errors(&event);
            for problem in &problems {
                *checked
                    .failing
                    .entry((event.event_type.clone(), location(problem).to_owned()))
                    .or_default() += 1;
            }
            if !problems.is_empty() {
                checked.problems.push(format!(
                    "event {} ({}): {}",
                    event.id,
                    event.event_type,
                    problems.join("; ")
                ));
            }
        }
    }
    checked
}

/// Asserts that every event in `rotessa.outbox` matches its schema (`schemas/<type>.v<event_version>.json`)
/// and the envelope; the failure lists the first events that do not (id, type, errors) and
/// how many there are. Returns the number of events checked, per type.
pub async fn assert_outbox_matches_schemas(pool: &PgPool) -> BTreeMap<String, usize> {
    let checked = check_outbox(pool, &Schemas::load()).await;
    let n = checked.problems.len();
    let failing: Vec<String> = checked
        .failing
        .iter()
        .map(|((t, at), n)| format!("  {t} {at}: {n} errors"))
        .collect();
    assert!(
        n == 0,
        "{n} of {} outbox events do not match their schema (schemas/); where:\n{}\nthe first ones:\n{}",
        checked.by_type.values().sum::<usize>(),
        failing.join("\n"),
        checked.problems[..n.min(10)].join("\n")
    );
    checked.by_type
}
