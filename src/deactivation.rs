//! Inactive accounts (SPEC.md problem 4): last activity, set-based
//! deactivation, manual deactivation and reactivation with their history,
//! and the account status an application shows at login.

use crate::cache;
use crate::catalog::{self, Subject};
use crate::errors::{invalid, not_found, null_key, spi};
use crate::execute::{call_hooks, lock_subject};
use crate::identity::as_subject;
use crate::model::Table;
use crate::render::{ident, literal, qualified};
use pgrx::prelude::*;

/// An activity source of a subject.
struct Activity {
    table: Table,
    ts_column: String,
    via: Option<String>,
    /// The subject's key column, which `via` refers to.
    key: Option<crate::model::Column>,
}

fn activities(subject: &Subject) -> Vec<Activity> {
    let rows: Vec<(u32, String, Option<String>)> = Spi::connect(|client| {
        spi(client.select(
            "SELECT tbl::pg_catalog.oid, ts_column::text, via::text FROM forget.activities WHERE subject = $1 ORDER BY id",
            None,
            &[subject.name.as_str().into()],
        ))
        .map(|r| {
            (
                spi(r.get::<pg_sys::Oid>(1)).map(u32::from).unwrap_or(0),
                spi(r.get::<String>(2)).unwrap_or_default(),
                spi(r.get::<String>(3)),
            )
        })
        .collect()
    });
    let oids: Vec<u32> = rows.iter().map(|r| r.0).chain([subject.table]).collect();
    let tables = catalog::tables(&oids);
    let key = tables
        .get(&subject.table)
        .and_then(|t| t.column(&subject.key_column))
        .cloned();
    rows.into_iter()
        .filter_map(|(oid, ts_column, via)| {
            tables.get(&oid).map(|t| Activity {
                table: t.clone(),
                ts_column,
                via,
                key: key.clone(),
            })
        })
        .collect()
}

/// The last-activity expression over the subject row aliased `s`: the
/// latest of every source and of the last reactivation (NULL when none).
fn last_activity_expression(subject: &Subject) -> String {
    let key_column = ident(&subject.key_column);
    let mut parts: Vec<String> = activities(subject)
        .iter()
        .map(|a| {
            let ts = ident(&a.ts_column);
            match &a.via {
                None => format!("s.{ts}::pg_catalog.timestamptz"),
                Some(via) => {
                    let matches = match (a.table.column(via), &a.key) {
                        (Some(via_column), Some(key)) => crate::render::matches_in_child_type(
                            &format!("a.{}", ident(via)),
                            via_column,
                            key,
                            &format!("s.{key_column}"),
                        ),
                        _ => "false".into(),
                    };
                    format!(
                        "(SELECT pg_catalog.max(a.{ts})::pg_catalog.timestamptz FROM {} a WHERE {matches})",
                        qualified(&a.table),
                    )
                }
            }
        })
        .collect();
    // The key as text comes from the FROM clause (render::key_as_text).
    parts.push(format!(
        "(SELECT pg_catalog.max(d.at) FROM forget.deactivations_current d WHERE d.subject OPERATOR(pg_catalog.=) {} \
         AND d.key OPERATOR(pg_catalog.=) s_key.forget_key AND d.action OPERATOR(pg_catalog.=) 'reactivate')",
        literal(&subject.name)
    ));
    format!("GREATEST({})", parts.join(", "))
}

fn subject_table(subject: &Subject) -> Table {
    cache::table(subject.table)
}

/// (active column, its type): deactivation needs one.
fn active_column(subject: &Subject, table: &Table) -> (String, String) {
    let col = subject.active_column.clone().unwrap_or_else(|| {
        invalid(format!(
            "subject \"{}\" has no active_column: register it with active_column => ...",
            subject.name
        ))
    });
    let ty = table
        .column(&col)
        .map(|c| c.type_sql.clone())
        .unwrap_or_else(|| {
            invalid(format!(
                "active_column \"{col}\" of subject \"{}\" no longer exists",
                subject.name
            ))
        });
    (col, ty)
}

