-- Unexpired cruds whose text contains the term (a LIKE pattern, its wildcards escaped),
-- case-insensitive, newest first, each with its replies: one page after the cursor, as a JSON
-- array. The cruds that contain the term are found first, along the trigram index
-- (activities_message_trgm_idx), and only they are sorted: walked in time order instead, a term
-- that few or only older cruds contain would read the whole table. The page's cruds alone are
-- then joined to their authors and replies.
WITH found AS MATERIALIZED (
  SELECT a.uuid, a.created_at
  FROM public.activities a
  WHERE a.reply_to_activity_uuid IS NULL
    AND a.message ILIKE '%%' || %(pattern)s || '%%' ESCAPE '\'
    AND a.expires_at > now()
), page AS (
  SELECT f.uuid, f.created_at
  FROM found f
  WHERE (f.created_at, f.uuid) < (%(after_at)s::timestamptz, %(after_uuid)s::uuid)
  ORDER BY f.created_at DESC, f.uuid DESC
  LIMIT %(limit)s
)
SELECT coalesce(jsonb_agg(public.activity_json(o) ORDER BY o.created_at DESC, o.uuid DESC), '[]'::jsonb)
FROM page p
JOIN public.activity_objects o ON o.uuid = p.uuid
