-- Cruddur's relational data. Users are keyed by their Cognito identity (cognito_user_id = `sub`).
-- gen_random_uuid() is built in (PostgreSQL 13+); search uses pg_trgm, a trusted extension that
-- the database's owner may create (RDS has it too).
--
-- Idempotent, and a migration too: loaded into an existing database (bin/db/schema-load, or
-- bin/db/migrate, which is the same), it adds what is missing and brings a database made with the
-- bootcamp's week-5 schema (integer reply_to_activity_uuid, times without time zone, NOT NULL
-- cognito_user_id holding 'MOCK') to this one, keeping every row.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE IF NOT EXISTS public.users (
  uuid UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  display_name TEXT NOT NULL,
  handle TEXT NOT NULL,
  email TEXT NOT NULL,
  cognito_user_id TEXT,
  created_at TIMESTAMP WITH TIME ZONE DEFAULT current_timestamp NOT NULL,
  CONSTRAINT users_handle_key UNIQUE (handle),
  CONSTRAINT users_cognito_user_id_key UNIQUE (cognito_user_id)
);

CREATE TABLE IF NOT EXISTS public.activities (
  uuid UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  user_uuid UUID NOT NULL REFERENCES public.users (uuid) ON DELETE CASCADE,
  message TEXT NOT NULL,
  replies_count INTEGER DEFAULT 0 NOT NULL,
  reposts_count INTEGER DEFAULT 0 NOT NULL,
  likes_count INTEGER DEFAULT 0 NOT NULL,
  reply_to_activity_uuid UUID REFERENCES public.activities (uuid) ON DELETE SET NULL,
  expires_at TIMESTAMP WITH TIME ZONE,
  created_at TIMESTAMP WITH TIME ZONE DEFAULT current_timestamp NOT NULL
);

-- An existing database of the bootcamp's week-5 schema.
DO $$
DECLARE
  kind TEXT;
BEGIN
  SELECT data_type INTO kind FROM information_schema.columns
   WHERE table_schema = 'public' AND table_name = 'activities' AND column_name = 'reply_to_activity_uuid';
  IF kind = 'integer' THEN  -- it could never hold an activity's uuid
    ALTER TABLE public.activities ALTER COLUMN reply_to_activity_uuid TYPE UUID USING NULL;
    ALTER TABLE public.activities ADD CONSTRAINT activities_reply_to_activity_uuid_fkey
      FOREIGN KEY (reply_to_activity_uuid) REFERENCES public.activities (uuid) ON DELETE SET NULL;
  END IF;
  FOR kind IN SELECT table_name || '.' || column_name FROM information_schema.columns
               WHERE table_schema = 'public' AND data_type = 'timestamp without time zone'
                 AND (table_name, column_name) IN (('users', 'created_at'), ('activities', 'created_at'),
                                                   ('activities', 'expires_at'))
  LOOP  -- the week-5 backend wrote UTC times without a zone
    EXECUTE format('ALTER TABLE public.%I ALTER COLUMN %I TYPE TIMESTAMP WITH TIME ZONE USING %I AT TIME ZONE ''UTC''',
                   split_part(kind, '.', 1), split_part(kind, '.', 2), split_part(kind, '.', 2));
  END LOOP;
  ALTER TABLE public.users ALTER COLUMN cognito_user_id DROP NOT NULL;
  UPDATE public.users SET cognito_user_id = NULL WHERE cognito_user_id = 'MOCK';
  UPDATE public.activities SET replies_count = coalesce(replies_count, 0),
    reposts_count = coalesce(reposts_count, 0), likes_count = coalesce(likes_count, 0)
   WHERE replies_count IS NULL OR reposts_count IS NULL OR likes_count IS NULL;
  ALTER TABLE public.activities ALTER COLUMN replies_count SET NOT NULL,
    ALTER COLUMN reposts_count SET NOT NULL, ALTER COLUMN likes_count SET NOT NULL;
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'users_handle_key') THEN
    ALTER TABLE public.users ADD CONSTRAINT users_handle_key UNIQUE (handle);
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'users_cognito_user_id_key') THEN
    ALTER TABLE public.users ADD CONSTRAINT users_cognito_user_id_key UNIQUE (cognito_user_id);
  END IF;
END $$;

