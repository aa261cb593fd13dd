"""The adapters and the app's configuration: how the app talks to the outside world.

config.py (the app's settings, from the environment), db.py (PostgreSQL), ddb.py (the DynamoDB
table: key layout, client, and the translation of DynamoDB's errors into the domain's), aws.py
(boto3 clients), cognito.py and cognito_jwt_token.py (user pools, access tokens), cache.py,
cursor.py (signed pagination cursors), errors.py (the domain's errors, by meaning), metrics.py.
An adapter imports other adapters at most: never services/, routes/ or the app.

Beside them, not part of the app: devstack/ (the local stack) and cli/ (the scripts of
bin/). The app imports neither.
"""
