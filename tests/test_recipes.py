from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from passk_plugin.cli import main as passk
from passk_plugin.recipes import (
    RecipeSpec,
    build_grid,
    parse_grid,
    parse_weights,
    point_id,
    read_manifest,
    slerp_grid,
    soup_grid,
    toward_base_grid,
    wise_ft_grid,
    write_recipes,
)


def _abs(p: Path) -> str:
    return str(p.resolve())


# ---------------------------------------------------------------- grids


def test_range_has_no_float_drift():
    assert parse_grid("0:1:0.1") == [i / 10 for i in range(11)]
    assert parse_grid("0:1:0.25") == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert parse_grid("0:1:0.3") == [0.0, 0.3, 0.6, 0.9]  # stop not on the grid
    assert parse_grid("1:0:-0.5") == [1.0, 0.5, 0.0]
    assert parse_grid("-0.5:1.5:0.5") == [-0.5, 0.0, 0.5, 1.0, 1.5]


def test_lists_and_single_values():
    assert parse_grid("0, 0.25,0.5") == [0.0, 0.25, 0.5]
    assert parse_grid("0.7") == [0.7]
    assert parse_grid("-0") == [0.0] and str(parse_grid("-0")[0]) == "0.0"
    assert parse_weights("1,1,2") == [1.0, 1.0, 2.0]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("a,b", "not a number"),
        ("0:1", "start:stop:step"),
        ("0:1:0", "never reaches"),
        ("0:1:-0.1", "never reaches"),
        ("0,0.5,0.5", "repeats"),
        ("nan", "finite"),
    ],
)
def test_bad_grids(text, message):
    with pytest.raises(ValueError, match=message):
        parse_grid(text)


def test_ids_are_stable_safe_and_sortable():
    values = parse_grid("0:1:0.05")
    ids = [point_id("wise-ft", "alpha", v) for v in values]
    assert ids[0] == "wise-ft_a0.000" and ids[5] == "wise-ft_a0.250" and ids[-1] == "wise-ft_a1.000"
    assert sorted(ids) == ids
    assert point_id("slerp", "t", 0.5) == "slerp_t0.500"
    assert point_id("toward-base", "eta", 0.125) == "toward-base_e0.125"


# ---------------------------------------------------------------- recipes


def test_wise_ft_recipe(tiny_pair):
    early, late = tiny_pair
    points = wise_ft_grid(early, late, [0.0, 0.7, 1.0])
    assert [p.id for p in points] == ["wise-ft_a0.000", "wise-ft_a0.700", "wise-ft_a1.000"]
    config = yaml.safe_load(points[1].to_yaml())
    assert config == {
        "merge_method": "linear",
        "base_model": _abs(early),
        "parameters": {"normalize": False},
        "models": [
            {"model": _abs(early), "parameters": {"weight": 0.3}},
            {"model": _abs(late), "parameters": {"weight": 0.7}},
        ],
    }
    assert points[0].weights == (1.0, 0.0) and points[2].weights == (0.0, 1.0)
    assert "tokenizer_source" not in points[1].to_yaml()


def test_recipes_load_as_mergekit_configurations(tiny_pair):
    from mergekit.config import MergeConfiguration

    early, late = tiny_pair
    points = (
        wise_ft_grid(early, late, [0.5])
        + slerp_grid(early, late, [0.5])
        + toward_base_grid(early, late, [0.5])
        + soup_grid([early, late])
    )
    for point in points:
        config = MergeConfiguration.model_validate(yaml.safe_load(point.to_yaml()))
        assert str(config.base_model.model.path) == _abs(early)
        assert config.tokenizer_source is None
        if point.method != "slerp":
            assert config.parameters == {"normalize": False}


def test_slerp_recipe(tiny_pair):
    early, late = tiny_pair
    (point,) = slerp_grid(early, late, [0.25])
    assert point.id == "slerp_t0.250"
    assert yaml.safe_load(point.to_yaml()) == {
        "merge_method": "slerp",
        "base_model": _abs(early),
        "parameters": {"t": 0.25},
        "models": [{"model": _abs(early)}, {"model": _abs(late)}],
    }


def test_toward_base_recipe_anchors_on_base(tiny_pair):
    base, ft = tiny_pair
    (point,) = toward_base_grid(base, ft, [0.25])
    assert point.id == "toward-base_e0.250"
    assert point.base_model == _abs(base)
    assert point.weights == (0.75, 0.25)
    assert point.coordinate == ("eta", 0.25) and point.alpha is None


