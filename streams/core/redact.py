"""Secrets never printed: one place that hides passwords in URLs, properties and messages.

Every URL, client property or error text the monitor, the retrain worker and the CLI print
goes through these functions. They are deliberately tolerant: a password that holds an
unencoded ``/``, ``#``, ``?`` or ``@`` breaks standard URL parsing (``urllib`` would take
part of it for the host or the path), so the user information is found by the last ``@``
instead, and anything ambiguous is hidden rather than shown.

>>> redact_url("redis://:s3cret@db.example:6379/0")
'redis://:***@db.example:6379/0'
>>> redact_url("redis://monitor:pa/ss#w@rd@db.example:6379/0")
'redis://monitor:***@db.example:6379/0'
>>> redact_url("redis://127.0.0.1:6379")
'redis://127.0.0.1:6379'
>>> redact_url("https://ci.example/job/x/build?token=abc&delay=0")
'https://ci.example/job/x/build?token=***&delay=0'
>>> redact_properties({"sasl.username": "monitor", "sasl.password": "hunter2"})
{'sasl.username': 'monitor', 'sasl.password': '***'}
>>> redact_text("cannot connect: Port could not be cast to integer value as 'pa'",
...             secrets_of_url("redis://:pa/ss@db:6379"))
"cannot connect: Port could not be cast to integer value as '***'"
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

__all__ = [
    "MASK",
    "environment_secrets",
    "malformed_userinfo",
    "redact_properties",
    "redact_text",
    "redact_url",
    "secrets_of_properties",
    "secrets_of_url",
]

MASK: Final = "***"

_SCHEME: Final = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
#: Query parameters and client properties whose values are secret.
_SECRET_NAME: Final = re.compile(
    r"pass|pwd|secret|token|credential|auth|sig|jaas|key\.pem|keytab|private|apikey|api_key",
    re.IGNORECASE,
)
#: Environment variables holding a secret: the name ENDS in one of these words (``PWD``, the
#: working directory, and ``SSH_AUTH_SOCK``, a socket path, are not secrets).
_SECRET_ENV: Final = re.compile(
    r"(?:^|_)(?:TOKEN|SECRET|PASSWORD|PASSWD|API_KEY|APIKEY|CREDENTIALS?)$", re.IGNORECASE
)
#: Fragments of a secret shorter than this are not scrubbed from free text (too common).
_MIN_FRAGMENT: Final = 2


def _split(url: str) -> tuple[str, str | None, str] | None:
    """``(scheme://, userinfo or None, rest)``, the userinfo ending at the LAST ``@``."""
    scheme = _SCHEME.match(url)
    if scheme is None:
        return None
    rest = url[scheme.end() :]
    at = rest.rfind("@")
    if at < 0:
        return scheme.group(0), None, rest
    return scheme.group(0), rest[:at], rest[at + 1 :]


def redact_url(url: str) -> str:
    """``url`` with its password (or a bare user-info token) and secret query values hidden."""
    parts = _split(url)
    if parts is None:
        return _redact_query(url)
    scheme, userinfo, rest = parts
    if userinfo is None:
        return scheme + _redact_query(rest)
    user, colon, _ = userinfo.partition(":")
    shown = f"{user}:{MASK}" if colon else MASK
    return f"{scheme}{shown}@{_redact_query(rest)}"


def _redact_query(text: str) -> str:
    before, question, query = text.partition("?")
    if not question:
        return text
    query, hash_, fragment = query.partition("#")
    pairs = []
    for pair in query.split("&"):
        name, equals, _ = pair.partition("=")
        pairs.append(f"{name}={MASK}" if equals and _SECRET_NAME.search(name) else pair)
    return f"{before}?{'&'.join(pairs)}{hash_}{MASK if fragment else ''}"


def malformed_userinfo(url: str) -> str | None:
    """Why the password of ``url`` cannot be read by URL parsers (``None``: it can).

    >>> malformed_userinfo("redis://:pa/ss@db:6379")
    "the password holds '/': percent-encode it ('/' is %2F, '#' is %23, '?' is %3F)"
    >>> malformed_userinfo("redis://:pa%2Fss@db:6379") is None
    True
    """
    parts = _split(url)
    if parts is None or parts[1] is None:
        return None
    for char in "/#?":
        if char in parts[1]:
            return (
                f"the password holds {char!r}: percent-encode it "
                "('/' is %2F, '#' is %23, '?' is %3F)"
            )
    return None


def secrets_of_url(url: str) -> list[str]:
    """The secret text of ``url`` (its user information) for :func:`redact_text`."""
    parts = _split(url)
    if parts is None or parts[1] is None:
        return []
    user, colon, password = parts[1].partition(":")
    return [password] if colon else [user]


def redact_text(text: str, secrets: Iterable[str], *, whole: Iterable[str] = ()) -> str:
    """``text`` with every secret, and every piece a URL parser could cut it into, hidden.

    A library that mis-parsed a URL may quote part of a password in its error (as a host,
    port or path), so each of ``secrets`` is also scrubbed piece by piece (split at
    ``/#?@:``); the values in ``whole`` (tokens given as such) are scrubbed only whole.
    """
    pieces: set[str] = set(whole)
    for secret in secrets:
        if secret:
            pieces.update((secret, *re.split(r"[/#?@:]", secret)))
    for piece in sorted(pieces, key=len, reverse=True):
        if len(piece) >= _MIN_FRAGMENT:
            text = text.replace(piece, MASK)
    return text


def redact_properties(properties: Mapping[str, Any]) -> dict[str, Any]:
    """Client properties (librdkafka, SASL/TLS) with secret values replaced by ``***``."""
    return {
        name: MASK if _SECRET_NAME.search(name) and value not in (None, "") else value
        for name, value in properties.items()
    }


def secrets_of_properties(properties: Mapping[str, Any]) -> list[str]:
    """The secret values among client ``properties`` (for :func:`redact_text` on errors)."""
    return [
        str(value)
        for name, value in properties.items()
        if _SECRET_NAME.search(name) and value not in (None, "")
    ]


def environment_secrets(environ: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """Secrets the process was given through its environment: ``REDIS_URL``'s password (to
    scrub piece by piece) and the values of ``*_TOKEN`` / ``*_SECRET`` / ``*_PASSWORD``
    variables (to scrub whole), for :func:`redact_text`.

    >>> environment_secrets({"REDIS_URL": "redis://:pw@h", "DRIFTRADAR_GITLAB_TOKEN": "t0k",
    ...                      "PWD": "/check/work", "SSH_AUTH_SOCK": "/tmp/agent"})
    (['pw'], ['t0k'])
    """
    tokens = [
        value
        for name, value in sorted(environ.items())
        if value and name != "REDIS_URL" and _SECRET_ENV.search(name)
    ]
    return secrets_of_url(environ.get("REDIS_URL", "")), tokens
