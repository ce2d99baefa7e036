from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from passk_plugin.cli import main as passk
from passk_plugin.errors import UsageError
from passk_plugin.merge import (
    MARKER_NAME,
    ResidentCheckpoints,
    is_complete,
    load_merged,
    merge_in_memory,
    merge_recipe,
)
from passk_plugin.recipes import (
    read_manifest,
    slerp_grid,
    soup_grid,
    toward_base_grid,
    wise_ft_grid,
    write_recipes,
)

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory, tiny_pair, tiny_tokenizer) -> dict[str, Path]:
    """early, late (config and tokenizer marked so the donor is visible) and a third."""
    from passk_plugin.demo.tiny import build_tiny_llama

    root = tmp_path_factory.mktemp("merge_ckpts")
    early = root / "early"
    shutil.copytree(tiny_pair[0], early)
    late = root / "late"
    shutil.copytree(tiny_pair[1], late)
    for name, key, value in [
        ("config.json", "max_position_embeddings", 4096),
        ("tokenizer_config.json", "model_max_length", 777),
    ]:
        data = json.loads((late / name).read_text())
        data[key] = value
        (late / name).write_text(json.dumps(data))
    third = build_tiny_llama(root / "third", tokenizer=tiny_tokenizer, seed=3)
    return {"early": early, "late": late, "third": third}


@pytest.fixture(scope="module")
def recipes(ckpts, tmp_path_factory) -> dict[str, Path]:
    e, late, third = ckpts["early"], ckpts["late"], ckpts["third"]
    points = (
        wise_ft_grid(e, late, [0.0, 0.3, 1.0])
        + slerp_grid(e, late, [0.5])
        + toward_base_grid(e, late, [0.6])
        + soup_grid([e, late, third])
        + soup_grid([e, late, third], [1, 2, 3])
    )
    manifest = write_recipes(points, tmp_path_factory.mktemp("recipes") / "grid")
    out = {r.point.id: r.path for r in read_manifest(manifest)}
    # dtype handling: compute in bf16, and write bf16 from fp32 checkpoints
    (bf16_slerp,) = slerp_grid(e, late, [0.3], dtype="bfloat16")
    (bf16_out,) = wise_ft_grid(e, late, [0.3], out_dtype="bfloat16")
    extra = write_recipes([bf16_slerp], manifest.parent.parent / "bf16a")
    out["slerp_bf16"] = extra.parent / f"{bf16_slerp.id}.yaml"
    extra = write_recipes([bf16_out], manifest.parent.parent / "bf16b")
    out["wise-ft_out_bf16"] = extra.parent / f"{bf16_out.id}.yaml"
    return out


