//! The one place that records actions: extends the hash chain under a lock
//! of its head, inserts the rows in one statement and sends one NOTIFY per
//! row (delivered at commit). A row's hash is defined here only:
//! verify_audit() (sql/api.sql) checks the chain with the same code
//! (forget_internal._verify_chain).

use crate::errors::spi;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::JsonB;
use std::sync::atomic::{AtomicBool, Ordering};

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
#[pg_extern(schema = "forget_internal", name = "_write_audit", security_definer)]
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
    action: Option<&'a [u8]>,
    subject: Option<&'a [u8]>,
    key: Option<&'a [u8]>,
    actor: Option<&'a [u8]>,
    db_user: Option<&'a [u8]>,
    reason: Option<&'a [u8]>,
    rows: Option<&'a [u8]>,
    error: Option<&'a [u8]>,
    prev_hash: Option<&'a [u8]>,
}

impl<'a> Row<'a> {
    /// A row from its fields as the audit table stores them: `text` is
    /// action, subject, subject_key, actor, db_user, reason and error, in
    /// that order; `rows` is the map as `canonical` prints it.
    fn of(
        id: i64,
        at: i64,
        text: [Option<&'a [u8]>; 7],
        rows: Option<&'a str>,
        prev_hash: Option<&'a [u8]>,
    ) -> Row<'a> {
        let [action, subject, key, actor, db_user, reason, error] = text;
        Row {
            id,
            at,
            action,
            subject,
            key,
            actor,
            db_user,
            reason,
            rows: rows.map(str::as_bytes),
            error,
            prev_hash,
        }
    }
}

