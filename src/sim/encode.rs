//! Hand-written JSON: report rows, settlements, clients and error bodies, written straight into
//! a byte buffer sized up front (no `serde_json::Value` trees on the hot path). Field names,
//! order and quirks follow the Rotessa documentation (shared/seeds/001 and 002).

use super::calendar::{Day, ymd};
use super::data::{
    COMMENT_SHIFT, QUIRK_NUMERIC_ACCOUNT, QUIRK_UNPADDED, SimData, Tx, salt, schedule_id,
};
use super::lifecycle::{Change, Observed, change_time_secs};
use super::reports::Settlement;
use super::rng::hash2;
use super::scenarios::{Scenarios, SimReport};

/// Bytes to reserve per report row (a row is about 560-620 bytes).
pub const ROW_BYTES: usize = 640;

/// Which documented field set a report row has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// v2 transaction report: every field, `client_id` included.
    V2Report,
    /// v2 decline report: the v2 fields without `client_id`.
    DeclineReport,
    /// v1 transaction report: as documented for v1, without `client_id`, `decline_date` and
    /// `transaction_custom_identifieer`.
    V1Report,
}

impl Flavor {
    /// The report whose view (and lag) rows of this flavor show.
    pub fn report(self) -> SimReport {
        match self {
            Self::V2Report | Self::V1Report => SimReport::TransactionReport,
            Self::DeclineReport => SimReport::DeclineReport,
        }
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

pub(super) const SURNAMES: [&str; 16] = [
    "MIKEY", "SMITH", "TREMBLAY", "GAGNON", "ROY", "COTE", "BOUCHARD", "GAUTHIER", "MORIN",
    "LAVOIE", "FORTIN", "WONG", "SINGH", "PATEL", "MARTIN", "BROWN",
];

/// Appends an unsigned integer in decimal.
pub fn push_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// Appends a signed integer in decimal.
pub fn push_i64(buf: &mut Vec<u8>, n: i64) {
    if n < 0 {
        buf.push(b'-');
    }
    push_u64(buf, n.unsigned_abs());
}

/// Appends the last two decimal digits of `n`, zero padded.
pub fn push_2(buf: &mut Vec<u8>, n: u32) {
    buf.push(b'0' + (n / 10 % 10) as u8);
    buf.push(b'0' + (n % 10) as u8);
}

/// Appends cents as a quoted decimal string with two places: `"1037.48"`.
pub fn push_money(buf: &mut Vec<u8>, cents: i64) {
    buf.push(b'"');
    if cents < 0 {
        buf.push(b'-');
    }
    let abs = cents.unsigned_abs();
    push_u64(buf, abs / 100);
    buf.push(b'.');
    push_2(buf, (abs % 100) as u32);
    buf.push(b'"');
}

/// Appends a quoted date; `pad_day: false` writes days below 10 without the zero, the
/// documented quirk (`"2019-03-7"`).
pub fn push_date(buf: &mut Vec<u8>, day: Day, pad_day: bool) {
    let (y, m, d) = ymd(day);
    buf.push(b'"');
    push_u64(buf, y.max(0) as u64);
    buf.push(b'-');
    push_2(buf, m);
    buf.push(b'-');
    if pad_day || d >= 10 {
        push_2(buf, d);
    } else {
        buf.push(b'0' + d as u8);
    }
    buf.push(b'"');
}

/// Appends an optional date, or `null`.
pub fn push_opt_date(buf: &mut Vec<u8>, day: Option<Day>, pad_day: bool) {
    match day {
        Some(d) => push_date(buf, d, pad_day),
        None => buf.extend_from_slice(b"null"),
    }
}

/// Appends a quoted local time at offset -05:00, as the reports write it:
/// `"2019-01-29T15:46:03.000-05:00"`. `secs` may be negative or beyond a day.
pub fn push_timestamp(buf: &mut Vec<u8>, day: Day, secs: i64) {
    let total = i64::from(day) * 86_400 + secs;
    let (day, secs) = (
        total.div_euclid(86_400) as Day,
        total.rem_euclid(86_400) as u32,
    );
    let (y, m, d) = ymd(day);
    buf.push(b'"');
    push_u64(buf, y.max(0) as u64);
    buf.push(b'-');
    push_2(buf, m);
    buf.push(b'-');
    push_2(buf, d);
    buf.push(b'T');
    push_2(buf, secs / 3600);
    buf.push(b':');
    push_2(buf, secs / 60 % 60);
    buf.push(b':');
    push_2(buf, secs % 60);
    buf.extend_from_slice(b".000-05:00\"");
}

/// Appends a JSON string with the escapes JSON requires.
pub fn push_str(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        buf.extend_from_slice(s.as_bytes());
    } else {
        for b in s.bytes() {
            match b {
                b'"' => buf.extend_from_slice(b"\\\""),
                b'\\' => buf.extend_from_slice(b"\\\\"),
                b'\n' => buf.extend_from_slice(b"\\n"),
                b'\r' => buf.extend_from_slice(b"\\r"),
                b'\t' => buf.extend_from_slice(b"\\t"),
                b if b < 0x20 => {
                    buf.extend_from_slice(b"\\u00");
                    let hex = b"0123456789abcdef";
                    buf.push(hex[usize::from(b >> 4)]);
                    buf.push(hex[usize::from(b & 15)]);
                }
                b => buf.push(b),
            }
        }
    }
    buf.push(b'"');
}

/// Appends `"name":`, after a comma unless `first`.
pub fn key(buf: &mut Vec<u8>, name: &str, first: bool) {
    if !first {
        buf.push(b',');
    }
    buf.push(b'"');
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"\":");
}

