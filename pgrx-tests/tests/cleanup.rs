//! people_cleanup on the association example (SPEC.md problem 5).

mod common;
use common::*;

/// One people_cleanup batch of 1000: (candidates, minimized, deleted, failed).
fn one_batch(c: &mut postgres::Client) -> (i64, i64, i64, i64) {
    let r = c
        .query_one(
            "SELECT candidates, minimized, deleted, failed FROM forget.people_cleanup(1000)",
            &[],
        )
        .unwrap();
    (r.get(0), r.get(1), r.get(2), r.get(3))
}
use std::thread;

fn association_db(name: &str, bulk: &str) -> postgres::Client {
    let c = fresh_db(name);
    for f in ["schema.sql", "data.sql", "config.sql"] {
        psql_file(
            name,
            &format!("examples/association/{f}"),
            &[("bulk", bulk)],
        );
    }
    c
}

fn exists(c: &mut postgres::Client, id: i64) -> bool {
    count(c, &format!("SELECT 1 FROM assoc.people WHERE id = {id}")) == 1
}

#[test]
fn defaults_are_inert() {
    let mut c = association_db("e2e_cleanup_inert", "30");
    c.batch_execute(
        "CREATE TABLE public.accounts (id int PRIMARY KEY);
         INSERT INTO public.accounts SELECT generate_series(1, 10);
         SELECT forget.register_subject('account', 'public.accounts');",
    )
    .unwrap();
    for dry_run in [false, true] {
        let r = c
            .query_one(
                "SELECT candidates, remaining FROM forget.people_cleanup(dry_run => $1, subject => 'account')",
                &[&dry_run],
            )
            .unwrap();
        assert_eq!(
            (r.get::<_, i64>(0), r.get::<_, i64>(1)),
            (0, 0),
            "never set up: nobody"
        );
    }
    c.batch_execute("SELECT forget.set_cleanup(false, subject => 'person')")
        .unwrap();
    let r = c
        .query_one(
            "SELECT candidates, remaining FROM forget.people_cleanup(subject => 'person')",
            &[],
        )
        .unwrap();
    assert_eq!(
        (r.get::<_, i64>(0), r.get::<_, i64>(1)),
        (0, 0),
        "disabled: nobody"
    );
    c.batch_execute(
        "SELECT forget.set_cleanup(true, subject => 'person');
         SELECT forget.drop_cleanup_condition(name, 'person') FROM forget.cleanup_conditions;",
    )
    .unwrap();
    let r = c
        .query_one(
            "SELECT candidates FROM forget.people_cleanup(subject => 'person')",
            &[],
        )
        .unwrap();
    assert_eq!(r.get::<_, i64>(0), 0, "enabled without conditions: nobody");
    assert_eq!(count(&mut c, "SELECT * FROM forget.audit"), 0);
    assert_eq!(
        sqlstate(c.query(
            "SELECT forget.drop_cleanup_condition('nope', 'person')",
            &[]
        )),
        "22023"
    );
    assert_eq!(
        sqlstate(c.query(
            "SELECT forget.add_cleanup_condition('bad', 'no_such_column > 1', 'person')",
            &[]
        )),
        "42703"
    );
    assert_eq!(
        sqlstate(c.query(
            "SELECT forget.set_cleanup(true, 'true) OR (true', 'person')",
            &[]
        )),
        "22023"
    );
}

