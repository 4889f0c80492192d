-- :users users (default 30). User 1 has an active project, a pending payment
-- and an open dispute; everyone else has finished business only.
\if :{?users}
\else
\set users 30
\endif
SET search_path = market, public;
INSERT INTO users (id, username, email, full_name, role)
    SELECT g, 'user' || g, 'user' || g || '@example.com', 'Person ' || g, CASE WHEN g % 2 = 0 THEN 'seller' ELSE 'buyer' END
    FROM generate_series(1, :users) g;
SELECT setval(pg_get_serial_sequence('market.users', 'id'), :users);
INSERT INTO projects (id, seller_id, buyer_id, title, status)
    SELECT g, 1 + (g % :users), 1 + ((g + 1) % :users), 'Project ' || g, CASE WHEN g = :users THEN 'active' ELSE 'completed' END
    FROM generate_series(1, :users) g;
INSERT INTO payments (project_id, payer_id, amount, status)
    SELECT p.id, p.buyer_id, 100, CASE WHEN p.buyer_id = 1 THEN 'pending' ELSE 'paid' END FROM projects p;
INSERT INTO disputes (project_id, opened_by, reason, status)
    SELECT p.id, p.buyer_id, 'Late delivery', CASE WHEN p.buyer_id = 1 THEN 'open' ELSE 'resolved' END
    FROM projects p WHERE p.id % 3 = 0 OR p.buyer_id = 1;
INSERT INTO sessions (user_id, ip_address) SELECT g, ('192.0.2.' || (g % 250))::inet FROM generate_series(1, :users) g, generate_series(1, 2);
