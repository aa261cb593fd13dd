-- The user's events after a number, oldest first, as the stream sends them: at most %(limit)s,
-- and no more than about %(max_bytes)s bytes of data (always at least one event), so that a page
-- a stream holds while its reader is slow stays small whatever the messages hold.
SELECT seq, kind, data FROM (
  SELECT seq, kind, data::text AS data,
         sum(octet_length(data::text)) OVER (ORDER BY seq) - octet_length(data::text) AS before
  FROM public.events
  WHERE user_uuid = %(user_uuid)s AND seq > %(after)s
  ORDER BY seq
  LIMIT %(limit)s
) page
WHERE before < %(max_bytes)s
ORDER BY seq
