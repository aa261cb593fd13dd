-- A ticket opens one stream: taken (deleted) by the first request that shows it, if unexpired.
DELETE FROM public.event_tickets
WHERE ticket_hash = %(ticket_hash)s AND expires_at > now()
RETURNING user_uuid::text AS user_uuid, extract(epoch FROM token_expires_at)::float8 AS token_expires_at