#[pg_extern(schema = "forget_internal", name = "_last_activity")]
#[search_path(pg_catalog, pg_temp)]
fn last_activity(
    key: Option<&str>,
    subject: Option<&str>,
) -> Option<pgrx::datum::TimestampWithTimeZone> {
    let subject = cache::subject(subject);
    let key = key.unwrap_or_else(|| null_key());
    // Kept per subject: an application may ask at every login.
    let plan = cache::statement(
        format!("last_activity {}", subject.name),
        &[pg_sys::TEXTOID],
        || {
            format!(
                "SELECT {} FROM {} s{} WHERE s.{key} OPERATOR(pg_catalog.=) CAST($1 AS {})",
                last_activity_expression(&subject),
                qualified(&subject_table(&subject)),
                crate::render::key_as_text(&subject.key_column),
                subject.key_type,
                key = ident(&subject.key_column),
            )
        },
    );
    // No row: no such subject (P0002); a row with NULL: no activity yet.
    let found = as_subject(&subject, None, || {
        Spi::connect(|client| {
            spi(client.select(&*plan, Some(1), &[key.into()]))
                .into_iter()
                .next()
                .map(|row| spi(row.get::<pgrx::datum::TimestampWithTimeZone>(1)))
        })
    });
    let last = found.unwrap_or_else(|| not_found(&subject.name, key));
    crate::execute::require_visible_to_caller(&subject, &subject_table(&subject), key);
    last
}

/// Sets the active column of `keys` to the inactive (or active) value,
/// records the history and the audit, with hooks around. Returns the keys
/// whose state changed.
fn change_state(
    subject: &Subject,
    table: &Table,
    keys: &[String],
    deactivate: bool,
    actor: Option<&str>,
    reason: Option<&str>,
) -> Vec<String> {
    let (col, ty) = active_column(subject, table);
    let action = if deactivate {
        "deactivate"
    } else {
        "reactivate"
    };
    let (to, from) = if deactivate {
        (&subject.inactive_value, &subject.active_value)
    } else {
        (&subject.active_value, &subject.inactive_value)
    };
    let context = serde_json::json!({"action": action, "reason": reason, "actor": actor});
    // Hooks are looked up once per event, not once per subject; they and
    // the subject table must belong to roles the subject trusts.
    let hooks = cache::trusted_hooks(subject, action);
    let (before, after_hooks) = (&hooks.before, &hooks.after);
    call_hooks(
        before,
        subject,
        keys.iter().map(|k| (k.as_str(), context.clone())),
    );
    // Only this column changes: a contractor's type or anything else stays.
    // Kept per subject and direction: an application may call it often.
    let plan = cache::statement(
        format!("change_state {} {deactivate}", subject.name),
        &[pg_sys::TEXTOID, pg_sys::TEXTOID, pg_sys::TEXTARRAYOID],
        || {
            format!(
                "UPDATE {} s SET {col} = CAST($1 AS {ty}) WHERE s.{key} OPERATOR(pg_catalog.=) ANY (CAST($3 AS {}[])) \
                 AND s.{col} IS DISTINCT FROM CAST($1 AS {ty}) AND ($2::pg_catalog.text IS NULL OR s.{col} OPERATOR(pg_catalog.=) CAST($2 AS {ty})) \
                 RETURNING s.{key}::pg_catalog.text",
                qualified(table),
                subject.key_type,
                col = ident(&col),
                key = ident(&subject.key_column),
            )
        },
    );
    let expected_from: Option<&str> = if deactivate { Some(from) } else { None };
    // Triggers on the subject table see the subject's search_path.
    let changed: Vec<String> = as_subject(subject, None, || {
        Spi::connect_mut(|client| {
            spi(client.update(
                &*plan,
                None,
                &[
                    to.as_str().into(),
                    expected_from.into(),
                    keys.to_vec().into(),
                ],
            ))
            .map(|r| spi(r.get::<String>(1)).unwrap_or_default())
            .collect()
        })
    });
    spi(Spi::run_with_args(
        "INSERT INTO forget.deactivations (subject, key, action, actor, reason)
         SELECT $1, k, $2, $3, $4 FROM pg_catalog.unnest($5::pg_catalog.text[]) k",
        &[
            subject.name.as_str().into(),
            action.into(),
            actor.into(),
            reason.into(),
            changed.clone().into(),
        ],
    ));
    let rows = serde_json::json!({ table.display_name(): 1 });
    let mut after = context;
    after["rows"] = rows.clone();
    call_hooks(
        after_hooks,
        subject,
        changed.iter().map(|k| (k.as_str(), after.clone())),
    );
    crate::audit::record_many(
        action,
        &subject.name,
        &changed,
        actor,
        reason,
        vec![rows; changed.len()],
    );
    changed
}

