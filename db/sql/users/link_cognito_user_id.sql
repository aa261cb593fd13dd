UPDATE public.users
SET cognito_user_id = %(cognito_user_id)s
WHERE uuid = %(uuid)s
  AND (cognito_user_id IS NULL OR %(replace)s)
  AND NOT EXISTS (SELECT 1 FROM public.users other
                  WHERE other.cognito_user_id = %(cognito_user_id)s AND other.uuid <> %(uuid)s)
RETURNING uuid
