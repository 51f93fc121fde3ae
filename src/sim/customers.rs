//! Customers, their transaction schedules and the payout report: `GET /v2/clients/{id}/customers`
//! (each customer with its nested `financial_transactions` and `transaction_schedules`),
//! `GET /v1/customers` (the v1 list: no bank numbers, no schedules) and `GET /v2/payout_report`
//! (one payout per transaction), in the documented shapes (shared/seeds/001 and 002), keys
//! sorted as the documentation sorts them.
//!
//! Everything is derived, never stored: a customer's profile (name, contact, bank, address,
//! timestamps) from a hash of the seed and its index ([`salt::PROFILE`]), so the transactions
//! stay the same; its unmasked bank digits from the same hashes as the reports' masked ones
//! ([`super::encode::account_digits`], [`super::encode::institution_last2`],
//! [`super::encode::transit_last2`]), so they agree (an American customer's institution and
//! transit numbers are `""`, while the reports still show masked digits for them); its name
//! after its custom identifier when it has one (`"TREMBLAY17"` is a Tremblay); its schedules
//! from the generated transactions ([`CustomerIndex`], built on first use). The answers are
//! functions of the data, the simulated today and the edits made on demand (`/_sim/customer`,
//! `/_sim/schedule_remove`, kept in [`Scenarios`]), so two reads with nothing changed are
//! byte-identical.
//!
//! A schedule is listed when it produced at least one transaction (and was not removed):
//! `frequency` `"Monthly"`, `installments` counts its generated transactions, `process_date`
//! is the first generated process date, `next_process_date` the first after the simulated today
//! (`null` when none) and `active` says there is one. A customer lists at most its three most
//! recent transactions processed by today, as the transaction report shows them (the product
//! ignores them; this keeps bodies small). A customer is created a day to three weeks before
//! its first transaction was created (and before the simulator's first today); its `updated_at`
//! changes only through `/_sim/customer`. A payout is [`PAYOUT_FEE_CENTS`] for every
//! transaction of the transaction report's window (removed rows left out), with its status as
//! that report shows it today, so the payouts of approved (and, under the default model,
//! charged-back) transactions per settlement date add up to the settlements' `number_payout`
//! and `total_payout`.

use super::calendar::Day;
use super::data::{SimData, Tx, salt, schedule_id};
use super::encode::{
    account_digits, customer_hash, institution_last2, key, push_2, push_comment,
    push_custom_identifier, push_date, push_i64, push_money, push_opt_date,
    push_schedule_custom_identifier, push_str, push_timestamp, push_u64, push_updated_at,
    transit_last2,
};
use super::lifecycle::{Observed, SimStatus};
use super::reports::PAYOUT_FEE_CENTS;
use super::rng::{SplitMix64, hash2};
use super::scenarios::{Scenarios, SimReport};

/// The documentation's "Get all customers for a specific client" sample object, byte for byte
/// as documented (shared/seeds/001; the email is as the documentation's text has it). With
/// `--documented-samples`, the first client's customer list starts with it.
pub const DOCUMENTED_CUSTOMER: &str = r#"{
    "account_number": "23123132",
    "active": true,
    "address": {
      "address_1": "123 Main Street",
      "address_2": "Unit 4",
      "city": "Toronto",
      "id": 242317,
      "postal_code": "M1B 0B7",
      "province_code": "QC"
    },
    "authorization_type": null,
    "bank_account_type": null,
    "bank_name": "Scotiabank",
    "created_at": "2020-10-22T13:27:34.000-05:00",
    "custom_identifier": "MikeS",
    "customer_type": "Personal",
    "email": "[email protected]",
    "financial_transactions": [
      {
        "account_number": "****32",
        "amount": "100.00",
        "comment": "Monthly Fees",
        "created_at": "2021-03-26T16:02:05.338-05:00",
        "custom_identifier": "16472",
        "customer_id": 174527,
        "earliest_approval_date": "2021-04-02",
        "id": 12341234,
        "institution_number": "*33",
        "process_date": "2021-03-27",
        "settlement_date": "2021-04-05",
        "status": "Approved",
        "status_reason": null,
        "transaction_number": "INV1234123",
        "transaction_schedule_id": 1234321,
        "transit_number": "***11",
        "updated_at": "2021-04-05T11:02:20.222-05:00",
        "zapier_identifier": null
      }
    ],
    "home_phone": null,
    "id": 174527,
    "identifier": "MIKESMIT0007",
    "institution_number": "333",
    "name": "Mike Smith",
    "phone": null,
    "routing_number": null,
    "transaction_schedules": [
      {
        "active": true,
        "amount": "100.00",
        "comment": "Monthly Fees",
        "created_at": "2021-03-26T10:00:01.117-05:00",
        "frequency": "Monthly",
        "id": 1234321,
        "installments": 5,
        "next_process_date": "2021-04-27",
        "process_date": "2021-03-27",
        "updated_at": "2021-03-26T16:03:08.725-05:00"
      }
    ],
    "transit_number": "11111",
    "updated_at": "2020-10-22T13:28:42.000-05:00"
  }"#;

