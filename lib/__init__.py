"""The adapters and the app's configuration: how the app talks to the outside world.

conversations/ (the conversation store: the messages table's layout, the write order of a
message, read markers, the stream's row mover, the week-5 compatibility; the API, the stream
Lambda and the scripts all use it), ddb.py (a thin boto3 helper for one table, and the translation
of DynamoDB's errors into the domain's), db.py (PostgreSQL), identity.py (who may become a user),
config.py (the app's settings, from the environment), aws.py (boto3 clients), cognito.py and
cognito_jwt_token.py (user pools, access tokens), cache.py, cursor.py (signed pagination
cursors), errors.py (the domain's errors, by meaning), metrics.py.
An adapter imports other adapters at most: never services/, routes/ or the app.

Beside them, not part of the app: devstack/ (the local stack) and cli/ (the scripts of
bin/). The app imports neither.
"""
