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
