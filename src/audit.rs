//! The one place that records actions: extends the hash chain under a lock
//! of its head, inserts the rows in one statement and sends one NOTIFY per
//! row (delivered at commit). A row's hash is defined here only:
//! verify_audit() (sql/api.sql) calls the same code as forget._audit_hash.

use crate::errors::spi;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::JsonB;

/// One audit row per key (never a column value: `rows` maps tables to the
/// rows touched), all written in one call.
pub fn record_many(
    action: &str,
    subject: &str,
    keys: &[String],
    actor: Option<&str>,
    reason: Option<&str>,
    rows: Vec<serde_json::Value>,
) {
    write(&Batch {
        action,
        subject,
        keys,
        actor,
        reason,
        rows: rows.iter().map(|r| Some(canonical(r))).collect(),
        error: None,
    });
}

/// For SQL callers (a failed cleanup subject, the purged records of one
/// subject): one row per key, each with the same rows map. Returns the last
/// row's id.
#[pg_extern(name = "_write_audit", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn write_audit(
    action: &str,
    subject: &str,
    keys: Vec<String>,
    actor: Option<&str>,
    reason: Option<&str>,
    rows: Option<JsonB>,
    error: Option<&str>,
) -> Option<i64> {
    let rows = rows.map(|r| canonical(&r.0));
    write(&Batch {
        action,
        subject,
        keys: &keys,
        actor,
        reason,
        rows: vec![rows; keys.len()],
        error,
    })
}

/// Audit rows for several keys of one action.
struct Batch<'a> {
    action: &'a str,
    subject: &'a str,
    keys: &'a [String],
    actor: Option<&'a str>,
    reason: Option<&'a str>,
    /// Per key: the rows map as `canonical` prints it.
    rows: Vec<Option<String>>,
    error: Option<&'a str>,
}

/// The fields a row's hash covers, in order.
struct Row<'a> {
    id: i64,
    /// Microseconds since 2000-01-01 UTC: independent of DateStyle and TimeZone.
    at: i64,
    action: Option<&'a str>,
    subject: Option<&'a str>,
    key: Option<&'a str>,
    actor: Option<&'a str>,
    db_user: Option<&'a str>,
    reason: Option<&'a str>,
    rows: Option<&'a str>,
    error: Option<&'a str>,
    prev_hash: Option<&'a str>,
}

impl Row<'_> {
    /// The text the hash covers: every field length-prefixed, so that no
    /// field can run into the next, and NULL ("-") told apart from ''.
    fn hashed_text(&self) -> String {
        let (id, at) = (self.id.to_string(), self.at.to_string());
        let fields = [
            Some(id.as_str()),
            Some(at.as_str()),
            self.action,
            self.subject,
            self.key,
            self.actor,
            self.db_user,
            self.reason,
            self.rows,
            self.error,
            self.prev_hash,
        ];
        let parts: Vec<String> = fields
            .iter()
            .map(|f| match f {
                Some(text) => format!("{}:{text}", text.len()),
                None => "-".to_string(),
            })
            .collect();
        parts.join("|")
    }

    /// SHA-256 of `hashed_text`, in hex.
    fn hash(&self) -> String {
        use sha2::{Digest, Sha256};
        use std::fmt::Write;
        let digest = Sha256::digest(self.hashed_text().as_bytes());
        digest.iter().fold(String::with_capacity(64), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
    }
}

/// JSON with object keys sorted and no spaces: the same text whether it is
/// printed from what the writer built or from the jsonb stored (jsonb keeps
/// its keys in an order of its own).
fn canonical(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", items.join(","))
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let entries: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), canonical(v)))
                .collect();
            format!("{{{}}}", entries.join(","))
        }
        scalar => scalar.to_string(),
    }
}

/// The hash of a stored audit row, for verify_audit().
#[pg_extern(name = "_audit_hash", stable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::too_many_arguments)]
fn audit_hash(
    id: i64,
    at: TimestampWithTimeZone,
    action: Option<&str>,
    subject: Option<&str>,
    subject_key: Option<&str>,
    actor: Option<&str>,
    db_user: Option<&str>,
    reason: Option<&str>,
    rows: Option<JsonB>,
    error: Option<&str>,
    prev_hash: Option<&str>,
) -> String {
    let rows = rows.map(|r| canonical(&r.0));
    Row {
        id,
        at: at.into_inner(),
        action,
        subject,
        key: subject_key,
        actor,
        db_user,
        reason,
        rows: rows.as_deref(),
        error,
        prev_hash,
    }
    .hash()
}

