-- Every event holding the deleted message's text loses it (readers skip an event without data).
UPDATE public.events SET data = NULL
WHERE shows = %(message_ref)s AND data IS NOT NULL
