-- Hand-written SQL that does what pg_forget does, used as the benchmark's
-- baselines. :k is the key. Each block is sent as one batch (one round
-- trip), like one pg_forget call.

-- @delete_billing
SELECT 1 FROM billing.clients WHERE id = :k FOR UPDATE;
SELECT count(*) FROM billing.invoices WHERE client_id = :k AND status = 'Unpaid';
SELECT count(*) FROM billing.recurring_invoices WHERE client_id = :k AND active;
SELECT count(*) FROM billing.services WHERE client_id = :k AND status = 'Active';
DELETE FROM billing.invoice_items WHERE invoice_id IN (SELECT id FROM billing.invoices WHERE client_id = :k);
DELETE FROM billing.transactions WHERE client_id = :k;
DELETE FROM billing.transactions WHERE invoice_id IN (SELECT id FROM billing.invoices WHERE client_id = :k);
DELETE FROM billing.invoices WHERE client_id = :k;
DELETE FROM billing.recurring_invoices WHERE client_id = :k;
DELETE FROM billing.service_fields WHERE service_id IN (SELECT id FROM billing.services WHERE client_id = :k);
DELETE FROM billing.services WHERE client_id = :k;
DELETE FROM billing.contacts WHERE client_id = :k;
DELETE FROM billing.payment_accounts WHERE client_id = :k;
DELETE FROM billing.email_log WHERE client_id = :k;
DELETE FROM billing.contact_changes WHERE client_id = :k;
DELETE FROM billing.client_settings WHERE client_id = :k;
DELETE FROM billing.custom_field_values WHERE client_id = :k;
DELETE FROM billing.notes WHERE client_id = :k;
DELETE FROM billing.restricted_packages WHERE client_id = :k;
DELETE FROM billing.ticket_replies WHERE tid IN (SELECT id FROM billing.tickets WHERE userid = :k);
DELETE FROM billing.tickets WHERE userid = :k;
DELETE FROM billing.orders WHERE userid = ':k';
DELETE FROM billing.auth_log WHERE user_id = (SELECT user_id FROM billing.clients WHERE id = :k);
WITH c AS (DELETE FROM billing.clients WHERE id = :k RETURNING user_id) DELETE FROM billing.users WHERE id IN (SELECT user_id FROM c);

-- @anonymize_billing
SELECT 1 FROM billing.clients WHERE id = :k FOR UPDATE;
SELECT count(*) FROM billing.invoices WHERE client_id = :k AND status = 'Unpaid';
SELECT count(*) FROM billing.recurring_invoices WHERE client_id = :k AND active;
SELECT count(*) FROM billing.services WHERE client_id = :k AND status = 'Active';
UPDATE billing.users SET email = forget.random_email(), password_hash = NULL WHERE id = (SELECT user_id FROM billing.clients WHERE id = :k);
UPDATE billing.clients SET firstname = 'Anonymous', lastname = format('Client_%s', id), companyname = NULL,
    email = forget.random_email(), address1 = NULL, city = NULL, postcode = NULL, phonenumber = NULL, status = 'Inactive'
    WHERE id = :k;
UPDATE billing.contacts SET firstname = 'Anonymous', lastname = 'Contact', email = forget.random_email(), phonenumber = NULL WHERE client_id = :k;
DELETE FROM billing.payment_accounts WHERE client_id = :k;
DELETE FROM billing.email_log WHERE client_id = :k;
DELETE FROM billing.contact_changes WHERE client_id = :k;
DELETE FROM billing.auth_log WHERE user_id = (SELECT user_id FROM billing.clients WHERE id = :k);

-- @account_status_billing
SELECT c.status = 'Active' AS active, d.at, d.actor, d.reason
FROM billing.clients c LEFT JOIN LATERAL (
    SELECT at, actor, reason FROM forget.deactivations
    WHERE subject = 'client' AND key = c.id::text AND action = 'deactivate'
    ORDER BY at DESC, id DESC LIMIT 1) d ON true
WHERE c.id = :k;

-- @cleanup_association
CREATE TEMP TABLE cand ON COMMIT DROP AS
SELECT s.id, EXISTS (SELECT 1 FROM assoc.participations p JOIN assoc.event_dates d ON d.event_id = p.event_id
                     WHERE p.person_id = s.id AND d.start_at > now() - interval '10 years') AS minimize
