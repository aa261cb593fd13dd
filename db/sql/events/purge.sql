-- Events past the retention window go, by number: for each user, every event up to the newest one
-- that is past the window, so what is kept always runs on without a gap (an event committed later
-- but numbered earlier can be older by its time than the one after it, and a purge by time alone
-- could delete N+1 and keep N; a page resuming from N-1 would then skip N+1 unseen). At most
-- %(batch)s rows per statement, each user's oldest first, so one run is short and bounded.
WITH past AS (
  SELECT user_uuid, max(seq) AS upto FROM public.events
  WHERE created_at < now() - make_interval(secs => %(keep_seconds)s)
  GROUP BY user_uuid
), doomed AS (
  SELECT e.user_uuid, e.seq FROM public.events e JOIN past ON e.user_uuid = past.user_uuid
  WHERE e.seq <= past.upto
  ORDER BY e.user_uuid, e.seq
  LIMIT %(batch)s
)
DELETE FROM public.events e USING doomed
WHERE e.user_uuid = doomed.user_uuid AND e.seq = doomed.seq
