-- A new user, linked to their Cognito identity.
INSERT INTO public.users (display_name, handle, email, cognito_user_id)
VALUES (%(display_name)s, %(handle)s, %(email)s, %(sub)s)
RETURNING uuid::text
