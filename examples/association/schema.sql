-- An association's member database (SPEC.md problem 5).
CREATE SCHEMA assoc;
SET search_path = assoc, public;
CREATE TABLE households (id bigserial PRIMARY KEY, name text NOT NULL);
CREATE TABLE people (
    id              bigserial PRIMARY KEY,
    first_name      text NOT NULL,
    last_name       text NOT NULL,
    street          text, zip text, town text, birthday date,
    email           text UNIQUE,
    household_id    bigint REFERENCES households ON DELETE SET NULL,
    manager_id      bigint REFERENCES people ON DELETE SET NULL,
    last_sign_in_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    minimized_at    timestamptz
);
CREATE TABLE roles (
    id bigserial PRIMARY KEY, person_id bigint NOT NULL REFERENCES people,
    kind text NOT NULL, start_on date NOT NULL, end_on date
);
CREATE TABLE events (id bigserial PRIMARY KEY, name text NOT NULL);
CREATE TABLE event_dates (id bigserial PRIMARY KEY, event_id bigint NOT NULL REFERENCES events, start_at timestamptz NOT NULL);
CREATE TABLE participations (
    id bigserial PRIMARY KEY, person_id bigint NOT NULL REFERENCES people,
    event_id bigint NOT NULL REFERENCES events, created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE family_links (
    person_id bigint NOT NULL REFERENCES people, sibling_id bigint NOT NULL REFERENCES people,
    PRIMARY KEY (person_id, sibling_id)
);
CREATE TABLE invoices (
    id bigserial PRIMARY KEY,
    recipient_id bigint REFERENCES people ON DELETE SET NULL,
    creator_id   bigint REFERENCES people ON DELETE SET NULL,
    recipient_name text, total numeric(10,2) NOT NULL
);
-- Polymorphic: contactable_type says which table contactable_id points into.
CREATE TABLE phone_numbers (id bigserial PRIMARY KEY, contactable_type text NOT NULL, contactable_id bigint NOT NULL, number text NOT NULL);
-- A change log: item_type/item_id is what changed, whodunnit (text) who did it.
CREATE TABLE versions (
    id bigserial PRIMARY KEY, item_type text NOT NULL, item_id bigint NOT NULL,
    event text NOT NULL, whodunnit text, created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON people (household_id);
CREATE INDEX ON people (manager_id);
CREATE INDEX ON roles (person_id);
CREATE INDEX ON event_dates (event_id);
CREATE INDEX ON participations (person_id);
CREATE INDEX ON participations (event_id);
CREATE INDEX ON family_links (sibling_id);
CREATE INDEX ON invoices (recipient_id);
CREATE INDEX ON invoices (creator_id);
CREATE INDEX ON phone_numbers (contactable_id);
CREATE INDEX ON versions (item_id);
CREATE INDEX ON versions (whodunnit);
