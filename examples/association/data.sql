-- Named people 1..15 each show one rule (see the comments); people from 1000
-- on are :bulk (default 200) generated members, one in :every (default 3) a
-- candidate.
\if :{?bulk}
\else
\set bulk 200
\endif
\if :{?every}
\else
\set every 3
\endif
SET search_path = assoc, public;
INSERT INTO households (id, name) VALUES (1, 'Miller household'), (2, 'Big family');
INSERT INTO events (id, name) VALUES (1, 'Summer camp 2014'), (2, 'Spring fair'), (3, 'Next year''s gala');
INSERT INTO event_dates (event_id, start_at) VALUES
    (1, now() - interval '12 years'), (1, now() - interval '12 years' + interval '1 day'),
    (2, now() - interval '2 years'), (2, now() - interval '5 years'),
    (3, now() + interval '6 months');
INSERT INTO people (id, first_name, last_name, street, zip, town, birthday, email, household_id, last_sign_in_at, created_at) VALUES
    (1,  'Ada',   'Active',    '1 Main St', '1000', 'Bern', '1980-01-01', 'ada@example.org',   NULL, now() - interval '3 years', now() - interval '10 years'),  -- open-ended role
    (2,  'Bert',  'Gone',      '2 Main St', '1000', 'Bern', '1970-02-02', 'bert@example.org',  NULL, now() - interval '3 years', now() - interval '10 years'),  -- destroyed
    (3,  'Cleo',  'Camper',    '3 Main St', '1000', 'Bern', '1990-03-03', 'cleo@example.org',  NULL, now() - interval '3 years', now() - interval '10 years'),  -- minimized: event 2 years ago
    (4,  'Dan',   'Double',    '4 Main St', '1000', 'Bern', '1960-04-04', 'dan@example.org',   NULL, now() - interval '3 years', now() - interval '10 years'),  -- ended role + running open-ended role
    (5,  'Eve',   'Recent',    '5 Main St', '1000', 'Bern', '1985-05-05', 'eve@example.org',   NULL, now() - interval '1 month', now() - interval '10 years'),  -- signed in recently
    (6,  'Finn',  'Future',    '6 Main St', '1000', 'Bern', '1986-06-06', 'finn@example.org',  NULL, now() - interval '3 years', now() - interval '10 years'),  -- registered for a future event
    (7,  'Gus',   'Manager',   '7 Main St', '1000', 'Bern', '1955-07-07', 'gus@example.org',   NULL, now() - interval '3 years', now() - interval '10 years'),  -- manages person 8
    (8,  'Hana',  'Managed',   '8 Main St', '1000', 'Bern', '2010-08-08', 'hana@example.org',  NULL, now() - interval '1 week',  now() - interval '5 years'),
    (9,  'Ivo',   'Miller',    '9 Oak Rd',  '2000', 'Thun', '1975-09-09', 'ivo@example.org',   1,    now() - interval '3 years', now() - interval '10 years'),  -- destroyed: household of two dissolved
    (10, 'Jana',  'Miller',    '9 Oak Rd',  '2000', 'Thun', '1976-10-10', 'jana@example.org',  1,    now() - interval '2 days',  now() - interval '10 years'),
    (11, 'Karl',  'Treasurer', '11 Elm St', '3000', 'Biel', '1950-11-11', 'karl@example.org',  NULL, now() - interval '4 years', now() - interval '12 years'),  -- destroyed: invoices, log, phones, sibling
    (12, 'Lea',   'Treasurer', '12 Elm St', '3000', 'Biel', '1952-12-12', 'lea@example.org',   NULL, now() - interval '1 day',   now() - interval '12 years'),
    (13, 'Mia',   'Stuck',     '13 Elm St', '3000', 'Biel', '1953-01-13', 'mia@example.org',   NULL, now() - interval '4 years', now() - interval '12 years'),  -- destroyed (tests make this one fail)
    (14, 'Noa',   'Minimized', NULL,        NULL,   NULL,   NULL,         'noa@example.org',   NULL, now() - interval '4 years', now() - interval '12 years'),  -- minimized before, event 5 years ago: stays
    (15, 'Olli',  'Faded',     NULL,        NULL,   NULL,   NULL,         'olli@example.org',  NULL, now() - interval '4 years', now() - interval '15 years');  -- minimized before, last event 12 years ago: destroyed
UPDATE people SET manager_id = 7 WHERE id = 8;
UPDATE people SET minimized_at = now() - interval '1 year' WHERE id IN (14, 15);
INSERT INTO roles (person_id, kind, start_on, end_on) VALUES
    (1, 'member', current_date - 3000, NULL),
    (2, 'member', current_date - 3000, current_date - 1000),
    (3, 'member', current_date - 3000, current_date - 1000),
    (4, 'board',  current_date - 3000, current_date - 1000),
    (4, 'member', current_date - 2000, NULL),
    (11, 'treasurer', current_date - 4000, current_date - 1500);
INSERT INTO participations (person_id, event_id, created_at) VALUES
    (3, 2, now() - interval '2 years'), (6, 3, now() - interval '1 month'),
    (14, 2, now() - interval '5 years'), (15, 1, now() - interval '12 years');
UPDATE event_dates SET start_at = now() - interval '5 years' WHERE event_id = 2 AND start_at > now() - interval '3 years'
    AND EXISTS (SELECT 1 FROM participations WHERE person_id = 14 AND event_id = 2) AND false;
INSERT INTO family_links VALUES (11, 12), (12, 11);
INSERT INTO invoices (recipient_id, creator_id, recipient_name, total) VALUES
    (11, 12, 'Karl Treasurer', 50), (12, 11, 'Lea Treasurer', 60), (5, 11, 'Eve Recent', 70);
INSERT INTO phone_numbers (contactable_type, contactable_id, number) VALUES
    ('Person', 11, '+41 31 111 11 11'), ('Person', 3, '+41 31 333 33 33'), ('Household', 11, '+41 31 999 99 99');
INSERT INTO versions (item_type, item_id, event, whodunnit) VALUES
    ('Person', 11, 'create', '12'), ('Person', 5, 'update', '11'), ('Invoice', 1, 'create', '11');

-- The bulk: one in :every is a candidate; half of those took part in the
-- spring fair (so are minimized instead); the rest signed in recently.
INSERT INTO people (id, first_name, last_name, street, email, last_sign_in_at, created_at)
    SELECT g, 'Member', 'No' || g, g || ' Bulk St', 'member' || g || '@example.org',
           CASE WHEN g % :every = 0 THEN now() - interval '5 years' ELSE now() - interval '1 day' END,
           now() - interval '8 years'
    FROM generate_series(1000, 999 + :bulk) g;
INSERT INTO participations (person_id, event_id, created_at)
    SELECT g, 2, now() - interval '2 years' FROM generate_series(1000, 999 + :bulk) g WHERE g % (2 * :every) = 0;
INSERT INTO phone_numbers (contactable_type, contactable_id, number)
    SELECT 'Person', g, '+41 ' || g FROM generate_series(1000, 999 + :bulk) g;
SELECT setval(pg_get_serial_sequence('assoc.people', 'id'), 999 + :bulk);