impl Row<'_> {
    /// The text the hash covers (as bytes in hashed_bytes): every field length-prefixed, so that no
    /// field can run into the next, and NULL ("-") told apart from ''.
    #[cfg(any(test, feature = "pg_test"))]
    fn hashed_text(&self) -> String {
        String::from_utf8(self.hashed_bytes()).expect("fields are UTF-8")
    }

    fn hashed_bytes(&self) -> Vec<u8> {
        let (mut id_buf, mut at_buf, mut len_buf) = ([0u8; 20], [0u8; 20], [0u8; 20]);
        let fields = [
            Some(decimal(self.id, &mut id_buf)),
            Some(decimal(self.at, &mut at_buf)),
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
        // Each field: up to 20 digits of length, ':' and '|', and itself.
        let size: usize = fields.iter().map(|f| 22 + f.map_or(0, <[u8]>::len)).sum();
        let mut text = Vec::with_capacity(size);
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                text.push(b'|');
            }
            match field {
                Some(value) => {
                    text.extend_from_slice(decimal(value.len() as i64, &mut len_buf));
                    text.push(b':');
                    text.extend_from_slice(value);
                }
                None => text.push(b'-'),
            }
        }
        text
    }

    /// SHA-256 of `hashed_text`, in lowercase hex.
    fn hash(&self) -> String {
        use sha2::{Digest, Sha256};
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let digest = Sha256::digest(self.hashed_bytes());
        let mut hex = Vec::with_capacity(64);
        for b in digest.iter() {
            hex.extend_from_slice(&[HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
        String::from_utf8(hex).expect("hex digits")
    }
}

/// JSON with object keys sorted and no spaces: the same text whether it is
/// printed from what the writer built or from the jsonb stored (jsonb keeps
/// its keys in an order of its own).
fn canonical(value: &serde_json::Value) -> String {
    let mut out = Vec::with_capacity(64);
    write_canonical(value, &mut out);
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

fn write_canonical(value: &serde_json::Value, out: &mut Vec<u8>) {
    use serde_json::Value;
    let quoted = |out: &mut Vec<u8>, s: &str| {
        serde_json::to_writer(out, s).expect("a string serializes");
    };
    match value {
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                quoted(out, k);
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        Value::String(s) => quoted(out, s),
        scalar => serde_json::to_writer(out, scalar).expect("a scalar serializes"),
    }
}

/// `n` in decimal ASCII, written into `buf` (no allocation: the hash of
/// every audit row formats thirteen numbers).
fn decimal(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut rest = n.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if n < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// verify_audit(): whether the linked audit rows form an unbroken chain.
/// One read-only pass in chain order (`seq`, its unique index): each row's
/// `prev_hash` is the stored hash of the row before it (for the first, the
/// base prune_audit recorded, or none), each row names the next row's
/// position in `next_seq` (the newest none, so removing the newest rows
/// shows), and each stored `hash` is the one `Row::hash` computes from the
/// row's fields. Rows not linked yet (their transaction has not committed)
/// are not checked. Stops at the first break.
///
/// The backend reads the rows and checks the links; the hashes are
/// computed meanwhile by a second thread, in batches of rows copied out of
/// PostgreSQL's memory (pure Rust: it calls nothing in PostgreSQL, and
/// takes no signal). On 2 cores this halves the time of a long chain.
#[pg_extern(schema = "forget_internal", name = "_verify_chain", stable)]
fn verify_chain() -> bool {
    let base = Spi::connect(|client| {
        spi(client.select("SELECT b.hash FROM forget.audit_base b", Some(1), &[]))
            .first()
            .get_one::<String>()
            .ok()
            .flatten()
    });
    // Set when the backend's pass fails (an error unwinds through it): the
    // hasher then stops at its next row instead of finishing its batches.
    let stop = AtomicBool::new(false);
    let intact = std::thread::scope(|scope| {
        let (to_hasher, batches) = std::sync::mpsc::sync_channel::<CopiedRows>(2);
        let stop = &stop;
        let hasher =
            spawn_without_signals(scope, move || batches.iter().all(|b| b.hashes_match(stop)));
        let _stop_on_error = StopOnUnwind(stop);
        let mut links = Links {
            base: base.map(String::into_bytes),
            before: None,
        };
        // To the hasher (false: it found a mismatch and stopped), or checked
        // here when no thread could be started.
        let deliver = |batch: CopiedRows| match &hasher {
            Some(_) => to_hasher.send(batch).is_ok(),
            None => batch.hashes_match(stop),
        };
        let mut links_intact = true;
        let mut batch = CopiedRows::default();
        crate::stream::read_only_rows(
            "SELECT a.seq, a.next_seq, a.prev_hash, a.hash, a.id, a.at, a.action, a.subject, a.subject_key,
                    a.actor, a.db_user, a.reason, a.rows::pg_catalog.text, a.error
             FROM forget.audit a WHERE a.seq IS NOT NULL ORDER BY a.seq",
            |c| {
                links_intact = links.follow(c);
                if !links_intact {
                    return false;
                }
                batch.push(c);
                if !batch.is_full() {
                    return true;
                }
                deliver(std::mem::take(&mut batch))
            },
        );
        let last = deliver(batch);
        drop(to_hasher);
        let hashes_intact = hasher.is_none_or(|h| h.join().unwrap_or(false)) && last;
        links_intact && links.ends_chain() && hashes_intact
    });
    intact && !foreign_unlinked_rows()
}

/// Sets its flag when dropped by an unwinding panic (a PostgreSQL error
/// raised through pgrx).
struct StopOnUnwind<'a>(&'a AtomicBool);

impl Drop for StopOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

/// Whether the audit holds rows that are not linked but were not written by
/// this transaction. Rows are linked by the commit of the transaction that
/// wrote them, so any other unlinked row was written around the writer (by
/// hand): verify_audit reports it, and no commit links it (link_rows).
fn foreign_unlinked_rows() -> bool {
    Spi::connect(|client| {
        spi(client.select(
            "SELECT a.xmin::pg_catalog.text FROM forget.audit a WHERE a.hash IS NULL",
            None,
            &[],
        ))
        .any(|row| !written_here(spi(row.get::<String>(1)).as_deref()))
    })
}

/// Whether a row's xmin (as text) is this transaction or one of its
/// subtransactions.
fn written_here(xmin: Option<&str>) -> bool {
    xmin.and_then(|x| x.parse::<u32>().ok())
        // SAFETY: a plain lookup in this backend's transaction state.
        .is_some_and(|x| unsafe { pg_sys::TransactionIdIsCurrentTransactionId(x.into()) })
}

/// A thread for pure Rust work, with every signal blocked (it inherits the
/// mask): PostgreSQL's handlers run on the backend's own thread only. None
/// when no thread can be started (the caller then does the work itself).
fn spawn_without_signals<'scope, 'env, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    work: impl FnOnce() -> T + Send + 'scope,
) -> Option<std::thread::ScopedJoinHandle<'scope, T>> {
    // SAFETY: plain libc calls on sigset_t values owned here.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
        let handle = std::thread::Builder::new()
            .name("pg_forget verify_audit".into())
            .spawn_scoped(scope, work)
            .ok();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        handle
    }
}

