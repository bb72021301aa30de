"""Gauge families replaced whole, atomically: what a scrape sees is one consistent picture.

Levels copied from the consumer (lag per partition) are rebuilt from scratch on every
update (:meth:`SnapshotGauges.replace`). Levels copied from the engine (detector statistics,
performance, coverage) are kept per owner — a model — and replaced one owner at a time
(:meth:`SnapshotGauges.set_owner`), so an update costs what changed, not what exists; the
families are assembled when scraped. Clearing and re-setting ``prometheus_client.Gauge``
children would let a scrape see a half-empty set and would keep series of models this
replica no longer owns; swapping a finished set of samples does not.

``/metrics`` renders these families itself (:meth:`SnapshotGauges.render`): each owner's
lines are formatted once after it changed and kept as text, so a scrape of an idle monitor
joins cached bytes instead of making and formatting a sample object per series (about a
microsecond each; kept, they took ~160 KiB per model against ~60 KiB of text at ~1 000
series per model). Once rendered, the text is all that is kept of an owner: its samples
(~80 KiB per model) are dropped and read back from the text when a collector asks
(:meth:`collect`, tests and ``value()``; not the served path). The long families (the
detector ones) are kept deflated (:mod:`streams.metrics.deflate`): ~5 KiB per model instead
of ~60, and a gzip scrape joins them as they are. The client's own encoders skip these
families meanwhile (:meth:`muted`).

>>> from prometheus_client import CollectorRegistry, generate_latest
>>> snaps = SnapshotGauges({"demo_lag": ("Lag.", ("partition",))})
>>> registry = CollectorRegistry()
>>> registry.register(snaps)
>>> snaps.replace("demo_lag", [(("0",), 5.0), (("1",), 0.0)])
>>> [line for line in generate_latest(registry).decode().splitlines() if line[0] != "#"]
['demo_lag{partition="0"} 5.0', 'demo_lag{partition="1"} 0.0']
>>> levels = SnapshotGauges({"demo_level": ("Level.", ("model_id",))})
>>> levels.set_owner("a", {"demo_level": [(("a",), 1.0)]})
>>> levels.set_owner("b", {"demo_level": [(("b",), 2.0)]})
>>> levels.keep_owners({"b"})
>>> levels.samples("demo_level")
[(('b',), 2.0)]
"""

from __future__ import annotations

import re
import threading
from array import array
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Final

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample as PromSample
from prometheus_client.utils import floatToGoString

from streams.metrics.deflate import Deflated, Piece, joined

__all__ = ["Sample", "SnapshotGauges"]

#: One gauge sample: label values in the family's label order, and the value.
Sample = tuple[tuple[str, ...], float]
#: An owner's family text of at least this many bytes is kept deflated (~13x smaller: the
#: detector families, ~60 KiB per model of 12 features); shorter ones as they are.
DEFLATE_FROM: Final = 1024


class SnapshotGauges(Collector):
    """A fixed set of gauge families, each replaced whole by :meth:`replace`."""

    def __init__(self, families: Mapping[str, tuple[str, Sequence[str]]]) -> None:
        self._specs = {name: (doc, tuple(labels)) for name, (doc, labels) in families.items()}
        self._current: dict[str, GaugeMetricFamily] = {}
        # owner -> family -> samples, or their text once rendered; swapped whole, under
        # _lock (a scrape's thread swaps samples for text only if they are still current)
        self._owned: dict[str, dict[str, _Samples] | _Rendered] = {}
        self._lock = threading.Lock()
        self._changes = 0  # owner updates so far; a scrape rebuilds only after one
        self._built: dict[str, tuple[int, GaugeMetricFamily]] = {}
        self._owned_families: set[str] = set()
        self._muted = threading.local()

    def replace(self, name: str, samples: Iterable[Sample]) -> None:
        """Make ``samples`` the whole content of family ``name``."""
        doc, labels = self._specs[name]
        family = GaugeMetricFamily(name, doc, labels=labels)
        for values, value in samples:
            family.add_metric(list(values), value)
        self._current[name] = family  # one reference swap: atomic for a concurrent scrape

    def set_owner(self, owner: str, samples: Mapping[str, Sequence[Sample]]) -> None:
        """Make ``samples`` (family -> samples) everything ``owner`` contributes; families it
        does not name lose its samples. Other owners keep theirs."""
        for name in samples:
            if name not in self._specs:
                raise KeyError(name)
        self._owned_families.update(samples)
        owned = {name: _Samples(values) for name, values in samples.items() if values}
        with self._lock:
            self._owned[owner] = owned
        self._changes += 1

    def keep_owners(self, owners: Collection[str]) -> None:
        """Forget the samples of every owner not in ``owners``."""
        with self._lock:
            for owner in [o for o in self._owned if o not in owners]:
                del self._owned[owner]
                self._changes += 1

    def samples(self, name: str) -> list[Sample]:
        """The current samples of ``name`` (for tests and health checks)."""
        family = self._family(name)
        if family is None:
            return []
        labels = self._specs[name][1]
        return [(tuple(s.labels[k] for k in labels), s.value) for s in family.samples]

    def _family(self, name: str) -> GaugeMetricFamily | None:
        """The family as a scrape sees it: replaced whole, or assembled from its owners."""
        if name in self._current:
            return self._current[name]
        if name not in self._owned_families:
            return None
        changes = self._changes
        built = self._built.get(name)
        if built is not None and built[0] == changes:
            return built[1]  # nothing changed since the last scrape
        doc, labels = self._specs[name]
        family = GaugeMetricFamily(name, doc, labels=labels)
        owned = list(self._owned.values())  # a copy: updates may go on meanwhile
        family.samples = [
            PromSample(name, dict(zip(labels, values, strict=True)), value)
            for per_family in owned
            for values, value in _samples_of(per_family, name, labels)
        ]
        self._built[name] = (changes, family)
        return family

    # -- exposition ------------------------------------------------------------------------

    @contextmanager
    def muted(self) -> Iterator[None]:
        """While inside (in this thread), :meth:`collect` yields nothing: a client encoder
        runs over the rest of the registry and :meth:`render` adds these families."""
        self._muted.on = True
        try:
            yield
        finally:
            self._muted.on = False

    def render(self, names: Collection[str] | None = None) -> bytes:
        """The families (those in ``names``, or all) in the Prometheus text format, which
        OpenMetrics shares for gauges; owners' lines are formatted once per change."""
        return joined(self.pieces(names))

    def pieces(self, names: Collection[str] | None = None) -> list[Piece]:
        """:meth:`render`'s text in pieces, an owner's long families kept deflated (a gzip
        scrape joins them as they are: :func:`~streams.metrics.deflate.gzipped`)."""
        out: list[Piece] = []
        for name, (doc, labels) in self._specs.items():
            if names is not None and name not in names:
                continue
            current = self._current.get(name)
            if current is None and name not in self._owned_families:
                continue
            escaped = doc.replace("\\", r"\\").replace("\n", r"\n")
            out.append(f"# HELP {name} {escaped}\n# TYPE {name} gauge\n".encode())
            if current is not None:
                out.append(
                    _lines(
                        name,
                        labels,
                        [(tuple(s.labels[k] for k in labels), s.value) for s in current.samples],
                    )
                )
                continue
            for owner, owned in list(self._owned.items()):  # a copy: updates go on
                texts = owned.texts if isinstance(owned, _Rendered) else self._render(owner, owned)
                out.append(texts.get(name, b""))
        return out

    def _render(self, owner: str, samples: dict[str, _Samples]) -> dict[str, Piece]:
        """Every family of ``owner`` as text, deflated from :data:`DEFLATE_FROM` bytes on;
        kept in place of ``samples`` unless the owner changed meanwhile (then the next
        scrape renders the new ones)."""
        texts: dict[str, Piece] = {}
        for name, values in samples.items():
            text = _lines(name, self._specs[name][1], values)
            texts[name] = Deflated(text) if len(text) >= DEFLATE_FROM else text
        with self._lock:
            if self._owned.get(owner) is samples:
                self._owned[owner] = _Rendered(texts)
        return texts

    def describe(self) -> Iterator[Metric]:
        for name, (doc, labels) in self._specs.items():
            yield GaugeMetricFamily(name, doc, labels=labels)

    def collect(self) -> Iterator[Metric]:
        if getattr(self._muted, "on", False):
            return
        for name in self._specs:
            family = self._family(name)
            if family is not None:
                yield family


