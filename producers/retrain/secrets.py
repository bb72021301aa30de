"""Tokens read from the environment, wrapped so that they never print.

A :class:`Secret` shows as ``'***'`` in ``repr``/``str``/f-strings and logs; code that must
send it calls :meth:`Secret.reveal` at the last moment.

>>> token = Secret("glptt-0123456789")
>>> token, f"{token}"
(Secret('***'), '***')
>>> token.reveal()
'glptt-0123456789'
>>> secret_from_env("DRIFTRADAR_NOT_SET_ANYWHERE", environ={})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
producers.retrain.secrets.MissingSecretError: DRIFTRADAR_NOT_SET_ANYWHERE: is not set ...
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from streams.core.errors import ConfigError
from streams.core.redact import redact_text

__all__ = [
    "MissingSecretError",
    "Secret",
    "optional_secret_from_env",
    "scrub",
    "secret_from_env",
]


class MissingSecretError(ConfigError):
    """A required secret's environment variable is unset or empty (``key`` names it)."""


class Secret:
    """A string that hides itself from ``repr``, ``str`` and formatting."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not value:
            raise ValueError("a secret must not be empty")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def secret_from_env(name: str, environ: Mapping[str, str] | None = None) -> Secret:
    """The secret in environment variable ``name``; error naming the variable if unset."""
    secret = optional_secret_from_env(name, environ)
    if secret is None:
        raise MissingSecretError(
            name,
            "is not set (this environment variable holds a secret: never pass secrets on the "
            "command line or in the request)",
        )
    return secret


def optional_secret_from_env(name: str, environ: Mapping[str, str] | None = None) -> Secret | None:
    value = (os.environ if environ is None else environ).get(name, "")
    return Secret(value) if value else None


def scrub(text: str, secrets: Iterable[Secret | None]) -> str:
    """``text`` with every secret's value replaced by ``***``.

    >>> scrub("bad token abc123", [Secret("abc123"), None])
    'bad token ***'
    """
    return redact_text(text, [secret.reveal() for secret in secrets if secret is not None])
