-- A handle in any case: handles are unique regardless of case (db/schema.sql).
SELECT uuid, handle, display_name
FROM public.users
WHERE lower(handle) = lower(%(handle)s)
