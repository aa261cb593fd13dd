DELETE FROM public.events WHERE created_at < now() - make_interval(secs => %(keep_seconds)s)
