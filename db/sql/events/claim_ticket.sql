-- A ticket opens one stream: taken (deleted) by the first request that shows it, if unexpired
-- (a ticket never outlives the trust in the token that bought it: create_ticket.sql).
DELETE FROM public.event_tickets
WHERE ticket_hash = %(ticket_hash)s AND expires_at > now() AND token_expires_at > now()
RETURNING user_uuid::text AS user_uuid, extract(epoch FROM token_expires_at)::float8 AS token_expires_at
