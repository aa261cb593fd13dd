-- An edited message's events as it is now: every logged event of the message itself (its
-- `message` and earlier `message_changed` events, %(kinds)s) that shows an older edit, or none,
-- takes the new data, so that a page resuming from before the message receives it edited, and
-- the old text is gone from the log too. Erased events stay erased; an older edit delivered late
-- never replaces a newer one (edited_at, an ISO time, sorts as it reads).
UPDATE public.events SET data = %(data)s::jsonb
WHERE shows = %(message_ref)s AND kind = ANY(%(kinds)s) AND data IS NOT NULL
  AND coalesce(data->>'edited_at', '') < %(edited_at)s
