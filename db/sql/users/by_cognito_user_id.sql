SELECT uuid, display_name, handle
FROM public.users
WHERE cognito_user_id = %(cognito_user_id)s
