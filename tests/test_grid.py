from __future__ import annotations

import json

import pytest
import yaml

from passk_plugin.errors import UsageError
from passk_plugin.grid import (
    GridPoint,
    Sampling,
    checkpoint_points,
    checkpoint_step,
    decoding_points,
    early_late_points,
    interpolation_points,
    parse_decoding,
    unique_points,
)


def test_coordinates_have_their_own_names():
    (wise,) = interpolation_points("wise-ft", "/e", "/l", [0.25])
    (slerp,) = interpolation_points("slerp", "/e", "/l", [0.25])
    (tb,) = interpolation_points("toward-base", "/b", "/f", [0.25])
    assert (wise.id, wise.coordinate, wise.weights) == (
        "wise-ft_a0.250",
        ("alpha", 0.25),
        (0.75, 0.25),
    )
    assert (slerp.id, slerp.coordinate, slerp.alpha, slerp.weights) == (
        "slerp_t0.250",
        ("t", 0.25),
        None,
        None,
    )
    assert (tb.id, tb.coordinate, tb.alpha) == ("toward-base_e0.250", ("eta", 0.25), None)
    with pytest.raises(ValueError, match="slerp has no coordinate alpha"):
        GridPoint(id="p", method="slerp", alpha=0.5, t=0.5, checkpoints=("/e", "/l"))
    with pytest.raises(ValueError, match="needs a finite t"):
        GridPoint(id="p", method="slerp", checkpoints=("/e", "/l"))
    with pytest.raises(ValueError, match="has no coordinate alpha"):
        GridPoint(id="p", method="checkpoint", alpha=1.0, checkpoints=("/c",))


def test_merge_points_produce_their_mergekit_config():
    (wise,) = interpolation_points("wise-ft", "/e", "/l", [0.7])
    assert wise.to_mergekit() == {
        "merge_method": "linear",
        "base_model": "/e",
        "parameters": {"normalize": False},
        "models": [
            {"model": "/e", "parameters": {"weight": 0.3}},
            {"model": "/l", "parameters": {"weight": 0.7}},
        ],
    }
    assert yaml.safe_load(wise.to_yaml()) == wise.to_mergekit()
    (c,) = checkpoint_points(["/c"])
    with pytest.raises(ValueError, match="not a merge"):
        c.to_mergekit()


def test_decoding_points():
    settings = [Sampling(temperature=0.7), parse_decoding("top_p=0.8;min_p=0.05")]
    pts = decoding_points("/late", settings)
    assert [p.id for p in pts] == ["late-T0.7", "late-top_p=0.8_min_p=0.05"]
    assert pts[1].gen_kwargs() == {"top_p": 0.8, "min_p": 0.05}
    assert pts[1].checkpoint == "/late" and not pts[1].needs_merge
    assert parse_decoding("typical_p=0.9").typical_p == 0.9
    for bad, match in (("top_k=5", "key=value"), ("top_p=x", "no number"), ("", "empty"),
                       ("top_p=1.5", r"in \[0, 1\]")):  # fmt: skip
        with pytest.raises(UsageError, match=match):
            parse_decoding(bad)
    with pytest.raises(ValueError, match="belong to decoding"):
        GridPoint(id="p", method="checkpoint", checkpoints=("/c",), sampling=settings[0])


def test_identical_models_map_to_one_point():
    # α = 1 of wise-ft(E, L) is L, α = 0 is E: with a trajectory over E and L, one point each.
    grid = interpolation_points("wise-ft", "/r/early", "/r/checkpoint-200", [0.0, 0.5, 1.0])
    traj = checkpoint_points(["/r/early", "/r/checkpoint-200"])
    pts = unique_points(grid + traj)
    assert [p.id for p in pts] == ["ckpt_early", "wise-ft_a0.500", "ckpt_checkpoint-200"]
    assert grid[2].model_key() == traj[1].model_key() != grid[1].model_key()
    # slerp's ends too; a decoding point of L is another point (other sampling)
    (s1,) = interpolation_points("slerp", "/r/early", "/r/checkpoint-200", [1.0])
    (d,) = decoding_points("/r/checkpoint-200", [Sampling(temperature=1.0)])
    assert s1.model_key() == traj[1].model_key() != d.model_key()
    with pytest.raises(UsageError, match="share the id 'ckpt_late'"):
        unique_points(checkpoint_points(["/a/late", "/b/late"]))


def test_early_late_grids_evaluate_each_model_once():
    lates = ["/r/checkpoint-100", "/r/checkpoint-200"]
    pts = early_late_points("/r/checkpoint-10", lates, [0.0, 0.5, 1.0])
    ids = [p.id for p in pts]
    assert ids == [
        "ckpt_checkpoint-10",
        "ckpt_checkpoint-100_wise-ft_a0.500",
        "ckpt_checkpoint-100",
        "ckpt_checkpoint-200_wise-ft_a0.500",
        "ckpt_checkpoint-200",
    ]
    assert [p.step for p in pts] == [10, 100, 100, 200, 200]
    assert len({p.model_key() for p in pts}) == len(pts)


def test_steps(tmp_path):
    assert checkpoint_step("/x/checkpoint-1500") == 1500
    assert checkpoint_step("/x/late") is None
    run = tmp_path / "late"
    run.mkdir()
    (run / "trainer_state.json").write_text(json.dumps({"global_step": 42}))
    assert checkpoint_step(run) == 42


def test_stored_paths_inside_the_run_dir_are_relative(tmp_path):
    inside = str(tmp_path / "run" / "ckpt" / "late")
    (p,) = interpolation_points("wise-ft", "/elsewhere/early", inside, [0.5])
    stored = p.to_stored(tmp_path / "run")
    assert stored["checkpoints"] == ["/elsewhere/early", "./ckpt/late"]
    assert GridPoint.from_stored(stored, tmp_path / "run") == p
    moved = GridPoint.from_stored(stored, tmp_path / "moved")
    assert moved.checkpoints == ("/elsewhere/early", str(tmp_path / "moved" / "ckpt" / "late"))
    assert GridPoint.from_stored(p.to_stored()) == p  # hub ids and absolute paths as they are


def test_older_stored_points_are_migrated():
    old_merge = {
        "id": "wise-ft_a0.500", "method": "wise-ft", "alpha": 0.5, "temperature": None,
        "parameters": {"id": "wise-ft_a0.500", "method": "wise-ft", "parameters": {"alpha": 0.5},
                       "checkpoints": ["/e", "/l"], "base_model": "/e", "weights": [0.5, 0.5],
                       "dtype": None, "out_dtype": None},
        "recipe": "/somewhere/recipes/wise-ft_a0.500.yaml", "checkpoint": None,
    }  # fmt: skip
    old_temp = {"id": "late-T1", "method": "temperature", "alpha": None, "temperature": 1.0,
                "parameters": {"temperature": 1.0}, "recipe": None, "checkpoint": "/l"}  # fmt: skip
    with pytest.warns(UserWarning, match="older shape"):
        merge = GridPoint.from_stored(old_merge)
    with pytest.warns(UserWarning, match="decoding"):
        temp = GridPoint.from_stored(old_temp)
    assert merge == interpolation_points("wise-ft", "/e", "/l", [0.5])[0]
    assert temp == decoding_points("/l", [Sampling(temperature=1.0)])[0].model_copy(
        update={"step": None}
    )
