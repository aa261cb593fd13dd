-- Deleted messages are remembered as long as the events that could show them are kept.
DELETE FROM public.erased_messages
WHERE erased_at < now() - make_interval(secs => %(keep_seconds)s)