/// A `forget.*` setting, None when unset or empty.
fn guc(name: &str) -> Option<String> {
    crate::identity::current_setting(name).filter(|v| !v.is_empty())
}

#[pg_extern(schema = "forget_internal", name = "_deactivate_inactive")]
#[search_path(pg_catalog, pg_temp)]
fn deactivate_inactive(
    inactive_for: Option<&str>,
    actor: Option<&str>,
    reason: Option<&str>,
    dry_run: Option<bool>,
    subject: Option<&str>,
) -> TableIterator<
    'static,
    (
        name!(key, String),
        name!(last_activity, pgrx::datum::TimestampWithTimeZone),
    ),
> {
    let subject = cache::subject(subject);
    let table = subject_table(&subject);
    let (col, ty) = active_column(&subject, &table);
    // Scheduled jobs take the period from forget.inactive_for.
    let period = inactive_for.map(str::to_string).or_else(|| guc("forget.inactive_for")).unwrap_or_else(|| {
        invalid("inactive_for is NULL and forget.inactive_for is not set (ALTER DATABASE ... SET forget.inactive_for = '6 months')")
    });
    let reason = reason
        .map(str::to_string)
        .or_else(|| guc("forget.deactivation_reason"));
    let sql = format!(
        "SELECT k, last FROM (SELECT s_key.forget_key AS k, s.{key} AS key_value, {} AS last FROM {} s{} \
         WHERE s.{col} OPERATOR(pg_catalog.=) CAST($2 AS {ty})) c \
         WHERE c.last OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) CAST($1 AS pg_catalog.interval)) \
         ORDER BY c.key_value",
        last_activity_expression(&subject),
        qualified(&table),
        crate::render::key_as_text(&subject.key_column),
        key = ident(&subject.key_column),
        col = ident(&col),
    );
    let stale: Vec<(String, pgrx::datum::TimestampWithTimeZone)> =
        as_subject(&subject, None, || {
            Spi::connect(|client| {
                spi(client.select(
                    &sql,
                    None,
                    &[period.as_str().into(), subject.active_value.as_str().into()],
                ))
                .filter_map(|r| Some((spi(r.get::<String>(1))?, spi(r.get(2))?)))
                .collect()
            })
        });
    // Only the subjects the caller may see under row level security.
    let stale = crate::execute::visible_to_caller(&subject, &table, stale);
    let keys: Vec<String> = stale.iter().map(|(k, _)| k.clone()).collect();
    // Subjects a deactivate rule blocks (service accounts) are skipped and
    // reported; the others are deactivated together.
    let blocked = crate::rules::deactivation_blocked(&subject, &keys);
    if !blocked.is_empty() {
        let mut by_rule: std::collections::BTreeMap<&str, usize> = Default::default();
        for rules in blocked.values() {
            for (rule, _) in rules {
                *by_rule.entry(rule.as_str()).or_default() += 1;
            }
        }
        let counts: Vec<String> = by_rule.iter().map(|(r, n)| format!("{r}: {n}")).collect();
        pgrx::notice!(
            "deactivate_inactive skipped {} inactive {} subject(s) that rules keep active ({})",
            blocked.len(),
            subject.name,
            counts.join(", ")
        );
    }
    let stale: Vec<_> = stale
        .into_iter()
        .filter(|(k, _)| !blocked.contains_key(k))
        .collect();
    if dry_run.unwrap_or(false) || stale.is_empty() {
        return TableIterator::new(stale);
    }
    let keys: Vec<String> = stale.iter().map(|(k, _)| k.clone()).collect();
    let changed = change_state(
        &subject,
        &table,
        &keys,
        true,
        Some(actor.unwrap_or("system")),
        reason.as_deref(),
    );
    let changed: std::collections::HashSet<String> = changed.into_iter().collect();
    TableIterator::new(
        stale
            .into_iter()
            .filter(|(k, _)| changed.contains(k))
            .collect::<Vec<_>>(),
    )
}