-- A user's bio, which the final frontend's profile shows and edits (0 to 160 characters).
ALTER TABLE public.users ADD COLUMN IF NOT EXISTS bio TEXT;

-- Handles are unique regardless of case (lib/identity.py): `AndrewBrown` cannot sign up beside
-- `andrewbrown`, even in a race, and a handle is looked up in any case along this index. A
-- database that already holds two such handles is not changed: the load stops and names them.
DO $$
DECLARE
  clashes TEXT;
BEGIN
  IF to_regclass('public.users_handle_lower_key') IS NULL THEN
    SELECT string_agg(names, '; ') INTO clashes FROM (
      SELECT string_agg(handle, ', ' ORDER BY handle) AS names FROM public.users
       GROUP BY lower(handle) HAVING count(*) > 1) clash;
    IF clashes IS NOT NULL THEN
      RAISE EXCEPTION 'handles that differ only in case: %', clashes
        USING HINT = 'rename all but one of each, then load the schema again';
    END IF;
    CREATE UNIQUE INDEX users_handle_lower_key ON public.users (lower(handle));
  END IF;
END $$;

CREATE INDEX IF NOT EXISTS activities_user_uuid_idx ON public.activities (user_uuid);
-- The home feed and a user's cruds: unexpired top-level activities, newest first, read along
-- these indexes from the cursor on (a page costs the same whatever the table holds).
CREATE INDEX IF NOT EXISTS activities_feed_idx
  ON public.activities (created_at DESC, uuid DESC) WHERE reply_to_activity_uuid IS NULL;
CREATE INDEX IF NOT EXISTS activities_user_feed_idx
  ON public.activities (user_uuid, created_at DESC, uuid DESC) WHERE reply_to_activity_uuid IS NULL;
-- Search: the trigrams of every top-level crud's text, so that `message ILIKE '%term%'` reads
-- the cruds that can contain the term instead of the whole table (a term of 3 characters or more:
-- services/activities.py).
CREATE INDEX IF NOT EXISTS activities_message_trgm_idx
  ON public.activities USING gin (message gin_trgm_ops) WHERE reply_to_activity_uuid IS NULL;
-- An activity's replies, oldest first.
CREATE INDEX IF NOT EXISTS activities_replies_idx
  ON public.activities (reply_to_activity_uuid, created_at, uuid);

-- Activities with their authors, for the queries of db/sql/activities/.
CREATE OR REPLACE VIEW public.activity_objects AS
SELECT a.uuid, u.display_name, u.handle, a.message, a.created_at, a.expires_at,
       a.replies_count, a.reposts_count, a.likes_count, a.reply_to_activity_uuid
FROM public.activities a
JOIN public.users u ON u.uuid = a.user_uuid;

-- A time as the HTTP contract gives times: UTC, microseconds, +00:00.
CREATE OR REPLACE FUNCTION public.iso_utc(t TIMESTAMP WITH TIME ZONE) RETURNS TEXT
LANGUAGE sql IMMUTABLE AS $$
  SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')
$$;

-- An activity as the HTTP contract gives it, without its replies...
CREATE OR REPLACE FUNCTION public.activity_fields(o public.activity_objects) RETURNS JSONB
LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'uuid', o.uuid, 'display_name', o.display_name, 'handle', o.handle, 'message', o.message,
    'created_at', public.iso_utc(o.created_at), 'expires_at', public.iso_utc(o.expires_at),
    'replies_count', o.replies_count, 'reposts_count', o.reposts_count,
    'likes_count', o.likes_count, 'reply_to_activity_uuid', o.reply_to_activity_uuid)
$$;

-- ...and with them: its unexpired replies, oldest first.
CREATE OR REPLACE FUNCTION public.activity_json(o public.activity_objects) RETURNS JSONB
LANGUAGE sql STABLE AS $$
  SELECT public.activity_fields(o) || jsonb_build_object('replies', (
    SELECT coalesce(jsonb_agg(public.activity_fields(r) ORDER BY r.created_at, r.uuid), '[]'::jsonb)
    FROM public.activity_objects r
    WHERE r.reply_to_activity_uuid = o.uuid AND (r.expires_at IS NULL OR r.expires_at > now())))
$$;

