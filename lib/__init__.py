"""The adapters and the app's configuration: how the app talks to the outside world, translating
it into the domain's values and errors (domain/).

conversations/ (the conversation store over the messages table: its layout, who takes part, the
write order of a message, read markers, the stream's row mover and its records, the week-5
compatibility; the API, both Lambdas and the scripts use it), ddb.py (a thin boto3 helper for one
table, and the translation of DynamoDB's errors), db.py (PostgreSQL's pool), users.py (the users'
store), activities.py (the cruds' store), event_log.py (each user's numbered live events),
event_listener.py (LISTEN/NOTIFY: waking a process's streams), cognito.py and
cognito_jwt_token.py (user pools, access tokens), aws.py (boto3 clients), config.py (the app's
settings, from the environment), lambda_support.py (what the Lambdas share), cache.py,
sql_files.py, metrics.py, telemetry.py.
An adapter imports the domain and other adapters at most: never services/, routes/ or the app.

Beside them, not part of the app: devstack/ (the local stack) and cli/ (the scripts of bin/).
The app imports neither.
"""
