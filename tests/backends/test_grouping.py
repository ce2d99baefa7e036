from __future__ import annotations

import pytest
from lm_eval.api.instance import Instance

from passk_plugin.backends.grouping import (
    RequestGroup,
    group_by_settings,
    group_requests,
    request_args,
    scatter,
    settings_key,
    split_group,
)

GREEDY = {"until": ["\n\n"], "do_sample": False}
SAMPLE = {"until": ["\n\n"], "do_sample": True, "temperature": 0.8}


def test_settings_key_is_canonical():
    a = {"temperature": 0.8, "until": ["\n\n", "Q:"], "do_sample": True}
    b = {"do_sample": True, "until": ("\n\n", "Q:"), "temperature": 0.8}
    assert settings_key(a) == settings_key(b)
    assert settings_key(a) != settings_key({**a, "temperature": 0.7})
    assert settings_key(a) != settings_key({**a, "until": ["Q:", "\n\n"]})
    # values JSON cannot encode still give a stable key
    assert settings_key({"x": {1, 2}}) == settings_key({"x": {1, 2}})


def test_groups_identical_requests_in_order_of_first_appearance():
    args = [
        ("A", SAMPLE),
        ("B", SAMPLE),
        ("A", dict(SAMPLE)),  # equal settings in a different dict object
        ("A", GREEDY),  # same context, other settings: another group
        ("B", SAMPLE),
        ("A", SAMPLE),
    ]
    groups = group_requests(args)
    assert [(g.context, g.indices) for g in groups] == [
        ("A", (0, 2, 5)),
        ("B", (1, 4)),
        ("A", (3,)),
    ]
    assert [g.size for g in groups] == [3, 2, 1]
    assert groups[2].gen_kwargs == GREEDY


def test_accepts_lm_eval_instances():
    reqs = [
        Instance("generate_until", {}, ("ctx", SAMPLE), idx=0, metadata=("t", d, 2))
        for d in (0, 0, 1, 1)
    ]
    assert request_args(reqs) == [("ctx", SAMPLE)] * 4
    assert [g.indices for g in group_requests(reqs)] == [(0, 1, 2, 3)]


@pytest.mark.parametrize(
    "bad",
    [("only context",), ("ctx", "not a dict"), (3, {}), "text"],
)
def test_rejects_malformed_requests(bad):
    with pytest.raises(ValueError, match="request 0"):
        group_requests([bad])


def test_scatter_restores_original_order():
    args = [("A", SAMPLE), ("B", SAMPLE), ("A", SAMPLE), ("C", GREEDY), ("B", SAMPLE)]
    groups = group_requests(args)
    results = [[f"{g.context}{k}" for k in range(g.size)] for g in groups]
    assert scatter(groups, results, len(args)) == ["A0", "B0", "A1", "C0", "B1"]


def test_scatter_checks_coverage():
    groups = group_requests([("A", SAMPLE), ("A", SAMPLE), ("B", SAMPLE)])
    with pytest.raises(ValueError, match="got 1 results"):
        scatter(groups, [["a"], ["b"]], 3)
    with pytest.raises(ValueError, match="no result for requests"):
        scatter(groups, [["a", "a"], ["b"]], 4)
    with pytest.raises(ValueError, match="more than one group"):
        scatter([groups[0], groups[0]], [["a", "a"], ["a", "a"]], 3)


def test_split_group_keeps_order_and_settings():
    group = RequestGroup("A", SAMPLE, (0, 3, 4, 7, 9))
    pieces = split_group(group, 2)
    assert [p.indices for p in pieces] == [(0, 3), (4, 7), (9,)]
    assert all(p.context == "A" and p.gen_kwargs == SAMPLE for p in pieces)
    assert split_group(group, 10) == [group]
    with pytest.raises(ValueError, match="max_size"):
        split_group(group, 0)


def test_group_by_settings():
    groups = group_requests([("A", SAMPLE), ("B", GREEDY), ("C", dict(SAMPLE))])
    by = group_by_settings(groups)
    assert [[g.context for g in gs] for gs in by.values()] == [["A", "C"], ["B"]]
