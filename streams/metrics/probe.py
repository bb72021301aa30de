"""``python -m streams.metrics.probe [PATH]``: exit 0 if the local monitor answers 200.

The Docker ``HEALTHCHECK`` of the driftradar image: the slim base image has no curl, and
the port follows ``DRIFTRADAR_METRICS_PORT`` like the server does.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence

from streams.metrics.server import resolve_port

__all__ = ["main", "probe"]


def probe(
    path: str = "/healthz", environ: Mapping[str, str] = os.environ, timeout: float = 3.0
) -> int:
    """GET ``http://127.0.0.1:<port><path>``; 0 on HTTP 200, 1 otherwise (reason on stderr)."""
    url = f"http://127.0.0.1:{resolve_port(None, environ)}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 0 if response.status == 200 else 1
    except urllib.error.HTTPError as exc:
        print(f"{url}: HTTP {exc.code} {exc.read().decode(errors='replace')}", file=sys.stderr)
    except OSError as exc:
        print(f"{url}: {exc}", file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    return probe(args[0] if args else "/healthz")


if __name__ == "__main__":
    sys.exit(main())
