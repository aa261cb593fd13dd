-- The blocker lifts their block of `blocked` (a uuid), if any.
DELETE FROM public.blocks
WHERE blocker_uuid = %(blocker)s AND blocked_uuid = %(blocked)s