/// A customer's bank account number (7 digits), derived from the seed.
pub fn account_digits(seed: u64, customer: u32) -> u64 {
    1_000_000 + hash2(seed ^ salt::CUSTOMER ^ 1, u64::from(customer)) % 9_000_000
}

/// The hash a customer's report attributes (custom identifier, masked bank digits) are
/// derived from; [`super::customers`] derives the unmasked values from it too, so they agree.
pub fn customer_hash(seed: u64, customer: u32) -> u64 {
    hash2(seed ^ salt::CUSTOMER, u64::from(customer))
}

/// The last two digits of a customer's institution number (the reports show `"*NN"`).
pub fn institution_last2(seed: u64, customer: u32) -> u32 {
    ((customer_hash(seed, customer) >> 20) % 100) as u32
}

/// The last two digits of a customer's transit number (the reports show `"***NN"`).
pub fn transit_last2(seed: u64, customer: u32) -> u32 {
    ((customer_hash(seed, customer) >> 28) % 100) as u32
}

/// Appends a customer's custom identifier (`"TREMBLAY17"`), or `null` for one in five.
pub fn push_custom_identifier(buf: &mut Vec<u8>, seed: u64, customer: u32) {
    let h = customer_hash(seed, customer);
    if h.is_multiple_of(5) {
        buf.extend_from_slice(b"null");
    } else {
        buf.push(b'"');
        buf.extend_from_slice(SURNAMES[(h >> 8) as usize % SURNAMES.len()].as_bytes());
        push_u64(buf, u64::from(customer));
        buf.push(b'"');
    }
}

/// Appends a transaction's comment: `null`, `""`, `"<previous month> Fees"` or
/// `"Invoice <n>"`, chosen by its flags.
pub fn push_comment(buf: &mut Vec<u8>, tx: &Tx, id: i64) {
    match tx.flags >> COMMENT_SHIFT & 3 {
        0 => buf.extend_from_slice(b"null"),
        1 => buf.extend_from_slice(b"\"\""),
        2 => {
            let (_, m, _) = ymd(tx.process_day);
            buf.push(b'"');
            buf.extend_from_slice(MONTHS[(m as usize + 11) % 12].as_bytes());
            buf.extend_from_slice(b" Fees\"");
        }
        _ => {
            buf.extend_from_slice(b"\"Invoice ");
            push_i64(buf, id % 100_000);
            buf.push(b'"');
        }
    }
}

