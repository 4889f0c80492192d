-- pg_forget configuration for the billing system.
SET search_path = billing, public;
SELECT forget.register_subject('client', 'billing.clients', active_column => 'status',
                               active_value => 'Active', inactive_value => 'Inactive');

-- Plugins hook in without foreign keys: tickets by numeric id, orders by a
-- text column holding the id. The login user is owned by the client row.
SELECT forget.add_link('billing.tickets', 'userid', 'billing.clients');
SELECT forget.add_link('billing.orders', 'userid', 'billing.clients');
SELECT forget.add_link('billing.clients', 'user_id', 'billing.users', 'id');

-- Staff may delete a client only without open invoices, recurring invoices
-- or active services.
SELECT forget.add_rule('open_invoices',
    $$SELECT id FROM billing.invoices WHERE client_id = $1 AND status = 'Unpaid'$$,
    'client has open invoices');
SELECT forget.add_rule('recurring_invoices',
    $$SELECT id FROM billing.recurring_invoices WHERE client_id = $1 AND active$$,
    'client has recurring invoices');
SELECT forget.add_rule('active_services',
    $$SELECT id FROM billing.services WHERE client_id = $1 AND status = 'Active'$$,
    'client has active services');

-- Anonymize (problem 2): the client row stays, identifying details are
-- replaced, payment accounts and the three logs go, invoices stay.
SELECT forget.mask('billing.clients', 'firstname', $$'Anonymous'$$);
SELECT forget.mask('billing.clients', 'lastname', $$format('Client_%s', id)$$);
SELECT forget.mask('billing.clients', 'companyname', 'NULL');
SELECT forget.mask('billing.clients', 'email', 'forget.random_email()');
SELECT forget.mask('billing.clients', 'address1', 'NULL');
SELECT forget.mask('billing.clients', 'city', 'NULL');
SELECT forget.mask('billing.clients', 'postcode', 'NULL');
SELECT forget.mask('billing.clients', 'phonenumber', 'NULL');
SELECT forget.mask('billing.contacts', 'firstname', $$'Anonymous'$$);
SELECT forget.mask('billing.contacts', 'lastname', $$'Contact'$$);
SELECT forget.mask('billing.contacts', 'email', 'forget.random_email()');
SELECT forget.mask('billing.contacts', 'phonenumber', 'NULL');
SELECT forget.mask('billing.users', 'email', 'forget.random_email()');
SELECT forget.mask('billing.users', 'password_hash', 'NULL');
-- The export (export_client) shows the password hash as null. Export masks
-- came with 0.2.0: a 0.1.0 installation (the upgrade tests load this file
-- into one) skips it.
SELECT extversion <> '0.1.0' AS export_masks FROM pg_extension WHERE extname = 'pg_forget' \gset
\if :export_masks
SELECT forget.mask('billing.users', 'password_hash', 'NULL', 'export');
\endif
SELECT forget.set_policy('billing.contacts', 'client_id', 'anonymize', 'anonymize');
SELECT forget.set_policy('billing.clients', 'user_id', 'anonymize', 'anonymize');
SELECT forget.set_policy('billing.payment_accounts', 'client_id', 'anonymize', 'delete');
SELECT forget.set_policy('billing.email_log', 'client_id', 'anonymize', 'delete');
SELECT forget.set_policy('billing.contact_changes', 'client_id', 'anonymize', 'delete');
SELECT forget.set_policy('billing.auth_log', 'user_id', 'anonymize', 'delete');
