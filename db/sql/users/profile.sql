-- A user's profile as the final frontend shows it, found by handle in any case: cruds_count is
-- the user's unexpired cruds (what their page lists), cognito_user_uuid names their avatar.
SELECT u.uuid, u.handle, u.display_name, u.bio, u.cognito_user_id AS cognito_user_uuid,
       (SELECT count(*) FROM public.activities a
        WHERE a.user_uuid = u.uuid AND a.reply_to_activity_uuid IS NULL AND a.expires_at > now())
         AS cruds_count
FROM public.users u
WHERE lower(u.handle) = lower(%(handle)s)
