-- Whom each of `users` (uuids) blocks: {blocker, blocked: [uuid, ...]} for those who block anyone.
SELECT blocker_uuid::text AS blocker, array_agg(blocked_uuid::text) AS blocked
FROM public.blocks
WHERE blocker_uuid = ANY(%(users)s::uuid[])
GROUP BY blocker_uuid