/// Appends a schedule's custom identifier (`"TS330001"`), or `null` for about half of them.
pub fn push_schedule_custom_identifier(buf: &mut Vec<u8>, seed: u64, schedule: i64) {
    if hash2(seed ^ salt::SCHEDULE, schedule as u64) >> 40 & 1 == 0 {
        buf.extend_from_slice(b"null");
    } else {
        buf.extend_from_slice(b"\"TS");
        push_i64(buf, schedule);
        buf.push(b'"');
    }
}

/// Appends the `updated_at` of a row whose last change was `last_change` (`null` when none):
/// the change's day, at a time of day that depends on its kind and on the row.
pub fn push_updated_at(
    buf: &mut Vec<u8>,
    data: &SimData,
    index: usize,
    last_change: Option<(Day, Change)>,
) {
    match last_change {
        None => buf.extend_from_slice(b"null"),
        Some((day, kind)) => {
            let id = data.tx_id(index);
            let jitter = hash2(data.seed ^ salt::TIME, id as u64 ^ (kind as u64) << 56);
            push_timestamp(buf, day, i64::from(change_time_secs(kind, jitter)));
        }
    }
}

/// Appends one report row of transaction `index` as `seen` (its view on some day).
pub fn transaction(
    buf: &mut Vec<u8>,
    data: &SimData,
    index: usize,
    seen: &Observed,
    flavor: Flavor,
) {
    let tx = &data.txs[index];
    let id = data.tx_id(index);
    let seed = data.seed;
    let pad = tx.flags & QUIRK_UNPADDED == 0;
    let schedule = schedule_id(tx.customer, tx.schedule_slot);

    buf.push(b'{');
    key(buf, "account_number", true);
    let account = account_digits(seed, tx.customer);
    if tx.flags & QUIRK_NUMERIC_ACCOUNT != 0 {
        push_u64(buf, account);
    } else {
        buf.extend_from_slice(b"\"*****");
        push_2(buf, (account % 100) as u32);
        buf.push(b'"');
    }
    key(buf, "amount", false);
    push_money(buf, i64::from(tx.amount_cents));
    if flavor == Flavor::V2Report {
        key(buf, "client_id", false);
        push_i64(buf, data.client_ids[usize::from(tx.client)]);
    }
    key(buf, "created_at", false);
    push_timestamp(buf, tx.process_day, -i64::from(tx.created_before_secs));
    key(buf, "comment", false);
    push_comment(buf, tx, id);
    key(buf, "custom_identifier", false);
    push_custom_identifier(buf, seed, tx.customer);
    key(buf, "customer_id", false);
    push_i64(buf, data.customer_id(tx.customer));
    if flavor != Flavor::V1Report {
        key(buf, "decline_date", false);
        push_opt_date(buf, seen.decline_day, pad);
    }
    key(buf, "earliest_approval_date", false);
    push_opt_date(buf, seen.earliest_approval_day, true);
    key(buf, "id", false);
    push_i64(buf, id);
    let future = seen.last_change.is_none();
    key(buf, "institution_number", false);
    if future {
        buf.extend_from_slice(b"null");
    } else {
        buf.extend_from_slice(b"\"*");
        push_2(buf, institution_last2(seed, tx.customer));
        buf.push(b'"');
    }
    key(buf, "process_date", false);
    push_date(buf, seen.process_day, true);
    key(buf, "settlement_date", false);
    push_date(buf, seen.settlement_day, pad);
    key(buf, "status", false);
    push_str(buf, seen.status.as_str());
    key(buf, "status_reason", false);
    match seen.status_reason {
        Some(r) => push_str(buf, r),
        None => buf.extend_from_slice(b"null"),
    }
    if flavor != Flavor::V1Report {
        // Sic: the API's spelling. The schedule's custom identifier.
        key(buf, "transaction_custom_identifieer", false);
        push_schedule_custom_identifier(buf, seed, schedule);
    }
    key(buf, "transaction_number", false);
    if future {
        buf.extend_from_slice(b"null");
    } else {
        buf.extend_from_slice(b"\"INV");
        push_i64(buf, id + 29_559);
        buf.push(b'"');
    }
    key(buf, "transaction_schedule_id", false);
    push_i64(buf, schedule);
    key(buf, "transit_number", false);
    if future {
        buf.extend_from_slice(b"null");
    } else {
        buf.extend_from_slice(b"\"***");
        push_2(buf, transit_last2(seed, tx.customer));
        buf.push(b'"');
    }
    key(buf, "updated_at", false);
    push_updated_at(buf, data, index, seen.last_change);
    buf.push(b'}');
}

