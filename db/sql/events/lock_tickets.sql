-- One user's ticket purchases take turns until the transaction ends (the cap is then exact), and
-- tickets that expired a while ago go on the way (the table stays tiny).
WITH gone AS (
  DELETE FROM public.event_tickets WHERE expires_at < now() - interval '1 minute'
)
SELECT pg_advisory_xact_lock(hashtextextended('event_tickets:' || %(user_uuid)s, 0))
