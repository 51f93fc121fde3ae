//! Generating the simulated account from a seed: clients, customers, schedules and transactions.
//!
//! Transactions are stored compactly (one small struct of integers each, about 24 bytes), in
//! (process date, creation) order, and their ids follow that order: a process-date range is a
//! contiguous, id-ordered slice found by binary search. Strings (transaction numbers, masked
//! account numbers, identifiers) are derived from ids and hashes when a row is encoded.

use std::cmp::Reverse;

use super::SimConfig;
use super::calendar::{Day, day_of, is_business_day};
use super::rng::{SplitMix64, hash2, mix, weighted};

/// The first client's id (the documentation's example client is 4321, the next 4325).
pub const FIRST_CLIENT_ID: i64 = 4321;
/// Client ids are this far apart.
pub const CLIENT_ID_STEP: i64 = 4;
/// The first customer's id.
pub const FIRST_CUSTOMER_ID: i64 = 180_001;
/// The first transaction schedule's id; each customer has two schedules.
pub const FIRST_SCHEDULE_ID: i64 = 330_001;
/// Transaction ids start here; consecutive transactions are 1 or 2 apart.
pub const FIRST_TRANSACTION_ID: i64 = 1_950_001;

/// The documented status reasons (SPEC.md "Rotessa API facts"), in a fixed order.
pub const REASONS: [&str; 10] = [
    "NSF",
    "Payment Stopped/Recalled",
    "Edit Reject",
    "Funds Not Cleared",
    "Account Closed",
    "Invalid/Incorrect Account No.",
    "Account Not Found",
    "Account Frozen",
    "Agreement Revoked",
    "No Debit Allowed",
];

/// How often each reason explains a decline (NSF is the most common).
const DECLINE_WEIGHTS: [u32; 10] = [45, 7, 8, 8, 8, 8, 6, 5, 0, 5];
/// How often each reason explains a chargeback.
const CHARGEBACK_WEIGHTS: [u32; 10] = [0, 50, 0, 0, 10, 0, 0, 0, 30, 10];

/// Share of transactions that are declined when they resolve.
pub const DECLINE_RATE: f64 = 0.05;
/// Share of approved transactions charged back later.
pub const CHARGEBACK_RATE: f64 = 0.01;

/// Quirk flag: `settlement_date` and `decline_date` without zero padding (`"2019-03-7"`).
pub const QUIRK_UNPADDED: u8 = 1;
/// Quirk flag: `account_number` as a JSON number (`111111`) instead of a masked string.
pub const QUIRK_NUMERIC_ACCOUNT: u8 = 2;
/// Two bits of flags choose the comment: null, empty, `"<Month> Fees"` or `"Invoice <n>"`.
pub const COMMENT_SHIFT: u32 = 2;

/// Amounts that schedules often use, in cents.
const COMMON_AMOUNTS: [u32; 11] = [
    2500, 4999, 5000, 7500, 10_000, 12_500, 15_000, 20_000, 25_000, 50_000, 103_748,
];

/// Salts that keep the derived streams of one seed independent of each other.
pub mod salt {
    /// The transaction generator's stream.
    pub const TRANSACTIONS: u64 = 0x7472_616e;
    /// Customer attributes (client, bank digits, identifiers).
    pub const CUSTOMER: u64 = 0x6375_7374;
    /// Schedule attributes (amount, custom identifier).
    pub const SCHEDULE: u64 = 0x7363_6864;
    /// The gaps between transaction ids.
    pub const ID_GAP: u64 = 0x6964_6761;
    /// Times of day of status changes.
    pub const TIME: u64 = 0x7469_6d65;
    /// Client attributes.
    pub const CLIENT: u64 = 0x636c_6e74;
    /// The sequence of injected faults.
    pub const FAULTS: u64 = 0x6661_756c;
    /// Which rows lag in which report (`--report-lag-rate`): a hash, never a generator draw.
    pub const REPORT_LAG: u64 = 0x6c61_6767;
    /// Which rows Rotessa stops reporting, and when (`--removal-rate`): a hash, never a
    /// generator draw.
    pub const REMOVAL: u64 = 0x7265_6d76;
    /// A customer's profile (name, contact, bank, address, timestamps): a hash, never a
    /// generator draw, so the transactions stay the same.
    pub const PROFILE: u64 = 0x7072_6f66;
}

