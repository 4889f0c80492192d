-- pg_forget configuration for the association.
SET search_path = assoc, public;
SELECT forget.register_subject('person', 'assoc.people', minimized_column => 'minimized_at',
                               identity => '{first_name,last_name,email}');
-- Links without foreign keys: polymorphic phone numbers and change-log entries
-- about a person, and the change log's author (a text column holding the id).
SELECT forget.add_link('assoc.phone_numbers', 'contactable_id', 'assoc.people', condition => $$contactable_type = 'Person'$$);
SELECT forget.add_link('assoc.versions', 'item_id', 'assoc.people', condition => $$item_type = 'Person'$$);
SELECT forget.add_link('assoc.versions', 'whodunnit', 'assoc.people');
-- Entries a destroyed person authored stay, with the author hidden.
SELECT forget.set_policy('assoc.versions', 'whodunnit', 'delete', 'anonymize');
SELECT forget.mask('assoc.versions', 'whodunnit', 'NULL');

-- Minimizing keeps the name, drops address, birthday and phone numbers.
SELECT forget.mask('assoc.people', 'street', 'NULL', 'minimize');
SELECT forget.mask('assoc.people', 'zip', 'NULL', 'minimize');
SELECT forget.mask('assoc.people', 'town', 'NULL', 'minimize');
SELECT forget.mask('assoc.people', 'birthday', 'NULL', 'minimize');
SELECT forget.set_policy('assoc.phone_numbers', 'contactable_id', 'minimize', 'delete');

-- Who nobody needs: no running role and none ended in the last 18 months, no
-- future event, no sign-in for 24 months, managing nobody.
SELECT forget.add_cleanup_condition('no_recent_role', $$NOT EXISTS (SELECT 1 FROM assoc.roles r
    WHERE r.person_id = s.id AND (r.end_on IS NULL OR r.end_on > current_date - interval '18 months'))$$);
SELECT forget.add_cleanup_condition('no_future_event', $$NOT EXISTS (SELECT 1 FROM assoc.participations p
    JOIN assoc.event_dates d ON d.event_id = p.event_id WHERE p.person_id = s.id AND d.start_at > now())$$);
SELECT forget.add_cleanup_condition('no_recent_sign_in',
    $$COALESCE(s.last_sign_in_at, s.created_at) < now() - interval '24 months'$$);
SELECT forget.add_cleanup_condition('manages_nobody', $$NOT EXISTS (SELECT 1 FROM assoc.people m WHERE m.manager_id = s.id)$$);
-- Took part in an event within 10 years: minimize; otherwise destroy.
SELECT forget.set_cleanup(true, minimize_when => $$EXISTS (SELECT 1 FROM assoc.participations p
    JOIN assoc.event_dates d ON d.event_id = p.event_id WHERE p.person_id = s.id AND d.start_at > now() - interval '10 years')$$);
-- A new role or participation clears the minimized mark.
SELECT forget.add_activity('assoc.roles', 'start_on', via => 'person_id');
SELECT forget.add_activity('assoc.participations', 'created_at', via => 'person_id');
SELECT forget.add_activity('assoc.people', 'last_sign_in_at');

-- Destroying dissolves a household left with a single member.
CREATE FUNCTION assoc.dissolve_household(subject text, key text, context jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    hh bigint;
BEGIN
    SELECT household_id INTO hh FROM assoc.people WHERE id = key::bigint;
    IF hh IS NOT NULL AND (SELECT count(*) FROM assoc.people WHERE household_id = hh) <= 2 THEN
        UPDATE assoc.people SET household_id = NULL WHERE household_id = hh;
        DELETE FROM assoc.households WHERE id = hh;
    END IF;
END
$$;
SELECT forget.on('before_delete', 'assoc.dissolve_household(text,text,jsonb)');
