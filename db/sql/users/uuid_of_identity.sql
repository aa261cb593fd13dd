-- The user a Cognito identity is linked to.
SELECT uuid::text FROM public.users WHERE cognito_user_id = %(sub)s
