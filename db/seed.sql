-- Seed users. cognito_user_id is filled in from the Cognito pool by bin/db/update-cognito-user-ids.
INSERT INTO public.users (display_name, handle, email)
VALUES
  ('Andrew Brown', 'andrewbrown', 'andrew@exampro.co'),
  ('Andrew Bayko', 'bayko', 'bayko@exampro.co'),
  ('Londo Mollari', 'londo', 'lmollari@centari.com')
ON CONFLICT (handle) DO NOTHING;

INSERT INTO public.activities (user_uuid, message, expires_at)
SELECT uuid, 'This was imported as seed data!', current_timestamp + interval '10 day'
FROM public.users
WHERE handle = 'andrewbrown'
  AND NOT EXISTS (SELECT 1 FROM public.activities);
