-- A user's own profile: the display name and bio given (NULL: left as they are), as the profile
-- route answers it.
UPDATE public.users
SET display_name = coalesce(%(display_name)s, display_name),
    bio = coalesce(%(bio)s, bio)
WHERE uuid = %(uuid)s
RETURNING json_build_object('uuid', uuid, 'handle', handle, 'display_name', display_name, 'bio', bio)