@pytest.fixture(scope="module")
def merged(recipes, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("merged")
    return {pid: merge_recipe(path, root / pid) for pid, path in recipes.items()}


@pytest.fixture(scope="module")
def resident(ckpts) -> ResidentCheckpoints:
    return ResidentCheckpoints(ckpts.values())


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(path / "model.safetensors")


def _expected(inputs: list[Path], weights: list[float]) -> dict[str, torch.Tensor]:
    tensors = [_weights(p) for p in inputs]
    return {
        name: sum(w * t[name].double() for w, t in zip(weights, tensors, strict=True)).float()
        for name in tensors[0]
    }


# ---------------------------------------------------------------- disk


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_wise_ft_is_the_interpolation(alpha, ckpts, merged):
    out = _weights(merged[f"wise-ft_a{alpha:.3f}"])
    expected = _expected([ckpts["early"], ckpts["late"]], [1 - alpha, alpha])
    assert out.keys() == expected.keys()
    for name, tensor in out.items():
        torch.testing.assert_close(tensor, expected[name])  # fp32 rounding
    endpoint = {0.0: ckpts["early"], 1.0: ckpts["late"]}.get(alpha)
    if endpoint is not None:
        exact = _weights(endpoint)
        assert all(torch.equal(out[name], exact[name]) for name in exact)


@pytest.mark.parametrize(
    "pid", ["wise-ft_a0.300", "wise-ft_a1.000", "toward-base_e0.600", "soup_n3"]
)
def test_config_and_tokenizer_come_from_the_early_checkpoint(pid, ckpts, merged):
    out = merged[pid]
    assert json.loads((out / "config.json").read_text()) == json.loads(
        (ckpts["early"] / "config.json").read_text()
    )
    for name in TOKENIZER_FILES:
        assert (out / name).read_bytes() == (ckpts["early"] / name).read_bytes(), name
    assert "tokenizer_source" not in (out / "mergekit_config.yml").read_text()


def test_toward_base_is_the_interpolation(ckpts, merged):
    out = _weights(merged["toward-base_e0.600"])
    expected = _expected([ckpts["early"], ckpts["late"]], [0.4, 0.6])
    for name, tensor in out.items():
        torch.testing.assert_close(tensor, expected[name])


@pytest.mark.parametrize(
    "pid, weights", [("soup_n3", [1, 1, 1]), ("soup_n3_w0.167_0.333_0.500", [1, 2, 3])]
)
def test_soup_is_the_weighted_average(pid, weights, ckpts, merged):
    out = _weights(merged[pid])
    total = sum(weights)
    inputs = [ckpts["early"], ckpts["late"], ckpts["third"]]
    expected = _expected(inputs, [w / total for w in weights])
    for name, tensor in out.items():
        torch.testing.assert_close(tensor, expected[name])


def test_slerp_output_loads_and_generates(merged, ckpts):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = merged["slerp_t0.500"]
    weights = _weights(out)
    name = "model.layers.0.mlp.up_proj.weight"
    assert not torch.equal(weights[name], _weights(ckpts["early"])[name])
    assert not torch.equal(weights[name], _weights(ckpts["late"])[name])
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    inputs = tokenizer("Q: 3 + 12 = ", return_tensors="pt")
    generated = model.generate(**inputs, max_new_tokens=3, do_sample=False)
    assert generated.shape[1] == inputs["input_ids"].shape[1] + 3


def test_dtype_and_out_dtype_are_applied(merged):
    # out_dtype converts the result; dtype converts the inputs, and the result keeps it
    for pid in ("wise-ft_out_bf16", "slerp_bf16"):
        assert {t.dtype for t in _weights(merged[pid]).values()} == {torch.bfloat16}, pid


# ---------------------------------------------------------------- memory


@pytest.mark.parametrize(
    "pid",
    [
        "wise-ft_a0.000",
        "wise-ft_a0.300",
        "slerp_t0.500",
        "toward-base_e0.600",
        "soup_n3",
        "soup_n3_w0.167_0.333_0.500",
        "slerp_bf16",
        "wise-ft_out_bf16",
    ],
)
def test_in_memory_is_bit_identical_to_disk(pid, recipes, merged, resident):
    state = merge_in_memory(recipes[pid], resident)
    disk = _weights(merged[pid])
    assert state.keys() == disk.keys()
    for name, tensor in disk.items():
        assert state[name].dtype == tensor.dtype
        assert torch.equal(state[name], tensor), name


@pytest.mark.slow
def test_in_memory_is_bit_identical_to_mergekit_yaml(recipes, resident, tmp_path):
    """The real `mergekit-yaml` CLI (one run: it costs seconds of start-up)."""
    cli = Path(sys.executable).with_name("mergekit-yaml")
    recipe = recipes["slerp_t0.500"]
    subprocess.run([str(cli), str(recipe), str(tmp_path / "out")], check=True, capture_output=True)
    disk = _weights(tmp_path / "out")
    state = merge_in_memory(recipe, resident)
    assert state.keys() == disk.keys()
    assert all(torch.equal(state[name], disk[name]) for name in disk)


@pytest.mark.parametrize("copy", [False, True])
def test_load_merged_matches_loading_from_disk(copy, recipes, merged, resident, ckpts):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(ckpts["early"])
    ids = torch.tensor([[1, 5, 9, 14, 3]])
    for pid in ("wise-ft_a0.300", "slerp_t0.500"):  # a second point reuses the model
        load_merged(model, merge_in_memory(recipes[pid], resident), copy=copy)
        reference = AutoModelForCausalLM.from_pretrained(merged[pid])
        for name, tensor in reference.state_dict().items():
            assert torch.equal(model.state_dict()[name], tensor), name
        with torch.no_grad():
            assert torch.equal(model(ids).logits, reference(ids).logits)


def test_tied_embeddings_stay_tied(tmp_path, tiny_tokenizer):
    """Qwen2.5-style checkpoints store only the embedding; mergekit also writes lm_head."""
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tiny_tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        tie_word_embeddings=True,
    )
    paths = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        paths.append(tmp_path / f"tied{seed}")
        LlamaForCausalLM(config).save_pretrained(paths[-1])
        tiny_tokenizer.save_pretrained(paths[-1])
    assert "lm_head.weight" not in load_file(paths[0] / "model.safetensors")
    (point,) = wise_ft_grid(*paths, [0.4])
    recipe = write_recipes([point], tmp_path / "recipes").parent / f"{point.id}.yaml"
    reference = AutoModelForCausalLM.from_pretrained(merge_recipe(recipe, tmp_path / "out"))
    model = AutoModelForCausalLM.from_pretrained(paths[0])
    load_merged(model, merge_in_memory(recipe, ResidentCheckpoints(paths)))
    assert model.lm_head.weight is model.model.embed_tokens.weight
    for name, tensor in reference.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name


