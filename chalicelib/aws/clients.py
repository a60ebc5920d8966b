"""boto3 clients for every adapter: one botocore session, standard retry mode (exponential
backoff with jitter, throttling handled), endpoint taken from ``AWS_ENDPOINT_URL`` by boto3
itself, so the same code talks to AWS, moto or LocalStack."""
from __future__ import annotations

import threading
from functools import lru_cache

import boto3
from botocore.config import Config

RETRIES = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=70,
                 max_pool_connections=32)
_lock = threading.Lock()


@lru_cache(maxsize=None)
def client(service: str, region: str | None = None, endpoint_url: str | None = None):
    """A cached, thread-safe boto3 client for ``service`` (e.g. ``"s3"``)."""
    with _lock:
        session = boto3.session.Session(region_name=region)
        cfg = RETRIES
        if service == "s3":
            cfg = cfg.merge(Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
        return session.client(service, endpoint_url=endpoint_url, config=cfg)
