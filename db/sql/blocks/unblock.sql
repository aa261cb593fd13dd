-- The blocker lifts their block of `blocked` (a uuid), if any; every API process drops what it
-- remembers of the blocker's blocks (lib/blocks.py), in the same commit.
WITH gone AS (
  DELETE FROM public.blocks
  WHERE blocker_uuid = %(blocker)s AND blocked_uuid = %(blocked)s
  RETURNING 1
)
SELECT pg_notify('cruddur_blocks', %(blocker)s::text)
