-- The billing demo: what pg_forget sees, what it refuses, what it does.
\pset footer off
\echo
\echo '== 1. The graph pg_forget found: foreign keys, plugin links, the owned login user'
SELECT * FROM forget.graph();

\echo '== 2. Client 1 has an open invoice, a recurring invoice and an active service'
SELECT * FROM forget.eligibility(1);

\echo '== 3. So deleting it is refused, with every reason at once'
\set ON_ERROR_STOP 0
SELECT * FROM forget.delete_client(1);
\set ON_ERROR_STOP 1

\echo '== 4. Client 2 can go. The dry run shows the plan and changes nothing'
SELECT * FROM forget.delete_client(2, dry_run => true);

\echo '== 4b. What an export shows: every row the graph reaches, the password hash masked for export'
SELECT forget.mask('billing.users', 'password_hash', 'NULL', 'export');
SELECT jsonb_pretty(forget.export_client(2)->'data'->'billing.users') AS exported_login;
SELECT email AS client2_email FROM billing.clients WHERE id = 2 \gset

\echo '== 5. The real delete: one transaction, one statement'
SELECT * FROM forget.delete_client(2, reason => 'GDPR erasure request #4711', actor => 'alice@staff');
SELECT (SELECT count(*) FROM billing.clients WHERE id = 2)
     + (SELECT count(*) FROM billing.users WHERE id = 2)
     + (SELECT count(*) FROM billing.tickets WHERE userid = 2)
     + (SELECT count(*) FROM billing.orders WHERE userid = '2') AS rows_left_about_client_2;

\echo '== 5b. Proof of erasure: where does the email still appear? Nowhere'
SELECT * FROM forget.locate(ARRAY[:'client2_email']);

\echo '== 6. Client 3 is anonymized instead: the row stays for the books, its identity goes'
SELECT * FROM forget.anonymize_client(3, reason => 'account closed', actor => 'bob@staff');
SELECT id, firstname, lastname, email, phonenumber, status FROM billing.clients WHERE id = 3;
SELECT count(*) AS invoices_kept FROM billing.invoices WHERE client_id = 3;

\echo '== 7. The audit trail: who, when, why and how many rows, never a value'
SELECT id, action, subject, subject_key, actor, db_user, reason, rows FROM forget.audit ORDER BY id;
SELECT forget.verify_audit() AS audit_chain_intact;
