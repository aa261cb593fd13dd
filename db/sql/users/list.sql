SELECT uuid, display_name, handle, email, cognito_user_id
FROM public.users
ORDER BY handle
