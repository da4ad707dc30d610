//! The compiled fast path of DataForge's schema-v1 record validator (`dataforge/contract.py`).
//!
//! `FastPath.admit(raw, horizon_us)` answers one question for one record: is it certainly a valid
//! schema-v1 event in the form the contract's producers send? If so, it returns what the landing
//! processors need (the canonical event id and the event time); if not, it returns `None` and the
//! Python validator decides, naming the rule a record breaks. So this module never rejects a record
//! and never names a reason: it accepts a strict subset of what the Python validator accepts, and
//! property tests (`tests/unit/test_native_contract.py`) hold it to that.
//!
//! What it accepts, field by field (anything else, including any string with a JSON escape, a
//! duplicate field, a nested value in an unknown field or a rarer RFC 3339 form of the event time,
//! goes to the Python path):
//! - `event_id`: a UUID as 36 hex digits and hyphens (either case);
//! - `event_type`, `status`, `channel`, `payment_method`: their contract values;
//! - `schema_version`: the JSON integer 1;
//! - `event_time`: `YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|+HH:MM|-HH:MM)`, no later than the horizon;
//! - `transaction_id`, `account_id`, `merchant_id`: 1-64 characters;
//! - `amount`: text `[0-9]{1,16}(\.[0-9]{1,2})?` above zero, a JSON integer in 1..10^16, or another
//!   JSON number in 0..10^13 (exclusive) whose shortest text has at most 2 decimals;
//! - `currency`, `country`: in the code sets given at construction;
//! - `decline_reason`: present; a non-empty string when declined, `null` when approved;
//! - `risk_score`: absent, `null`, or a number in 0..=1.
//! Unknown fields with a scalar value are skipped (as the contract allows).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

const MAX_ID_CHARS: usize = 64;
const FLOAT_AMOUNT_LIMIT: f64 = 1e13; // above it a float may no longer carry its exact cents

/// One scalar JSON value of a flat object, borrowed from the input.
#[derive(Clone, Copy)]
enum Value<'a> {
    Text(&'a str),
    Number(&'a [u8]),
    Null,
    Boolean,
}

/// A strict reader of one flat JSON object (RFC 8259 grammar). It gives up (None) on anything outside
/// the fast path's form: a nested object or array, a string with an escape, a duplicate field.
struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.skip_whitespace();
        (self.peek()? == byte).then(|| self.at += 1)
    }

    fn literal(&mut self, text: &[u8]) -> Option<()> {
        self.bytes.get(self.at..self.at + text.len()).filter(|found| *found == text).map(|_| self.at += text.len())
    }

    /// A string without escapes and control characters, as valid UTF-8 (the quote at `at` is checked).
    fn string(&mut self) -> Option<&'a str> {
        let start = self.at + 1;
        let mut end = start;
        let mut ascii = true;
        // Eight plain ASCII bytes at a time, then byte by byte from the first other one.
        while let Some(chunk) = self.bytes.get(end..end + 8) {
            if !plain_ascii(u64::from_le_bytes(chunk.try_into().ok()?)) {
                break;
            }
            end += 8;
        }
        loop {
            match *self.bytes.get(end)? {
                b'"' => break,
                b'\\' | 0..=0x1f => return None,
                byte => ascii &= byte < 0x80,
            }
            end += 1;
        }
        self.at = end + 1;
        let bytes = &self.bytes[start..end];
        if ascii {
            // SAFETY: every byte is below 0x80, so the slice is ASCII and therefore valid UTF-8.
            Some(unsafe { std::str::from_utf8_unchecked(bytes) })
        } else {
            std::str::from_utf8(bytes).ok()
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, as its text.
    fn number(&mut self) -> Option<&'a [u8]> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.required_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.required_digits()?;
        }
        Some(&self.bytes[start..self.at])
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
    }

    fn required_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }

    fn value(&mut self) -> Option<Value<'a>> {
        self.skip_whitespace();
        match self.peek()? {
            b'"' => self.string().map(Value::Text),
            b'-' | b'0'..=b'9' => self.number().map(Value::Number),
            b'n' => self.literal(b"null").map(|()| Value::Null),
            b't' => self.literal(b"true").map(|()| Value::Boolean),
            b'f' => self.literal(b"false").map(|()| Value::Boolean),
            _ => None,
        }
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Whether one of the eight bytes of `word` is zero (exact; the classic SWAR test).
const fn has_zero_byte(word: u64) -> bool {
    word.wrapping_sub(ONES) & !word & HIGH_BITS != 0
}