fn manual(
    key: Option<&str>,
    actor: Option<&str>,
    reason: Option<&str>,
    subject: Option<&str>,
    deactivate: bool,
) -> bool {
    let subject = cache::subject(subject);
    let key = key.unwrap_or_else(|| null_key());
    let table = subject_table(&subject);
    let key = lock_subject(&subject, &table, key, true);
    if deactivate {
        if let Some(rules) =
            crate::rules::deactivation_blocked(&subject, std::slice::from_ref(&key)).remove(&key)
        {
            crate::execute::refuse_by_rules("deactivate", &subject.name, &key, &rules);
        }
    }
    !change_state(&subject, &table, &[key], deactivate, actor, reason).is_empty()
}

/// eligibility(key, 'deactivate'): (rule, ok, blocking rows, message) for
/// every rule declared for `deactivate`, in rule order; P0002 when the key
/// names no subject row. Read-only.
pub fn deactivation_verdicts(subject: Option<&str>, key: &str) -> Vec<(String, bool, i64, String)> {
    let subject = crate::cache::subject(subject);
    let table = crate::cache::table(subject.table);
    let key = crate::execute::lock_subject(&subject, &table, key, false);
    let blocked = crate::rules::deactivation_blocked(&subject, std::slice::from_ref(&key))
        .remove(&key)
        .unwrap_or_default();
    crate::catalog::rules(&subject.name, "deactivate")
        .into_iter()
        .map(|rule| {
            let n = blocked.iter().filter(|(r, _)| *r == rule.name).count() as i64;
            (rule.name, n == 0, n, rule.message)
        })
        .collect()
}

#[pg_extern(schema = "forget_internal", name = "_deactivate")]
#[search_path(pg_catalog, pg_temp)]
fn deactivate(
    key: Option<&str>,
    actor: Option<&str>,
    reason: Option<&str>,
    subject: Option<&str>,
) -> bool {
    // A refusal is raised by the SQL-facing function (forget_internal._refused).
    crate::errors::refusable(|| manual(key, actor, reason, subject, true)).unwrap_or(false)
}

#[pg_extern(schema = "forget_internal", name = "_reactivate")]
#[search_path(pg_catalog, pg_temp)]
fn reactivate(
    key: Option<&str>,
    actor: Option<&str>,
    reason: Option<&str>,
    subject: Option<&str>,
) -> bool {
    manual(key, actor, reason, subject, false)
}

/// The login message of a deactivated account: `Your account has been
/// deactivated. Reason: {reason}. Please contact admins to reactivate
/// {contacts}.` ({reason} `not given` when none was recorded; without
/// contacts the sentence ends after "reactivate", with no dangling space).
pub fn deactivated_message(reason: Option<&str>, contacts: Option<&str>) -> String {
    let contacts = contacts.map(str::trim).filter(|c| !c.is_empty());
    format!(
        "Your account has been deactivated. Reason: {}. Please contact admins to reactivate{}.",
        reason.unwrap_or("not given"),
        contacts.map(|c| format!(" {c}")).unwrap_or_default()
    )
}

/// The login message of an anonymized account: nothing to reactivate, so
/// nothing offered; with a recovery window still running, until when it
/// can be recovered.
pub fn anonymized_message(recoverable_until: Option<&str>, contacts: Option<&str>) -> String {
    gone_message("anonymized", recoverable_until, contacts)
}

/// The login message of an account deleted with a grace period: nothing to
/// reactivate, but until when it can be recovered, and whom to ask.
pub fn deleted_message(recoverable_until: &str, contacts: Option<&str>) -> String {
    gone_message("deleted", Some(recoverable_until), contacts)
}

