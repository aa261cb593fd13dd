SELECT coalesce((SELECT seq FROM public.event_heads WHERE user_uuid = %(user_uuid)s), 0) AS seq
