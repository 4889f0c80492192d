-- The association demo: automated people cleanup.
\pset footer off
\echo
\echo '== 1. Who is a candidate, and what would happen (dry run, then the first ten by name)'
SELECT * FROM forget.people_cleanup(dry_run => true);
SELECT * FROM forget.cleanup_preview(10);
\echo '== 2. One batch of 10'
SELECT * FROM forget.people_cleanup(10);
\echo '== 3. The rest, committing after each batch of 25'
CALL forget.run_people_cleanup(25);
\echo '== 4. What happened to the named people'
SELECT id, first_name, last_name, street, minimized_at IS NOT NULL AS minimized FROM assoc.people WHERE id < 20 ORDER BY id;
SELECT id, recipient_id, creator_id, recipient_name FROM assoc.invoices ORDER BY id;
SELECT id, item_type, item_id, whodunnit FROM assoc.versions ORDER BY id;
SELECT * FROM assoc.households;
\echo '== 5. A new participation clears the minimized mark'
INSERT INTO assoc.participations (person_id, event_id) VALUES (3, 3);
SELECT id, minimized_at FROM assoc.people WHERE id = 3;
\echo '== 6. The audit: one row per person'
SELECT action, count(*) FROM forget.audit GROUP BY action ORDER BY action;
