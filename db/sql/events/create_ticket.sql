-- A new ticket; tickets that expired a while ago go on the way (the table stays tiny).
WITH gone AS (
  DELETE FROM public.event_tickets WHERE expires_at < now() - interval '1 minute'
)
INSERT INTO public.event_tickets (ticket_hash, user_uuid, token_expires_at, expires_at)
VALUES (%(ticket_hash)s, %(user_uuid)s, to_timestamp(%(token_expires_at)s),
        now() + make_interval(secs => %(ticket_seconds)s))