/// One financial transaction, compactly. Everything else about it is derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tx {
    /// The process date (a business day).
    pub process_day: Day,
    /// The amount in cents (money is never a float here).
    pub amount_cents: u32,
    /// Index into [`SimData::customer_client`].
    pub customer: u32,
    /// Created this many seconds before the process date's midnight (-05:00).
    pub created_before_secs: u32,
    /// Index into [`SimData::client_ids`].
    pub client: u16,
    /// Which of the customer's two schedules produced it.
    pub schedule_slot: u8,
    /// Resolved (approved or declined) this many business days after the process date, 1..=4.
    pub resolve_bdays: u8,
    /// 0 when approved; otherwise 1 + the index of its decline reason in [`REASONS`].
    pub decline_reason: u8,
    /// 0 when never charged back; otherwise charged back this many days after processing.
    pub chargeback_days: u8,
    /// Index of the chargeback reason in [`REASONS`].
    pub chargeback_reason: u8,
    /// Quirk and comment flags (`QUIRK_*`, `COMMENT_SHIFT`).
    pub flags: u8,
}

impl Tx {
    /// Whether this transaction is ever declined or charged back (the decline report's rows).
    pub fn ever_fails(&self) -> bool {
        self.decline_reason != 0 || self.chargeback_days != 0
    }
}

/// The whole simulated account, immutable once generated.
#[derive(Debug)]
pub struct SimData {
    /// The seed everything was derived from (encoding derives strings from it too).
    pub seed: u64,
    /// Client ids, by client index.
    pub client_ids: Vec<i64>,
    /// The client index of each customer.
    pub customer_client: Vec<u16>,
    /// Every transaction, in id order (= process date, then creation).
    pub txs: Vec<Tx>,
    /// Per client: indices into `txs`, ascending.
    pub by_client: Vec<Vec<u32>>,
    /// Per client: indices of the transactions that are ever declined or charged back.
    pub failures_by_client: Vec<Vec<u32>>,
}

impl SimData {
    /// Generates the account for `config` (deterministic: same fields, same data).
    pub fn generate(config: &SimConfig) -> Self {
        let seed = config.seed;
        let clients = config.clients.clamp(1, u32::from(u16::MAX));
        let client_ids = (0..i64::from(clients))
            .map(|i| FIRST_CLIENT_ID + i * CLIENT_ID_STEP)
            .collect();
        let customer_client = (0..config.customers.max(1))
            .map(|c| customer_client(seed, c, clients))
            .collect::<Vec<u16>>();

        let today = day_of(config.today);
        let first = today - config.history_days as i32;
        let last = today + config.future_days as i32;
        let business_days: Vec<Day> = (first..=last).filter(|d| is_business_day(*d)).collect();
        let business_days = if business_days.is_empty() {
            vec![super::calendar::on_or_after_business_day(today)]
        } else {
            business_days
        };

        let mut rng = SplitMix64::new(hash2(seed, salt::TRANSACTIONS));
        let mut txs = Vec::with_capacity(config.transactions as usize);
        for _ in 0..config.transactions {
            // Always the same number of draws per transaction, whatever the branches, so that
            // one setting (e.g. the quirk rate) never shifts the values of the others.
            let customer = rng.below(customer_client.len() as u64) as u32;
            let schedule_slot = rng.below(2) as u8;
            let process_day = business_days[rng.below(business_days.len() as u64) as usize];
            let created_before_secs = rng.between(5 * 86_400, 40 * 86_400) as u32;
            let resolve_bdays = rng.between(1, 4) as u8;
            let declined = rng.chance(DECLINE_RATE);
            let decline_pick = weighted(&DECLINE_WEIGHTS, rng.next_u64());
            let charged_back = rng.chance(CHARGEBACK_RATE);
            let chargeback_after = rng.between(20, 90) as u8;
            let chargeback_pick = weighted(&CHARGEBACK_WEIGHTS, rng.next_u64());
            let unpadded = rng.chance(config.quirk_rate);
            let numeric_account = rng.chance(config.quirk_rate);
            let comment = rng.below(4) as u8;

            let mut flags = comment << COMMENT_SHIFT;
            if unpadded {
                flags |= QUIRK_UNPADDED;
            }
            if numeric_account {
                flags |= QUIRK_NUMERIC_ACCOUNT;
            }
            let client = customer_client[customer as usize];
            txs.push(Tx {
                process_day,
                amount_cents: schedule_amount_cents(seed, schedule_id(customer, schedule_slot)),
                customer,
                created_before_secs,
                client,
                schedule_slot,
                resolve_bdays,
                decline_reason: if declined { decline_pick as u8 + 1 } else { 0 },
                chargeback_days: if charged_back && !declined {
                    chargeback_after
                } else {
                    0
                },
                chargeback_reason: chargeback_pick as u8,
                flags,
            });
        }
        // Ids follow process date, then creation time; the sort is stable, so ties keep the
        // generation order and the result is the same on every run.
        txs.sort_by_key(|t| (t.process_day, Reverse(t.created_before_secs)));

        let mut by_client = vec![Vec::new(); clients as usize];
        let mut failures_by_client = vec![Vec::new(); clients as usize];
        for (index, t) in txs.iter().enumerate() {
            by_client[usize::from(t.client)].push(index as u32);
            if t.ever_fails() {
                failures_by_client[usize::from(t.client)].push(index as u32);
            }
        }
        for list in by_client.iter_mut().chain(failures_by_client.iter_mut()) {
            list.shrink_to_fit();
        }
        Self {
            seed,
            client_ids,
            customer_client,
            txs,
            by_client,
            failures_by_client,
        }
    }