/// The documentation's "Payout Report" sample object, byte for byte as documented
/// (shared/seeds/001): a Future payout, with no id and no financial transaction yet. With
/// `--documented-samples`, every payout report starts with it.
pub const DOCUMENTED_PAYOUT: &str = r#"{
    "amount": "1.0",
    "customer": {
      "account_number": "23123132",
      "active": true,
      "authorization_type": null,
      "bank_account_type": null,
      "bank_name": "Scotiabank",
      "created_at": "2020-10-22T13:27:34.000-05:00",
      "custom_identifier": "MikeSmith",
      "customer_type": "Personal",
      "email": "[email protected]",
      "home_phone": null,
      "id": 174527,
      "identifier": "MIKESMIT0007",
      "institution_number": "333",
      "name": "Mike Smith",
      "phone": "",
      "routing_number": null,
      "transit_number": "11111",
      "updated_at": "2020-10-22T13:35:29.000-05:00"
    },
    "financial_transaction": null,
    "id": null,
    "status": "Future",
    "transaction_amount": "100.00"
  }"#;

/// Address ids: the first customer's address has this id.
pub const FIRST_ADDRESS_ID: i64 = 240_001;
/// Payout ids: the payout of the transaction at index `i` is `FIRST_PAYOUT_ID + i` (a Future
/// payout has none yet).
pub const FIRST_PAYOUT_ID: i64 = 9_000_000;

/// Bytes to reserve per payout row.
const PAYOUT_BYTES: usize = 1200;

const FIRST_NAMES: [&str; 24] = [
    "Mike", "Susan", "Marie", "Jean", "Olivia", "Liam", "Emma", "Noah", "Chloe", "Lucas", "Sophie",
    "Ethan", "Ava", "William", "Zoe", "Gabriel", "Amelia", "Nathan", "Priya", "Arjun", "Mei",
    "Kevin", "Fatima", "Omar",
];

const LAST_NAMES: [&str; 24] = [
    "Smith",
    "Johnson",
    "Tremblay",
    "Gagnon",
    "Roy",
    "Cote",
    "Bouchard",
    "Gauthier",
    "Morin",
    "Lavoie",
    "Fortin",
    "Wong",
    "Singh",
    "Patel",
    "Martin",
    "Brown",
    "Wilson",
    "Taylor",
    "Campbell",
    "Anderson",
    "Nguyen",
    "Li",
    "MacDonald",
    "Leblanc",
];

/// The last name behind each of the reports' custom-identifier surnames (`encode::SURNAMES`,
/// same order), so that `"TREMBLAY17"` belongs to a Tremblay; `"MIKEY"` is the documentation's
/// Mike Smith.
const IDENTIFIER_LAST_NAMES: [&str; super::encode::SURNAMES.len()] = [
    "Smith", "Smith", "Tremblay", "Gagnon", "Roy", "Cote", "Bouchard", "Gauthier", "Morin",
    "Lavoie", "Fortin", "Wong", "Singh", "Patel", "Martin", "Brown",
];

const BUSINESS_KINDS: [&str; 8] = [
    "Plumbing Ltd",
    "Dental Clinic",
    "Landscaping Inc",
    "Bakery",
    "Auto Repair",
    "Consulting Group",
    "Yoga Studio",
    "Hardware Co",
];

const CA_BANKS: [&str; 10] = [
    "Scotiabank",
    "Royal Bank",
    "TD Canada Trust",
    "BMO Bank of Montreal",
    "CIBC",
    "National Bank",
    "Desjardins",
    "ATB Financial",
    "Tangerine",
    "Servus Credit Union",
];

const US_BANKS: [&str; 8] = [
    "Chase",
    "Bank of America",
    "Wells Fargo",
    "Citibank",
    "U.S. Bank",
    "PNC Bank",
    "Truist",
    "Capital One",
];

/// City, province and postal code; area code.
const CA_PLACES: [(&str, &str, &str, u32); 8] = [
    ("Toronto", "ON", "M5V 2T6", 416),
    ("Winnipeg", "MB", "R3C 0V8", 204),
    ("Montreal", "QC", "H2X 1Y4", 514),
    ("Vancouver", "BC", "V6B 1A1", 604),
    ("Calgary", "AB", "T2P 1J9", 403),
    ("Regina", "SK", "S4P 3Y2", 306),
    ("Halifax", "NS", "B3J 1S9", 902),
    ("Ottawa", "ON", "K1P 5J2", 613),
];

