-- Whether `a` blocks `b`, and whether `b` blocks `a` (one index lookup each way).
SELECT EXISTS (SELECT 1 FROM public.blocks WHERE blocker_uuid = %(a)s AND blocked_uuid = %(b)s) AS a_blocks_b,
       EXISTS (SELECT 1 FROM public.blocks WHERE blocker_uuid = %(b)s AND blocked_uuid = %(a)s) AS b_blocks_a
