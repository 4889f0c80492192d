//! Time values Rust formats: PostgreSQL's timestamps as chrono values.
//! A `timestamptz` is stored as microseconds since 2000-01-01 00:00 UTC
//! (PostgreSQL's epoch); infinite values have no chrono form.

use chrono::{DateTime, SecondsFormat, Utc};

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01 UTC).
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// The instant a `timestamptz` holds (microseconds since 2000-01-01 UTC);
/// None for `infinity` and `-infinity`.
pub fn from_postgres(micros: i64) -> Option<DateTime<Utc>> {
    if micros == i64::MAX || micros == i64::MIN {
        return None;
    }
    DateTime::from_timestamp_micros(micros.checked_add(POSTGRES_EPOCH_MICROS)?)
}

/// RFC 3339 in UTC with microseconds, as `to_json` prints a timestamptz
/// with TimeZone UTC: `2026-11-30T16:20:00.123456+00:00`.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, false)
}

/// A date for people, to the minute, in UTC: `2026-12-30 16:20 UTC`.
pub fn for_people(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// A `timestamptz` datum as a chrono instant (None for infinite values).
pub fn from_datum(at: pgrx::datum::TimestampWithTimeZone) -> Option<DateTime<Utc>> {
    from_postgres(at.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_epoch_and_rfc3339() {
        assert_eq!(
            rfc3339(from_postgres(0).unwrap()),
            "2000-01-01T00:00:00.000000+00:00"
        );
        // 2026-11-30 16:20:00.123456 UTC
        let at = from_postgres(849_370_800_123_456).unwrap();
        assert_eq!(rfc3339(at), "2026-11-30T16:20:00.123456+00:00");
        assert_eq!(for_people(at), "2026-11-30 16:20 UTC");
        assert_eq!(
            rfc3339(from_postgres(-1).unwrap()),
            "1999-12-31T23:59:59.999999+00:00"
        );
        assert!(from_postgres(i64::MAX).is_none());
        assert!(from_postgres(i64::MIN).is_none());
    }
}
