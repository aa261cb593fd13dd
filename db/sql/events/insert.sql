INSERT INTO public.events (user_uuid, seq, kind, data, event_key)
VALUES (%(user_uuid)s, %(seq)s, %(kind)s, %(data)s, %(event_key)s)
