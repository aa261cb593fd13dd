-- The user's events after a number, oldest first, as the stream sends them.
SELECT seq, kind, data::text AS data FROM public.events
WHERE user_uuid = %(user_uuid)s AND seq > %(after)s
ORDER BY seq
LIMIT %(limit)s
