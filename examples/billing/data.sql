-- :clients clients (default 50), each with a login user, contacts, invoices
-- with items, services with fields, transactions, payment accounts, logs,
-- settings, custom fields, notes, package restrictions, tickets and orders.
-- Client 1 has an open invoice and an active service: deleting it is blocked.
\if :{?clients}
\else
\set clients 50
\endif
SET search_path = billing, public;
INSERT INTO currencies (code) VALUES ('EUR'), ('USD');
INSERT INTO products (name) SELECT 'Plan ' || g FROM generate_series(1, 5) g;
INSERT INTO custom_fields (name) VALUES ('VAT number'), ('Referral');
INSERT INTO users (id, email, password_hash)
    SELECT g, 'user' || g || '@example.com', md5(g::text) FROM generate_series(1, :clients) g;
INSERT INTO clients (id, user_id, firstname, lastname, email, address1, city, postcode, phonenumber, currency_id)
    SELECT g, g, 'First' || g, 'Last' || g, 'client' || g || '@example.com', g || ' Main Street', 'Springfield',
           lpad(g::text, 5, '0'), '+1-555-' || lpad(g::text, 4, '0'), 1 + g % 2
    FROM generate_series(1, :clients) g;
INSERT INTO contacts (client_id, firstname, lastname, email, phonenumber)
    SELECT c, 'Contact' || k, 'Of' || c, 'contact' || k || '.' || c || '@example.com', '+1-555-9' || k
    FROM generate_series(1, :clients) c, generate_series(1, 2) k;
INSERT INTO invoices (id, client_id, status, total)
    SELECT (c - 1) * 3 + k, c, CASE WHEN c = 1 AND k = 3 THEN 'Unpaid' ELSE 'Paid' END, 10 * k
    FROM generate_series(1, :clients) c, generate_series(1, 3) k;
INSERT INTO invoice_items (invoice_id, description, amount)
    SELECT i.id, 'Item ' || k, i.total / 2 FROM invoices i, generate_series(1, 2) k;
INSERT INTO recurring_invoices (client_id, active, amount) SELECT c, c = 1, 9.99 FROM generate_series(1, :clients) c;
INSERT INTO services (id, client_id, product_id, domain, status)
    SELECT c, c, 1 + c % 5, 'site' || c || '.example', CASE WHEN c = 1 THEN 'Active' ELSE 'Terminated' END
    FROM generate_series(1, :clients) c;
INSERT INTO service_fields (service_id, name, value)
    SELECT s.id, f, f || '-' || s.id FROM services s, unnest(ARRAY['username', 'server']) f;
INSERT INTO transactions (client_id, invoice_id, amount, gateway)
    SELECT i.client_id, i.id, i.total, 'card' FROM invoices i WHERE i.status = 'Paid';
INSERT INTO payment_accounts (client_id, iban, holder)
    SELECT c, 'DE' || lpad(c::text, 20, '0'), 'First' || c || ' Last' || c FROM generate_series(1, :clients) c;
INSERT INTO email_log (client_id, subject, sent_at)
    SELECT c, 'Invoice ' || k, now() - k * interval '1 day' FROM generate_series(1, :clients) c, generate_series(1, 2) k;
INSERT INTO contact_changes (client_id, field, old_value) SELECT c, 'email', 'old' || c || '@example.com' FROM generate_series(1, :clients) c;
INSERT INTO auth_log (user_id, ip, at)
    SELECT c, ('10.0.0.' || (c % 250))::inet, now() - k * interval '1 hour' FROM generate_series(1, :clients) c, generate_series(1, 2) k;
INSERT INTO client_settings (client_id, name, value) SELECT c, 'language', 'en' FROM generate_series(1, :clients) c;
INSERT INTO custom_field_values (field_id, client_id, value) SELECT 1, c, 'VAT' || c FROM generate_series(1, :clients) c;
INSERT INTO notes (client_id, body) SELECT c, 'Called about invoice' FROM generate_series(1, :clients) c;
INSERT INTO restricted_packages (client_id, product_id) SELECT c, 1 + c % 5 FROM generate_series(1, :clients) c;
INSERT INTO tickets (id, userid, title, body) SELECT c, c, 'Help', 'My site is down' FROM generate_series(1, :clients) c;
INSERT INTO ticket_replies (tid, message) SELECT t.id, 'Reply ' || k FROM tickets t, generate_series(1, 2) k;
INSERT INTO orders (userid, amount) SELECT c::text, 20 FROM generate_series(1, :clients) c;
SELECT setval(pg_get_serial_sequence('billing.users', 'id'), :clients);
SELECT setval(pg_get_serial_sequence('billing.clients', 'id'), :clients);
SELECT setval(pg_get_serial_sequence('billing.invoices', 'id'), :clients * 3);
SELECT setval(pg_get_serial_sequence('billing.services', 'id'), :clients);
SELECT setval(pg_get_serial_sequence('billing.tickets', 'id'), :clients);
