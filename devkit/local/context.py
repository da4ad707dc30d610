"""The settings of "the platform this command talks to", for every CLI command.

On AWS (``DATAFORGE_ENV`` = dev/staging/prod) the environment is used as it is. On the embedded
platform (the default), the environment is completed from the running services recorded by
``dataforge services up`` and the embedded platform's names (``local_environment``), exported into
``os.environ`` so that in-process runtimes (Lambda handlers, the API) read the same values at cold
start, and the local AWS resources are created if missing.
"""

from __future__ import annotations

import os

from dataforge import envvars
from dataforge.errors import ServiceError
from dataforge.settings import LOCAL_ENV, Settings
from devkit.local import local_environment


def platform_settings(*, create_resources: bool = True) -> Settings:
    """Settings for the current platform; raises ``ServiceError`` when no embedded service runs."""
    if os.environ.get(envvars.ENV, LOCAL_ENV) != LOCAL_ENV:
        return Settings.from_env()
    from devkit.local import services

    state = services.read_state()
    endpoint = os.environ.get(envvars.AWS_ENDPOINT_URL) or (state["moto"]["endpoint_url"] if state else None)
    kafka = os.environ.get(envvars.KAFKA_BOOTSTRAP_SERVERS) or (
        state["kafka"]["bootstrap_servers"] if state else None
    )
    if not endpoint or not kafka:
        raise ServiceError("no embedded services found: run `dataforge services up` first")
    for name, value in local_environment(endpoint_url=endpoint, kafka_bootstrap_servers=kafka).items():
        os.environ.setdefault(name, value)
    settings = Settings.from_env()
    if create_resources:
        from devkit.local.bootstrap import bootstrap

        bootstrap(settings)
    return settings
