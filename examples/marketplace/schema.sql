-- A freelance marketplace (SPEC.md problem 3). Projects, payments and
-- disputes involve two users; they are kept when one of them leaves (the
-- reference is nullified), sessions go with the user.
CREATE SCHEMA market;
SET search_path = market, public;
CREATE TABLE users (
    id         bigserial PRIMARY KEY,
    username   text NOT NULL UNIQUE,
    email      text NOT NULL UNIQUE,
    full_name  text,
    role       text NOT NULL DEFAULT 'buyer',
    is_active  boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE projects (
    id        bigserial PRIMARY KEY,
    seller_id bigint REFERENCES users ON DELETE SET NULL,
    buyer_id  bigint REFERENCES users ON DELETE SET NULL,
    title     text NOT NULL,
    status    text NOT NULL
);
CREATE TABLE payments (
    id         bigserial PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES projects,
    payer_id   bigint REFERENCES users ON DELETE SET NULL,
    amount     numeric(10,2) NOT NULL,
    status     text NOT NULL
);
CREATE TABLE disputes (
    id         bigserial PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES projects,
    opened_by  bigint REFERENCES users ON DELETE SET NULL,
    reason     text,
    status     text NOT NULL
);
CREATE TABLE sessions (
    id         bigserial PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    ip_address inet,
    started_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON projects (seller_id);
CREATE INDEX ON projects (buyer_id);
CREATE INDEX ON payments (project_id);
CREATE INDEX ON payments (payer_id);
CREATE INDEX ON disputes (project_id);
CREATE INDEX ON disputes (opened_by);
CREATE INDEX ON sessions (user_id);