class _Samples:
    """An owner's samples of one family until it is rendered, packed: the label tuples and
    an array of the values (a ``(labels, value)`` tuple and a float object per sample took
    ~90 bytes more: ~40 KiB per model of 12 features, held by every model that changed since
    the last scrape, and by all of them while nobody scrapes)."""

    __slots__ = ("labels", "values")

    def __init__(self, samples: Sequence[Sample]) -> None:
        self.labels = [labels for labels, _ in samples]
        self.values = array("d", [value for _, value in samples])

    def __iter__(self) -> Iterator[Sample]:
        return zip(self.labels, self.values, strict=True)


class _Rendered:
    """An owner's families as the text lines a scrape serves (family -> lines)."""

    __slots__ = ("texts",)

    def __init__(self, texts: dict[str, Piece]) -> None:
        self.texts = texts


def _samples_of(
    owned: dict[str, _Samples] | _Rendered, name: str, labels: tuple[str, ...]
) -> Iterable[Sample]:
    """An owner's samples of family ``name``: kept, or read back from its text."""
    if not isinstance(owned, _Rendered):
        return owned.get(name, ())
    return _parse(joined((owned.texts.get(name, b""),)), labels)


#: One label of a sample line, ``name="value"`` with the value escaped as :func:`_escape` does.
_LABEL: Final = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
_UNESCAPE: Final = re.compile(r"\\(.)")


def _parse(text: bytes, labels: tuple[str, ...]) -> list[Sample]:
    """The samples of lines written by :func:`_lines` (label values in ``labels`` order).

    >>> _parse(_lines("m", ("b", "a"), [(('x"\\n', "y"), 2.5)]), ("b", "a"))
    [(('x"\\n', 'y'), 2.5)]
    """
    out: list[Sample] = []
    # (split at "\n" only: a label value keeps any other line break unescaped, e.g. "\r")
    for line in text.decode().split("\n")[:-1]:
        head, _, value = line.rpartition(" ")
        found = {
            key: _UNESCAPE.sub(lambda m: "\n" if m.group(1) == "n" else m.group(1), raw)
            for key, raw in _LABEL.findall(head)
        }
        out.append((tuple(found[k] for k in labels), float(value)))
    return out


#: The client's float formatting (``NaN``, ``+Inf``, ``2e+20``…), typed.
_format_value: Final[Callable[[float], str]] = floatToGoString


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _lines(name: str, labels: tuple[str, ...], samples: Iterable[Sample]) -> bytes:
    """Sample lines as the client's text encoder writes them (labels sorted by name)."""
    order = sorted(range(len(labels)), key=labels.__getitem__)
    keys = [f'{labels[k]}="' for k in order]
    lines = []
    for values, value in samples:
        pairs = ",".join(f'{key}{_escape(values[k])}"' for key, k in zip(keys, order, strict=True))
        lines.append(
            f"{name}{{{pairs}}} {_format_value(value)}\n"
            if pairs
            else f"{name} {_format_value(value)}\n"
        )
    return "".join(lines).encode()