/// The link check of verify_chain's pass, row after row (its query's
/// columns, from 0).
struct Links {
    base: Option<Vec<u8>>,
    /// The previous row's stored hash and next_seq, once a row was read.
    before: Option<(Vec<u8>, Option<i64>)>,
}

impl Links {
    /// Whether this row follows the previous one (the base for the first).
    fn follow(&mut self, c: &crate::stream::Columns) -> bool {
        let expected_prev = match &self.before {
            None => self.base.as_deref(),
            Some((hash, next)) => {
                if *next != c.int8(0) {
                    return false;
                }
                Some(hash.as_slice())
            }
        };
        if c.bytes(2) != expected_prev {
            return false;
        }
        let Some(hash) = c.bytes(3) else {
            return false;
        };
        let (kept, next) = self.before.get_or_insert_with(|| (Vec::new(), None));
        kept.clear();
        kept.extend_from_slice(hash);
        *next = c.int8(1);
        true
    }

    /// The newest row names no successor.
    fn ends_chain(&self) -> bool {
        self.before.as_ref().is_none_or(|(_, next)| next.is_none())
    }
}

/// Rows copied out of PostgreSQL's memory for the hasher: their text
/// fields in one buffer.
#[derive(Default)]
struct CopiedRows {
    bytes: Vec<u8>,
    rows: Vec<CopiedRow>,
}

/// One row: id, at, and where each text field lies in the buffer (None for
/// NULL), in the order of `CopiedRows::TEXT_COLUMNS`.
struct CopiedRow {
    id: i64,
    at: i64,
    fields: [Option<(usize, usize)>; 10],
}

impl CopiedRows {
    /// verify_chain's query columns: action, subject, subject_key, actor,
    /// db_user, reason, rows (jsonb as text), error, prev_hash, hash.
    const TEXT_COLUMNS: [usize; 10] = [6, 7, 8, 9, 10, 11, 12, 13, 2, 3];

    /// A batch goes to the hasher at 1000 rows or 1 MiB of fields, so that
    /// at most four batches (filled, queued twice, hashed) are in memory,
    /// and a cancelled call waits for one batch's hashing at most.
    fn is_full(&self) -> bool {
        self.rows.len() >= 1000 || self.bytes.len() >= 1 << 20
    }

    fn push(&mut self, c: &crate::stream::Columns) {
        let fields = Self::TEXT_COLUMNS.map(|column| {
            c.bytes(column).map(|value| {
                let start = self.bytes.len();
                self.bytes.extend_from_slice(value);
                (start, value.len())
            })
        });
        self.rows.push(CopiedRow {
            id: c.int8(4).unwrap_or_default(),
            // timestamptz: microseconds since 2000-01-01, NOT NULL.
            at: c.int8(5).unwrap_or_default(),
            fields,
        });
    }

    /// Whether every row's stored hash is the one its fields give (false
    /// as soon as `stop` is set).
    fn hashes_match(&self, stop: &AtomicBool) -> bool {
        self.rows.iter().all(|row| {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            let field =
                |i: usize| row.fields[i].map(|(start, len)| &self.bytes[start..start + len]);
            // No panic on this thread: what does not parse does not match.
            let rows = match field(6).map(serde_json::from_slice::<serde_json::Value>) {
                None => None,
                Some(Ok(value)) => Some(canonical(&value)),
                Some(Err(_)) => return false,
            };
            let text = [0, 1, 2, 3, 4, 5, 7].map(field);
            let computed = Row::of(row.id, row.at, text, rows.as_deref(), field(8)).hash();
            field(9) == Some(computed.as_bytes())
        })
    }
}

