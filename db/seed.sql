-- Seed users. cognito_user_id is filled in from the Cognito pool (bin/db/update-cognito-user-ids
-- links by verified email; the local stack does it when it seeds its pool). Fixed uuids: the seeded
-- conversation in DynamoDB is keyed by them, so a database started over (bin/db/setup --reset, a
-- new .local/pgdata) finds its users' conversations where they were.
INSERT INTO public.users (uuid, display_name, handle, email)
VALUES
  ('5b0c7a5e-6a1f-4c1e-9b1a-7d2f0e3c1a01', 'Andrew Brown', 'andrewbrown', 'andrew@exampro.co'),
  ('5b0c7a5e-6a1f-4c1e-9b1a-7d2f0e3c1a02', 'Andrew Bayko', 'bayko', 'bayko@exampro.co'),
  ('5b0c7a5e-6a1f-4c1e-9b1a-7d2f0e3c1a03', 'Londo Mollari', 'londo', 'lmollari@centari.com')
ON CONFLICT DO NOTHING;

-- A few cruds and replies among them, so that a fresh home feed is not empty. Fixed uuids: loaded
-- again, nothing is added twice.
INSERT INTO public.activities (uuid, user_uuid, message, expires_at, created_at)
SELECT seed.uuid::uuid, users.uuid, seed.message, now() + seed.lives::interval, now() - seed.age::interval
FROM (VALUES
  ('0b4a7c38-1d1e-4c5e-9d6e-0a6f5c1c1a01', 'andrewbrown', 'This was imported as seed data!', '30 days', '3 hours'),
  ('0b4a7c38-1d1e-4c5e-9d6e-0a6f5c1c1a02', 'andrewbrown', 'Cruddur is a micro-blogging app: your cruds disappear when they expire.', '30 days', '2 hours'),
  ('0b4a7c38-1d1e-4c5e-9d6e-0a6f5c1c1a03', 'bayko', 'Learning DynamoDB single-table design, one access pattern at a time.', '7 days', '90 minutes'),
  ('0b4a7c38-1d1e-4c5e-9d6e-0a6f5c1c1a04', 'londo', 'Ambassador Mollari has arrived.', '3 days', '1 hour')
) AS seed (uuid, handle, message, lives, age)
JOIN public.users ON users.handle = seed.handle
ON CONFLICT (uuid) DO NOTHING;

INSERT INTO public.activities (uuid, user_uuid, message, reply_to_activity_uuid, created_at)
SELECT seed.uuid::uuid, users.uuid, seed.message, seed.parent::uuid, now() - seed.age::interval
FROM (VALUES
  ('0b4a7c38-1d1e-4c5e-9d6e-0a6f5c1c1b01', 'bayko', 'Welcome aboard!', '0b4a7c38-1d1e-4c5e-9d6e-0a6f5c1c1a01', '2 hours 30 minutes'),
  ('0b4a7c38-1d1e-4c5e-9d6e-0a6f5c1c1b02', 'londo', 'Great to be here.', '0b4a7c38-1d1e-4c5e-9d6e-0a6f5c1c1a01', '2 hours 15 minutes')
) AS seed (uuid, handle, message, parent, age)
JOIN public.users ON users.handle = seed.handle
WHERE EXISTS (SELECT 1 FROM public.activities WHERE uuid = seed.parent::uuid)
ON CONFLICT (uuid) DO NOTHING;

-- The parents' replies_count, from the replies there are.
UPDATE public.activities parent
SET replies_count = (SELECT count(*) FROM public.activities r WHERE r.reply_to_activity_uuid = parent.uuid)
WHERE parent.uuid IN ('0b4a7c38-1d1e-4c5e-9d6e-0a6f5c1c1a01');
