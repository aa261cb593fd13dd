-- Unexpired cruds whose text contains the term (a LIKE pattern, its wildcards escaped),
-- case-insensitive, newest first, each with its replies: one page after the cursor, as a JSON
-- array. The cruds that contain the term are found first, along the trigram index
-- (activities_message_trgm_idx), and only they are sorted: walked in time order instead, a term
-- that few or no cruds contain would read the whole table.
WITH found AS MATERIALIZED (
  SELECT a.uuid, a.created_at
  FROM public.activities a
  WHERE a.reply_to_activity_uuid IS NULL
    AND a.message ILIKE '%%' || %(pattern)s || '%%' ESCAPE '\'
)
SELECT coalesce(jsonb_agg(public.activity_json(page.item)
                          ORDER BY (page.item).created_at DESC, (page.item).uuid DESC), '[]'::jsonb)
FROM (
  SELECT o AS item
  FROM found f
  JOIN public.activity_objects o ON o.uuid = f.uuid
  WHERE o.expires_at > now()
    AND (f.created_at, f.uuid) < (%(after_at)s::timestamptz, %(after_uuid)s::uuid)
  ORDER BY f.created_at DESC, f.uuid DESC
  LIMIT %(limit)s
) page
