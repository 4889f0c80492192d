//! The one place that records actions: forget._write_audit (sql/schema.sql)
//! extends the hash chain and sends the NOTIFY; this wraps it for Rust.

use crate::errors::spi;
use pgrx::prelude::*;
use pgrx::JsonB;

/// What one audit row says. Never a column value.
pub struct Entry<'a> {
    pub action: &'a str,
    pub subject: &'a str,
    pub key: &'a str,
    pub actor: Option<&'a str>,
    pub reason: Option<&'a str>,
    /// Table name → rows touched.
    pub rows: serde_json::Value,
    pub error: Option<&'a str>,
}

pub fn record(entry: &Entry) -> i64 {
    use pg_sys::{JSONBOID, TEXTOID};
    let plan = crate::cache::kept(
        "SELECT forget._write_audit($1, $2, $3, $4, $5, $6, $7)",
        &[
            TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, JSONBOID, TEXTOID,
        ],
    );
    Spi::connect_mut(|client| {
        spi(client.update(
            plan.as_ref(),
            Some(1),
            &[
                entry.action.into(),
                entry.subject.into(),
                entry.key.into(),
                entry.actor.into(),
                entry.reason.into(),
                JsonB(entry.rows.clone()).into(),
                entry.error.into(),
            ],
        ))
        .first()
        .get_one::<i64>()
        .ok()
        .flatten()
        .unwrap_or_default()
    })
}

/// One audit row per key, written in one call (a cleanup batch).
pub fn record_many(
    action: &str,
    subject: &str,
    keys: &[String],
    actor: Option<&str>,
    reason: Option<&str>,
    rows: Vec<serde_json::Value>,
) {
    use pg_sys::{JSONBARRAYOID, TEXTARRAYOID, TEXTOID};
    let rows: Vec<JsonB> = rows.into_iter().map(JsonB).collect();
    let plan = crate::cache::kept(
        "SELECT forget._write_audit_many($1, $2, $3, $4, $5, $6)",
        &[
            TEXTOID,
            TEXTOID,
            TEXTARRAYOID,
            TEXTOID,
            TEXTOID,
            JSONBARRAYOID,
        ],
    );
    Spi::connect_mut(|client| {
        spi(client.update(
            plan.as_ref(),
            None,
            &[
                action.into(),
                subject.into(),
                keys.to_vec().into(),
                actor.into(),
                reason.into(),
                rows.into(),
            ],
        ));
    });
}