    /// The id of the transaction at `index`: ascending, 1 or 2 apart (real ids have gaps).
    pub fn tx_id(&self, index: usize) -> i64 {
        let gap = mix(self.seed ^ salt::ID_GAP ^ index as u64) & 1;
        FIRST_TRANSACTION_ID + 2 * index as i64 + gap as i64
    }

    /// The index of the transaction with id `id`, if there is one (the inverse of
    /// [`SimData::tx_id`], for the admin routes that name a row).
    pub fn tx_index(&self, id: i64) -> Option<usize> {
        let offset = id.checked_sub(FIRST_TRANSACTION_ID)?;
        let index = usize::try_from(offset / 2).ok()?;
        (offset >= 0 && index < self.txs.len() && self.tx_id(index) == id).then_some(index)
    }

    /// The client index of a client id, if the platform has that client.
    pub fn client_index(&self, id: i64) -> Option<usize> {
        let offset = id.checked_sub(FIRST_CLIENT_ID)?;
        if offset < 0 || offset % CLIENT_ID_STEP != 0 {
            return None;
        }
        let index = usize::try_from(offset / CLIENT_ID_STEP).ok()?;
        (index < self.client_ids.len()).then_some(index)
    }

    /// The customer id of a customer index.
    pub fn customer_id(&self, customer: u32) -> i64 {
        FIRST_CUSTOMER_ID + i64::from(customer)
    }

    /// The customer index of customer id `id`, if there is such a customer.
    pub fn customer_index(&self, id: i64) -> Option<u32> {
        let index = u32::try_from(id.checked_sub(FIRST_CUSTOMER_ID)?).ok()?;
        (usize::try_from(index).is_ok_and(|i| i < self.customer_client.len())).then_some(index)
    }

    /// The customer index and slot of transaction schedule `id`, if some customer has that
    /// schedule slot (whether it produced transactions is another matter).
    pub fn schedule_slot(&self, id: i64) -> Option<(u32, u8)> {
        let offset = u32::try_from(id.checked_sub(FIRST_SCHEDULE_ID)?).ok()?;
        let customer = offset / 2;
        self.customer_index(self.customer_id(customer))
            .map(|c| (c, (offset % 2) as u8))
    }

