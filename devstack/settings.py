"""The local stack's own settings, read from the environment in this one place. The app's
settings (lib/config.py) know nothing of these."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from lib.config import ROOT, env_int

# The database the app uses in the local stack.
DATABASE = "cruddur"


@dataclass(frozen=True)
class LocalSettings:
    # Where embedded PostgreSQL keeps its data, and its port.
    pg_data: Path = field(default=ROOT / ".local" / "pgdata")
    pg_port: int = 5433
    # The port of moto's server (DynamoDB, DynamoDB Streams, Cognito), and where ./bin/dev keeps
    # its data across restarts.
    aws_port: int = 4566
    # The port of the assets' stand-in for CloudFront (avatars over HTTP; devstack/assets.py).
    assets_port: int = 4568
    moto_state: Path = field(default=ROOT / ".local" / "moto-state.pickle")
    # Names of the local Cognito pool and client. With moto's HASH id strategies their ids derive
    # from these names, so they stay the same across restarts of the local stack.
    user_pool_name: str = "cruddur-user-pool"
    user_pool_client_name: str = "cruddur-web"
    # Password of every seeded user in the local pool (never used against AWS).
    seed_password: str = "Testpassword1!"
    # The local AWS endpoint as a browser reaches it, when that is not how the backend does
    # (docker-compose.yml: the moto container's port on the host); printed for the frontend.
    public_aws_url: str | None = None

    @property
    def aws_url(self) -> str:
        return f"http://127.0.0.1:{self.aws_port}"

    @property
    def database_url(self) -> str:
        """The app's database on the embedded PostgreSQL."""
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/{DATABASE}"


def load(env: Mapping[str, str] | None = None) -> LocalSettings:
    env = os.environ if env is None else env
    d = LocalSettings()
    return LocalSettings(
        pg_data=Path(env.get("LOCAL_PG_DATA") or d.pg_data),
        pg_port=env_int(env, "LOCAL_PG_PORT", d.pg_port, 1, 65535),
        aws_port=env_int(env, "LOCAL_AWS_PORT", d.aws_port, 1, 65535),
        assets_port=env_int(env, "LOCAL_ASSETS_PORT", d.assets_port, 1, 65535),
        moto_state=Path(env.get("LOCAL_MOTO_STATE") or d.moto_state),
        public_aws_url=env.get("LOCAL_PUBLIC_AWS_URL") or None,
    )
