-- Cruddur's relational data. Users are keyed by their Cognito identity (cognito_user_id = `sub`).
-- gen_random_uuid() is built in (PostgreSQL 13+), so no extension is needed.
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

CREATE INDEX IF NOT EXISTS activities_user_uuid_idx ON public.activities (user_uuid);
