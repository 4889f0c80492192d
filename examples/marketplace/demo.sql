-- The marketplace demo: the whole lifecycle of an account.
\pset footer off
\echo
\echo '== 1. Can user 1 leave? Every blocker, with its message'
SELECT * FROM forget.eligibility(1);
\set ON_ERROR_STOP 0
SELECT * FROM forget.delete_client(1);
\set ON_ERROR_STOP 1

\echo '== 2. User 5 asks for their data first (export_client; row counts per table shown)'
SELECT e.doc->>'subject' AS subject, e.doc->>'key' AS key,
       (SELECT jsonb_object_agg(k, jsonb_array_length(v)) FROM jsonb_each(e.doc->'data') AS d(k, v)) AS tables
FROM (SELECT forget.export_client(5) AS doc) e;

\echo '== 3. Then deletes the account, with 30 days to change their mind'
SELECT * FROM forget.delete_client(5, reason => 'user request', actor => 'user:5', grace => '30 days');
SELECT id, seller_id, buyer_id, status FROM market.projects WHERE id IN (3, 4) ORDER BY id;
\echo '   The DeletedUser record:'
SELECT subject, original_key, identity, deleted_at::date, reason, initiated_by, retention_until::date, state
FROM forget.deleted_clients;

\echo '== 4. They change their mind: everything comes back, shared projects point at them again'
SELECT * FROM forget.restore_client(5, actor => 'support:zoe');
SELECT id, seller_id, buyer_id, status FROM market.projects WHERE id IN (3, 4) ORDER BY id;

\echo '== 5. User 6 leaves for good; once the window has passed, purge_expired keeps no personal data'
SELECT * FROM forget.delete_client(6, grace => '1 second');
SELECT pg_sleep(1.1);
\set ON_ERROR_STOP 0
SELECT * FROM forget.restore_client(6);
\set ON_ERROR_STOP 1
SELECT forget.purge_expired() AS purged;
SELECT subject, original_key, identity, state FROM forget.deleted_clients ORDER BY id;

\echo '== 6. User 7 is anonymized instead: the account row stays, marked inactive'
SELECT * FROM forget.anonymize_client(7, reason => 'user request');
SELECT id, username, email, full_name, is_active FROM market.users WHERE id = 7;

\echo '== 7. The doctor has nothing to report about this configuration'
\pset footer on
SELECT * FROM forget.check();