/// Whether none of the eight bytes is a quote, a backslash, a control character or non-ASCII.
const fn plain_ascii(word: u64) -> bool {
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGH_BITS; // a byte below 0x20 (exact)
    control == 0
        && word & HIGH_BITS == 0
        && !has_zero_byte(word ^ (ONES * b'"' as u64))
        && !has_zero_byte(word ^ (ONES * b'\\' as u64))
}

/// A string value's text; None for any other value.
fn text(value: Value<'_>) -> Option<&str> {
    match value {
        Value::Text(text) => Some(text),
        _ => None,
    }
}

/// The contract's fields in the order of `FIELDS` (dataforge/contract.py); `risk_score` is optional.
const FIELD_NAMES: [&str; 15] = [
    "event_id", "event_type", "schema_version", "event_time", "transaction_id", "account_id", "merchant_id",
    "amount", "currency", "status", "decline_reason", "channel", "country", "payment_method", "risk_score",
];
const REQUIRED: u16 = (1 << 14) - 1;

/// The contract's fields of one flat JSON object, or None when it is not one (or repeats a field).
fn read_fields(raw: &[u8]) -> Option<[Value<'_>; 15]> {
    let mut scanner = Scanner { bytes: raw, at: 0 };
    let mut fields = [Value::Null; 15];
    let mut seen: u16 = 0;
    let mut next = 0;
    scanner.expect(b'{')?;
    loop {
        scanner.skip_whitespace();
        if scanner.peek()? != b'"' {
            return None; // (also an empty object: fields are missing)
        }
        let key = scanner.string()?;
        scanner.expect(b':')?;
        let value = scanner.value()?;
        // Producers send the fields in contract order: try the field after the last one first.
        let found = if FIELD_NAMES.get(next) == Some(&key) {
            Some(next)
        } else {
            FIELD_NAMES.iter().position(|name| *name == key)
        };
        if let Some(index) = found {
            next = index + 1;
            if seen & (1 << index) != 0 {
                return None;
            }
            seen |= 1 << index;
            fields[index] = value;
        }
        scanner.skip_whitespace();
        match scanner.peek()? {
            b',' => scanner.at += 1,
            b'}' => break,
            _ => return None,
        }
    }
    scanner.at += 1;
    scanner.skip_whitespace();
    (scanner.at == raw.len() && seen & REQUIRED == REQUIRED).then_some(fields)
}

/// The canonical (lowercase, hyphenated) text of a 36-character UUID, or None.
fn canonical_uuid(text: &str) -> Option<[u8; 36]> {
    let bytes = text.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    let mut out = [0u8; 36];
    for (i, &b) in bytes.iter().enumerate() {
        out[i] = match (i, b) {
            (8 | 13 | 18 | 23, b'-') => b'-',
            (8 | 13 | 18 | 23, _) => return None,
            (_, b'0'..=b'9' | b'a'..=b'f') => b,
            (_, b'A'..=b'F') => b + 32,
            _ => return None,
        };
    }
    Some(out)
}