/// Where the chain ends when a committing transaction links its rows: the
/// newest linked row (its position and hash), or the recorded base of a
/// pruned chain, or nothing yet.
struct Head {
    /// The chain position of the newest linked row.
    last_seq: i64,
    hash: Option<String>,
    /// Whether a linked row ends the chain (it gets next_seq).
    newest_row: bool,
}

/// Serializes the linking of committing transactions and finds where the
/// chain ends. `forget.audit_head` is a lock only: it is locked FOR UPDATE
/// until commit and never updated, so a long-held snapshot elsewhere leaves
/// it no dead versions to wade through (the newest linked row is found by
/// the partial index on seq). Under READ COMMITTED the statements after the
/// lock see the previous committer's rows; under REPEATABLE READ the update
/// of the newest row's next_seq (or of the head, for an empty chain) is the
/// one a later committer already made, and fails with a serialization error
/// instead of forking the chain.
fn lock_head() -> Head {
    let lock = crate::cache::kept("SELECT 1 FROM forget.audit_head h FOR UPDATE", &[]);
    let locked =
        || Spi::connect_mut(|client| spi(client.update(lock.as_ref(), Some(1), &[])).len()) > 0;
    if !locked() {
        // The first writer of a new installation creates the head (see
        // sql/schema.sql: a restored dump brings its own).
        spi(Spi::run(
            "INSERT INTO forget.audit_head VALUES (true, NULL, NULL) ON CONFLICT DO NOTHING",
        ));
        assert!(locked(), "the audit chain's head");
    }
    let newest = crate::cache::kept(
        "(SELECT a.seq, a.hash, true FROM forget.audit a WHERE a.seq IS NOT NULL ORDER BY a.seq DESC LIMIT 1)
         UNION ALL
         (SELECT b.id, b.hash, false FROM forget.audit_base b)
         LIMIT 1",
        &[],
    );
    Spi::connect(|client| {
        spi(client.select(newest.as_ref(), Some(1), &[]))
            .into_iter()
            .next()
            .map(|row| Head {
                last_seq: spi(row.get::<i64>(1)).unwrap_or(0),
                hash: spi(row.get::<String>(2)),
                newest_row: spi(row.get::<bool>(3)).unwrap_or(false),
            })
    })
    .unwrap_or(Head {
        last_seq: 0,
        hash: None,
        newest_row: false,
    })
}

