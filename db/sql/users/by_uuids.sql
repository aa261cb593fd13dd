SELECT uuid, display_name, handle
FROM public.users
WHERE uuid = ANY(%(uuids)s::uuid[])
