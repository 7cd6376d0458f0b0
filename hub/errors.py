"""Errors of the hub's workflows; the API answers each with its status and a message naming what is wrong."""


class HubError(Exception):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(HubError):
    status = 404


class Revoked(HubError):
    """The caller's principal was revoked while its request was under way (401): nothing is served."""

    status = 401


class Forbidden(HubError):
    status = 403


class Conflict(HubError):
    """An illegal transition or a clash with the current state (409)."""

    status = 409


class Invalid(HubError):
    status = 422


class NotaryRefused(HubError):
    """The notary refused evidence the hub built: a hub bug or a revoked key (502)."""

    status = 502


class NotaryUnavailable(HubError):
    """The notary cannot be reached; the state change was not made (503)."""

    status = 503


class NotDelivered(HubError):
    """A delivery to a registered endpoint failed or its receipt did not hold; nothing was changed (502)."""

    status = 502