/// `Your account has been {what}.`, then, during a recovery window, `It can
/// be recovered until {until}: please contact admins ({contacts}).` (without
/// contacts the sentence ends after the date).
fn gone_message(what: &str, recoverable_until: Option<&str>, contacts: Option<&str>) -> String {
    let contacts = contacts.map(str::trim).filter(|c| !c.is_empty());
    match recoverable_until {
        Some(until) => format!(
            "Your account has been {what}. It can be recovered until {until}{}.",
            contacts
                .map(|c| format!(": please contact admins ({c})"))
                .unwrap_or_default()
        ),
        None => format!("Your account has been {what}."),
    }
}

/// account_status of a key whose subject row is gone: the row of a delete
/// whose recovery record is still retained (active false, when, until when
/// it can be recovered), else P0002. Who deleted it and why stay out (the
/// reason of an erasure request is often personal). When row level
/// security on the subject table applies to the caller, P0002: no policy
/// can be asked about a row that is gone.
#[allow(clippy::type_complexity)]
fn deleted_status(
    subject: &Subject,
    key: &str,
) -> (
    bool,
    Option<pgrx::datum::TimestampWithTimeZone>,
    Option<String>,
    Option<String>,
    Option<String>,
) {
    let plan = cache::statement(
        format!("account_status deleted {}", subject.name),
        &[pg_sys::TEXTOID; 2],
        || {
            format!(
                "SELECT d.deleted_at, d.retention_until
                   FROM forget.deleted_clients d
                  WHERE d.subject = $1 AND d.original_key = CAST($2 AS {})::pg_catalog.text
                    AND d.state = 'retained' AND d.action = 'delete' AND d.retention_until > pg_catalog.now()
                  ORDER BY d.id DESC LIMIT 1",
                subject.key_type
            )
        },
    );
    let table = subject_table(subject);
    if table.row_security {
        let applies = crate::identity::as_caller(|| {
            spi(crate::catalog::read_one::<bool>(
                "SELECT pg_catalog.row_security_active($1::pg_catalog.oid)",
                &[pg_sys::Oid::from(table.oid).into()],
            ))
            .unwrap_or(true)
        });
        if applies {
            not_found(&subject.name, key);
        }
    }
    let found = Spi::connect(|client| {
        spi(client.select(&*plan, Some(1), &[subject.name.as_str().into(), key.into()]))
            .into_iter()
            .next()
            .map(|r| {
                (
                    spi(r.get::<pgrx::datum::TimestampWithTimeZone>(1)),
                    spi(r.get::<pgrx::datum::TimestampWithTimeZone>(2)),
                )
            })
    });
    let Some((at, until)) = found else {
        not_found(&subject.name, key)
    };
    let until = until
        .and_then(crate::time::from_datum)
        .map(crate::time::for_people)
        .unwrap_or_else(|| "further notice".into());
    let message = deleted_message(&until, guc("forget.admin_contacts").as_deref());
    (false, at, None, None, Some(message))
}

#[pg_extern(schema = "forget_internal", name = "_account_status")]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::type_complexity)]
fn account_status(
    key: Option<&str>,
    subject: Option<&str>,
) -> TableIterator<
    'static,
    (
        name!(active, bool),
        name!(deactivated_at, Option<pgrx::datum::TimestampWithTimeZone>),
        name!(deactivated_by, Option<String>),
        name!(reason, Option<String>),
        name!(message, Option<String>),
    ),
