-- The users the blocker blocks, most recent first: {handle, display_name, blocked_at}.
SELECT u.handle, u.display_name, public.iso_utc(b.blocked_at) AS blocked_at
FROM public.blocks b
JOIN public.users u ON u.uuid = b.blocked_uuid
WHERE b.blocker_uuid = %(blocker)s
ORDER BY b.blocked_at DESC, u.handle