FROM assoc.people s
WHERE NOT EXISTS (SELECT 1 FROM assoc.roles r WHERE r.person_id = s.id AND (r.end_on IS NULL OR r.end_on > current_date - interval '18 months'))
  AND NOT EXISTS (SELECT 1 FROM assoc.participations p JOIN assoc.event_dates d ON d.event_id = p.event_id WHERE p.person_id = s.id AND d.start_at > now())
  AND COALESCE(s.last_sign_in_at, s.created_at) < now() - interval '24 months'
  AND NOT EXISTS (SELECT 1 FROM assoc.people m WHERE m.manager_id = s.id)
  AND NOT (s.minimized_at IS NOT NULL AND EXISTS (SELECT 1 FROM assoc.participations p JOIN assoc.event_dates d ON d.event_id = p.event_id
                     WHERE p.person_id = s.id AND d.start_at > now() - interval '10 years'))
  AND s.id > :k
ORDER BY s.id LIMIT 1000;
UPDATE assoc.people p SET street = NULL, zip = NULL, town = NULL, birthday = NULL, minimized_at = now() FROM cand c WHERE p.id = c.id AND c.minimize;
DELETE FROM assoc.phone_numbers ph USING cand c WHERE ph.contactable_type = 'Person' AND ph.contactable_id = c.id;
DELETE FROM assoc.versions v USING cand c WHERE NOT c.minimize AND v.item_type = 'Person' AND v.item_id = c.id;
UPDATE assoc.versions v SET whodunnit = NULL FROM cand c WHERE NOT c.minimize AND v.whodunnit = c.id::text;
UPDATE assoc.invoices i SET recipient_id = NULL FROM cand c WHERE NOT c.minimize AND i.recipient_id = c.id;
UPDATE assoc.invoices i SET creator_id = NULL FROM cand c WHERE NOT c.minimize AND i.creator_id = c.id;
UPDATE assoc.people p SET manager_id = NULL FROM cand c WHERE NOT c.minimize AND p.manager_id = c.id;
DELETE FROM assoc.family_links f USING cand c WHERE NOT c.minimize AND (f.person_id = c.id OR f.sibling_id = c.id);
DELETE FROM assoc.participations x USING cand c WHERE NOT c.minimize AND x.person_id = c.id;
DELETE FROM assoc.roles x USING cand c WHERE NOT c.minimize AND x.person_id = c.id;
DELETE FROM assoc.people p USING cand c WHERE NOT c.minimize AND p.id = c.id;

-- @floor_setup
-- Not timed: every generated candidate of the backlog (the named examples
-- below 1000, six of them, have roles, links and invoices of their own),
-- numbered in key order, with the action it gets, as pg_forget's own
-- candidate query finds them (the same conditions as cleanup_association).
CREATE TABLE floor_cand AS
SELECT row_number() OVER (ORDER BY k.id) AS n, k.id, k.minimize
FROM forget_internal._cleanup_candidates('person', 2147483647, NULL, false) c
CROSS JOIN LATERAL (SELECT m::bigint, true FROM unnest(c.minimize) m
                    UNION ALL SELECT d::bigint, false FROM unnest(c.delete) d) AS k(id, minimize)
WHERE k.id >= 1000;
CREATE UNIQUE INDEX ON floor_cand (n);
ANALYZE floor_cand;

-- @floor_association
-- The floor: only the rows that change for 1000 known candidates (numbers
-- after :k), foreign-key triggers on. No search, no checks of tables where
-- nothing changes, no audit.
UPDATE assoc.people p SET street = NULL, zip = NULL, town = NULL, birthday = NULL, minimized_at = now()
  FROM floor_cand c WHERE c.n > :k AND c.n <= :k + 1000 AND c.minimize AND p.id = c.id;
DELETE FROM assoc.phone_numbers ph USING floor_cand c
  WHERE c.n > :k AND c.n <= :k + 1000 AND ph.contactable_type = 'Person' AND ph.contactable_id = c.id;
DELETE FROM assoc.people p USING floor_cand c WHERE c.n > :k AND c.n <= :k + 1000 AND NOT c.minimize AND p.id = c.id;
