-- One user's unexpired cruds, newest first, each with its replies: one page after the cursor,
-- as a JSON array.
SELECT coalesce(jsonb_agg(public.activity_json(page.item)
                          ORDER BY (page.item).created_at DESC, (page.item).uuid DESC), '[]'::jsonb)
FROM (
  SELECT o AS item
  FROM public.activity_objects o
  WHERE lower(o.handle) = lower(%(handle)s)
    AND o.reply_to_activity_uuid IS NULL
    AND o.expires_at > now()
    AND (o.created_at, o.uuid) < (%(after_at)s::timestamptz, %(after_uuid)s::uuid)
  ORDER BY o.created_at DESC, o.uuid DESC
  LIMIT %(limit)s
) page
