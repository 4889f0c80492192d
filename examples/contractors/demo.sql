-- The contractors demo: inactive accounts are deactivated, told why, and reactivated by hand.
\pset footer off
SET forget.admin_contacts = 'ops@example.com';
\echo
\echo '== 1. Last activity per contractor (Cid never invoiced: no activity, never deactivated)'
SELECT id, name, forget.last_activity(id) FROM contractors.contractors ORDER BY id;
\echo '== 2. Who has not invoiced for 6 months (dry run), then the real thing'
SELECT * FROM forget.deactivate_inactive('6 months', dry_run => true);
-- A rule for deactivate would keep service accounts active (deactivate_inactive
-- skips them, deactivate refuses them); tried and removed again:
SELECT forget.add_rule('service_account', 'SELECT 1 WHERE $1 = 0', 'service accounts stay active', '{deactivate}');
SELECT forget.drop_rule('service_account');
SELECT * FROM forget.deactivate_inactive('6 months', reason => 'no invoice for 6 months');
SELECT id, name, contractor_type, is_active FROM contractors.contractors ORDER BY id;
\echo '== 3. What Ben sees when he logs in'
SELECT * FROM forget.account_status(2);
\echo '== 4. An admin reactivates him; the history keeps who, when and why'
SELECT forget.reactivate(2, 'admin:carol', 'new contract signed');
SELECT subject, key, action, actor, reason FROM forget.deactivations ORDER BY id;
\echo '== 5. Nightly in pg_cron (period and actor from settings)'
SELECT format('ALTER DATABASE %I SET forget.inactive_for = %L', current_database(), '6 months') \gexec
SELECT forget.schedule('deactivate_inactive', '0 3 * * *') > 0 AS scheduled;
SELECT jobname, schedule, command FROM cron.job WHERE jobname LIKE 'pg_forget_%';
SELECT forget.unschedule('deactivate_inactive');
