-- The marketplace demo: eligibility with the three blockers, export, delete, anonymize.
\pset footer off
\echo
\echo '== 1. Can user 1 leave? Every blocker, with its message'
SELECT * FROM forget.eligibility(1);
\set ON_ERROR_STOP 0
SELECT * FROM forget.delete_client(1);
\set ON_ERROR_STOP 1

\echo '== 2. User 5 asks for their data first (export_client, abridged)'
SELECT jsonb_pretty(jsonb_set(d, '{exported_at}', '"(now)"')) AS export
FROM (SELECT forget.export_client(5) - 'data' || jsonb_build_object('tables', (SELECT jsonb_object_agg(k, jsonb_array_length(v)) FROM jsonb_each(forget.export_client(5)->'data') AS e(k, v))) AS d) x;

\echo '== 3. Then deletes the account: shared projects and payments stay, their link to user 5 is cleared'
SELECT * FROM forget.delete_client(5, reason => 'user request', actor => 'user:5');
SELECT id, seller_id, buyer_id, status FROM market.projects WHERE id IN (3, 4, 5) ORDER BY id;

\echo '== 4. User 7 is anonymized: the account row stays, marked inactive'
SELECT * FROM forget.anonymize_client(7, reason => 'user request');
SELECT id, username, email, full_name, is_active FROM market.users WHERE id = 7;

\echo '== 5. What the doctor says about this configuration'
SELECT * FROM forget.check();
