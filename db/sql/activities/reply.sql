-- A reply to an unexpired activity, and the parent's replies_count one up, in one statement (one
-- transaction); no row when there is no such parent.
WITH parent AS (
  UPDATE public.activities
  SET replies_count = replies_count + 1
  WHERE uuid = %(parent_uuid)s
    AND (expires_at IS NULL OR expires_at > now())
  RETURNING uuid
)
INSERT INTO public.activities (user_uuid, message, reply_to_activity_uuid)
SELECT %(user_uuid)s, %(message)s, parent.uuid
FROM parent
RETURNING uuid