def test_load_merged_is_strict(recipes, resident, ckpts):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(ckpts["early"])
    state = merge_in_memory(recipes["wise-ft_a0.300"], resident)
    with pytest.raises(ValueError, match="bfloat16"):
        load_merged(model, {k: v.to(torch.bfloat16) for k, v in state.items()})
    with pytest.raises(ValueError, match="lack 'lm_head.weight'"):
        load_merged(model, {k: v for k, v in state.items() if k != "lm_head.weight"})
    with pytest.raises(ValueError, match="lacks"):
        load_merged(model, {**state, "extra.weight": torch.zeros(1)})


def test_in_memory_needs_resident_checkpoints(recipes, ckpts):
    partial = ResidentCheckpoints([ckpts["early"]])
    with pytest.raises(ValueError, match="not resident"):
        merge_in_memory(recipes["wise-ft_a0.300"], partial)


# ---------------------------------------------------------------- resumability


@pytest.fixture
def run_merge_calls(monkeypatch) -> list[str]:
    import mergekit.merge

    calls: list[str] = []
    real = mergekit.merge.run_merge

    def counting(config, out_path, **kwargs):
        calls.append(out_path)
        return real(config, out_path, **kwargs)

    monkeypatch.setattr(mergekit.merge, "run_merge", counting)
    return calls


def test_complete_output_is_skipped_and_others_redone(recipes, run_merge_calls, tmp_path):
    out = tmp_path / "out"
    first, second = recipes["wise-ft_a0.300"], recipes["wise-ft_a1.000"]
    merge_recipe(first, out)
    assert len(run_merge_calls) == 1 and ".tmp-" in run_merge_calls[0]
    assert is_complete(out, first) and not is_complete(out, second)
    merge_recipe(first, out)
    assert len(run_merge_calls) == 1  # skipped
    merge_recipe(first, out, force=True)
    assert len(run_merge_calls) == 2
    merge_recipe(second, out)  # another recipe at the same place is redone
    assert len(run_merge_calls) == 3 and is_complete(out, second)
    marker = json.loads((out / MARKER_NAME).read_text())
    (out / MARKER_NAME).write_text(json.dumps({**marker, "recipe_sha256": None}))
    merge_recipe(second, out)  # as if interrupted while being moved into place
    assert len(run_merge_calls) == 4 and is_complete(out, second)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary left


