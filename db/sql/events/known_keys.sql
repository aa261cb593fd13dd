-- Which of these event keys the user's log holds already.
SELECT event_key FROM public.events
WHERE user_uuid = %(user_uuid)s AND event_key = ANY(%(keys)s)
