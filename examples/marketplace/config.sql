-- pg_forget configuration for the marketplace.
SET search_path = market, public;
SELECT forget.register_subject('user', 'market.users', active_column => 'is_active',
                               identity => '{username,email,role}');
SELECT forget.add_rule('active_projects',
    $$SELECT id FROM market.projects WHERE (seller_id = $1 OR buyer_id = $1) AND status IN ('active', 'in_progress')$$,
    'Cannot delete account with active projects');
SELECT forget.add_rule('pending_payments',
    $$SELECT id FROM market.payments WHERE payer_id = $1 AND status = 'pending'$$,
    'Cannot delete account with pending payments');
SELECT forget.add_rule('open_disputes',
    $$SELECT id FROM market.disputes WHERE opened_by = $1 AND status = 'open'$$,
    'Cannot delete account with open disputes');
-- Anonymizing keeps the account row with unique placeholders.
SELECT forget.mask('market.users', 'username', $$format('deleted_user_%s', id)$$);
SELECT forget.mask('market.users', 'email', 'forget.random_email()');
SELECT forget.mask('market.users', 'full_name', $$'Deleted User'$$);
SELECT forget.mask('market.sessions', 'ip_address', 'NULL');
SELECT forget.set_policy('market.sessions', 'user_id', 'anonymize', 'delete');