def test_failed_merge_leaves_nothing(recipes, monkeypatch, tmp_path):
    import mergekit.merge

    def failing(config, out_path, **kwargs):
        Path(out_path).mkdir()
        (Path(out_path) / "model.safetensors").write_bytes(b"partial")
        raise RuntimeError("disk full")

    monkeypatch.setattr(mergekit.merge, "run_merge", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        merge_recipe(recipes["wise-ft_a0.300"], tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def _write(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def test_bad_recipes_fail_before_merging(ckpts, run_merge_calls, tmp_path, wide_model):
    e, late = str(ckpts["early"]), str(ckpts["late"])
    models = [
        {"model": e, "parameters": {"weight": 0.5}},
        {"model": late, "parameters": {"weight": 0.5}},
    ]
    cases = [
        ({"merge_method": "linear", "models": models}, ValueError, "no base_model"),
        (
            {
                "merge_method": "linear",
                "base_model": e,
                "tokenizer_source": "base",
                "models": models,
            },
            ValueError,
            "tokenizer_source",
        ),
        (
            {
                "merge_method": "linear",
                "base_model": e,
                "models": [{"model": str(tmp_path / "gone")}],
            },
            FileNotFoundError,
            "gone",
        ),
        (
            {
                "merge_method": "linear",
                "base_model": e,
                "models": [*models[:1], {"model": str(wide_model)}],
            },
            ValueError,
            "hidden_size",
        ),
    ]
    for i, (config, error, message) in enumerate(cases):
        with pytest.raises(error, match=message):
            merge_recipe(_write(tmp_path / f"r{i}.yaml", config), tmp_path / f"out{i}")
    with pytest.raises(FileNotFoundError, match="recipe not found"):
        merge_recipe(tmp_path / "none.yaml", tmp_path / "out")
    assert run_merge_calls == []


def test_relative_paths_in_a_recipe_are_resolved(ckpts, tmp_path, monkeypatch):
    root = ckpts["early"].parent
    monkeypatch.chdir(root.parent)
    rel_early, rel_late = f"{root.name}/early", f"{root.name}/late"  # shaped like hub ids
    config = {
        "merge_method": "linear",
        "base_model": rel_early,
        "parameters": {"normalize": False},
        "models": [
            {"model": rel_early, "parameters": {"weight": 0.5}},
            {"model": rel_late, "parameters": {"weight": 0.5}},
        ],
    }
    out = merge_recipe(_write(tmp_path / "rel.yaml", config), tmp_path / "out")
    written = yaml.safe_load((out / "mergekit_config.yml").read_text())
    assert written["base_model"] == str(ckpts["early"])


def test_merge_command(recipes, tmp_path, capsys):
    recipe, out = recipes["wise-ft_a0.300"], tmp_path / "out"
    assert passk(["merge", str(recipe), str(out), "--no-cuda"]) == 0
    assert "merged" in capsys.readouterr().out
    assert passk(["merge", str(recipe), str(out)]) == 0
    assert "skipped" in capsys.readouterr().out
    assert passk(["merge", str(tmp_path / "none.yaml"), str(out)]) == 2
    assert "recipe not found" in capsys.readouterr().err


def test_in_memory_accepts_grid_points(ckpts, recipes, resident):
    (point,) = wise_ft_grid(ckpts["early"], ckpts["late"], [0.3])
    from_point = merge_in_memory(point, resident)
    from_file = merge_in_memory(recipes["wise-ft_a0.300"], resident)
    assert all(torch.equal(from_point[k], from_file[k]) for k in from_file)
    assert resident.paths == [str(p) for p in ckpts.values()]
    assert ckpts["early"] in resident and "/no/such" not in resident


# ---------------------------------------------------------------- never losing the user's files


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _notes(root: Path) -> Path:
    root.mkdir()
    (root / "notes.txt").write_text("three weeks of notes\n")
    (root / "sub").mkdir()
    (root / "sub" / "data.csv").write_text("a,b\n1,2\n")
    return root


def test_a_folder_of_notes_is_refused_and_kept(recipes, run_merge_calls, tmp_path, capsys):
    recipe, notes = recipes["wise-ft_a0.300"], _notes(tmp_path / "notes")
    before = _snapshot(notes)
    with pytest.raises(UsageError, match=r"notes.*did not write.*--overwrite"):
        merge_recipe(recipe, notes)
    assert passk(["merge", str(recipe), str(notes)]) == 2
    err = capsys.readouterr().err
    assert str(notes) in err and "--overwrite" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2
    assert _snapshot(notes) == before and run_merge_calls == []
    # --overwrite writes the merge in beside the notes; every note stays.
    merge_recipe(recipe, notes, overwrite=True)
    assert is_complete(notes, recipe)
    after = _snapshot(notes)
    assert all(after[name] == data for name, data in before.items())
    # Now the directory is passk's too: a second merge replaces only the merge's own files.
    first_files = set(json.loads((notes / MARKER_NAME).read_text())["files"])
    merge_recipe(recipes["wise-ft_a1.000"], notes)
    assert is_complete(notes, recipes["wise-ft_a1.000"])
    assert all(_snapshot(notes)[name] == data for name, data in before.items())
    assert set(_snapshot(notes)) == set(before) | first_files | {MARKER_NAME}


def test_the_checkpoints_parent_is_never_written_into(
    ckpts, recipes, run_merge_calls, tmp_path, capsys
):
    recipe, parent = recipes["wise-ft_a0.300"], ckpts["early"].parent
    before = _snapshot(parent)
    for target in (parent, ckpts["early"], ckpts["late"]):
        for overwrite in (False, True):
            with pytest.raises(UsageError, match="holds the input"):
                merge_recipe(recipe, target, overwrite=overwrite)
        code = passk(["merge", str(recipe), str(target), "--overwrite"])
        err = capsys.readouterr().err
        assert code == 2 and str(target) in err and "Traceback" not in err
    # Nor the directory that holds the recipe.
    with pytest.raises(UsageError, match="holds the input"):
        merge_recipe(recipe, recipe.parent, overwrite=True)
    assert _snapshot(parent) == before and run_merge_calls == []
    assert not list(parent.parent.glob("*.tmp-*"))


def test_out_that_is_a_file_is_refused(recipes, tmp_path, capsys):
    target = tmp_path / "model.txt"
    target.write_text("keep me")
    assert passk(["merge", str(recipes["wise-ft_a0.300"]), str(target), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a directory" in err and str(target) in err and "Traceback" not in err
    assert target.read_text() == "keep me"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_merge_leaves_nothing_behind_after_the_rerun(recipes, tmp_path):
    from passk_plugin.temps import _HOST

    out = tmp_path / "out"
    dead = [
        tmp_path / f"out.tmp-{_dead_pid()}",  # older passk's naming
        tmp_path / f"out.tmp-{_HOST}-{_dead_pid()}-0123abcd",
    ]
    live_proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = [
            tmp_path / f"out.tmp-{live_proc.pid}",
            tmp_path / f"out.tmp-{_HOST}-{live_proc.pid}-0123abcd",
            tmp_path / f"out.tmp-otherhost-{_dead_pid()}-0123abcd",  # not ours to judge
        ]
        for d in dead + live:
            d.mkdir()
            (d / "model.safetensors").write_bytes(b"half a merge")
        merge_recipe(recipes["wise-ft_a0.300"], out)
        assert is_complete(out, recipes["wise-ft_a0.300"])
        assert not any(d.exists() for d in dead)
        assert all((d / "model.safetensors").exists() for d in live)
    finally:
        live_proc.kill()
        live_proc.wait()


def test_merged_files_honour_the_umask(recipes, tmp_path):
    import os

    old = os.umask(0o022)
    try:
        out = merge_recipe(recipes["wise-ft_a0.300"], tmp_path / "out")
        modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir() if p.is_file()}
        assert modes and set(modes.values()) == {0o644}, modes
        # Moved into an existing directory (the marker is then written atomically).
        merge_recipe(recipes["wise-ft_a1.000"], out)
        assert (out / MARKER_NAME).stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(old)


def test_malformed_recipes_are_one_line_naming_the_file(ckpts, tmp_path, capsys):
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("merge_method: linear\nmodels:\n  - model: [unclosed\n")
    unknown = _write(
        tmp_path / "unknown.yaml",
        {"merge_method": "lineer", "base_model": str(ckpts["early"]), "models": []},
    )
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"merge_method: linear\n# caf\xe9\n")
    cases = [
        (bad_yaml, [f"{bad_yaml}:", "not valid YAML"]),
        (unknown, [str(unknown), "unknown merge_method 'lineer'", "linear"]),
        (latin1, [f"{latin1}:2:", "not UTF-8", "0xe9"]),
    ]
    for recipe, expected in cases:
        assert passk(["merge", str(recipe), str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err
        assert all(part in err for part in expected), err
        assert "Traceback" not in err and len(err.strip().splitlines()) <= 2
    assert not (tmp_path / "out").exists()
