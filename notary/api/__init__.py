"""The notary HTTP API (FastAPI) under /v1, with /healthz and /metrics."""

from notary.api.app import create_app

__all__ = ["create_app"]
