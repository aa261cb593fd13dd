-- The newest data logged of a message itself (its `message` and `message_changed` events,
-- %(kinds)s): an edit delivered late takes it, if newer than its own.
SELECT data::text, coalesce(data->>'edited_at', '') AS edited_at FROM public.events
WHERE shows = %(message_ref)s AND kind = ANY(%(kinds)s) AND data IS NOT NULL
ORDER BY edited_at DESC
LIMIT 1
