"""Powertools Idempotency's DynamoDB persistence on the jobs table (no table of its own):
records live under ``pk = IDEMPOTENCY#jobs`` with the idempotency key's hash as ``sk``, expire
after the configured time (checked on read; ``expires_at`` is also a TTL attribute)."""
from __future__ import annotations

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from .clients import client


def persistence_layer(table: str, region: str | None, endpoint_url: str | None) -> DynamoDBPersistenceLayer:
    """The persistence layer for ``idempotent_function`` on ``table`` (the jobs table)."""
    return DynamoDBPersistenceLayer(table_name=table, key_attr="pk", sort_key_attr="sk",
                                    static_pk_value="IDEMPOTENCY#jobs", expiry_attr="expires_at",
                                    in_progress_expiry_attr="in_progress_until", status_attr="request_status",
                                    data_attr="response", validation_key_attr="body_hash",
                                    boto3_client=client("dynamodb", region, endpoint_url))