/// A whole report page: a JSON array of the rows at `indices`, each as the flavor's report
/// shows it on `today` (its lag and the overrides of `scenarios` applied).
pub fn page(
    data: &SimData,
    scenarios: &Scenarios,
    indices: impl ExactSizeIterator<Item = usize>,
    today: Day,
    flavor: Flavor,
) -> Vec<u8> {
    let mut buf = Vec::with_capacity(2 + indices.len() * ROW_BYTES);
    buf.push(b'[');
    let view = Some(flavor.report());
    for (n, index) in indices.enumerate() {
        if n > 0 {
            buf.push(b',');
        }
        let seen = scenarios.observe(data, index, today, view);
        transaction(&mut buf, data, index, &seen, flavor);
    }
    buf.push(b']');
    buf
}

/// The settlements answer: a JSON array, one object per settlement date.
pub fn settlements(rows: &[Settlement]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(2 + rows.len() * 260);
    buf.push(b'[');
    for (n, s) in rows.iter().enumerate() {
        if n > 0 {
            buf.push(b',');
        }
        for (i, (name, count)) in [
            ("number_approved", s.number_approved),
            ("number_chargeback", s.number_chargeback),
            ("number_declined", s.number_declined),
            ("number_payout", s.number_payout),
        ]
        .into_iter()
        .enumerate()
        {
            buf.push(if i == 0 { b'{' } else { b',' });
            key(&mut buf, name, true);
            push_i64(&mut buf, count);
        }
        key(&mut buf, "settlement_date", false);
        push_date(&mut buf, s.day, true);
        for (name, cents) in [
            ("total_approved", s.total_approved),
            ("total_chargeback", s.total_chargeback),
            ("total_declined", s.total_declined),
            ("total_payout", s.total_payout),
        ] {
            key(&mut buf, name, false);
            push_money(&mut buf, cents);
        }
        buf.push(b'}');
    }
    buf.push(b']');
    buf
}

const BUSINESSES: [(&str, &str, &str); 6] = [
    ("Condo Corp 1234", "Purple Sky Condos", "Toronto"),
    ("Maple Leaf Fitness Ltd", "Maple Fitness", "Winnipeg"),
    ("Prairie Water Co-operative", "Prairie Water", "Regina"),
    ("Northern Lights Daycare Inc", "Little Lights", "Edmonton"),
    ("Harbourfront Music School", "Harbour Music", "Halifax"),
    ("Cedar Property Management", "Cedar Rentals", "Vancouver"),
];