/// City, state and ZIP code; area code.
const US_PLACES: [(&str, &str, &str, u32); 6] = [
    ("Birmingham", "AL", "35203", 205),
    ("Seattle", "WA", "98101", 206),
    ("Austin", "TX", "78701", 512),
    ("Denver", "CO", "80202", 303),
    ("Chicago", "IL", "60601", 312),
    ("Boston", "MA", "02108", 617),
];

const STREETS: [&str; 8] = [
    "Main Street",
    "King Street",
    "Portage Avenue",
    "Elm Street",
    "Maple Drive",
    "Queen Street",
    "Oak Avenue",
    "Park Road",
];

const SCHEDULE_COMMENTS: [Option<&str>; 8] = [
    None,
    Some("Monthly Fees"),
    Some("Membership fees"),
    Some("Tuition"),
    Some("Rent"),
    Some("Service plan"),
    Some("Lessons"),
    Some(""),
];

/// When transaction `tx` was created, in seconds from day 0's midnight (-05:00).
fn created_secs(tx: &Tx) -> i64 {
    i64::from(tx.process_day) * 86_400 - i64::from(tx.created_before_secs)
}

/// Each customer's transactions, in id order, and when its first one was created: built once,
/// on the first request that needs it (4 bytes per transaction).
#[derive(Debug)]
pub struct CustomerIndex {
    /// `txs[offsets[c]..offsets[c + 1]]` are customer `c`'s transaction indices.
    offsets: Vec<u32>,
    txs: Vec<u32>,
    /// Per customer: the creation time of its earliest created transaction (`i64::MAX`: none).
    first_created: Vec<i64>,
}

impl CustomerIndex {
    /// Groups the transactions of `data` by customer (a counting sort, so each list stays in id
    /// order).
    pub fn build(data: &SimData) -> Self {
        let customers = data.customer_client.len();
        let mut offsets = vec![0u32; customers + 1];
        for t in &data.txs {
            offsets[t.customer as usize + 1] += 1;
        }
        for c in 0..customers {
            offsets[c + 1] += offsets[c];
        }
        let mut next = offsets.clone();
        let mut txs = vec![0u32; data.txs.len()];
        let mut first_created = vec![i64::MAX; customers];
        for (i, t) in data.txs.iter().enumerate() {
            let c = t.customer as usize;
            txs[next[c] as usize] = i as u32;
            next[c] += 1;
            first_created[c] = first_created[c].min(created_secs(t));
        }
        Self {
            offsets,
            txs,
            first_created,
        }
    }

    /// Customer `customer`'s transaction indices, ascending.
    pub fn of(&self, customer: u32) -> &[u32] {
        let c = customer as usize;
        match (self.offsets.get(c), self.offsets.get(c + 1)) {
            (Some(&lo), Some(&hi)) => &self.txs[lo as usize..hi as usize],
            _ => &[],
        }
    }

    /// When customer `customer`'s first transaction was created, if it has any.
    pub fn first_created(&self, customer: u32) -> Option<i64> {
        self.first_created
            .get(customer as usize)
            .copied()
            .filter(|s| *s != i64::MAX)
    }

    /// The schedules of customer `customer` that produced transactions, by slot.
    pub fn schedules(&self, data: &SimData, customer: u32, today: Day) -> [Option<Schedule>; 2] {
        let mut out: [Option<Schedule>; 2] = [None, None];
        for &i in self.of(customer) {
            let tx = &data.txs[i as usize];
            let slot = usize::from(tx.schedule_slot.min(1));
            let s = out[slot].get_or_insert(Schedule {
                id: schedule_id(customer, tx.schedule_slot),
                amount_cents: tx.amount_cents,
                installments: 0,
                first_day: tx.process_day,
                next_day: None,
                first_created: created_secs(tx),
            });
            s.installments += 1;
            s.first_created = s.first_created.min(created_secs(tx));
            if tx.process_day > today && s.next_day.is_none() {
                s.next_day = Some(tx.process_day);
            }
        }
        out
    }
}

/// A transaction schedule as its generated transactions describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    /// Its id ([`schedule_id`]).
    pub id: i64,
    /// The amount of each transaction, in cents.
    pub amount_cents: u32,
    /// How many transactions it produced.
    pub installments: u32,
    /// The first (generated) process date.
    pub first_day: Day,
    /// The first process date after the simulated today, if any (the schedule is active).
    pub next_day: Option<Day>,
    /// When its first transaction was created.
    pub first_created: i64,
}

