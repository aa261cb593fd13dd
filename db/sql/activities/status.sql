-- One unexpired activity of the given handle (in any case) with its replies, as a JSON object:
-- the final frontend's crud page (/@<handle>/status/<uuid>).
SELECT public.activity_json(o)
FROM public.activity_objects o
WHERE o.uuid = %(uuid)s
  AND lower(o.handle) = lower(%(handle)s)
  AND (o.expires_at IS NULL OR o.expires_at > now())
