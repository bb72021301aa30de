"""``/metrics`` as the Prometheus client's WSGI app serves it, but with the per-model
snapshot families written from text cached per model.

The client's app makes a sample object per series and formats every one on every scrape:
~1.2 s for 300 models and ~1 000 series each, even when nothing changed. Here the client's
encoder (chosen by the same content negotiation: Prometheus text or OpenMetrics) runs over
everything but :class:`~streams.metrics.snapshots.SnapshotGauges`, whose families are then
added from :meth:`~streams.metrics.snapshots.SnapshotGauges.render` (a model's lines are
formatted once after it changed). ``name[]`` filters and gzip work as in the client's app;
a gzip body joins the pieces each model keeps deflated (:mod:`streams.metrics.deflate`)
instead of compressing ~60 KiB of text per model at every scrape (~1.75 s at 1 000 models).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Final
from urllib.parse import parse_qs

from prometheus_client.exposition import choose_encoder, gzip_accepted, make_wsgi_app
from prometheus_client.registry import CollectorRegistry

from streams.metrics.deflate import gzipped, joined
from streams.metrics.snapshots import SnapshotGauges

__all__ = ["exposition", "metrics_app"]

#: A WSGI application (PEP 3333).
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_EOF: Final = b"# EOF\n"


def exposition(
    registry: CollectorRegistry,
    snapshots: SnapshotGauges,
    accept: str | None = None,
    names: list[str] | None = None,
    *,
    gzip: bool = False,
) -> tuple[bytes, str]:
    """(body, content type) of a scrape that sent ``Accept: accept``, restricted to the
    families ``names`` when given; the body gzipped (one member) when ``gzip``."""
    encoder, content_type = choose_encoder(accept or "")
    target: Any = registry.restricted_registry(names) if names else registry
    with snapshots.muted():
        body = encoder(target)
    ours = snapshots.pieces(set(names) if names else None)
    # OpenMetrics ends with a marker: the families go before it
    eof = body.endswith(_EOF)
    pieces = [body[: -len(_EOF)], *ours, _EOF] if eof else [body, *ours]
    return (gzipped(pieces) if gzip else joined(pieces)), content_type


def metrics_app(registry: CollectorRegistry, snapshots: SnapshotGauges | None) -> WsgiApp:
    """A WSGI app serving :func:`exposition` for GET (any path, as the client's app);
    other methods, and a registry without ``snapshots``, get the client's app."""
    client_app = make_wsgi_app(registry)
    if snapshots is None:
        return client_app

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "GET" or environ.get("PATH_INFO") == "/favicon.ico":
            return client_app(environ, start_response)  # type: ignore[no-any-return]
        params = parse_qs(environ.get("QUERY_STRING", ""))
        gzip = gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING", ""))
        body, content_type = exposition(
            registry, snapshots, environ.get("HTTP_ACCEPT"), params.get("name[]"), gzip=gzip
        )
        headers = [("Content-Type", content_type)]
        if gzip:
            headers.append(("Content-Encoding", "gzip"))
        start_response("200 OK", headers)
        return [body]

    return app