/// `GET /v2/clients`: the documented client object for each client, with a fake API key.
pub fn clients(data: &SimData) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64 + data.client_ids.len() * 1100);
    buf.push(b'[');
    for (i, id) in data.client_ids.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        let (name, operating_as, city) = BUSINESSES[i % BUSINESSES.len()];
        let suffix = if i >= BUSINESSES.len() {
            format!(" {}", i / BUSINESSES.len() + 1)
        } else {
            String::new()
        };
        let h = hash2(data.seed ^ salt::CLIENT, i as u64);
        let b = &mut buf;
        b.extend_from_slice(b"{\"account_number\":\"");
        push_u64(b, 10_000_000 + h % 90_000_000);
        b.extend_from_slice(b"\",\"address\":{\"address_1\":\"");
        push_u64(b, 100 + (h >> 8) % 900);
        b.extend_from_slice(b" Main Street\",\"address_2\":null,\"city\":");
        push_str(b, city);
        b.extend_from_slice(b",\"id\":");
        push_u64(b, 12_345 + i as u64);
        b.extend_from_slice(b",\"postal_code\":\"M1B 0B7\",\"province_code\":\"ON\"},");
        b.extend_from_slice(b"\"api_keys\":[{\"key\":\"simclient_");
        push_u64(b, h % 1_000_000_000_000);
        b.extend_from_slice(b"\"}],\"bank_account_type\":null,");
        b.extend_from_slice(b"\"business_incorporation_number\":\"");
        push_u64(b, 100_000_000 + (h >> 16) % 900_000_000);
        b.extend_from_slice(b"\",\"business_name\":");
        push_str(b, &format!("{name}{suffix}"));
        b.extend_from_slice(b",\"business_type\":\"Partnership\",\"country_code\":\"CA\",\"id\":");
        push_i64(b, *id);
        b.extend_from_slice(b",\"institution_number\":\"");
        push_u64(b, 100 + (h >> 24) % 900);
        b.extend_from_slice(b"\",\"operating_as\":");
        push_str(b, &format!("{operating_as}{suffix}"));
        b.extend_from_slice(b",\"owners\":[{\"completion_status\":\"Complete\",");
        b.extend_from_slice(b"\"date_of_birth\":\"1980-06-01\",\"id\":");
        push_u64(b, 2350 + i as u64);
        b.extend_from_slice(b",\"name\":\"Owner ");
        push_u64(b, i as u64 + 1);
        b.extend_from_slice(b"\",\"position\":\"Director\"}],\"routing_number\":null,");
        b.extend_from_slice(b"\"status\":\"Approved\",\"transit_number\":\"");
        push_u64(b, 10_000 + (h >> 32) % 90_000);
        // The documentation's own key carries a stray colon: "veriff_decision_status:".
        b.extend_from_slice(
            b"\",\"veriff_session_url\":null,\"veriff_submission_status\":null,\
              \"veriff_decision_status:\":null,\"website\":null}",
        );
    }
    buf.push(b']');
    buf
}

/// The documented error body: `{"errors":[{"error_code":"...","error_message":"..."}]}`.
pub fn error(code: &str, message: &str) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64 + message.len());
    buf.extend_from_slice(b"{\"errors\":[{\"error_code\":");
    push_str(&mut buf, code);
    buf.extend_from_slice(b",\"error_message\":");
    push_str(&mut buf, message);
    buf.extend_from_slice(b"}]}");
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::calendar::day_of;

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut b = Vec::new();
        f(&mut b);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn scalars_are_written_as_rotessa_writes_them() {
        let day = day_of("2019-03-07".parse().unwrap());
        assert_eq!(text(|b| push_date(b, day, true)), "\"2019-03-07\"");
        assert_eq!(text(|b| push_date(b, day, false)), "\"2019-03-7\"");
        assert_eq!(text(|b| push_money(b, 103_748)), "\"1037.48\"");
        assert_eq!(text(|b| push_money(b, 5)), "\"0.05\"");
        assert_eq!(text(|b| push_money(b, 0)), "\"0.00\"");
        assert_eq!(text(|b| push_i64(b, -42)), "-42");
        assert_eq!(text(|b| push_u64(b, u64::MAX)), u64::MAX.to_string());
        assert_eq!(
            text(|b| push_timestamp(b, day, 15 * 3600 + 46 * 60 + 3)),
            "\"2019-03-07T15:46:03.000-05:00\""
        );
        assert_eq!(
            text(|b| push_timestamp(b, day, -1)),
            "\"2019-03-06T23:59:59.000-05:00\""
        );
        assert_eq!(
            text(|b| push_str(b, "a\"b\\c\n\u{1}")),
            r#""a\"b\\c\n\u0001""#
        );
    }

    #[test]
    fn error_bodies_are_the_documented_shape() {
        let body: serde_json::Value =
            serde_json::from_slice(&error("unauthorized", "Invalid \"key\"")).unwrap();
        assert_eq!(body["errors"][0]["error_code"], "unauthorized");
        assert_eq!(body["errors"][0]["error_message"], "Invalid \"key\"");
    }
}