fn digits(bytes: &[u8]) -> Option<i64> {
    let mut value: i64 = 0;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value * 10 + i64::from(b - b'0');
    }
    Some(value)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Microseconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|+HH:MM|-HH:MM)`, or None.
/// Years are limited to 1000-9000 so that no offset moves a time out of Python's datetime range.
fn event_time_us(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (hour, minute, second) = (digits(&b[11..13])?, digits(&b[14..16])?, digits(&b[17..19])?);
    if !(1000..=9000).contains(&year) || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month)
        || hour > 23 || minute > 59 || second > 59
    {
        return None;
    }
    let mut rest = &b[19..];
    let mut micros: i64 = 0;
    if rest.first() == Some(&b'.') {
        let count = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=6).contains(&count) {
            return None;
        }
        micros = digits(&rest[1..=count])? * 10_i64.pow(6 - count as u32);
        rest = &rest[1 + count..];
    }
    let offset_seconds = match rest {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (hours, minutes) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if hours > 23 || minutes > 59 || (*sign == b'-' && hours == 0 && minutes == 0) {
                return None; // "-00:00" (offset unknown) is left to Python
            }
            let magnitude = hours * 3600 + minutes * 60;
            if *sign == b'+' { magnitude } else { -magnitude }
        }
        _ => return None,
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Some(seconds * 1_000_000 + micros)
}

fn valid_id(text: &str) -> bool {
    !text.is_empty() && (text.len() <= MAX_ID_CHARS || text.chars().count() <= MAX_ID_CHARS)
}

/// `[0-9]{1,16}(\.[0-9]{1,2})?` with a non-zero digit: an amount > 0 with at most 2 decimals that
/// fits DECIMAL(18,2) (the contract's ``check_amount`` for text).
fn amount_text(text: &str) -> bool {
    let b = text.as_bytes();
    let whole = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if whole == 0 || whole > 16 {
        return false;
    }
    let fraction_ok = match &b[whole..] {
        [] => true,
        [b'.', fraction @ ..] => (1..=2).contains(&fraction.len()) && fraction.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    fraction_ok && b.iter().any(|&c| (b'1'..=b'9').contains(&c))
}

/// A JSON number amount with decimals is read as a binary float, and the contract judges its shortest
/// round-trip text (Python's ``repr``). Rust's ``Display`` of an f64 is the same shortest digits, but
/// never in exponent form: they agree on every amount with at most 2 decimals (Python writes those
/// without an exponent below the 10^13 limit), and a whole number only drops Python's ``.0``.
fn amount_number(number: &[u8]) -> bool {
    if number.iter().all(u8::is_ascii_digit) {
        // a JSON integer (the grammar allows a leading 0 only in "0" itself): the contract's int amount,
        // 1..10^16 (more digits than that: too big, or Python's call)
        return number.len() <= 16 && number[0] != b'0';
    }
    parse_f64(number).is_some_and(|value| value > 0.0 && value < FLOAT_AMOUNT_LIMIT && amount_text(&value.to_string()))
}

/// A JSON number's text as the nearest f64 (Rust's parser rounds correctly, as Python's does).
fn parse_f64(number: &[u8]) -> Option<f64> {
    std::str::from_utf8(number).ok()?.parse().ok()
}

/// A set of uppercase ASCII codes of one length (ISO 4217 currencies, ISO 3166 countries) as a table.
struct CodeSet {
    length: usize,
    members: Vec<bool>,
}

impl CodeSet {
    fn new(length: usize, codes: &[String], what: &str) -> PyResult<Self> {
        let mut members = vec![false; 26_usize.pow(length as u32)];
        for code in codes {
            let index = Self::index(length, code)
                .ok_or_else(|| PyValueError::new_err(format!("{what} code {code:?} is not {length} letters A-Z")))?;
            members[index] = true;
        }
        Ok(Self { length, members })
    }

    fn index(length: usize, code: &str) -> Option<usize> {
        let b = code.as_bytes();
        if b.len() != length {
            return None;
        }
        b.iter().try_fold(0_usize, |acc, &c| c.is_ascii_uppercase().then(|| acc * 26 + usize::from(c - b'A')))
    }

    fn contains(&self, code: &str) -> bool {
        Self::index(self.length, code).is_some_and(|i| self.members[i])
    }
}

/// The fast path, built once per validator with the contract's code sets.
#[pyclass(frozen, module = "dataforge_native")]
struct FastPath {
    currencies: CodeSet,
    countries: CodeSet,
}

impl FastPath {
    fn check(&self, raw: &[u8], horizon_us: i64) -> Option<([u8; 36], i64)> {
        let [event_id, event_type, schema_version, event_time, transaction_id, account_id, merchant_id, amount,
             currency, status, decline_reason, channel, country, payment_method, risk_score] = read_fields(raw)?;
        let event_id = canonical_uuid(text(event_id)?)?;
        let event_us = event_time_us(text(event_time)?)?;
        let decline_ok = match (text(status)?, decline_reason) {
            ("approved", Value::Null) => true,
            ("declined", Value::Text(reason)) => !reason.is_empty(),
            _ => false,
        };
        let amount_ok = match amount {
            Value::Text(value) => amount_text(value),
            Value::Number(number) => amount_number(number),
            _ => false,
        };
        let risk_ok = match risk_score {
            Value::Null => true, // (also absent)
            Value::Number(number) => parse_f64(number).is_some_and(|score| (0.0..=1.0).contains(&score)),
            _ => false,
        };
        let accepted = matches!(schema_version, Value::Number(b"1"))
            && matches!(text(event_type)?, "payment" | "refund")
            && event_us <= horizon_us
            && valid_id(text(transaction_id)?)
            && valid_id(text(account_id)?)
            && valid_id(text(merchant_id)?)
            && amount_ok
            && self.currencies.contains(text(currency)?)
            && decline_ok
            && matches!(text(channel)?, "web" | "mobile" | "pos")
            && self.countries.contains(text(country)?)
            && matches!(text(payment_method)?, "card" | "wallet" | "bank_transfer")
            && risk_ok;
        accepted.then_some((event_id, event_us))
    }
}

#[pymethods]
impl FastPath {
    #[new]
    fn new(currencies: Vec<String>, countries: Vec<String>) -> PyResult<Self> {
        Ok(Self {
            currencies: CodeSet::new(3, &currencies, "currency")?,
            countries: CodeSet::new(2, &countries, "country")?,
        })
    }

    /// `(canonical event id as bytes, event time in epoch microseconds)` for a record that is
    /// certainly valid with its event time at or before `horizon_us`; None for any other record.
    fn admit<'py>(&self, py: Python<'py>, raw: &[u8], horizon_us: i64) -> Option<(Bound<'py, PyBytes>, i64)> {
        let (event_id, event_us) = self.check(raw, horizon_us)?;
        Some((PyBytes::new(py, &event_id), event_us))
    }
}

#[pymodule]
fn dataforge_native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<FastPath>()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_times_match_the_calendar() {
        assert_eq!(event_time_us("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(event_time_us("2026-11-27T04:30:52.5+01:00"), Some(1_795_750_252_500_000));
        assert_eq!(event_time_us("2024-02-29T23:59:59.000001-05:30"), Some(1_709_270_999_000_001));
        for bad in ["2026-02-29T00:00:00Z", "2026-11-27T24:00:00Z", "2026-11-27T04:30:60Z", "2026-11-27 04:30:52Z",
                    "2026-11-27T04:30:52", "2026-11-27T04:30:52.1234567Z", "2026-11-27T04:30:52.Z",
                    "2026-11-27T04:30:52-00:00", "2026-11-27T04:30:52+24:00"] {
            assert_eq!(event_time_us(bad), None, "{bad}");
        }
    }

    #[test]
    fn amounts_and_uuids() {
        for good in ["1", "12.5", "9999999999999999.99", "100.00", "0.5", "0.01", "007"] {
            assert!(amount_text(good), "{good}");
        }
        for bad in ["", "0", "0.00", "1.", "1.234", "12345678901234567", "1e3", "-1", " 1", ".5"] {
            assert!(!amount_text(bad), "{bad}");
        }
        for good in ["1.0", "0.5", "0.01", "341.32", "100.25", "9999999999999.99", "1e2", "7", "9999999999999999"] {
            assert!(amount_number(good.as_bytes()), "{good}");
        }
        for bad in ["0.30000000000000004", "1.005", "0.001", "1e-5", "1e13", "0", "0.0", "-2.5", "10000000000000000"] {
            assert!(!amount_number(bad.as_bytes()), "{bad}");
        }
        assert_eq!(canonical_uuid("0E8F2C1A-1B2C-4D3E-8F90-A1B2C3D4E5F6").map(|u| u.to_vec()),
                   Some(b"0e8f2c1a-1b2c-4d3e-8f90-a1b2c3d4e5f6".to_vec()));
        assert_eq!(canonical_uuid("0e8f2c1a1b2c4d3e8f90a1b2c3d4e5f6"), None);
        for word in [*b"abcdefgh", *b"0123-:.Z", *b"~~~~~~~~", *b" !#$%&'("] {
            assert!(plain_ascii(u64::from_le_bytes(word)), "{word:?}");
        }
        for special in [b'"', b'\\', 0x00, 0x1f, 0x7f + 1, 0xff] {
            for at in 0..8 {
                let mut word = *b"abcdefgh";
                word[at] = special;
                assert!(!plain_ascii(u64::from_le_bytes(word)), "{word:?}");
            }
        }
        assert_eq!(canonical_uuid("0e8f2c1a-1b2c-4d3e-8f90-a1b2c3d4e5fg"), None);
    }
}

