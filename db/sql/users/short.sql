SELECT uuid, handle, display_name
FROM public.users
WHERE handle = %(handle)s