#[test]
fn minimize_or_destroy_each_person_as_the_association_wants() {
    let mut c = association_db("e2e_cleanup_outcomes", "30");
    let r = c.query_one("SELECT candidates, minimized, deleted, failed, remaining FROM forget.people_cleanup(1000)", &[]).unwrap();
    let got: (i64, i64, i64, i64, i64) = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
    assert_eq!(got.0, got.1 + got.2);
    assert_eq!((got.3, got.4), (0, 0));
    for kept in [1, 3, 4, 5, 6, 7, 8, 10, 12, 14] {
        assert!(exists(&mut c, kept), "person {kept} stays");
    }
    for gone in [2, 9, 11, 13, 15] {
        assert!(!exists(&mut c, gone), "person {gone} is destroyed");
    }
    // Minimized: the name stays, address and phone numbers go, the mark is set.
    let cleo = c.query_one("SELECT first_name, street, birthday IS NULL, minimized_at IS NOT NULL FROM assoc.people WHERE id = 3", &[]).unwrap();
    assert_eq!(cleo.get::<_, String>(0), "Cleo");
    assert_eq!(cleo.get::<_, Option<String>>(1), None);
    assert!(cleo.get::<_, bool>(2) && cleo.get::<_, bool>(3));
    assert_eq!(count(&mut c, "SELECT * FROM assoc.phone_numbers WHERE contactable_type = 'Person' AND contactable_id = 3"), 0);
    // Destroyed: roles, participations, own log entries, family links go ...
    assert_eq!(
        count(&mut c, "SELECT * FROM assoc.roles WHERE person_id = 11"),
        0
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM assoc.participations WHERE person_id = 15"
        ),
        0
    );
    assert_eq!(count(&mut c, "SELECT * FROM assoc.family_links"), 0);
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM assoc.versions WHERE item_type = 'Person' AND item_id = 11"
        ),
        0
    );
    assert_eq!(count(&mut c, "SELECT * FROM assoc.phone_numbers WHERE contactable_type = 'Person' AND contactable_id = 11"), 0);
    assert_eq!(count(&mut c, "SELECT * FROM assoc.phone_numbers WHERE contactable_type = 'Household' AND contactable_id = 11"), 1, "the polymorphic condition holds");
    // ... while invoices become external and authored entries stay, author hidden.
    assert_eq!(count(&mut c, "SELECT * FROM assoc.invoices WHERE id = 1 AND recipient_id IS NULL AND creator_id = 12"), 1);
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM assoc.invoices WHERE id = 2 AND creator_id IS NULL"
        ),
        1
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM assoc.versions WHERE id IN (2, 3) AND whodunnit IS NULL"
        ),
        2
    );
    // The household of two is dissolved by the hook.
    assert_eq!(
        count(&mut c, "SELECT * FROM assoc.households WHERE id = 1"),
        0
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM assoc.people WHERE id = 10 AND household_id IS NULL"
        ),
        1
    );
    // One audit row per person; nothing is left for a second run.
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM forget.audit WHERE action IN ('minimize', 'delete')"
        ),
        got.0
    );
    assert_eq!(
        c.query_one("SELECT candidates FROM forget.people_cleanup()", &[])
            .unwrap()
            .get::<_, i64>(0),
        0
    );
    assert!(audit_is_intact(&mut c));
}

#[test]
fn rules_keep_the_people_they_block_and_batches_move_past_them() {
    let mut c = association_db("e2e_cleanup_rules", "30");
    // A legal hold blocks destroying Karl (11) and Mia (13) and minimizing
    // Cleo (3). The query's $1 sits beside a '$1' string, a "$1" column and
    // a comment: only the parameter may become each batch key.
    c.batch_execute(
        r#"CREATE TABLE assoc.holds (person_id bigint, what text, "$1" text DEFAULT '$1');
           INSERT INTO assoc.holds VALUES (11, 'delete'), (13, 'delete'), (3, 'minimize');
           SELECT forget.add_rule('legal_hold',
               $q$SELECT 1 FROM assoc.holds h WHERE h.person_id = $1 AND h.what = 'delete'
                  AND h."$1" = '$1' -- the person, $1
               $q$, 'on legal hold', '{delete}', 'person');
           SELECT forget.add_rule('minimize_hold',
               'SELECT 1 FROM assoc.holds h WHERE h.person_id = $1::bigint AND h.what = ''minimize''',
               'on legal hold', '{minimize}', 'person');"#,
    )
    .unwrap();
    let before = count(&mut c, "SELECT * FROM forget.audit");
    // Batches of two: blocked people still move the next batch's start.
    c.batch_execute("CALL forget.run_people_cleanup(2)")
        .unwrap();
    for held in [11, 13] {
        assert!(exists(&mut c, held), "person {held} is on hold");
    }
    assert_eq!(
        count(&mut c, "SELECT * FROM assoc.people WHERE id = 3 AND street IS NOT NULL AND minimized_at IS NULL"),
        1,
        "Cleo is not minimized"
    );
    for gone in [2, 9, 15] {
        assert!(!exists(&mut c, gone), "person {gone} is destroyed");
    }
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM forget.audit WHERE subject_key IN ('3', '11', '13')"
        ),
        0,
        "nothing done, nothing recorded"
    );
    let handled = count(&mut c, "SELECT * FROM forget.audit") - before;
    assert!(handled > 3, "{handled} people handled");
    // What is blocked is no candidate; when the hold ends, it is one again.
    assert_eq!(one_batch(&mut c), (0, 0, 0, 0));
    c.batch_execute("DELETE FROM assoc.holds WHERE person_id = 11")
        .unwrap();
    assert_eq!(one_batch(&mut c), (1, 0, 1, 0));
    assert!(!exists(&mut c, 11));
    assert!(audit_is_intact(&mut c));
}

