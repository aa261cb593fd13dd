"""The local stack: the real services, embedded, on loopback, for ./bin/dev, the scripts, the
tests and the benchmark. Embedded PostgreSQL (postgres.py); moto's server with its corrections
(moto.py, moto_server.py, and moto_corrections/, one module per service it corrects); the stream worker that plays Lambda's event source mapping
(stream_worker.py), with the mapping's own batch size and filter (stream_mapping.py); the local
Cognito pool and seed data (cognito.py, seed.py); starting it all (stack.py); its own settings
(settings.py).

It sits beside the app: nothing in the app, services/ or the adapters of lib/ imports it. From
outside, use what this module exports (and the public names of its modules, for the tests of
those modules); never a name that starts with an underscore.
"""
from devstack.cognito import PoolMissing, access_token, add_user
from devstack.moto import LocalMoto
from devstack.postgres import LocalPostgres, postgres_bin_path
from devstack.processes import (Stack, StackError, children_of, ensure_port_free, free_port,
                                 sigterm_as_keyboard_interrupt, stop_process, wait_http)
from devstack.settings import DATABASE, LocalSettings
from devstack.stack import (api_env, database_url, gunicorn_command, load_data, start_api,
                             start_moto, start_postgres, start_stores, start_stream_worker,
                             wait_for_stores)

__all__ = [
    "DATABASE", "LocalMoto", "LocalPostgres", "LocalSettings", "PoolMissing", "Stack",
    "StackError", "access_token", "add_user", "api_env", "children_of", "database_url",
    "ensure_port_free",
    "free_port", "gunicorn_command", "load_data", "postgres_bin_path",
    "sigterm_as_keyboard_interrupt", "start_api", "start_moto", "start_postgres", "start_stores",
    "start_stream_worker", "stop_process", "wait_for_stores", "wait_http",
]