> {
    let subject = cache::subject(subject);
    let key = key.unwrap_or_else(|| null_key());
    // Kept per subject: an application asks at every login.
    let plan = cache::statement(
        format!("account_status {}", subject.name),
        &[pg_sys::TEXTOID; 2],
        || {
            let table = subject_table(&subject);
            let (col, ty) = active_column(&subject, &table);
            format!(
            "SELECT s.{key}::pg_catalog.text, s.{col} IS NOT DISTINCT FROM CAST($2 AS {ty}) FROM {} s \
             WHERE s.{key} OPERATOR(pg_catalog.=) CAST($1 AS {})",
            qualified(&table),
            subject.key_type,
            key = ident(&subject.key_column),
            col = ident(&col),
        )
        },
    );
    let (canonical, active) = as_subject(&subject, None, || {
        Spi::connect(|client| {
            let rows = spi(client.select(
                &*plan,
                Some(1),
                &[key.into(), subject.active_value.as_str().into()],
            ));
            rows.into_iter()
                .next()
                .map(|r| (spi(r.get::<String>(1)), spi(r.get::<bool>(2))))
                .unwrap_or_default()
        })
    });
    let Some(canonical) = canonical else {
        return TableIterator::new(vec![deleted_status(&subject, key)]);
    };
    crate::execute::require_visible_to_caller(&subject, &subject_table(&subject), &canonical);
    if active.unwrap_or(false) {
        return TableIterator::new(vec![(true, None, None, None, None)]);
    }
    // Inactive without a deactivation on record (anonymized, or inactive
    // before pg_forget came): one row all the same, with nothing known.
    let last = cache::kept(
        "SELECT d.at, d.actor, d.reason FROM (SELECT 1) one LEFT JOIN LATERAL (
             SELECT at, actor, reason FROM forget.deactivations WHERE subject = $1 AND key = $2 AND action = 'deactivate'
             ORDER BY at DESC, id DESC LIMIT 1) d ON true",
        &[pg_sys::TEXTOID; 2],
    );
    let (at, by, reason) = Spi::connect(|client| {
        spi(client.select(
            &*last,
            Some(1),
            &[subject.name.as_str().into(), canonical.as_str().into()],
        ))
        .first()
        .get_three::<pgrx::datum::TimestampWithTimeZone, String, String>()
        .unwrap_or((None, None, None))
    });
    // Anonymized (last recorded so in the audit, and not restored since):
    // the message offers no reactivation.
    let anonymized = cache::kept(
        "SELECT a.action = 'anonymize',
                (SELECT d.retention_until
                   FROM forget.deleted_clients d
                  WHERE d.subject = $1 AND d.original_key = $2 AND d.state = 'retained' AND d.action = 'anonymize'
                  ORDER BY d.id DESC LIMIT 1)
         FROM forget.audit a
         WHERE a.subject = $1 AND a.subject_key = $2 AND a.action IN ('anonymize', 'restore', 'reactivate')
         ORDER BY a.id DESC LIMIT 1",
        &[pg_sys::TEXTOID; 2],
    );
    let (was_anonymized, until) = Spi::connect(|client| {
        spi(client.select(
            &*anonymized,
            Some(1),
            &[subject.name.as_str().into(), canonical.as_str().into()],
        ))
        .first()
        .get_two::<bool, pgrx::datum::TimestampWithTimeZone>()
        .unwrap_or((None, None))
    });
    let until = until
        .and_then(crate::time::from_datum)
        .map(crate::time::for_people);
    let contacts = guc("forget.admin_contacts");
    let message = if was_anonymized.unwrap_or(false) {
        anonymized_message(until.as_deref(), contacts.as_deref())
    } else {
        deactivated_message(reason.as_deref(), contacts.as_deref())
    };
    TableIterator::new(vec![(false, at, by, reason, Some(message))])
}

#[cfg(test)]
mod tests {
    use super::deactivated_message;

    #[test]
    fn without_contacts_the_message_ends_cleanly() {
        assert_eq!(
            deactivated_message(None, None),
            "Your account has been deactivated. Reason: not given. Please contact admins to reactivate."
        );
        assert_eq!(
            deactivated_message(None, Some("  ")),
            "Your account has been deactivated. Reason: not given. Please contact admins to reactivate."
        );
        assert_eq!(
            super::anonymized_message(None, Some("ops@example.com")),
            "Your account has been anonymized."
        );
    }

    #[test]
    fn the_login_message_is_worded_as_specified() {
        assert_eq!(
            deactivated_message(Some("no invoice for 6 months"), Some("ops@example.com")),
            "Your account has been deactivated. Reason: no invoice for 6 months. Please contact admins to reactivate ops@example.com."
        );
    }
}