/// The chain's head, locked: the next writer waits for our commit and then
/// reads our hash (under REPEATABLE READ it gets a serialization failure
/// instead of forking the chain). With it, the time and the session user.
struct Head {
    last_id: i64,
    hash: Option<String>,
    at: TimestampWithTimeZone,
    db_user: String,
}

fn lock_head() -> Head {
    let plan = crate::cache::kept(
        "SELECT h.last_id, h.hash, pg_catalog.clock_timestamp(), session_user::pg_catalog.text \
         FROM forget.audit_head h FOR UPDATE",
        &[],
    );
    let read = || {
        Spi::connect_mut(|client| {
            spi(client.update(plan.as_ref(), Some(1), &[]))
                .into_iter()
                .next()
                .map(|row| Head {
                    last_id: spi(row.get::<i64>(1)).unwrap_or(0),
                    hash: spi(row.get::<String>(2)),
                    at: spi(row.get::<TimestampWithTimeZone>(3)).expect("clock_timestamp()"),
                    db_user: spi(row.get::<String>(4)).unwrap_or_default(),
                })
        })
    };
    read().unwrap_or_else(|| {
        // The first writer of a new installation creates the head (see
        // sql/schema.sql: a restored dump brings its own).
        spi(Spi::run(
            "INSERT INTO forget.audit_head VALUES (true, NULL, NULL) ON CONFLICT DO NOTHING",
        ));
        read().expect("the audit chain's head")
    })
}

/// Ids follow the head (one writer at a time holds it), hashes chain from
/// it; one INSERT writes every row and moves the head. Returns the last id.
fn write(batch: &Batch) -> Option<i64> {
    if batch.keys.is_empty() {
        return None;
    }
    let head = lock_head();
    let mut prev = head.hash.clone();
    let (mut ids, mut prevs, mut hashes) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (key, rows)) in batch.keys.iter().zip(&batch.rows).enumerate() {
        let id = head.last_id + 1 + i as i64;
        let hash = Row {
            id,
            at: head.at.into_inner(),
            action: Some(batch.action),
            subject: Some(batch.subject),
            key: Some(key),
            actor: batch.actor,
            db_user: Some(&head.db_user),
            reason: batch.reason,
            rows: rows.as_deref(),
            error: batch.error,
            prev_hash: prev.as_deref(),
        }
        .hash();
        ids.push(id);
        prevs.push(prev.replace(hash.clone()));
        hashes.push(hash);
    }
    insert(batch, &head, ids.clone(), prevs, hashes.clone());
    for (id, key) in ids.iter().zip(batch.keys) {
        notify(&notice(batch, key, *id));
    }
    ids.last().copied()
}

fn insert(
    batch: &Batch,
    head: &Head,
    ids: Vec<i64>,
    prevs: Vec<Option<String>>,
    hashes: Vec<String>,
) {
    use pg_sys::{INT8ARRAYOID, INT8OID, TEXTARRAYOID, TEXTOID, TIMESTAMPTZOID};
    let plan = crate::cache::kept(
        "WITH written AS (
             INSERT INTO forget.audit (id, at, action, subject, subject_key, actor, db_user, reason, rows, error,
                                       prev_hash, hash)
             SELECT u.id, $1, $2, $3, u.k, $4, $5, $6, u.r::pg_catalog.jsonb, $7, u.p, u.h
             FROM ROWS FROM (pg_catalog.unnest($8), pg_catalog.unnest($9), pg_catalog.unnest($10),
                            pg_catalog.unnest($11), pg_catalog.unnest($12)) AS u(id, k, r, p, h))
         UPDATE forget.audit_head SET last_id = $13, hash = $14",
        &[
            TIMESTAMPTZOID,
            TEXTOID,
            TEXTOID,
            TEXTOID,
            TEXTOID,
            TEXTOID,
            TEXTOID,
            INT8ARRAYOID,
            TEXTARRAYOID,
            TEXTARRAYOID,
            TEXTARRAYOID,
            TEXTARRAYOID,
            INT8OID,
            TEXTOID,
        ],
    );
    let (last_id, last_hash) = (ids.last().copied(), hashes.last().cloned());
    Spi::connect_mut(|client| {
        spi(client.update(
            plan.as_ref(),
            None,
            &[
                head.at.into(),
                batch.action.into(),
                batch.subject.into(),
                batch.actor.into(),
                head.db_user.as_str().into(),
                batch.reason.into(),
                batch.error.into(),
                ids.into(),
                batch.keys.to_vec().into(),
                batch.rows.clone().into(),
                prevs.into(),
                hashes.into(),
                last_id.into(),
                last_hash.into(),
            ],
        ));
    });
}

