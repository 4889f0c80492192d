SET search_path = contractors, public;
INSERT INTO contractors (id, name, email, contractor_type, is_active, created_at) VALUES
    (1, 'Ana Busy',      'ana@example.com',  'freelancer', true,  now() - interval '3 years'),  -- invoiced last month
    (2, 'Ben Quiet',     'ben@example.com',  'freelancer', true,  now() - interval '3 years'),  -- last invoice 8 months ago
    (3, 'Cid New',       'cid@example.com',  'freelancer', true,  now() - interval '2 years'),  -- never invoiced: no activity
    (4, 'Dot Agency',    'dot@example.com',  'agency',     true,  now() - interval '5 years'),  -- last invoice 2 years ago
    (5, 'Eli Stopped',   'eli@example.com',  'freelancer', false, now() - interval '5 years');  -- already inactive
INSERT INTO invoices (contractor_id, submitted_at, amount) VALUES
    (1, now() - interval '1 month', 100), (1, now() - interval '1 year', 90),
    (2, now() - interval '8 months', 200),
    (4, now() - interval '2 years', 300),
    (5, now() - interval '1 year', 50);
SELECT setval(pg_get_serial_sequence('contractors.contractors', 'id'), 5);
