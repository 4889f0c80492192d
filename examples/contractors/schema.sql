-- Contractor management (SPEC.md problem 4): inactive means no invoice
-- submitted for a while; deactivation is the is_active flag, never a change
-- of the contractor's type.
CREATE SCHEMA contractors;
SET search_path = contractors, public;
CREATE TABLE contractors (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL,
    email           text NOT NULL UNIQUE,
    contractor_type text NOT NULL CHECK (contractor_type IN ('freelancer', 'agency')),
    is_active       boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE invoices (
    id            bigserial PRIMARY KEY,
    contractor_id bigint NOT NULL REFERENCES contractors,
    submitted_at  timestamptz NOT NULL,
    amount        numeric(10,2) NOT NULL
);
CREATE INDEX ON invoices (contractor_id, submitted_at);