/// The payload json_build_object('action', .., 'subject', .., 'key', ..,
/// 'audit_id', ..) prints (serde_json escapes strings as PostgreSQL does).
fn notice(batch: &Batch, key: &str, id: i64) -> String {
    let quoted = |s: &str| serde_json::Value::from(s).to_string();
    format!(
        "{{\"action\" : {}, \"subject\" : {}, \"key\" : {}, \"audit_id\" : {id}}}",
        quoted(batch.action),
        quoted(batch.subject),
        quoted(key)
    )
}

/// NOTIFY forget, delivered at commit; pg_notify called directly, not
/// through a query per row.
fn notify(payload: &str) {
    unsafe {
        pgrx::direct_function_call_as_datum(
            pg_sys::pg_notify,
            &["forget".into_datum(), payload.into_datum()],
        );
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use super::{canonical, Row};
    use pgrx::prelude::*;
    use serde_json::json;

    fn row<'a>(key: Option<&'a str>, reason: Option<&'a str>) -> Row<'a> {
        Row {
            id: 7,
            at: 1,
            action: Some("delete"),
            subject: Some("client"),
            key,
            actor: None,
            db_user: Some("app"),
            reason,
            rows: Some("{}"),
            error: None,
            prev_hash: None,
        }
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level_and_has_no_spaces() {
        let v = json!({"b": 1, "a": {"d": [2, "x\"y"], "c": null}});
        assert_eq!(canonical(&v), r#"{"a":{"c":null,"d":[2,"x\"y"]},"b":1}"#);
    }

    #[test]
    fn no_two_different_rows_hash_the_same_text() {
        // A separator inside a value, NULL against '', and a value moved
        // from one field into the next all give different texts.
        let texts = [
            row(Some("1|2"), None).hashed_text(),
            row(Some("1"), Some("2")).hashed_text(),
            row(Some(""), None).hashed_text(),
            row(None, None).hashed_text(),
            row(None, Some("")).hashed_text(),
        ];
        for (i, a) in texts.iter().enumerate() {
            for b in &texts[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(
            row(Some("ab"), None).hashed_text(),
            "1:7|1:1|6:delete|6:client|2:ab|-|3:app|-|2:{}|-|-"
        );
        assert_eq!(row(None, None).hash().len(), 64);
    }

    #[pg_test]
    fn the_notify_payload_is_what_json_build_object_prints() {
        let key = "quote\" back\\slash \u{e9}\n\t\u{1}";
        let batch = super::Batch {
            action: "delete",
            subject: "cli\"ent",
            keys: &[key.to_string()],
            actor: None,
            reason: None,
            rows: vec![None],
            error: None,
        };
        let expected = Spi::get_one_with_args::<String>(
            "SELECT json_build_object('action', $1, 'subject', $2, 'key', $3, 'audit_id', 42::bigint)::text",
            &["delete".into(), "cli\"ent".into(), key.into()],
        )
        .unwrap()
        .unwrap();
        assert_eq!(super::notice(&batch, key, 42), expected);
    }

    #[pg_test]
    fn rows_written_with_odd_values_verify_and_a_changed_map_does_not() {
        super::write_audit(
            "delete",
            "client",
            vec!["it's \\ \"odd\" | é".into()],
            Some("ops|team"),
            None,
            Some(pgrx::JsonB(
                serde_json::json!({"public.zeta": 2, "public.a": 1}),
            )),
            Some(""),
        );
        super::record_many(
            "minimize",
            "client",
            &["1".into(), "2".into()],
            None,
            None,
            vec![serde_json::json!({}); 2],
        );
        assert_eq!(
            Spi::get_one::<bool>("SELECT forget.verify_audit()").unwrap(),
            Some(true)
        );
        assert_eq!(
            Spi::get_one::<i64>("SELECT count(*) FROM forget.audit WHERE id > (SELECT max(id) - 3 FROM forget.audit)")
                .unwrap(),
            Some(3)
        );
        Spi::run("UPDATE forget.audit SET rows = '{\"public.a\": 1, \"public.zeta\": 3}' WHERE error = ''").unwrap();
        assert_eq!(
            Spi::get_one::<bool>("SELECT forget.verify_audit()").unwrap(),
            Some(false)
        );
    }
}