#[test]
fn a_new_role_clears_the_minimized_mark() {
    let mut c = association_db("e2e_cleanup_mark", "0");
    c.query("SELECT * FROM forget.people_cleanup()", &[])
        .unwrap();
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM assoc.people WHERE id = 3 AND minimized_at IS NOT NULL"
        ),
        1
    );
    c.batch_execute(
        "INSERT INTO assoc.roles (person_id, kind, start_on) VALUES (3, 'helper', current_date)",
    )
    .unwrap();
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM assoc.people WHERE id = 3 AND minimized_at IS NULL"
        ),
        1
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM assoc.people WHERE id = 14 AND minimized_at IS NOT NULL"
        ),
        1,
        "others keep theirs"
    );
}

#[test]
fn one_failing_person_is_recorded_and_the_others_proceed() {
    let mut c = association_db("e2e_cleanup_failure", "30");
    c.batch_execute(
        "CREATE FUNCTION assoc.refuse_mia() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF OLD.id = 13 THEN RAISE EXCEPTION 'Mia''s record is under legal hold'; END IF; RETURN OLD; END $$;
         CREATE TRIGGER legal_hold BEFORE DELETE ON assoc.people FOR EACH ROW EXECUTE FUNCTION assoc.refuse_mia();",
    )
    .unwrap();
    let (candidates, minimized, deleted, failed) = one_batch(&mut c);
    assert_eq!(failed, 1);
    assert_eq!(minimized + deleted + failed, candidates);
    assert!(exists(&mut c, 13));
    assert!(
        !exists(&mut c, 2) && !exists(&mut c, 11),
        "the others were destroyed"
    );
    let audit = c
        .query_one(
            "SELECT subject_key, error FROM forget.audit WHERE action = 'failed'",
            &[],
        )
        .unwrap();
    assert_eq!(audit.get::<_, String>(0), "13");
    assert!(audit.get::<_, String>(1).contains("legal hold"));
}

#[test]
fn the_procedure_commits_batch_by_batch_until_nothing_is_left() {
    let db = "e2e_cleanup_procedure";
    let mut c = association_db(db, "600");
    let before: i64 = c
        .query_one(
            "SELECT candidates FROM forget.people_cleanup(100000, dry_run => true)",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(before > 200);
    c.batch_execute("CALL forget.run_people_cleanup(25)")
        .unwrap();
    assert_eq!(
        c.query_one(
            "SELECT candidates FROM forget.people_cleanup(dry_run => true)",
            &[]
        )
        .unwrap()
        .get::<_, i64>(0),
        0
    );
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM forget.audit WHERE action IN ('minimize', 'delete')"
        ),
        before
    );
    // Each batch committed on its own: the audit ids come from several transactions.
    let transactions = count(&mut c, "SELECT DISTINCT xmin::text FROM forget.audit");
    assert!(
        transactions as f64 >= (before as f64 / 25.0).floor(),
        "{transactions} transactions for {before} people"
    );
}

