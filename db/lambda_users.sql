-- The Lambdas' own database users (docs/deployment.md, "The database"): each may do what its
-- function does and nothing else, so that a leaked secret of one opens no more than that.
--   cruddur_events:  the events Lambda (lib/event_log.py): appends and purges the event log
--   cruddur_sign_up: the sign-up Lambda (lib/identity.py): reads, makes and links users
-- Idempotent; passwords are set apart (bin/db/lambda-users), never written here.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cruddur_events') THEN
    CREATE ROLE cruddur_events LOGIN;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cruddur_sign_up') THEN
    CREATE ROLE cruddur_sign_up LOGIN;
  END IF;
END
$$;

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM cruddur_events, cruddur_sign_up;
REVOKE CREATE ON SCHEMA public FROM cruddur_events, cruddur_sign_up;
GRANT USAGE ON SCHEMA public TO cruddur_events, cruddur_sign_up;

-- lock_head.sql (INSERT ... ON CONFLICT DO UPDATE ... RETURNING), set_head.sql, known_keys.sql,
-- insert.sql, purge.sql; a deleted message's text: note_erased.sql, erase.sql (its data only),
-- lock_erasures.sql (LOCK ... IN SHARE MODE needs SELECT), purge_erased.sql
GRANT SELECT, INSERT, UPDATE ON public.event_heads TO cruddur_events;
GRANT SELECT, INSERT, DELETE ON public.events TO cruddur_events;
GRANT UPDATE (data) ON public.events TO cruddur_events;
GRANT SELECT, INSERT, DELETE ON public.erased_messages TO cruddur_events;

-- check_sign_up and create_user: find by email, handle or identity; make a user; link one
GRANT SELECT, INSERT ON public.users TO cruddur_sign_up;
GRANT UPDATE (cognito_user_id) ON public.users TO cruddur_sign_up;