thread_local! {
    static IDS_CHECKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// The sequence hands out an id some audit row already has: a dump made with
/// 0.1.0 (which had no sequence) restored into this version brings rows but
/// no sequence value. Never true in normal operation, where every row's id
/// came from the sequence.
const IDS_BEHIND_ROWS: &str = "SELECT a.m OPERATOR(pg_catalog.>) s.last_value
            OR (a.m OPERATOR(pg_catalog.=) s.last_value AND NOT s.is_called)
     FROM (SELECT pg_catalog.max(id) AS m FROM forget.audit) a, forget.audit_id_seq s";

/// Once per backend, before its first audit write: moves the id sequence
/// past every audit row if it is behind them (see IDS_BEHIND_ROWS), so the
/// first write after such a restore does not collide with row 1.
///
/// setval is not atomic with the read before it: a writer's nextval between
/// the two would be handed out again. So it runs only when the sequence is
/// behind, and then under an ExclusiveLock on the sequence, which waits for
/// every transaction that took an id (nextval keeps RowExclusiveLock until
/// its transaction ends) and keeps new ones out until the lock is released
/// right after; the check is repeated under the lock.
fn ids_after_existing_rows() {
    if IDS_CHECKED.with(|c| c.get()) {
        return;
    }
    let behind = || spi(Spi::get_one::<bool>(IDS_BEHIND_ROWS)).unwrap_or(false);
    if behind() {
        let seq = spi(Spi::get_one::<pg_sys::Oid>(
            "SELECT 'forget.audit_id_seq'::pg_catalog.regclass::pg_catalog.oid",
        ))
        .expect("the extension's audit id sequence");
        // SAFETY: a heavyweight lock on an existing relation, released below
        // or, on error, at the end of the transaction.
        unsafe { pg_sys::LockRelationOid(seq, pg_sys::ExclusiveLock as pg_sys::LOCKMODE) };
        if behind() {
            spi(Spi::run(
                "SELECT pg_catalog.setval('forget.audit_id_seq'::pg_catalog.regclass, pg_catalog.max(id))
                 FROM forget.audit",
            ));
        }
        // SAFETY: the lock taken above, by this transaction.
        unsafe { pg_sys::UnlockRelationOid(seq, pg_sys::ExclusiveLock as pg_sys::LOCKMODE) };
    }
    IDS_CHECKED.with(|c| c.set(true));
}

/// Writes the rows unlinked (no hash yet; ids from a sequence, so writers
/// of different transactions never wait for each other) and makes sure the
/// transaction links them into the chain when it commits (a deferred
/// trigger calls link_chain). One NOTIFY per row, delivered at commit.
/// Returns the last id.
fn write(batch: &Batch) -> Option<i64> {
    if batch.keys.is_empty() {
        return None;
    }
    ids_after_existing_rows();
    use pg_sys::{TEXTARRAYOID, TEXTOID};
    let plan = crate::cache::kept(
        "WITH written AS (
             INSERT INTO forget.audit (id, at, action, subject, subject_key, actor, db_user, reason, rows, error)
             SELECT pg_catalog.nextval('forget.audit_id_seq'::pg_catalog.regclass), pg_catalog.clock_timestamp(),
                    $1, $2, u.k, $3, session_user, $4, u.r::pg_catalog.jsonb, $5
             FROM ROWS FROM (pg_catalog.unnest($6::pg_catalog.text[]), pg_catalog.unnest($7::pg_catalog.text[]))
                  WITH ORDINALITY AS u(k, r, n)
             ORDER BY u.n
             RETURNING id, subject_key, at),
         pending AS (INSERT INTO forget._pending_chain (txid, first_id)
                     SELECT pg_catalog.txid_current(), pg_catalog.min(w.id) FROM written w ON CONFLICT DO NOTHING)
         SELECT w.id, w.subject_key, w.at FROM written w ORDER BY w.id",
        &[TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTARRAYOID, TEXTARRAYOID],
    );
    let written: Vec<(i64, String, Option<TimestampWithTimeZone>)> = Spi::connect_mut(|client| {
        spi(client.update(
            plan.as_ref(),
            None,
            &[
                batch.action.into(),
                batch.subject.into(),
                batch.actor.into(),
                batch.reason.into(),
                batch.error.into(),
                batch.keys.to_vec().into(),
                batch.rows.clone().into(),
            ],
        ))
        .map(|r| {
            (
                spi(r.get::<i64>(1)).unwrap_or_default(),
                spi(r.get::<String>(2)).unwrap_or_default(),
                spi(r.get::<TimestampWithTimeZone>(3)),
            )
        })
        .collect()
    });
    for (id, key, at) in &written {
        let at = at.and_then(crate::time::from_datum);
        notify(&notice(batch, key, *id, at));
    }
    written.last().map(|(id, _, _)| *id)
}

/// Links this transaction's audit rows into the hash chain, in id order,
/// after the chain's head (locked until commit). Called at commit by the
/// deferred trigger on forget._pending_chain; the head lock is held only
/// from there to the end of the commit, so an open transaction that ran an
/// action stalls no other. Returns how many rows it linked.
#[pg_extern(schema = "forget_internal", name = "_link_chain", security_definer)]
#[search_path(pg_catalog, pg_temp)]
fn link_chain() -> i64 {
    link_rows(lock_head())
}

