"""A moto server on 127.0.0.1 (free port) provisioned from infra/template.yaml."""
from __future__ import annotations

import logging
import os

import boto3
import pytest

from chalicelib.config import Settings
from chalicelib.services.context import Context
from infra.local.network import LOCAL_CREDENTIALS, free_port
from infra.local.cloudformation.provision import Provisioner


@pytest.fixture(scope="session")
def emulator():
    from infra.local.emulator.server import EmulatorServer  # moto as the local cloud runs it (IAM aside)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = EmulatorServer("127.0.0.1", port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in [*LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL"]}
    os.environ.update({**LOCAL_CREDENTIALS, "AWS_ENDPOINT_URL": endpoint})
    session = boto3.session.Session(region_name="us-east-1")
    stack = Provisioner(session, endpoint, "us-east-1").provision()
    yield {"endpoint": endpoint, "stack": stack, "session": session}
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def ctx(emulator):
    env = {**os.environ, **emulator["stack"].app_env()}
    return Context(Settings.from_env(env))


@pytest.fixture
def client(emulator):
    return lambda service: emulator["session"].client(service, endpoint_url=emulator["endpoint"])
