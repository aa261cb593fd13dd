-- A new ticket, unless the user holds %(most)s unused, unexpired ones already (then no row). It
-- expires after %(ticket_seconds)s or when the token's trust ends, whichever comes first. Run after
-- lock_tickets.sql in one transaction, so that two requests at once cannot both take the last place.
INSERT INTO public.event_tickets (ticket_hash, user_uuid, token_expires_at, expires_at)
SELECT %(ticket_hash)s, %(user_uuid)s, to_timestamp(%(token_expires_at)s),
       least(now() + make_interval(secs => %(ticket_seconds)s), to_timestamp(%(token_expires_at)s))
WHERE (SELECT count(*) FROM public.event_tickets
       WHERE user_uuid = %(user_uuid)s AND expires_at > now()) < %(most)s
RETURNING expires_at