/// A customer's generated attributes (before any `/_sim/customer` edit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// An American customer (about 1 in 10): a routing number, an account type, an
    /// authorization type, and `""` institution and transit numbers.
    pub american: bool,
    /// `customer_type` `"Business"` (about 15%) rather than `"Personal"`.
    pub business: bool,
    /// The full name (a business name for a business).
    pub name: String,
    /// The email address.
    pub email: String,
    /// Rotessa's own identifier: 8 letters of the name and a 4-digit number.
    pub identifier: String,
    /// 10 digits, or none.
    pub phone: Option<String>,
    /// 10 digits, or none.
    pub home_phone: Option<String>,
    /// The bank's name.
    pub bank_name: &'static str,
    /// The full account number (the reports show its last two digits).
    pub account_number: u64,
    /// 3 digits (Canadian), or `""` (American).
    pub institution_number: String,
    /// 5 digits (Canadian), or `""` (American).
    pub transit_number: String,
    /// 9 digits with a valid check digit (American), or none.
    pub routing_number: Option<String>,
    /// `"Checking"` or `"Savings"` (American), or none.
    pub bank_account_type: Option<&'static str>,
    /// `"Online"` or `"In Person"` (American), or none.
    pub authorization_type: Option<&'static str>,
    /// Street address.
    pub address_1: String,
    /// Unit, or none.
    pub address_2: Option<String>,
    /// City.
    pub city: &'static str,
    /// Province or state code.
    pub province_code: &'static str,
    /// Postal or ZIP code.
    pub postal_code: &'static str,
    /// Created this many seconds before a day ahead of its first transaction.
    created_before_secs: u32,
    /// Updated (when never edited) this many seconds after its creation.
    updated_after_secs: u32,
}

fn pick<T: Copy>(r: &mut SplitMix64, items: &[T]) -> T {
    items[r.below(items.len() as u64) as usize]
}

fn ten_digits(r: &mut SplitMix64, area: u32) -> String {
    format!("{area}555{:04}", r.below(10_000))
}

/// A 9-digit ABA routing number: a Federal Reserve district prefix, 6 digits and the check
/// digit that makes `3(d1+d4+d7) + 7(d2+d5+d8) + (d3+d6+d9)` a multiple of 10.
fn routing_number(r: &mut SplitMix64) -> String {
    let mut d = [0u64; 9];
    let district = r.between(1, 12);
    d[0] = district / 10;
    d[1] = district % 10;
    for digit in d.iter_mut().take(8).skip(2) {
        *digit = r.below(10);
    }
    let sum = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + d[2] + d[5];
    d[8] = (10 - sum % 10) % 10;
    d.iter().map(|x| char::from(b'0' + *x as u8)).collect()
}

impl Profile {
    /// The generated attributes of customer `customer`: a function of the seed and the index.
    pub fn of(seed: u64, customer: u32) -> Self {
        let mut r = SplitMix64::new(hash2(seed ^ salt::PROFILE, u64::from(customer)));
        // A fixed number of draws, in a fixed order, whatever the branches.
        let american = r.below(10) == 0;
        let business = r.below(100) < 15;
        let first = pick(&mut r, &FIRST_NAMES);
        let last = pick(&mut r, &LAST_NAMES);
        let kind = pick(&mut r, &BUSINESS_KINDS);
        let place = if american {
            US_PLACES[r.below(US_PLACES.len() as u64) as usize]
        } else {
            CA_PLACES[r.below(CA_PLACES.len() as u64) as usize]
        };
        let has_phone = r.below(5) != 0;
        let phone = ten_digits(&mut r, place.3);
        let has_home = r.below(4) == 0;
        let home_phone = ten_digits(&mut r, place.3);
        let bank = if american {
            pick(&mut r, &US_BANKS)
        } else {
            pick(&mut r, &CA_BANKS)
        };
        let institution_first = r.below(10);
        let transit_first = r.between(100, 999);
        let routing = routing_number(&mut r);
        let checking = r.below(10) < 7;
        let online = r.below(2) == 0;
        let street_number = r.between(1, 9999);
        let street = pick(&mut r, &STREETS);
        let unit = r.below(4) == 0;
        let unit_number = r.between(1, 2400);
        let created_before_secs = r.below(20 * 86_400) as u32;
        let updated_after_secs = r.below(12 * 3600) as u32;

        // A customer with a custom identifier is named after it (a personal one called
        // "MIKEY" is a Mike).
        let h = customer_hash(seed, customer);
        let (first, last) = if h.is_multiple_of(5) {
            (first, last)
        } else {
            let s = (h >> 8) as usize % IDENTIFIER_LAST_NAMES.len();
            (
                if s == 0 { "Mike" } else { first },
                IDENTIFIER_LAST_NAMES[s],
            )
        };
        let name = if business {
            format!("{last} {kind}")
        } else {
            format!("{first} {last}")
        };
        let letters: String = name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(8)
            .collect::<String>()
            .to_ascii_uppercase();
        let identifier = format!("{letters}{:04}", (u64::from(customer) + 1) % 10_000);
        let email = if business {
            format!(
                "billing.{}{customer}@example.com",
                last.to_ascii_lowercase()
            )
        } else {
            format!(
                "{}.{}{customer}@example.com",
                first.to_ascii_lowercase(),
                last.to_ascii_lowercase()
            )
        };
        let (institution_number, transit_number) = if american {
            (String::new(), String::new())
        } else {
            (
                format!(
                    "{institution_first}{:02}",
                    institution_last2(seed, customer)
                ),
                format!("{transit_first}{:02}", transit_last2(seed, customer)),
            )
        };
        Self {
            american,
            business,
            name,
            email,
            identifier,
            phone: has_phone.then_some(phone),
            home_phone: has_home.then_some(home_phone),
            bank_name: bank,
            account_number: account_digits(seed, customer),
            institution_number,
            transit_number,
            routing_number: american.then_some(routing),
            bank_account_type: american.then_some(if checking { "Checking" } else { "Savings" }),
            authorization_type: american.then_some(if online { "Online" } else { "In Person" }),
            address_1: format!("{street_number} {street}"),
            address_2: unit.then(|| format!("Unit {unit_number}")),
            city: place.0,
            province_code: place.1,
            postal_code: place.2,
            created_before_secs,
            updated_after_secs,
        }
    }
}

