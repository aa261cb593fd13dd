-- The blocker blocks the user `blocked` (a uuid), unless they hold `most` blocks already (then
-- nothing is written, and blocked_at is null): {handle, display_name, blocked_at}; a block that
-- exists is answered as it is. Locking the blocker's user row makes the count exact
-- when two blocks race.
WITH blocker AS (
  SELECT uuid FROM public.users WHERE uuid = %(blocker)s FOR UPDATE
), target AS (
  SELECT uuid, handle, display_name FROM public.users WHERE uuid = %(blocked)s
), made AS (
  INSERT INTO public.blocks (blocker_uuid, blocked_uuid)
  SELECT blocker.uuid, target.uuid FROM blocker, target
  WHERE (SELECT count(*) FROM public.blocks WHERE blocker_uuid = %(blocker)s) < %(most)s
  ON CONFLICT (blocker_uuid, blocked_uuid) DO NOTHING
  RETURNING blocked_at
), told AS (  -- every API process drops what it remembers of the blocker's blocks (lib/blocks.py)
  SELECT pg_notify('cruddur_blocks', %(blocker)s::text)
)
SELECT json_build_object(
  'handle', target.handle,
  'display_name', target.display_name,
  'blocked_at', public.iso_utc(coalesce((SELECT blocked_at FROM made),
                                        (SELECT b.blocked_at FROM public.blocks b
                                         WHERE b.blocker_uuid = %(blocker)s AND b.blocked_uuid = target.uuid))))
FROM target, told
-- RETURNING (in `made`) makes this a write
