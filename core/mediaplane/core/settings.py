"""Storage settings shared by the operator and the API (environment, prefix MEDIAPLANE_).

Credentials are not settings: boto3 finds them the usual way (environment, a web-identity
token from a service-account annotation, an instance profile), so cloud identity works
without mediaplane ever seeing a key.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class S3Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDIAPLANE_S3_", extra="ignore", frozen=True)

    endpoint: str | None = Field(default=None, description="None means AWS S3 itself")
    public_endpoint: str | None = Field(
        default=None,
        description="endpoint used in presigned URLs handed to workers and clients, "
        "when it differs from the one the service itself uses",
    )
    bucket: str = "mediaplane"
    region: str = "us-east-1"
    path_style: bool = True
    # A storage server that stalls must not hold a caller for long: each attempt connects
    # within `connect_timeout_seconds` and waits for each read at most `read_timeout_seconds`;
    # botocore makes `max_attempts` attempts in all. The REST API uses tighter values of its
    # own (its answers are bounded to a few seconds).
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    read_timeout_seconds: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=3, ge=1, le=10)
