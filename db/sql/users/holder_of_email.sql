-- The oldest user with this email, in any case: (uuid, cognito_user_id).
SELECT uuid::text, cognito_user_id FROM public.users
WHERE lower(email) = lower(%(email)s)
ORDER BY created_at
LIMIT 1
