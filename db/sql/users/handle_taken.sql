-- Whether a user holds this handle, in any case (the schema's unique index on lower(handle)
-- holds it against races too).
SELECT 1 FROM public.users WHERE lower(handle) = lower(%(handle)s)
