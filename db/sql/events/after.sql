-- The user's events after a number, oldest first: at most %(limit)s, and no more than about
-- %(max_bytes)s bytes of data (always at least one event), so that a page a stream holds while its
-- reader is slow stays small whatever the messages hold. Erased events (data NULL: their message
-- was deleted) come too, so that the numbers run on without a gap; the stream sends none of them.
SELECT seq, kind, data FROM (
  SELECT seq, kind, data::text AS data,
         sum(coalesce(octet_length(data::text), 0)) OVER (ORDER BY seq)
           - coalesce(octet_length(data::text), 0) AS before
  FROM public.events
  WHERE user_uuid = %(user_uuid)s AND seq > %(after)s
  ORDER BY seq
  LIMIT %(limit)s
) page
WHERE before < %(max_bytes)s
ORDER BY seq
