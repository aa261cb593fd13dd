-- The user's last event number, with the head row locked until the transaction ends: appends for
-- one user take their turn here, so numbers are committed in order.
INSERT INTO public.event_heads (user_uuid, seq) VALUES (%(user_uuid)s, 0)
ON CONFLICT (user_uuid) DO UPDATE SET seq = public.event_heads.seq
RETURNING seq
