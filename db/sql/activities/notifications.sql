-- Replies by others to the user's unexpired activities, newest first: one page after the cursor,
-- as a JSON array.
SELECT coalesce(jsonb_agg(public.activity_fields(page.item)
                          ORDER BY (page.item).created_at DESC, (page.item).uuid DESC), '[]'::jsonb)
FROM (
  SELECT r AS item
  FROM public.activity_objects r
  JOIN public.activities parent ON parent.uuid = r.reply_to_activity_uuid
  WHERE parent.user_uuid = %(user_uuid)s
    AND r.handle <> %(handle)s
    AND (parent.expires_at IS NULL OR parent.expires_at > now())
    AND (r.expires_at IS NULL OR r.expires_at > now())
    AND (r.created_at, r.uuid) < (%(after_at)s::timestamptz, %(after_uuid)s::uuid)
  ORDER BY r.created_at DESC, r.uuid DESC
  LIMIT %(limit)s
) page