#[test]
fn two_cleanups_at_once_do_the_work_once() {
    let db = "e2e_cleanup_concurrent";
    let mut c = association_db(db, "300");
    let expected: i64 = c
        .query_one(
            "SELECT candidates FROM forget.people_cleanup(100000, dry_run => true)",
            &[],
        )
        .unwrap()
        .get(0);
    let runs: Vec<_> = (0..2)
        .map(|_| {
            thread::spawn(move || {
                let mut c = connect(db);
                let r = c
                    .query_one(
                        "SELECT minimized + deleted FROM forget.people_cleanup(100000)",
                        &[],
                    )
                    .unwrap();
                r.get::<_, i64>(0)
            })
        })
        .collect();
    let done: i64 = runs.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(done, expected, "every candidate handled exactly once");
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM forget.audit WHERE action IN ('minimize', 'delete')"
        ),
        expected
    );
}

#[test]
fn faults_in_a_cleanup_batch_a_raising_hook_and_a_cancelled_statement() {
    let db = "e2e_cleanup_faults";
    let mut c = association_db(db, "30");
    c.batch_execute(
        "CREATE FUNCTION public.refuse(s text, k text, ctx jsonb) RETURNS void LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'minimizing % is refused', k; END $$;
         SELECT forget.on('before_minimize', 'public.refuse(text,text,jsonb)');",
    )
    .unwrap();
    // A raising hook: every minimize fails alone, every destroy proceeds.
    let (candidates, minimized, deleted, failed) = one_batch(&mut c);
    assert_eq!(minimized, 0);
    assert!(failed > 0 && deleted > 0);
    assert_eq!(deleted + failed, candidates);
    assert_eq!(count(&mut c, "SELECT * FROM forget.audit WHERE action = 'failed' AND error LIKE 'minimizing % is refused'"), failed);
    assert_eq!(
        count(
            &mut c,
            "SELECT * FROM assoc.people WHERE minimized_at IS NOT NULL"
        ),
        1,
        "only Noa, minimized before (Olli was destroyed)"
    );
    // A cancelled statement: the whole call fails and nothing changes.
    c.batch_execute(
        "DELETE FROM forget.hooks;
         CREATE FUNCTION public.slow(s text, k text, ctx jsonb) RETURNS void LANGUAGE sql AS $$ SELECT pg_sleep(1) $$;
         SELECT forget.on('before_minimize', 'public.slow(text,text,jsonb)');",
    )
    .unwrap();
    let before = snapshot(&mut c, "assoc");
    let audit = count(&mut c, "SELECT * FROM forget.audit");
    c.batch_execute("SET statement_timeout = '300ms'").unwrap();
    assert_eq!(
        sqlstate(c.query("SELECT * FROM forget.people_cleanup(1000)", &[])),
        "57014"
    );
    c.batch_execute("RESET statement_timeout; DELETE FROM forget.hooks")
        .unwrap();
    assert_eq!(snapshot(&mut c, "assoc"), before);
    assert_eq!(count(&mut c, "SELECT * FROM forget.audit"), audit);
    // And the next call succeeds.
    let r = c
        .query_one(
            "SELECT minimized, failed FROM forget.people_cleanup(1000)",
            &[],
        )
        .unwrap();
    assert!(r.get::<_, i64>(0) > 0);
    assert_eq!(r.get::<_, i64>(1), 0);
}

/// Rows read from a table by sequential and index scans, as the statistics
/// collector has them once this backend's counters are flushed.
fn rows_read(c: &mut postgres::Client, table: &str) -> i64 {
    c.batch_execute("SELECT pg_stat_force_next_flush(); SELECT pg_stat_clear_snapshot();")
        .unwrap();
    c.query_one(
        "SELECT seq_tup_read + COALESCE(idx_tup_fetch, 0) FROM pg_stat_user_tables WHERE relid = $1::text::regclass",
        &[&table],
    )
    .unwrap()
    .get(0)
}

