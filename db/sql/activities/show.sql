-- One unexpired activity with its replies, as a JSON object.
SELECT public.activity_json(o)
FROM public.activity_objects o
WHERE o.uuid = %(uuid)s
  AND (o.expires_at IS NULL OR o.expires_at > now())