    /// Approximate heap bytes held, for `/_sim/state`.
    pub fn heap_bytes(&self) -> usize {
        let lists: usize = self
            .by_client
            .iter()
            .chain(self.failures_by_client.iter())
            .map(|l| l.capacity() * 4)
            .sum();
        self.txs.capacity() * std::mem::size_of::<Tx>() + lists + self.customer_client.len() * 2
    }
}

/// The schedule id of a customer's schedule `slot` (0 or 1).
pub fn schedule_id(customer: u32, slot: u8) -> i64 {
    FIRST_SCHEDULE_ID + 2 * i64::from(customer) + i64::from(slot)
}

/// A schedule's amount in cents: usually a common round amount, sometimes anything from 10.00
/// to 2500.00.
fn schedule_amount_cents(seed: u64, schedule: i64) -> u32 {
    let h = hash2(seed ^ salt::SCHEDULE, schedule as u64);
    if h % 10 < 6 {
        COMMON_AMOUNTS[((h >> 8) % COMMON_AMOUNTS.len() as u64) as usize]
    } else {
        1_000 + ((h >> 8) % 249_001) as u32
    }
}

/// Which client a customer belongs to: the first `clients` customers one each, the rest
/// skewed towards the first clients (platforms have big and small merchants).
fn customer_client(seed: u64, customer: u32, clients: u32) -> u16 {
    if customer < clients {
        return customer as u16;
    }
    let weights: Vec<u32> = (0..clients).map(|i| clients - i + 1).collect();
    weighted(&weights, hash2(seed ^ salt::CUSTOMER, u64::from(customer))) as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn config(n: u32) -> SimConfig {
        SimConfig {
            transactions: n,
            today: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
            ..SimConfig::default()
        }
    }

    #[test]
    fn ids_follow_process_dates_and_clients_partition_the_rows() {
        let data = SimData::generate(&config(5000));
        assert_eq!(data.txs.len(), 5000);
        for i in 1..data.txs.len() {
            assert!(data.txs[i - 1].process_day <= data.txs[i].process_day);
            assert!(data.tx_id(i - 1) < data.tx_id(i));
        }
        let total: usize = data.by_client.iter().map(Vec::len).sum();
        assert_eq!(total, 5000);
        assert!(data.by_client.iter().all(|l| !l.is_empty()));
        assert_eq!(data.client_index(4325), Some(1));
        assert_eq!(data.client_index(4322), None);
        assert_eq!(data.client_index(4321 + 4 * 3), None);
        for i in [0, 1, 2, 4999] {
            assert_eq!(data.tx_index(data.tx_id(i)), Some(i));
        }
        assert_eq!(data.tx_index(FIRST_TRANSACTION_ID - 1), None);
        assert_eq!(data.tx_index(data.tx_id(4999) + 2), None);
        let gaps = (1..5000)
            .filter(|&i| data.tx_id(i) - data.tx_id(i - 1) == 2)
            .count();
        assert!(gaps > 0);
    }

    #[test]
    fn rates_are_roughly_as_documented() {
        let data = SimData::generate(&config(20_000));
        let declined = data.txs.iter().filter(|t| t.decline_reason != 0).count();
        let charged = data.txs.iter().filter(|t| t.chargeback_days != 0).count();
        assert!((700..1300).contains(&declined), "{declined}");
        assert!((100..330).contains(&charged), "{charged}");
        let nsf = data.txs.iter().filter(|t| t.decline_reason == 1).count();
        assert!(nsf * 3 > declined, "NSF is the most common reason");
    }

    #[test]
    fn the_quirk_rate_changes_only_the_quirks() {
        let a = SimData::generate(&config(2000));
        let b = SimData::generate(&SimConfig {
            quirk_rate: 0.0,
            ..config(2000)
        });
        for (x, y) in a.txs.iter().zip(&b.txs) {
            assert_eq!(x.flags >> COMMENT_SHIFT, y.flags >> COMMENT_SHIFT);
            assert_eq!(
                (x.process_day, x.amount_cents),
                (y.process_day, y.amount_cents)
            );
        }
        assert!(b.txs.iter().all(|t| t.flags & 3 == 0));
    }
}