#[test]
fn a_batch_reads_what_its_subjects_own_not_whole_tables() {
    // SPEC.md "Scale": cost follows the subjects handled. A batch in the
    // middle of a large backlog must probe indexes, not scan (or hash, or
    // merge-join from the start) the tables its conditions and graph touch.
    let mut c = association_db("e2e_cleanup_scale", "20000");
    c.batch_execute("DELETE FROM forget.hooks; ANALYZE")
        .unwrap();
    let tables = [
        "assoc.people",
        "assoc.participations",
        "assoc.phone_numbers",
    ];
    let before: Vec<i64> = tables.iter().map(|t| rows_read(&mut c, t)).collect();
    let r = c
        .query_one(
            "SELECT candidates, minimized + deleted FROM forget_internal._cleanup_batch(50, false, NULL, '12000', false)",
            &[],
        )
        .unwrap();
    assert_eq!((r.get::<_, i64>(0), r.get::<_, i64>(1)), (50, 50));
    for (table, before) in tables.iter().zip(before) {
        let read = rows_read(&mut c, table) - before;
        assert!(read < 1000, "{table}: a batch of 50 read {read} rows");
    }
}

/// The doctor's findings about the cleanup conditions: (problem, hint).
fn condition_findings(c: &mut postgres::Client) -> Vec<(String, String)> {
    c.query(
        "SELECT problem, hint FROM forget.check() WHERE object = 'cleanup conditions of person'",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

/// Exactly one finding, naming `table` and the comparison, with `hint`.
fn one_finding(c: &mut postgres::Client, table: &str, compared: &str, hint: &str) {
    let findings = condition_findings(c);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert!(
        findings[0].0.contains(table) && findings[0].0.contains(compared),
        "{findings:#?}"
    );
    assert_eq!(findings[0].1, hint);
}

#[test]
fn the_doctor_names_a_table_the_conditions_read_whole_for_every_person() {
    let mut c = association_db("e2e_cleanup_doctor", "2000");
    c.batch_execute("ANALYZE").unwrap();
    assert_eq!(
        condition_findings(&mut c),
        vec![],
        "every table the conditions compare has its index (the small ones too)"
    );
    c.batch_execute("DROP INDEX assoc.participations_person_id_idx")
        .unwrap();
    one_finding(
        &mut c,
        r#""assoc"."participations""#,
        "p.person_id = s.id",
        r#"CREATE INDEX ON "assoc"."participations" (person_id);"#,
    );
    // A condition on a column nothing indexes, on a table of a few rows.
    c.batch_execute(
        "CREATE INDEX ON assoc.participations (person_id);
         SELECT forget.add_cleanup_condition('no_role_from_birth',
             $$NOT EXISTS (SELECT 1 FROM assoc.roles r WHERE r.kind = 'board' AND r.start_on = s.birthday)$$);",
    )
    .unwrap();
    one_finding(
        &mut c,
        r#""assoc"."roles""#,
        "start_on = s.birthday",
        r#"CREATE INDEX ON "assoc"."roles" (start_on);"#,
    );
    // A condition that no longer plans is reported, not raised.
    c.batch_execute("ALTER TABLE assoc.roles RENAME COLUMN kind TO role_kind")
        .unwrap();
    let findings = condition_findings(&mut c);
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert!(
        findings[0]
            .0
            .starts_with("no longer plan: column r.kind does not exist"),
        "{findings:#?}"
    );
    // Only minimize_when reads participations now, in a subplan run per
    // person: through the index on event_id, the person compared in a filter.
    c.batch_execute(
        "ALTER TABLE assoc.roles RENAME COLUMN role_kind TO kind;
         SELECT forget.drop_cleanup_condition('no_role_from_birth');
         SELECT forget.drop_cleanup_condition('no_future_event');
         DROP INDEX assoc.participations_person_id_idx;",
    )
    .unwrap();
    one_finding(
        &mut c,
        r#""assoc"."participations""#,
        "p.person_id = $",
        r#"CREATE INDEX ON "assoc"."participations" (person_id);"#,
    );
}

/// Issue 20, input 6: cleanup_preview says who the next cleanup would
/// handle and how, with the rules that block someone, changing nothing; the
/// cleanup then does exactly that.
#[test]
fn the_preview_names_each_candidates_fate_and_the_rules_that_block_it() {
    let mut c = association_db("e2e_cleanup_preview", "30");
    c.batch_execute(
        "CREATE TABLE assoc.holds (person_id bigint, what text);
         INSERT INTO assoc.holds VALUES (11, 'delete'), (3, 'minimize');
         SELECT forget.add_rule('legal_hold',
             'SELECT 1 FROM assoc.holds h WHERE h.person_id = $1 AND h.what = ''delete''',
             'on legal hold', '{delete}', 'person');
         SELECT forget.add_rule('minimize_hold',
             'SELECT 1 FROM assoc.holds h WHERE h.person_id = $1 AND h.what = ''minimize''',
             'on legal hold', '{minimize}', 'person');",
    )
    .unwrap();
    let before = count(&mut c, "SELECT * FROM assoc.people");
    let preview: Vec<(String, String, Vec<String>)> = c
        .query(
            "SELECT key, fate, blocked_by FROM forget.cleanup_preview(1000)",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        count(&mut c, "SELECT * FROM assoc.people"),
        before,
        "changes nothing"
    );
    let fate = |key: &str| preview.iter().find(|(k, _, _)| k == key).cloned();
    assert_eq!(
        fate("11").map(|f| (f.1, f.2)),
        Some(("blocked".into(), vec!["legal_hold".to_string()]))
    );
    assert_eq!(
        fate("3").map(|f| (f.1, f.2)),
        Some(("blocked".into(), vec!["minimize_hold".to_string()]))
    );
    let destroy: Vec<String> = preview
        .iter()
        .filter(|p| p.1 == "destroy")
        .map(|p| p.0.clone())
        .collect();
    let minimize: Vec<String> = preview
        .iter()
        .filter(|p| p.1 == "minimize")
        .map(|p| p.0.clone())
        .collect();
    assert!(!destroy.is_empty() && !minimize.is_empty(), "{preview:?}");
    // Key order, like the batches, and the limit holds.
    let limited = count(&mut c, "SELECT * FROM forget.cleanup_preview(2)");
    assert_eq!(limited, 2);
    // The cleanup does what the preview said.
    c.batch_execute("CALL forget.run_people_cleanup(2)")
        .unwrap();
    for key in &destroy {
        assert!(!exists(&mut c, key.parse().unwrap()), "{key} destroyed");
    }
    for key in &minimize {
        assert_eq!(
            count(&mut c, &format!("SELECT 1 FROM forget.minimized WHERE key = '{key}' UNION ALL SELECT 1 FROM assoc.people WHERE id = {key} AND minimized_at IS NOT NULL")),
            1,
            "{key} minimized"
        );
    }
    assert!(exists(&mut c, 11));
    // Each audit row says which fate the person got and why.
    let why = |c: &mut postgres::Client, key: &str| -> (String, String) {
        let r = c
            .query_one(
                "SELECT action, reason FROM forget.audit WHERE subject_key = $1 ORDER BY id DESC LIMIT 1",
                &[&key],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    let (action, reason) = why(&mut c, &destroy[0]);
    assert_eq!(action, "delete");
    assert!(
        reason.contains("destroyed") && reason.contains("no_recent_sign_in"),
        "{reason}"
    );
    let (action, reason) = why(&mut c, &minimize[0]);
    assert_eq!(action, "minimize");
    assert!(
        reason.contains("minimized") && reason.contains("minimize_when holds"),
        "{reason}"
    );
    assert_eq!(
        sqlstate(c.query("SELECT * FROM forget.cleanup_preview(-1)", &[])),
        "22023"
    );
    assert_eq!(
        sqlstate(c.query("SELECT * FROM forget.cleanup_preview(10, 'nobody')", &[])),
        "22023"
    );
}