/// Computes and writes prev_hash, hash and seq of the unlinked rows.
fn link_rows(head: Head) -> i64 {
    // Kept statements: this runs at every commit that wrote audit rows.
    // From the transaction's first id on: the partial index on unlinked
    // rows keeps entries of rows linked since a long-held snapshot began,
    // and only those of transactions that wrote after this one lie ahead.
    let select = crate::cache::kept(
        "SELECT id, at, ARRAY[action, subject, subject_key, actor, db_user, reason, error], rows,
                xmin::pg_catalog.text
         FROM forget.audit WHERE hash IS NULL
          AND id >= (SELECT p.first_id FROM forget._pending_chain p WHERE p.txid = pg_catalog.txid_current())
         ORDER BY id",
        &[],
    );
    let unlinked: Vec<(
        i64,
        TimestampWithTimeZone,
        Vec<Option<String>>,
        Option<String>,
    )> = Spi::connect(|client| {
        spi(client.select(select.as_ref(), None, &[]))
            // Only what this transaction wrote: a row written around the
            // writer stays unlinked, and verify_audit reports it.
            .filter(|r| written_here(spi(r.get::<String>(5)).as_deref()))
            .map(|r| {
                (
                    spi(r.get::<i64>(1)).unwrap_or_default(),
                    spi(r.get::<TimestampWithTimeZone>(2)).expect("at"),
                    spi(r.get::<Vec<Option<String>>>(3)).unwrap_or_default(),
                    spi(r.get::<JsonB>(4)).map(|j| canonical(&j.0)),
                )
            })
            .collect()
    });
    if unlinked.is_empty() {
        return 0;
    }
    let mut prev = head.hash.clone();
    let (mut ids, mut seqs, mut prevs, mut hashes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (i, (id, at, f, rows)) in unlinked.iter().enumerate() {
        let text =
            [0, 1, 2, 3, 4, 5, 6].map(|k| f.get(k).and_then(|v| v.as_deref()).map(str::as_bytes));
        let prev_hash = prev.as_deref().map(str::as_bytes);
        let hash = Row::of(*id, at.into_inner(), text, rows.as_deref(), prev_hash).hash();
        ids.push(*id);
        seqs.push(head.last_seq + 1 + i as i64);
        prevs.push(prev.replace(hash.clone()));
        hashes.push(hash);
    }
    let n = ids.len() as i64;
    use pg_sys::{BOOLOID, INT8ARRAYOID, INT8OID, TEXTARRAYOID};
    let update = crate::cache::kept(
        "WITH linked AS (
             UPDATE forget.audit a SET seq = u.s, prev_hash = u.p, hash = u.h,
                    next_seq = CASE WHEN u.s OPERATOR(pg_catalog.<) $8 THEN u.s OPERATOR(pg_catalog.+) 1 END
             FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.int8[]), pg_catalog.unnest($2::pg_catalog.int8[]),
                             pg_catalog.unnest($3::pg_catalog.text[]), pg_catalog.unnest($4::pg_catalog.text[]))
                  AS u(id, s, p, h)
             WHERE a.id = u.id),
         done AS (DELETE FROM forget._pending_chain WHERE txid = pg_catalog.txid_current()),
         ended AS (UPDATE forget.audit SET next_seq = $5 WHERE $6 AND seq = $7)
         UPDATE forget.audit_head SET one = true WHERE NOT $6",
        &[INT8ARRAYOID, INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, INT8OID, BOOLOID, INT8OID, INT8OID],
    );
    let (first_seq, last_seq) = (seqs.first().copied(), seqs.last().copied());
    // Planned for the values at each commit (PostgreSQL's choice): a plan
    // kept from a first commit on an empty audit table would scan the whole
    // table at every commit after it, until the next ANALYZE.
    Spi::connect_mut(|client| {
        spi(client.update(
            update.as_ref(),
            None,
            &[
                ids.into(),
                seqs.into(),
                prevs.into(),
                hashes.into(),
                first_seq.into(),
                head.newest_row.into(),
                head.last_seq.into(),
                last_seq.into(),
            ],
        ));
    });
    n
}

