-- Link a user without an identity to one: of two confirmations of one email at once, the second
-- finds the row linked and changes nothing (no row returned).
UPDATE public.users SET cognito_user_id = %(sub)s
WHERE uuid = %(uuid)s AND cognito_user_id IS NULL
RETURNING uuid
