-- A crud by the given user.
INSERT INTO public.activities (user_uuid, message, expires_at)
VALUES (%(user_uuid)s, %(message)s, now() + %(ttl)s::interval)
RETURNING uuid
