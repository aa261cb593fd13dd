UPDATE public.event_heads SET seq = %(seq)s WHERE user_uuid = %(user_uuid)s
