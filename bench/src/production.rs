//! Workloads 7–13: what a production database asks of pg_forget besides
//! speed per call (issue 19): a held snapshot, DDL elsewhere, a wide graph,
//! a big subject, a throttled cleanup beside OLTP, a long audit. Each is
//! measured against a baseline taken in the same run.

use crate::{connect, median, timed, Args, Row};
use postgres::Client;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

pub fn workloads(a: &Args) -> Vec<Row> {
    let mut rows = Vec::new();
    let groups: [fn(&Args) -> Vec<Row>; 5] = [
        held_snapshot_and_temp_ddl,
        wide_graph,
        big_subject,
        throttled_cleanup,
        long_audit,
    ];
    for group in groups {
        for r in group(a) {
            eprintln!(
                "  {}: {:.3} vs {:.3} = {:.2} ({})",
                r.name, r.forget_ms, r.baseline_ms, r.ratio, r.target
            );
            rows.push(r);
        }
    }
    rows
}

fn fresh(a: &Args, db: &str, setup: &str) -> Client {
    let mut c = crate::recreate_db(&a.port, db);
    let started = Instant::now();
    c.batch_execute("CREATE EXTENSION pg_forget").unwrap();
    c.batch_execute(setup).unwrap();
    c.batch_execute("VACUUM ANALYZE").unwrap();
    eprintln!("  {db}: loaded in {:.0?}", started.elapsed());
    c
}

/// Runs `step` (which returns how many calls it made) until `secs` have
/// passed; ms per call.
fn ms_per_call(secs: f64, mut step: impl FnMut() -> u64) -> f64 {
    let started = Instant::now();
    let mut calls = 0;
    while started.elapsed().as_secs_f64() < secs {
        calls += step();
    }
    started.elapsed().as_secs_f64() * 1000.0 / calls.max(1) as f64
}