/// What the customer and payout answers are computed from: the data, its customer index, the
/// scenarios in force (edits included), the simulated today and the today the simulator
/// started with (customers are created before it).
#[derive(Clone, Copy)]
pub struct View<'a> {
    /// The generated account.
    pub data: &'a SimData,
    /// Its transactions by customer.
    pub index: &'a CustomerIndex,
    /// Overrides, lags, removals and edits in force.
    pub scenarios: &'a Scenarios,
    /// The simulated today.
    pub today: Day,
    /// The simulated today at start (`SimConfig::today`).
    pub start: Day,
}

/// Which documented customer shape to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `GET /v2/clients/{id}/customers`: everything, with unmasked bank numbers, the address,
    /// the nested transactions and schedules.
    List,
    /// The customer nested in a payout: the list's shape without the address, transactions and
    /// schedules.
    Payout,
    /// `GET /v1/customers`: no bank numbers, no address, no nesting.
    V1,
}

impl View<'_> {
    /// When customer `customer` was created, in seconds from day 0 (-05:00): a day and up to 20
    /// more before its first transaction was created, and before the simulated today at start.
    pub fn created_secs(&self, customer: u32, profile: &Profile) -> i64 {
        let start = i64::from(self.start) * 86_400;
        let anchor = self
            .index
            .first_created(customer)
            .unwrap_or(start)
            .min(start);
        anchor - 86_400 - i64::from(profile.created_before_secs)
    }

    /// When customer `customer` was last updated: its last `/_sim/customer` edit, or a few
    /// hours after its creation.
    pub fn updated_secs(&self, customer: u32, profile: &Profile) -> i64 {
        match self.scenarios.customer_edit(customer) {
            Some(edit) => i64::from(edit.day) * 86_400 + i64::from(edit.secs),
            None => self.created_secs(customer, profile) + i64::from(profile.updated_after_secs),
        }
    }

    fn push_customer(&self, buf: &mut Vec<u8>, customer: u32, shape: Shape) {
        let data = self.data;
        let p = Profile::of(data.seed, customer);
        let edit = self.scenarios.customer_edit(customer);
        let name = edit.and_then(|e| e.name.as_deref()).unwrap_or(&p.name);
        let email = edit.and_then(|e| e.email.as_deref()).unwrap_or(&p.email);
        let bank = shape != Shape::V1;
        let opt = |buf: &mut Vec<u8>, v: Option<&str>| match v {
            Some(s) => push_str(buf, s),
            None => buf.extend_from_slice(b"null"),
        };
        buf.push(b'{');
        if bank {
            key(buf, "account_number", true);
            buf.push(b'"');
            push_u64(buf, p.account_number);
            buf.push(b'"');
        }
        key(buf, "active", !bank);
        buf.extend_from_slice(b"true");
        if shape == Shape::List {
            key(buf, "address", false);
            buf.extend_from_slice(b"{\"address_1\":");
            push_str(buf, &p.address_1);
            key(buf, "address_2", false);
            opt(buf, p.address_2.as_deref());
            key(buf, "city", false);
            push_str(buf, p.city);
            key(buf, "id", false);
            push_i64(buf, FIRST_ADDRESS_ID + i64::from(customer));
            key(buf, "postal_code", false);
            push_str(buf, p.postal_code);
            key(buf, "province_code", false);
            push_str(buf, p.province_code);
            buf.push(b'}');
        }
        if bank {
            key(buf, "authorization_type", false);
            opt(buf, p.authorization_type);
            key(buf, "bank_account_type", false);
            opt(buf, p.bank_account_type);
        }
        key(buf, "bank_name", false);
        push_str(buf, p.bank_name);
        key(buf, "created_at", false);
        push_timestamp(buf, 0, self.created_secs(customer, &p));
        key(buf, "custom_identifier", false);
        push_custom_identifier(buf, data.seed, customer);
        key(buf, "customer_type", false);
        push_str(buf, if p.business { "Business" } else { "Personal" });
        key(buf, "email", false);
        push_str(buf, email);
        if shape == Shape::List {
            key(buf, "financial_transactions", false);
            self.push_recent_transactions(buf, customer);
        }
        key(buf, "home_phone", false);
        opt(buf, p.home_phone.as_deref());
        key(buf, "id", false);
        push_i64(buf, data.customer_id(customer));
        key(buf, "identifier", false);
        push_str(buf, &p.identifier);
        if bank {
            key(buf, "institution_number", false);
            push_str(buf, &p.institution_number);
        }
        key(buf, "name", false);
        push_str(buf, name);
        key(buf, "phone", false);
        opt(buf, p.phone.as_deref());
        if bank {
            key(buf, "routing_number", false);
            opt(buf, p.routing_number.as_deref());
        }
        if shape == Shape::List {
            key(buf, "transaction_schedules", false);
            self.push_schedules(buf, customer);
        }
        if bank {
            key(buf, "transit_number", false);
            push_str(buf, &p.transit_number);
        }
        key(buf, "updated_at", false);
        push_timestamp(buf, 0, self.updated_secs(customer, &p));
        buf.push(b'}');
    }

    /// The customer's (at most) three most recent transactions processed by today, as the
    /// transaction report shows them (removed rows left out), oldest first.
    fn push_recent_transactions(&self, buf: &mut Vec<u8>, customer: u32) {
        let (data, scen, today) = (self.data, self.scenarios, self.today);
        let view = Some(SimReport::TransactionReport);
        let mut recent: Vec<(usize, Observed)> = Vec::with_capacity(3);
        for &i in self.index.of(customer).iter().rev() {
            let i = i as usize;
            if !scen.is_reported(data, i, today, view) {
                continue;
            }
            let seen = scen.observe(data, i, today, view);
            if seen.process_day <= today {
                recent.push((i, seen));
                if recent.len() == 3 {
                    break;
                }
            }
        }
        buf.push(b'[');
        for (n, (i, seen)) in recent.iter().rev().enumerate() {
            if n > 0 {
                buf.push(b',');
            }
            push_nested_transaction(buf, data, *i, seen);
        }
        buf.push(b']');
    }

    /// The customer's schedules that produced transactions and were not removed, by id.
    fn push_schedules(&self, buf: &mut Vec<u8>, customer: u32) {
        let data = self.data;
        let start = i64::from(self.start) * 86_400;
        buf.push(b'[');
        let mut first = true;
        for s in self
            .index
            .schedules(data, customer, self.today)
            .into_iter()
            .flatten()
        {
            if self.scenarios.schedule_removed(s.id) {
                continue;
            }
            if !first {
                buf.push(b',');
            }
            first = false;
            let h = hash2(data.seed ^ salt::SCHEDULE, s.id as u64);
            let created = s.first_created.min(start) - 1 - (h >> 48) as i64 % 3600;
            buf.extend_from_slice(b"{\"active\":");
            buf.extend_from_slice(if s.next_day.is_some() {
                b"true"
            } else {
                b"false"
            });
            key(buf, "amount", false);
            push_money(buf, i64::from(s.amount_cents));
            key(buf, "comment", false);
            match SCHEDULE_COMMENTS[((h >> 44) % SCHEDULE_COMMENTS.len() as u64) as usize] {
                Some(c) => push_str(buf, c),
                None => buf.extend_from_slice(b"null"),
            }
            key(buf, "created_at", false);
            push_timestamp(buf, 0, created);
            key(buf, "frequency", false);
            buf.extend_from_slice(b"\"Monthly\"");
            key(buf, "id", false);
            push_i64(buf, s.id);
            key(buf, "installments", false);
            push_u64(buf, u64::from(s.installments));
            key(buf, "next_process_date", false);
            push_opt_date(buf, s.next_day, true);
            key(buf, "process_date", false);
            push_date(buf, s.first_day, true);
            key(buf, "updated_at", false);
            push_timestamp(buf, 0, created + (h >> 52) as i64 % 21_600);
            buf.push(b'}');
        }
        buf.push(b']');
    }
}

