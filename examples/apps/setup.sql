-- The database roles of the example applications (examples/apps), for a
-- database with pg_forget and the billing example loaded. Run it as the
-- extension's owner (a superuser), once per database:
--
--   psql -d billing -f examples/apps/setup.sql
--   psql -d billing -v app_role=portal -v support_role=helpdesk -f examples/apps/setup.sql
--
-- Two LOGIN roles, each given only what it needs, with forget.grant and
-- nothing else: no privilege on any billing table, no USAGE on schema
-- billing. The functions of pg_forget run as its owner and do the work.
-- LISTEN forget needs no privilege at all.
--
--   billing_app      the account portal: login check, the account page,
--                    delete (with a grace period), restore, export
--   billing_support  the same application deployed for the help desk:
--                    login check and the account page, nothing that writes
--                    (a delete from it is refused with 42501)
--
-- Set a password (ALTER ROLE billing_app PASSWORD '...') in a real
-- deployment; the test cluster trusts local connections.
\if :{?app_role}
\else
\set app_role billing_app
\endif
\if :{?support_role}
\else
\set support_role billing_support
\endif

-- Roles belong to the cluster, not to one database: create them once.
SELECT format('CREATE ROLE %I LOGIN', r)
FROM unnest(ARRAY[:'app_role', :'support_role']) r
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r)
\gexec

-- The portal.
SELECT forget.grant('status', :'app_role');       -- account_status at login
SELECT forget.grant('eligibility', :'app_role');  -- the reasons on the account page
SELECT forget.grant('delete', :'app_role');       -- delete_client
SELECT forget.grant('restore', :'app_role');      -- restore_client during the recovery window
SELECT forget.grant('export', :'app_role');       -- export_client, the download

-- The help desk: reads only.
SELECT forget.grant('status', :'support_role');
SELECT forget.grant('eligibility', :'support_role');