/// Workloads 7 and 8 on a plain accounts table.
fn held_snapshot_and_temp_ddl(a: &Args) -> Vec<Row> {
    let db = "bench_prod_accounts";
    let accounts = ((100_000.0 * a.scale) as i64).max(20_000);
    let mut c = fresh(
        a,
        db,
        &format!(
            "CREATE TABLE accounts (id bigint PRIMARY KEY, email text NOT NULL, active boolean NOT NULL DEFAULT true);
             INSERT INTO accounts SELECT g, 'user' || g || '@example.com', true FROM generate_series(1, {accounts}) g;
             CREATE TABLE sessions (id bigserial PRIMARY KEY, account_id bigint NOT NULL REFERENCES accounts, at timestamptz NOT NULL DEFAULT now());
             INSERT INTO sessions (account_id) SELECT g % {accounts} + 1 FROM generate_series(1, {accounts} * 2) g;
             CREATE INDEX ON sessions (account_id);
             SELECT forget.register_subject('account', 'accounts', active_column => 'active');"
        ),
    );
    let mut rows = Vec::new();

    // 7: deactivate + reactivate, each committed, with and without another
    // session holding a snapshot for the whole window.
    let secs = (40.0 * a.scale).clamp(10.0, 40.0);
    let mut k = 0i64;
    let mut cycle = |c: &mut Client| {
        k = k % accounts + 1;
        c.execute(
            "SELECT forget.deactivate($1::bigint, 'bench', 'idle')",
            &[&k],
        )
        .unwrap();
        c.execute("SELECT forget.reactivate($1::bigint, 'bench')", &[&k])
            .unwrap();
        2
    };
    let without = ms_per_call(secs, || cycle(&mut c));
    c.batch_execute("VACUUM forget.audit_head, accounts, forget.deactivations")
        .unwrap();
    let mut holder = connect(&a.port, db);
    holder
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM accounts")
        .unwrap();
    let with = ms_per_call(secs, || cycle(&mut c));
    holder.batch_execute("COMMIT").unwrap();
    rows.push(Row {
        name: format!("7. deactivate/reactivate while another session holds a snapshot for {secs:.0} s (ms per action)"),
        forget_ms: with,
        baseline_ms: without,
        ratio: with / without,
        target: "<= 1.1".into(),
        ok: Some(with / without <= 1.1),
        note: format!("each call committed, {secs:.0} s each; baseline: the same loop just before, no snapshot held"),
    });

    // 8: account_status with 10 temporary tables a second created (and
    // dropped at commit) in another session, in alternating windows.
    let stop = Arc::new(AtomicBool::new(false));
    let ddl_on = Arc::new(AtomicBool::new(false));
    let created = Arc::new(AtomicU64::new(0));
    let ddl = {
        let (stop, ddl_on, created, port) = (
            stop.clone(),
            ddl_on.clone(),
            created.clone(),
            a.port.clone(),
        );
        thread::spawn(move || {
            let mut d = connect(&port, db);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                if ddl_on.load(Ordering::Relaxed) {
                    n += 1;
                    d.batch_execute(&format!(
                        "BEGIN; CREATE TEMP TABLE scratch_{n} (id int PRIMARY KEY, v text) ON COMMIT DROP; COMMIT"
                    ))
                    .unwrap();
                    created.fetch_add(1, Ordering::Relaxed);
                }
                thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let status = c
        .prepare("SELECT * FROM forget.account_status($1::bigint)")
        .unwrap();
    let mut key = 0i64;
    let (mut quiet, mut busy) = (Vec::new(), Vec::new());
    let window = (4.0 * a.scale).clamp(2.0, 4.0);
    for _ in 0..6 {
        for (on, out) in [(false, &mut quiet), (true, &mut busy)] {
            ddl_on.store(on, Ordering::Relaxed);
            thread::sleep(Duration::from_millis(150));
            out.push(ms_per_call(window, || {
                key = key % accounts + 1;
                c.query(&status, &[&key]).unwrap();
                1
            }));
        }
    }
    stop.store(true, Ordering::Relaxed);
    ddl.join().unwrap();
    let (quiet, busy) = (median(quiet), median(busy));
    rows.push(Row {
        name: "8. account_status with 10 temporary tables a second created in another session (ms per call)".into(),
        forget_ms: busy,
        baseline_ms: quiet,
        ratio: busy / quiet,
        target: "<= 1.05".into(),
        ok: Some(busy / quiet <= 1.05),
        note: format!(
            "medians of 6 windows of {window:.0} s each way, alternating; {} temporary tables created; baseline: the windows without",
            created.load(Ordering::Relaxed)
        ),
    });
    rows
}

/// Workloads 9 and 10: 300 tables referencing the subject, 50 below them.
fn wide_graph(a: &Args) -> Vec<Row> {
    let db = "bench_prod_wide";
    let people = 200;
    let mut setup = format!(
        "CREATE TABLE people (id bigint PRIMARY KEY, name text, email text, active boolean NOT NULL DEFAULT true);
         INSERT INTO people SELECT g, 'person ' || g, 'p' || g || '@example.com' FROM generate_series(1, {people}) g;"
    );
    for t in 1..=300 {
        setup.push_str(&format!(
            "CREATE TABLE t{t} (id bigserial PRIMARY KEY, person_id bigint NOT NULL REFERENCES people, note text);
             INSERT INTO t{t} (person_id, note) SELECT g, 'note' FROM generate_series(1, {people}) g;
             CREATE INDEX ON t{t} (person_id);"
        ));
    }
    for u in 1..=50 {
        setup.push_str(&format!(
            "CREATE TABLE u{u} (id bigserial PRIMARY KEY, t_id bigint NOT NULL REFERENCES t{u}, note text);
             INSERT INTO u{u} (t_id, note) SELECT id, 'below' FROM t{u};
             CREATE INDEX ON u{u} (t_id);"
        ));
    }
    setup.push_str(
        "SELECT forget.register_subject('person', 'people', active_column => 'active');
         SELECT forget.mask('people', 'name', 'NULL');
         SELECT forget.mask('people', 'email', 'forget.random_email()');",
    );
    let mut c = fresh(a, db, &setup);
    let mut rows = Vec::new();

    // 9: export against the warm dry run of a delete, interleaved.
    let samples = a.samples.min(50);
    c.query(
        "SELECT * FROM forget.delete_client(1::bigint, dry_run => true)",
        &[],
    )
    .unwrap();
    c.query("SELECT forget.export_client(1::bigint)", &[])
        .unwrap();
    let (mut export, mut dry) = (Vec::new(), Vec::new());
    for i in 0..samples as i64 {
        let k = i % people + 1;
        export.push(timed(|| {
            c.query("SELECT forget.export_client($1::bigint)", &[&k])
                .unwrap();
        }));
        dry.push(timed(|| {
            c.query(
                "SELECT * FROM forget.delete_client($1::bigint, dry_run => true)",
                &[&k],
            )
            .unwrap();
        }));
    }
    let (export, dry) = (median(export), median(dry));
    rows.push(Row {
        name: "9. export_client on a 351-table graph vs the warm delete_client dry run (ms)".into(),
        forget_ms: export,
        baseline_ms: dry,
        ratio: export / dry,
        target: "<= 3".into(),
        ok: Some(export / dry <= 3.0),
        note: format!("300 tables referencing the subject, 50 below them, {people} people; {samples} calls each, interleaved"),
    });

    // 10: a backend's memory after running every action, against an idle one.
    let mut idle = connect(&a.port, db);
    idle.batch_execute("SELECT 1").unwrap();
    let pid =
        |c: &mut Client| -> i32 { c.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0) };
    let idle_kb = crate::rss_anon_kb(pid(&mut idle)).unwrap_or(0);
    let mut busy = connect(&a.port, db);
    busy.batch_execute(
        "SELECT * FROM forget.eligibility(10::bigint);
         SELECT forget.export_client(10::bigint);
         SELECT * FROM forget.delete_client(10::bigint, dry_run => true);
         SELECT * FROM forget.anonymize_client(10::bigint, dry_run => true);
         SELECT * FROM forget.graph();
         SELECT forget.deactivate(11::bigint, 'bench', 'idle');
         SELECT forget.reactivate(11::bigint, 'bench');
         SELECT * FROM forget.account_status(11::bigint);
         SELECT * FROM forget.delete_client(12::bigint, grace => '30 days');
         SELECT * FROM forget.restore_client(12::bigint);
         SELECT * FROM forget.delete_client(10::bigint);
         SELECT * FROM forget.anonymize_client(13::bigint);
         SELECT forget.verify_audit();",
    )
    .unwrap();
    let busy_kb = crate::rss_anon_kb(pid(&mut busy)).unwrap_or(0);
    let above_mb = (busy_kb as f64 - idle_kb as f64) / 1024.0;
    rows.push(Row {
        name: "10. backend memory after every action on the 351-table graph (RssAnon, kB)".into(),
        forget_ms: busy_kb as f64,
        baseline_ms: idle_kb as f64,
        ratio: busy_kb as f64 / idle_kb.max(1) as f64,
        target: "<= 64 MB above idle".into(),
        ok: Some(above_mb <= 64.0),
        note: format!("{above_mb:.1} MB above an idle backend of the same database; eligibility, export, dry runs, graph, deactivate, reactivate, account_status, delete with grace, restore, delete, anonymize, verify_audit"),
    });
    rows
}

/// Workload 11: one subject with a million rows in four tables.
fn big_subject(a: &Args) -> Vec<Row> {
    let db = "bench_prod_big";
    let per_table = ((250_000.0 * a.scale) as i64).max(10_000);
    let mut setup = String::from(
        "CREATE TABLE owners (id bigint PRIMARY KEY, name text);
         INSERT INTO owners SELECT g, 'owner ' || g FROM generate_series(1, 10) g;",
    );
    for t in ["a", "b", "c", "d"] {
        setup.push_str(&format!(
            "CREATE TABLE items_{t} (id bigserial PRIMARY KEY, owner_id bigint NOT NULL REFERENCES owners, payload text, at timestamptz DEFAULT now());
             INSERT INTO items_{t} (owner_id, payload) SELECT o, repeat('x', 40) FROM generate_series(1, 6) o, generate_series(1, {per_table});
             INSERT INTO items_{t} (owner_id, payload) SELECT o, 'small' FROM generate_series(7, 10) o;
             CREATE INDEX ON items_{t} (owner_id);"
        ));
    }
    setup.push_str("SELECT forget.register_subject('owner', 'owners');");
    let mut c = fresh(a, db, &setup);
    let one = |c: &mut Client, sql: &str| {
        c.batch_execute("CHECKPOINT").unwrap();
        timed(|| {
            let mut tx = c.transaction().unwrap();
            tx.batch_execute(sql).unwrap();
            tx.commit().unwrap();
        })
    };
    let by_hand = |k: i64| {
        format!(
            "SELECT id FROM owners WHERE id = {k} FOR UPDATE;
             DELETE FROM items_a WHERE owner_id = {k}; DELETE FROM items_b WHERE owner_id = {k};
             DELETE FROM items_c WHERE owner_id = {k}; DELETE FROM items_d WHERE owner_id = {k};
             DELETE FROM owners WHERE id = {k};"
        )
    };
    // What keeping the rows costs by hand in the format undo data uses (one
    // jsonb document per row, named by its relation, in a table like
    // forget.undo, its index included): the floor of 11b in that format.
    c.batch_execute("CREATE TABLE kept (LIKE forget.undo INCLUDING ALL)")
        .unwrap();
    // Each table's rows of owner k copied by `copy` (given the table's
    // letter), then the DELETEs by hand.
    let copied_by_hand = |k: i64, copy: &dyn Fn(&str) -> String| {
        let copies: String = ["a", "b", "c", "d"].iter().map(|t| copy(t)).collect();
        format!("{copies}{}", by_hand(k))
    };
    let copy_by_hand = |k: i64| {
        copied_by_hand(k, &|t| {
            format!("INSERT INTO kept SELECT 1, t.tableoid::regclass, 'insert', to_jsonb(t) FROM items_{t} t WHERE owner_id = {k};")
        })
    };
    // The cheapest copy any undo format could make: each row into a table
    // shaped like its own (with the deletion it belongs to), without an
    // index (11e), and with the index on the deletion that a restore and a
    // purge need to find the rows again (11f).
    for t in ["a", "b", "c", "d"] {
        c.batch_execute(&format!(
            "CREATE TABLE shaped_{t} (deletion_id bigint, LIKE items_{t});
             CREATE TABLE indexed_{t} (deletion_id bigint, LIKE items_{t});
             CREATE INDEX ON indexed_{t} (deletion_id);"
        ))
        .unwrap();
    }
    let shaped_by_hand = |k: i64, into: &'static str| {
        copied_by_hand(k, &|t| {
            format!("INSERT INTO {into}_{t} SELECT 1, t.* FROM items_{t} t WHERE owner_id = {k};")
        })
    };
    let hand = one(&mut c, &by_hand(2));
    let ours = one(
        &mut c,
        "SELECT count(*) FROM forget.delete_client(1::bigint)",
    );
    let hand2 = one(&mut c, &by_hand(4));
    let grace = one(
        &mut c,
        "SELECT count(*) FROM forget.delete_client(3::bigint, grace => '30 days')",
    );
    let restore = one(
        &mut c,
        "SELECT count(*) FROM forget.restore_client(3::bigint)",
    );
    let kept_by_hand = one(&mut c, &copy_by_hand(3));
    // The floor of 11c: owner 3's rows put back by hand from that copy (in
    // undo's format), with the foreign keys checked as a restore must.
    let put_back: String = ["a", "b", "c", "d"]
        .iter()
        .map(|t| {
            format!(
                "INSERT INTO items_{t} SELECT x.* FROM kept u, jsonb_populate_record(NULL::items_{t}, u.row_data) x \
                 WHERE u.tbl = 'items_{t}'::regclass;"
            )
        })
        .collect();
    let restored_by_hand = one(
        &mut c,
        &format!("INSERT INTO owners VALUES (3, 'owner 3'); {put_back} DELETE FROM kept;"),
    );
    let shaped = one(&mut c, &shaped_by_hand(5, "shaped"));
    let indexed = one(&mut c, &shaped_by_hand(6, "indexed"));
    let hand = hand.min(hand2);
    let rows_n = per_table * 4;
    vec![
        Row {
            name: format!("11a. delete_client of a subject with {rows_n} rows vs hand-written DELETEs (ms)"),
            forget_ms: ours,
            baseline_ms: hand,
            ratio: ours / hand,
            target: "<= 1.3".into(),
            ok: Some(ours / hand <= 1.3),
            note: "four tables; baseline: lock the owner, four DELETEs by owner_id, delete the owner, one transaction (the better of two)".into(),
        },
        Row {
            name: "11b. the same delete with grace (undo copy kept) vs hand-written DELETEs (ms)".into(),
            forget_ms: grace,
            baseline_ms: hand,
            ratio: grace / hand,
            target: "<= 2.5".into(),
            ok: Some(grace / hand <= 2.5),
            note: "delete_client(k, grace => '30 days')".into(),
        },
        Row {
            name: "11d. floor for 11b: the same copy as jsonb and DELETEs by hand vs hand-written DELETEs (ms)".into(),
            forget_ms: kept_by_hand,
            baseline_ms: hand,
            ratio: kept_by_hand / hand,
            target: "reference (11b needs <= 2.5)".into(),
            ok: None,
            note: "INSERT INTO kept (LIKE forget.undo INCLUDING ALL) SELECT ..., to_jsonb(t) per table, then the DELETEs: what keeping the rows in undo's format, with its index, costs at least".into(),
        },
        Row {
            name: "11e. floor for 11b in any format: each row copied into a table shaped like its own, and DELETEs, by hand vs hand-written DELETEs (ms)".into(),
            forget_ms: shaped,
            baseline_ms: hand,
            ratio: shaped / hand,
            target: "reference (11b needs <= 2.5)".into(),
            ok: None,
            note: "INSERT INTO shaped_t SELECT 1, t.* per table (no index, no foreign key), then the DELETEs: what keeping the rows costs at least".into(),
        },
        Row {
            name: "11f. floor for 11b in any format that finds its rows again: 11e with an index on the deletion, by hand vs hand-written DELETEs (ms)".into(),
            forget_ms: indexed,
            baseline_ms: hand,
            ratio: indexed / hand,
            target: "reference (11b needs <= 2.5)".into(),
            ok: None,
            note: "as 11e, each copy table with a btree index on deletion_id (as forget.undo has: what a restore and a purge look rows up by)".into(),
        },
        Row {
            name: "11c. restore_client of that subject vs its delete with grace (ms)".into(),
            forget_ms: restore,
            baseline_ms: grace,
            ratio: restore / grace,
            target: "<= 2.5".into(),
            ok: Some(restore / grace <= 2.5),
            note: "every row back into its table".into(),
        },
        Row {
            name: "11g. floor for 11c: the same rows put back by hand from their jsonb copy vs the delete with grace (ms)".into(),
            forget_ms: restored_by_hand,
            baseline_ms: grace,
            ratio: restored_by_hand / grace,
            target: "reference (11c needs <= 2.5)".into(),
            ok: None,
            note: "INSERT INTO items_t SELECT x.* FROM kept, jsonb_populate_record(NULL::items_t, row_data) x per table, the owner first, foreign keys checked; then the copy deleted".into(),
        },
    ]
}

/// Workload 12: an OLTP load's throughput while run_people_cleanup works
/// through a backlog with forget.cleanup_pause = 50 ms, against the same
/// load alone just before. One person in three is a candidate, so that the
/// cleanup lasts long enough (seconds, not one) for the ratio to be more
/// than noise; batches of 125 people, so the pause between them is a
/// fair share of the time (with 1000, each batch works about 200 ms before
/// its pause, and on 2 cores the load keeps about 70%).
fn throttled_cleanup(a: &Args) -> Vec<Row> {
    let db = "bench_prod_cleanup";
    let people = ((200_000.0 * a.scale) as i64).max(20_000);
    let vars = [("bulk", people.to_string()), ("every", "3".to_string())];
    let mut c = crate::fresh_db(&a.port, db, "association", &vars);
    c.batch_execute(
        "DELETE FROM forget.hooks;
         CREATE TABLE public.oltp (id int PRIMARY KEY, balance bigint NOT NULL DEFAULT 0);
         INSERT INTO public.oltp SELECT g FROM generate_series(1, 100000) g;",
    )
    .unwrap();
    c.batch_execute("VACUUM ANALYZE public.oltp").unwrap();
    let backlog = crate::backlog(&mut c);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..2)
        .map(|w| {
            let (stop, done, port) = (stop.clone(), done.clone(), a.port.clone());
            thread::spawn(move || {
                let mut o = connect(&port, db);
                let read = o
                    .prepare("SELECT balance FROM public.oltp WHERE id = $1")
                    .unwrap();
                let write = o
                    .prepare("UPDATE public.oltp SET balance = balance + 1 WHERE id = $1")
                    .unwrap();
                let mut i: i32 = w * 50_000;
                while !stop.load(Ordering::Relaxed) {
                    let mut tx = o.transaction().unwrap();
                    for _ in 0..4 {
                        i = i % 100_000 + 1;
                        tx.query(&read, &[&i]).unwrap();
                    }
                    tx.execute(&write, &[&i]).unwrap();
                    tx.commit().unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let tps = |secs: f64| {
        let (start, t) = (done.load(Ordering::Relaxed), Instant::now());
        thread::sleep(Duration::from_secs_f64(secs));
        (done.load(Ordering::Relaxed) - start) as f64 / t.elapsed().as_secs_f64()
    };
    let secs = (15.0 * a.scale).clamp(5.0, 15.0);
    let alone = tps(secs);
    c.batch_execute("SET forget.cleanup_pause = '50ms'; SET forget.batch_size = 125")
        .unwrap();
    let (before, t) = (done.load(Ordering::Relaxed), Instant::now());
    c.batch_execute("CALL forget.run_people_cleanup()").unwrap();
    let cleanup_secs = t.elapsed().as_secs_f64();
    let beside = (done.load(Ordering::Relaxed) - before) as f64 / cleanup_secs;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let run: (i64, i64, i64) = {
        let r = c
            .query_one(
                "SELECT count(*), sum(minimized + deleted)::bigint, sum(candidates)::bigint FROM forget.runs WHERE job = 'run_people_cleanup'",
                &[],
            )
            .unwrap();
        (
            r.get(0),
            r.get::<_, Option<i64>>(1).unwrap_or(0),
            r.get::<_, Option<i64>>(2).unwrap_or(0),
        )
    };
    vec![Row {
        name: "12. OLTP throughput while run_people_cleanup works with forget.cleanup_pause = 50 ms, batches of 125 (tps)".into(),
        forget_ms: beside,
        baseline_ms: alone,
        ratio: beside / alone,
        target: ">= 0.8".into(),
        ok: Some(beside / alone >= 0.8),
        note: format!(
            "2 clients, 4 reads and 1 update per committed transaction; the cleanup of {backlog} candidates took {cleanup_secs:.1} s \
             (forget.runs: {} run, {} people changed); baseline: the same load alone for {secs:.0} s just before",
            run.0, run.1
        ),
    }]
}

/// Workload 13: verify_audit() over a million audit rows (scaled), written
/// by one set-based deactivate_inactive.
fn long_audit(a: &Args) -> Vec<Row> {
    let db = "bench_prod_audit";
    let n = ((1_000_000.0 * a.scale) as i64).max(50_000);
    let mut c = fresh(
        a,
        db,
        &format!(
            "CREATE TABLE members (id bigint PRIMARY KEY, active boolean NOT NULL DEFAULT true, last_seen timestamptz NOT NULL);
             INSERT INTO members SELECT g, true, now() - interval '2 years' FROM generate_series(1, {n}) g;
             SELECT forget.register_subject('member', 'members', active_column => 'active');
             SELECT forget.add_activity('members', 'last_seen');"
        ),
    );
    c.batch_execute("CREATE TABLE members_twin AS SELECT * FROM members")
        .unwrap();
    c.batch_execute("VACUUM ANALYZE members_twin").unwrap();
    let by_hand = timed(|| {
        c.batch_execute(
            "UPDATE members_twin SET active = false WHERE active AND last_seen < now() - interval '1 year'",
        )
        .unwrap();
    });
    let write = timed(|| {
        c.batch_execute(
            "SELECT count(*) FROM forget.deactivate_inactive('1 year', 'bench', 'inactive')",
        )
        .unwrap();
    });
    let rows: i64 = c
        .query_one("SELECT count(*) FROM forget.audit", &[])
        .unwrap()
        .get(0);
    c.batch_execute("VACUUM ANALYZE forget.audit").unwrap();
    let (mut ours, mut scan) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        ours.push(timed(|| {
            let ok: bool = c
                .query_one("SELECT forget.verify_audit()", &[])
                .unwrap()
                .get(0);
            assert!(ok, "the audit chain verifies");
        }));
        scan.push(timed(|| {
            c.query_one("SELECT count(*), sum(length(hash)) FROM forget.audit", &[])
                .unwrap();
        }));
    }
    let (ours, scan) = (median(ours), median(scan));
    let limit = 2000.0 * rows as f64 / 1_000_000.0;
    vec![
        Row {
            name: format!("14. deactivate_inactive of {n} inactive subjects vs one hand-written UPDATE (ms)"),
            forget_ms: write,
            baseline_ms: by_hand,
            ratio: write / by_hand,
            target: "reference".into(),
            ok: None,
            note: "pg_forget also records each subject's history, audit row (linked into the chain at commit) and NOTIFY; baseline: the UPDATE of the active column alone, on a copy".into(),
        },
        Row {
        name: format!("13. verify_audit() over {rows} audit rows (ms)"),
        forget_ms: ours,
        baseline_ms: scan,
        ratio: ours / scan,
        target: format!("<= {limit:.0} ms (2 s per million)"),
        ok: Some(ours <= limit),
        note: format!(
            "median of 3; baseline (reference): one scan of the audit table; the rows were written by one deactivate_inactive in {:.1} s",
            write / 1000.0
        ),
    }]
}