/// Appends transaction `index` as `seen`, in the shape the documentation nests in a customer
/// and a payout: masked bank numbers (`"****NN"`, `"*NN"`, `"***NN"`; the last two `null`
/// while `Future`, as in the reports), padded dates, the schedule's custom identifier, and
/// `zapier_identifier` `null`.
pub fn push_nested_transaction(buf: &mut Vec<u8>, data: &SimData, index: usize, seen: &Observed) {
    let tx = &data.txs[index];
    let id = data.tx_id(index);
    let seed = data.seed;
    let future = seen.last_change.is_none();
    let schedule = schedule_id(tx.customer, tx.schedule_slot);
    buf.extend_from_slice(b"{\"account_number\":\"****");
    push_2(buf, (account_digits(seed, tx.customer) % 100) as u32);
    buf.push(b'"');
    key(buf, "amount", false);
    push_money(buf, i64::from(tx.amount_cents));
    key(buf, "comment", false);
    push_comment(buf, tx, id);
    key(buf, "created_at", false);
    push_timestamp(buf, tx.process_day, -i64::from(tx.created_before_secs));
    key(buf, "custom_identifier", false);
    push_schedule_custom_identifier(buf, seed, schedule);
    key(buf, "customer_id", false);
    push_i64(buf, data.customer_id(tx.customer));
    key(buf, "earliest_approval_date", false);
    push_opt_date(buf, seen.earliest_approval_day, true);
    key(buf, "id", false);
    push_i64(buf, id);
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
    push_date(buf, seen.settlement_day, true);
    key(buf, "status", false);
    push_str(buf, seen.status.as_str());
    key(buf, "status_reason", false);
    match seen.status_reason {
        Some(r) => push_str(buf, r),
        None => buf.extend_from_slice(b"null"),
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
    key(buf, "zapier_identifier", false);
    buf.extend_from_slice(b"null}");
}

/// Appends a payout amount as the documentation writes it: a quoted decimal with one place
/// when the cent digit is 0 (`"1.0"`, `"2.3"`), two otherwise (`"2.26"`).
pub fn push_payout_amount(buf: &mut Vec<u8>, cents: i64) {
    buf.push(b'"');
    if cents < 0 {
        buf.push(b'-');
    }
    let abs = cents.unsigned_abs();
    push_u64(buf, abs / 100);
    buf.push(b'.');
    let frac = abs % 100;
    if frac.is_multiple_of(10) {
        buf.push(b'0' + (frac / 10) as u8);
    } else {
        push_2(buf, frac as u32);
    }
    buf.push(b'"');
}

/// `GET /v2/clients/{id}/customers`: every customer of client `client` (an index), by id, as a
/// JSON array (no paging); with `documented`, the first client's list starts with
/// [`DOCUMENTED_CUSTOMER`].
pub fn client_customers(view: &View<'_>, client: usize, documented: bool) -> Vec<u8> {
    let customers = view
        .data
        .customer_client
        .iter()
        .enumerate()
        .filter(|(_, c)| usize::from(**c) == client)
        .map(|(i, _)| i as u32);
    let sample = (documented && client == 0).then_some(DOCUMENTED_CUSTOMER);
    list(view, customers, Shape::List, sample)
}

/// `GET /v1/customers`: every customer of the account (v1 is a single merchant), by id, in the
/// v1 list shape.
pub fn v1_customers(view: &View<'_>) -> Vec<u8> {
    let customers = 0..view.data.customer_client.len() as u32;
    list(view, customers, Shape::V1, None)
}

fn list(
    view: &View<'_>,
    customers: impl Iterator<Item = u32>,
    shape: Shape,
    sample: Option<&str>,
) -> Vec<u8> {
    let mut buf = Vec::with_capacity(4096);
    buf.push(b'[');
    let mut first = true;
    if let Some(sample) = sample {
        buf.extend_from_slice(sample.as_bytes());
        first = false;
    }
    for c in customers {
        if !first {
            buf.push(b',');
        }
        first = false;
        view.push_customer(&mut buf, c, shape);
    }
    buf.push(b']');
    buf
}

/// `GET /v2/payout_report`: one payout per transaction at `rows` (indices, in id order), as
/// the transaction report shows it today: [`PAYOUT_FEE_CENTS`], the customer as it is now,
/// and, unless `Future`, the financial transaction and a payout id. With `documented`, the
/// array starts with [`DOCUMENTED_PAYOUT`].
pub fn payouts(view: &View<'_>, rows: &[u32], documented: bool) -> Vec<u8> {
    let (data, scen, today) = (view.data, view.scenarios, view.today);
    let report = Some(SimReport::TransactionReport);
    let mut buf = Vec::with_capacity(2 + (rows.len() + 1) * PAYOUT_BYTES);
    buf.push(b'[');
    let mut first = true;
    if documented {
        buf.extend_from_slice(DOCUMENTED_PAYOUT.as_bytes());
        first = false;
    }
    for &i in rows {
        let i = i as usize;
        if !first {
            buf.push(b',');
        }
        first = false;
        let tx = &data.txs[i];
        let seen = scen.observe(data, i, today, report);
        let future = seen.status == SimStatus::Future;
        buf.extend_from_slice(b"{\"amount\":");
        push_payout_amount(&mut buf, PAYOUT_FEE_CENTS);
        key(&mut buf, "customer", false);
        view.push_customer(&mut buf, tx.customer, Shape::Payout);
        key(&mut buf, "financial_transaction", false);
        if future {
            buf.extend_from_slice(b"null");
        } else {
            push_nested_transaction(&mut buf, data, i, &seen);
        }
        key(&mut buf, "id", false);
        if future {
            buf.extend_from_slice(b"null");
        } else {
            push_i64(&mut buf, FIRST_PAYOUT_ID + i as i64);
        }
        key(&mut buf, "status", false);
        push_str(&mut buf, seen.status.as_str());
        key(&mut buf, "transaction_amount", false);
        push_money(&mut buf, i64::from(tx.amount_cents));
        buf.push(b'}');
    }
    buf.push(b']');
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SimConfig;
    use chrono::NaiveDate;

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut b = Vec::new();
        f(&mut b);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn payout_amounts_are_written_as_documented() {
        assert_eq!(text(|b| push_payout_amount(b, 100)), "\"1.0\"");
        assert_eq!(text(|b| push_payout_amount(b, 230)), "\"2.3\"");
        assert_eq!(text(|b| push_payout_amount(b, 226)), "\"2.26\"");
        assert_eq!(text(|b| push_payout_amount(b, 205)), "\"2.05\"");
        assert_eq!(text(|b| push_payout_amount(b, 0)), "\"0.0\"");
        assert_eq!(text(|b| push_payout_amount(b, -226)), "\"-2.26\"");
    }

    #[test]
    fn the_documented_samples_are_json_objects() {
        for sample in [DOCUMENTED_CUSTOMER, DOCUMENTED_PAYOUT] {
            let v: serde_json::Value = serde_json::from_str(sample).unwrap();
            assert!(v.is_object());
        }
    }

    #[test]
    fn profiles_are_plausible_and_agree_with_the_reports() {
        let mut american = 0;
        for c in 0..2000 {
            let p = Profile::of(7, c);
            assert_eq!(p.account_number, account_digits(7, c));
            if let Some(routing) = &p.routing_number {
                american += 1;
                let d: Vec<u32> = routing.chars().map(|c| c.to_digit(10).unwrap()).collect();
                assert_eq!(d.len(), 9);
                let sum = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + d[2] + d[5] + d[8];
                assert_eq!(sum % 10, 0, "{routing}");
                assert_eq!(
                    (p.institution_number.as_str(), p.transit_number.as_str()),
                    ("", "")
                );
                assert!(p.bank_account_type.is_some() && p.authorization_type.is_some());
            } else {
                assert_eq!(p.institution_number.len(), 3);
                assert_eq!(p.transit_number.len(), 5);
                assert!(
                    p.institution_number
                        .ends_with(&format!("{:02}", institution_last2(7, c)))
                );
                assert!(
                    p.transit_number
                        .ends_with(&format!("{:02}", transit_last2(7, c)))
                );
                assert_eq!((p.bank_account_type, p.authorization_type), (None, None));
            }
            for phone in [&p.phone, &p.home_phone].into_iter().flatten() {
                assert!(phone.len() == 10 && phone.bytes().all(|b| b.is_ascii_digit()));
            }
            let (letters, number) = p.identifier.split_at(p.identifier.len() - 4);
            assert!((4..=8).contains(&letters.len()), "{}", p.identifier);
            assert_eq!(number, format!("{:04}", (c + 1) % 10_000));
            assert_eq!(p, Profile::of(7, c), "a pure function");
        }
        assert!((120..300).contains(&american), "{american}");
    }

    #[test]
    fn the_index_groups_every_transaction_by_customer_in_id_order() {
        let config = SimConfig {
            transactions: 3000,
            customers: 200,
            today: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
            ..SimConfig::default()
        };
        let data = SimData::generate(&config);
        let index = CustomerIndex::build(&data);
        let mut seen = 0;
        for c in 0..200 {
            let list = index.of(c);
            assert!(list.windows(2).all(|w| w[0] < w[1]));
            assert!(list.iter().all(|&i| data.txs[i as usize].customer == c));
            seen += list.len();
            let today = crate::sim::calendar::day_of(config.today);
            let schedules = index.schedules(&data, c, today);
            let counted: u32 = schedules.iter().flatten().map(|s| s.installments).sum();
            assert_eq!(counted as usize, list.len());
            for s in schedules.iter().flatten() {
                assert!(s.next_day.is_none_or(|d| d > today && d >= s.first_day));
            }
        }
        assert_eq!(seen, 3000);
        assert_eq!(index.of(10_000), &[] as &[u32]);
    }
}
