"""Topic-name and partition checks that happen before any broker is contacted."""

from __future__ import annotations

import pytest

from streams.core.topics import ensure_topics, validate_topic_name

_NO_BROKER = "127.0.0.1:1"  # never contacted: the arguments are refused first


@pytest.mark.parametrize("name", ["", ".", "..", "has space", "x" * 250, "slash/name", "ü"])
def test_illegal_topic_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="topic name"):
        validate_topic_name(name)


@pytest.mark.parametrize("name", ["predictions", "ground-truth", "a.b_c-1", "x" * 249])
def test_legal_topic_names_pass(name: str) -> None:
    assert validate_topic_name(name) == name


@pytest.mark.parametrize("partitions", [0, -1, True, 2.0])
def test_partition_count_must_be_a_positive_int(partitions: object) -> None:
    with pytest.raises(ValueError, match="partitions must be a positive integer"):
        ensure_topics(_NO_BROKER, ["predictions"], partitions)  # type: ignore[arg-type]


def test_a_bad_name_is_refused_before_connecting() -> None:
    with pytest.raises(ValueError, match="'bad name'"):
        ensure_topics(_NO_BROKER, ["predictions", "bad name"])


def test_nothing_to_create_needs_no_broker() -> None:
    assert ensure_topics(_NO_BROKER, []) == {}
