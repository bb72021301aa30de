"""A minimal HTTP POST for the CI/webhook actions, on the standard library.

Why urllib and not httpx/requests: the worker sends one small POST per attempt, needs a
timeout, no redirects and no connection pool, so a dependency buys nothing here. Redirects
are refused on purpose: following one would re-send a token to another address.

Errors become :class:`~producers.retrain.errors.ActionError` with ``retryable`` set for
network errors, 408, 425, 429 and 5xx, and unset for other 4xx (a bad token or job name
does not heal by retrying). Messages name the URL with its credentials and secret query
values hidden (:func:`streams.core.redact.redact_url`, the one redaction of the project).

>>> redact_url("https://user:pw@ci.example/job/x/buildWithParameters?token=s3cret")
'https://user:***@ci.example/job/x/buildWithParameters?token=***'
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.message import Message
from typing import Final

from producers.retrain.errors import ActionError
from producers.retrain.secrets import Secret, scrub
from streams.core.redact import redact_url

__all__ = ["USER_AGENT", "HttpResponse", "cookie_opener", "post", "redact_url", "request"]

USER_AGENT: Final = "driftradar-retrain-worker/0.1"
_RETRYABLE_STATUS: Final = frozenset({408, 425, 429})


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _opener(cookies: bool) -> urllib.request.OpenerDirector:
    handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
    if cookies:
        handlers.append(urllib.request.HTTPCookieProcessor())
    return urllib.request.build_opener(*handlers)


def request(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    opener: urllib.request.OpenerDirector | None = None,
    secrets: Iterable[Secret] = (),
) -> HttpResponse:
    """Send one request; return a 2xx response or raise :class:`ActionError`.

    ``secrets`` are blanked out of error messages (a server may echo what it was sent).
    """
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in {"http", "https"}:
        raise ActionError(f"URL {redact_url(url)!r} must be http or https", retryable=False)
    all_headers = {"User-Agent": USER_AGENT, **(headers or {})}
    req = urllib.request.Request(url, data=body, headers=all_headers, method=method)
    where = f"{method} {redact_url(url)}"
    try:
        with (opener or _opener(False)).open(req, timeout=timeout) as resp:
            return HttpResponse(resp.status, _headers(resp.headers), resp.read())
    except urllib.error.HTTPError as exc:
        status = exc.code
        detail = scrub(_snippet(exc.read() if exc.fp is not None else b""), secrets)
        retryable = status >= 500 or status in _RETRYABLE_STATUS
        kind = "redirect refused" if 300 <= status < 400 else "failed"
        raise ActionError(
            f"{where} {kind}: HTTP {status}{detail}", retryable=retryable, status=status
        ) from None
    except OSError as exc:  # URLError, timeouts and connection errors are OSErrors
        reason = getattr(exc, "reason", exc)
        message = scrub(f"{where} failed: {reason}", secrets)
        raise ActionError(message, retryable=True) from None


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    timeout: float = 30.0,
    opener: urllib.request.OpenerDirector | None = None,
    secrets: Iterable[Secret] = (),
) -> HttpResponse:
    return request(
        "POST", url, body=body, headers=headers, timeout=timeout, opener=opener, secrets=secrets
    )


def cookie_opener() -> urllib.request.OpenerDirector:
    """An opener that keeps cookies between calls (Jenkins ties a crumb to its session)."""
    return _opener(True)


def _headers(message: Message) -> dict[str, str]:
    return {key.lower(): value for key, value in message.items()}


def _snippet(body: bytes, limit: int = 200) -> str:
    text = body.decode("utf-8", "replace").strip()
    return f" ({text[:limit]})" if text else ""