def test_hub_base_is_passed_through(tiny_pair):
    _, ft = tiny_pair
    (point,) = toward_base_grid("Qwen/Qwen2.5-0.5B", ft, [0.5])
    assert point.checkpoints == ("Qwen/Qwen2.5-0.5B", _abs(ft))
    assert point.base_model == "Qwen/Qwen2.5-0.5B"


def test_soup_weights(tiny_pair):
    early, late = tiny_pair
    (uniform,) = soup_grid([early, late])
    assert uniform.id == "soup_n2" and uniform.weights == (0.5, 0.5)
    assert uniform.base_model == _abs(early)
    (weighted,) = soup_grid([early, late], [1, 3])
    assert weighted.id == "soup_n2_w0.250_0.750" and weighted.weights == (0.25, 0.75)
    with pytest.raises(ValueError, match="2 checkpoints"):
        soup_grid([early, late], [1, 2, 3])
    with pytest.raises(ValueError, match="non-negative"):
        soup_grid([early, late], [1, -1])
    with pytest.raises(ValueError, match="listed twice"):
        soup_grid([early, early])
    with pytest.raises(ValueError, match="at least 2"):
        soup_grid([early])


def test_relative_checkpoints_are_written_absolute(tiny_pair, monkeypatch):
    early, late = tiny_pair
    monkeypatch.chdir(early.parent)
    (point,) = wise_ft_grid("early", "./late", [0.5])
    assert point.checkpoints == (_abs(early), _abs(late))


def test_extrapolation_needs_opt_in(tiny_pair):
    early, late = tiny_pair
    with pytest.raises(ValueError, match=r"alpha=1.5 is outside \[0, 1\].*allow_extrapolation"):
        wise_ft_grid(early, late, [0.5, 1.5])
    (point,) = wise_ft_grid(early, late, [1.5], allow_extrapolation=True)
    assert point.weights == (-0.5, 1.5)
    with pytest.raises(ValueError, match="outside"):
        slerp_grid(early, late, [-0.1])
    with pytest.raises(ValueError, match="finite"):
        wise_ft_grid(early, late, [float("nan")], allow_extrapolation=True)
    with pytest.raises(ValueError, match="same point id"):
        wise_ft_grid(early, late, [0.1, 0.1001])


# ---------------------------------------------------------------- writing


def test_write_and_read_manifest(tiny_pair, tmp_path):
    early, late = tiny_pair
    points = wise_ft_grid(early, late, parse_grid("0:1:0.5")) + slerp_grid(early, late, [0.5])
    manifest = write_recipes(points, tmp_path / "grid")
    assert manifest == tmp_path / "grid" / "manifest.json"
    data = json.loads(manifest.read_text())
    assert data["checkpoints"] == [_abs(early), _abs(late)]
    entry = data["points"][1]
    assert entry["id"] == "wise-ft_a0.500"
    assert entry["method"] == "wise-ft"
    assert entry["alpha"] == 0.5 and "t" not in entry
    assert entry["file"] == "wise-ft_a0.500.yaml"
    assert entry["checkpoints"] == [_abs(early), _abs(late)]
    assert sorted(p.name for p in manifest.parent.iterdir()) == sorted(
        ["manifest.json"] + [f"{p.id}.yaml" for p in points]
    )
    back = read_manifest(manifest.parent)
    assert [r.point for r in back] == points
    for recipe in back:
        assert recipe.path.read_text() == recipe.point.to_yaml()


def test_a_v1_manifest_reads_as_the_same_points(tmp_path):
    """A manifest passk-recipes/1 wrote: the coordinate under `parameters`, None fields kept."""
    from passk_plugin.grid import GridPoint, interpolation_points

    points = [
        *interpolation_points("wise-ft", "/c/early", "/c/late", [0.25], dtype="bfloat16"),
        *interpolation_points("slerp", "/c/early", "/c/late", [0.5]),
        *interpolation_points("toward-base", "/c/base", "/c/ft", [0.75]),
        GridPoint(id="soup_n2", method="soup", checkpoints=("/c/a", "/c/b"), weights=(0.5, 0.5)),
    ]
    manifest = write_recipes(points, tmp_path / "grid")
    data = json.loads(manifest.read_text())
    data["format"] = "passk-recipes/1"
    data["points"] = [
        {
            "id": p.id,
            "method": p.method,
            "parameters": {p.coordinate[0]: p.coordinate[1]} if p.coordinate else {"n": 2.0},
            "file": f"{p.id}.yaml",
            "checkpoints": list(p.checkpoints),
            "base_model": p.base_model,
            "weights": list(p.weights) if p.weights is not None else None,
            "dtype": p.dtype,
            "out_dtype": p.out_dtype,
        }
        for p in points
    ]
    manifest.write_text(json.dumps(data))
    back = read_manifest(manifest)
    assert [r.point for r in back] == points
    assert [r.path.name for r in back] == [f"{p.id}.yaml" for p in points]