/// The payload json_build_object('action', .., 'subject', .., 'key', ..,
/// 'audit_id', .., 'at', ..) prints (serde_json escapes strings as
/// PostgreSQL does); `at` is the audit row's time in RFC 3339 (UTC).
fn notice(batch: &Batch, key: &str, id: i64, at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    let quoted = |s: &str| serde_json::Value::from(s).to_string();
    let at = at.map_or("null".to_string(), |at| quoted(&crate::time::rfc3339(at)));
    format!(
        "{{\"action\" : {}, \"subject\" : {}, \"key\" : {}, \"audit_id\" : {id}, \"at\" : {at}}}",
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
            action: Some(b"delete"),
            subject: Some(b"client"),
            key: key.map(str::as_bytes),
            actor: None,
            db_user: Some(b"app"),
            reason: reason.map(str::as_bytes),
            rows: Some(b"{}"),
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

    #[test]
    fn decimal_prints_every_i64_as_to_string_does() {
        for n in [0, 7, -7, 10, 999, i64::MAX, i64::MIN, 1_234_567_890_123] {
            assert_eq!(super::decimal(n, &mut [0u8; 20]), n.to_string().as_bytes());
        }
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
        // PostgreSQL prints a timestamptz in json as RFC 3339 in the
        // session's time zone: UTC here, as the payload always is.
        Spi::run("SET LOCAL TimeZone = 'UTC'").unwrap();
        let at = "2026-11-30 16:20:00.000042+00";
        let (expected, micros) = Spi::get_two_with_args::<String, pgrx::datum::TimestampWithTimeZone>(
            "SELECT json_build_object('action', $1, 'subject', $2, 'key', $3, 'audit_id', 42::bigint,
                                      'at', $4::timestamptz)::text, $4::timestamptz",
            &["delete".into(), "cli\"ent".into(), key.into(), at.into()],
        )
        .unwrap();
        let at = crate::time::from_datum(micros.unwrap());
        assert_eq!(super::notice(&batch, key, 42, at), expected.unwrap());
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
        // Values PostgreSQL keeps compressed in line and out of line
        // (TOAST): verify_audit reads them detoasted.
        let compressible = "reason ".repeat(20_000);
        let random: String =
            Spi::get_one("SELECT string_agg(md5(g::text), '') FROM generate_series(1, 4000) g")
                .unwrap()
                .unwrap();
        super::write_audit(
            "delete",
            "client",
            vec!["3".into()],
            None,
            Some(&compressible),
            None,
            Some(&random),
        );
        assert_eq!(
            Spi::get_one::<String>(
                "SELECT pg_column_compression(reason) || ' ' || (octet_length(error) > 8192)::text
                 FROM forget.audit ORDER BY id DESC LIMIT 1"
            )
            .unwrap()
            .as_deref(),
            Some("pglz true"),
            "the reason is compressed and the error larger than a page (out of line)"
        );
        // A #[pg_test] never commits: link the chain as a commit would.
        Spi::run("SELECT forget_internal._link_chain()").unwrap();
        assert_eq!(
            Spi::get_one::<bool>("SELECT forget.verify_audit()").unwrap(),
            Some(true)
        );
        assert_eq!(
            Spi::get_one::<i64>("SELECT count(*) FROM forget.audit WHERE id > (SELECT max(id) - 4 FROM forget.audit)")
                .unwrap(),
            Some(4)
        );
        Spi::run("UPDATE forget.audit SET error = error || 'x' WHERE id = (SELECT max(id) FROM forget.audit)").unwrap();
        assert_eq!(
            Spi::get_one::<bool>("SELECT forget.verify_audit()").unwrap(),
            Some(false),
            "a changed toasted value shows"
        );
        Spi::run("UPDATE forget.audit SET error = left(error, -1) WHERE id = (SELECT max(id) FROM forget.audit)").unwrap();
        Spi::run("UPDATE forget.audit SET rows = '{\"public.a\": 1, \"public.zeta\": 3}' WHERE error = ''").unwrap();
        assert_eq!(
            Spi::get_one::<bool>("SELECT forget.verify_audit()").unwrap(),
            Some(false)
        );
    }
}
