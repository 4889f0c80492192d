-- A hosting-billing system (SPEC.md problem 1). Plugin tables (support
-- tickets, orders) have no foreign keys to clients: they hook in through
-- declared links.
CREATE SCHEMA billing;
SET search_path = billing, public;

CREATE TABLE currencies (id serial PRIMARY KEY, code text NOT NULL UNIQUE);
CREATE TABLE products (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL UNIQUE, password_hash text);
CREATE TABLE clients (
    id          bigserial PRIMARY KEY,
    user_id     bigint REFERENCES users,
    firstname   text, lastname text, companyname text,
    email       text NOT NULL UNIQUE,
    address1    text, city text, postcode text, phonenumber text,
    currency_id int REFERENCES currencies,
    status      text NOT NULL DEFAULT 'Active',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE contacts (
    id bigserial PRIMARY KEY, client_id bigint NOT NULL REFERENCES clients,
    firstname text, lastname text, email text, phonenumber text
);
CREATE TABLE invoices (
    id bigserial PRIMARY KEY, client_id bigint NOT NULL REFERENCES clients,
    status text NOT NULL, total numeric(10,2) NOT NULL, created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE invoice_items (
    id bigserial PRIMARY KEY, invoice_id bigint NOT NULL REFERENCES invoices ON DELETE CASCADE,
    description text, amount numeric(10,2)
);
CREATE TABLE recurring_invoices (
    id bigserial PRIMARY KEY, client_id bigint NOT NULL REFERENCES clients,
    active boolean NOT NULL, amount numeric(10,2)
);
CREATE TABLE services (
    id bigserial PRIMARY KEY, client_id bigint NOT NULL REFERENCES clients,
    product_id int REFERENCES products, domain text, status text NOT NULL
);
CREATE TABLE service_fields (
    service_id bigint NOT NULL REFERENCES services ON DELETE CASCADE, name text NOT NULL, value text,
    PRIMARY KEY (service_id, name)
);
CREATE TABLE transactions (
    id bigserial PRIMARY KEY, client_id bigint NOT NULL REFERENCES clients,
    invoice_id bigint REFERENCES invoices, amount numeric(10,2), gateway text
);
CREATE TABLE payment_accounts (
    id bigserial PRIMARY KEY, client_id bigint NOT NULL REFERENCES clients, iban text, holder text
);
CREATE TABLE email_log (id bigserial PRIMARY KEY, client_id bigint NOT NULL REFERENCES clients, subject text, sent_at timestamptz);
CREATE TABLE contact_changes (id bigserial PRIMARY KEY, client_id bigint NOT NULL REFERENCES clients, field text, old_value text);
CREATE TABLE auth_log (id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users, ip inet, at timestamptz);
CREATE TABLE client_settings (client_id bigint NOT NULL REFERENCES clients, name text NOT NULL, value text, PRIMARY KEY (client_id, name));
CREATE TABLE custom_fields (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE custom_field_values (
    field_id int NOT NULL REFERENCES custom_fields, client_id bigint NOT NULL REFERENCES clients, value text,
    PRIMARY KEY (client_id, field_id)
);
CREATE TABLE notes (id bigserial PRIMARY KEY, client_id bigint NOT NULL REFERENCES clients, body text);
CREATE TABLE restricted_packages (client_id bigint NOT NULL REFERENCES clients, product_id int NOT NULL REFERENCES products, PRIMARY KEY (client_id, product_id));
-- Plugins: no foreign keys.
CREATE TABLE tickets (id bigserial PRIMARY KEY, userid bigint NOT NULL, title text, body text);
CREATE TABLE ticket_replies (id bigserial PRIMARY KEY, tid bigint NOT NULL REFERENCES tickets ON DELETE CASCADE, message text);
CREATE TABLE orders (id bigserial PRIMARY KEY, userid text NOT NULL, amount numeric(10,2));

-- Indexes on every referencing column: deletes find rows without scanning.
CREATE INDEX ON contacts (client_id);
CREATE INDEX ON invoices (client_id);
CREATE INDEX ON invoice_items (invoice_id);
CREATE INDEX ON recurring_invoices (client_id);
CREATE INDEX ON services (client_id);
CREATE INDEX ON transactions (client_id);
CREATE INDEX ON transactions (invoice_id);
CREATE INDEX ON payment_accounts (client_id);
CREATE INDEX ON email_log (client_id);
CREATE INDEX ON contact_changes (client_id);
CREATE INDEX ON auth_log (user_id);
CREATE INDEX ON notes (client_id);
CREATE INDEX ON tickets (userid);
CREATE INDEX ON ticket_replies (tid);
CREATE INDEX ON orders (userid);
CREATE INDEX ON clients (user_id);