def test_failures_write_nothing(tiny_pair, wide_model, tmp_path):
    early, late = tiny_pair
    cases = [
        (RecipeSpec(method="ties", checkpoints=(str(early), str(late))), ValueError, "unknown"),
        (RecipeSpec(checkpoints=(str(early), str(wide_model)), grid=(0.5,)), ValueError, "hidden"),
        (
            RecipeSpec(checkpoints=(str(early), str(tmp_path / "nope")), grid=(0.5,)),
            FileNotFoundError,
            "nope",
        ),
        (RecipeSpec(checkpoints=(str(early), str(late)), grid=(2.0,)), ValueError, "outside"),
        (RecipeSpec(checkpoints=(str(early),), grid=(0.5,)), ValueError, "two checkpoints"),
    ]
    for spec, error, message in cases:
        with pytest.raises(error, match=message):
            write_recipes(build_grid(spec), tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- CLI


def test_cli_writes_grid(tiny_pair, tmp_path, capsys):
    early, late = tiny_pair
    out = tmp_path / "cli"
    code = passk(
        [
            "recipes",
            "--early",
            str(early),
            "--late",
            str(late),
            "--alphas",
            "0:1:0.25",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert "5 wise-ft recipe(s)" in capsys.readouterr().out
    assert [r.point.id for r in read_manifest(out)] == [
        point_id("wise-ft", "alpha", a) for a in (0, 0.25, 0.5, 0.75, 1)
    ]


def test_cli_default_name_under_merge_configs(tiny_pair, tmp_path, monkeypatch):
    early, late = tiny_pair
    monkeypatch.chdir(tmp_path)
    assert (
        passk(
            [
                "recipes",
                "--method",
                "slerp",
                "--early",
                str(early),
                "--late",
                str(late),
                "--t",
                "0.5",
            ]
        )
        == 0
    )
    (recipe,) = read_manifest(tmp_path / "merge_configs" / "slerp_early_late")
    assert recipe.point.id == "slerp_t0.500"


def test_cli_soup_and_toward_base(tiny_pair, tmp_path):
    early, late = tiny_pair
    soup = tmp_path / "soup"
    assert (
        passk(
            [
                "recipes",
                "--method",
                "soup",
                "--checkpoints",
                str(early),
                str(late),
                "--weights",
                "1,1",
                "--out",
                str(soup),
            ]
        )
        == 0
    )
    assert [r.point.weights for r in read_manifest(soup)] == [(0.5, 0.5)]
    tb = tmp_path / "tb"
    assert (
        passk(
            [
                "recipes",
                "--method",
                "toward-base",
                "--base",
                str(early),
                "--ft",
                str(late),
                "--etas",
                "0.5,1",
                "--out",
                str(tb),
            ]
        )
        == 0
    )
    assert [r.point.id for r in read_manifest(tb)] == ["toward-base_e0.500", "toward-base_e1.000"]


PAIR = ["--early", "{early}", "--late", "{late}"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--method", "ties", *PAIR], "unknown merge method 'ties'"),
        (["--method", "slerp", *PAIR, "--alphas", "0.5"], "--alphas applies to wise-ft"),
        (["--late", "{late}"], "needs --early"),
        ([*PAIR, "--alphas", "0:2:1"], "outside [0, 1]"),
        ([*PAIR, "--alphas", "0:1"], "start:stop:step"),
        (["--early", "{early}", "--late", "{missing}"], "checkpoint not found"),
        (["--early", "{early}", "--late", "{wide}"], "'hidden_size' is 64"),
        ([*PAIR, "--base", "{late}"], "--base does not apply to wise-ft"),
    ],
)
def test_cli_errors_are_one_line_and_write_nothing(
    argv, message, tiny_pair, wide_model, tmp_path, capsys
):
    early, late = tiny_pair
    names = {
        "early": str(early),
        "late": str(late),
        "missing": str(tmp_path / "missing"),
        "wide": str(wide_model),
    }
    out = tmp_path / "o"
    code = passk(["recipes", "--out", str(out)] + [a.format(**names) for a in argv])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def test_a_corrupt_manifest_names_the_file_and_the_fix(tmp_path):
    from passk_plugin.errors import DataError

    manifest = tmp_path / "manifest.json"
    manifest.write_text('{"format": "passk-recipes/1",\n  "points": [')
    with pytest.raises(DataError, match=rf"^{manifest}:2: corrupt recipe manifest.*passk recipes"):
        read_manifest(tmp_path)