-- Live events (docs/live-events.md): each user's events, numbered 1, 2, 3... with no gap. The
-- messaging events Lambda appends them (lib/event_log.py): it locks the user's head row, skips an
-- event whose key the log holds already (a stream record delivered twice), and commits the next
-- numbers with a NOTIFY on channel cruddur_events, so a number is never committed behind one a
-- reader has seen. Events are kept a day (the stream keeps its records as long), then purged.
CREATE TABLE IF NOT EXISTS public.event_heads (
  user_uuid UUID PRIMARY KEY,
  seq BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS public.events (
  user_uuid UUID NOT NULL,
  seq BIGINT NOT NULL,
  kind TEXT NOT NULL,
  data JSONB,
  event_key TEXT NOT NULL,
  shows TEXT,
  created_at TIMESTAMP WITH TIME ZONE DEFAULT current_timestamp NOT NULL,
  PRIMARY KEY (user_uuid, seq),
  CONSTRAINT events_user_key UNIQUE (user_uuid, event_key)
);
CREATE INDEX IF NOT EXISTS events_created_at_idx ON public.events (created_at);
-- A deleted message's text leaves the log (../shared/CONTRACT.md, "Editing and deleting a
-- message"): an event that holds a message's text says which (shows: "<group uuid>/<created
-- time>"); its deletion sets data to NULL, which readers skip, keeping the row, its number (no
-- gap for a page resuming) and its key (a record delivered again is still skipped). The erased
-- messages are remembered as long as events are kept, so that an event showing one that comes
-- later is logged erased too.
ALTER TABLE public.events ALTER COLUMN data DROP NOT NULL;
ALTER TABLE public.events ADD COLUMN IF NOT EXISTS shows TEXT;
CREATE INDEX IF NOT EXISTS events_shows_idx ON public.events (shows) WHERE shows IS NOT NULL;
-- Events logged before `shows` existed name their message from their data (a message's own
-- events: its conversation and created time; a conversation row's: its group and time, which was
-- then always its last message's), so that deleting it erases them too.
UPDATE public.events SET shows = CASE kind
    WHEN 'conversation' THEN (data->>'uuid') || '/' || (data->>'created_at')
    ELSE (data->>'message_group_uuid') || '/' || (data->>'created_at') END
WHERE shows IS NULL AND data IS NOT NULL AND kind IN ('message', 'message_changed', 'conversation');
CREATE TABLE IF NOT EXISTS public.erased_messages (
  message_ref TEXT PRIMARY KEY,
  erased_at TIMESTAMP WITH TIME ZONE DEFAULT current_timestamp NOT NULL
);
CREATE INDEX IF NOT EXISTS erased_messages_erased_at_idx ON public.erased_messages (erased_at);

-- Tickets that open one event stream each (POST /api/events/ticket): kept as their SHA-256 only,
-- so that whoever reads this table cannot open a stream.
CREATE TABLE IF NOT EXISTS public.event_tickets (
  ticket_hash BYTEA PRIMARY KEY,
  user_uuid UUID NOT NULL,
  token_expires_at TIMESTAMP WITH TIME ZONE NOT NULL,
  expires_at TIMESTAMP WITH TIME ZONE NOT NULL
);
CREATE INDEX IF NOT EXISTS event_tickets_expires_at_idx ON public.event_tickets (expires_at);

-- Who blocks whom (../shared/CONTRACT.md, "Blocking a user"): while a row is here, the blocked
-- user's messages to the blocker are refused, and the blocker's to them (they unblock first).
-- Checked on every send, here, so a block holds on every process from the moment it commits.
CREATE TABLE IF NOT EXISTS public.blocks (
  blocker_uuid UUID NOT NULL REFERENCES public.users (uuid) ON DELETE CASCADE,
  blocked_uuid UUID NOT NULL REFERENCES public.users (uuid) ON DELETE CASCADE,
  blocked_at TIMESTAMP WITH TIME ZONE DEFAULT clock_timestamp() NOT NULL,
  PRIMARY KEY (blocker_uuid, blocked_uuid),
  CONSTRAINT blocks_not_self CHECK (blocker_uuid <> blocked_uuid)
);
CREATE INDEX IF NOT EXISTS blocks_blocker_recent_idx ON public.blocks (blocker_uuid, blocked_at DESC);
