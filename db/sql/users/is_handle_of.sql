-- Whether `handle` is, in any case, the handle of the user `uuid`.
SELECT 1 FROM public.users WHERE uuid = %(uuid)s AND lower(handle) = lower(%(handle)s)
