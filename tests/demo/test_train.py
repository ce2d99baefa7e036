from __future__ import annotations

import json

import pytest

from passk_plugin.atomic import umask_dir_mode
from passk_plugin.demo import train as train_module
from passk_plugin.demo.problems import split_problems
from passk_plugin.demo.train import DemoTrainConfig, run_data_dir, train_demo_checkpoints

# A run small enough for CI: it exercises every step of the real training, not its quality.
CI_RUN = dict(
    n_train=48,
    n_test=8,
    hidden_size=32,
    num_layers=1,
    num_heads=2,
    batch_size=8,
    steps=12,
    early_step=5,
    warmup_steps=2,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo-train")
    return out, train_demo_checkpoints(out, progress=False, threads=1, **CI_RUN)


def test_config_rejects_an_early_step_outside_the_run():
    with pytest.raises(ValueError, match="early_step"):
        DemoTrainConfig(steps=10, early_step=10)
    with pytest.raises(ValueError, match="divisible"):
        DemoTrainConfig(hidden_size=30, num_heads=4)


def test_cache_key_changes_with_every_setting():
    base = DemoTrainConfig()
    assert base.cache_key() == DemoTrainConfig().cache_key()
    assert base.cache_key() != DemoTrainConfig(seed=1).cache_key()
    assert base.cache_key() != DemoTrainConfig(lr=base.lr / 2).cache_key()


@pytest.mark.slow
def test_two_loadable_checkpoints_of_one_architecture(trained):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, (early_dir, late_dir) = trained
    assert (early_dir / "model.safetensors").exists() and (late_dir / "model.safetensors").exists()
    early = AutoModelForCausalLM.from_pretrained(early_dir)
    late = AutoModelForCausalLM.from_pretrained(late_dir)

    def architecture(model):
        return {k: v for k, v in model.config.to_dict().items() if k != "_name_or_path"}

    assert architecture(early) == architecture(late)
    early_state, late_state = early.state_dict(), late.state_dict()
    assert early_state.keys() == late_state.keys()
    assert all(early_state[k].shape == late_state[k].shape for k in early_state)
    # Training went on between the two: the weights differ.
    assert any(not torch.equal(early_state[k], late_state[k]) for k in early_state)

    tokenizer = AutoTokenizer.from_pretrained(late_dir)
    assert tokenizer.get_vocab() == AutoTokenizer.from_pretrained(early_dir).get_vocab()
    prompt = tokenizer("Q: Tom has 3 apples.\nA:", return_tensors="pt")
    out = late.generate(**prompt, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > prompt["input_ids"].shape[1]
    assert isinstance(tokenizer.decode(out[0]), str)


@pytest.mark.slow
def test_training_records_its_settings(trained):
    _, (early_dir, _) = trained
    recorded = json.loads((early_dir.parent / "config.json").read_text())
    assert recorded["steps"] == CI_RUN["steps"]
    assert recorded["version"] == train_module.TRAINING_VERSION
    assert not list(early_dir.parent.parent.glob(".training-*"))
    assert early_dir.parent.stat().st_mode & 0o777 == umask_dir_mode()  # not mkdtemp's 0700


@pytest.mark.slow
def test_second_call_returns_the_cached_run_without_training(trained, monkeypatch):
    out, dirs = trained

    def no_training(*args, **kwargs):
        raise AssertionError("the cached run was trained again")

    monkeypatch.setattr(train_module, "run_training", no_training)
    assert train_demo_checkpoints(out, progress=False, **CI_RUN) == dirs
    # A different setting is a different run.
    with pytest.raises(AssertionError, match="trained again"):
        train_demo_checkpoints(out, progress=False, **{**CI_RUN, "seed": 1})


@pytest.mark.slow
def test_training_is_deterministic(trained, tmp_path):
    from safetensors.torch import load_file

    _, (_, late_dir) = trained
    _, again = train_demo_checkpoints(tmp_path, progress=False, threads=1, **CI_RUN)
    first, second = (
        load_file(late_dir / "model.safetensors"),
        load_file(again / "model.safetensors"),
    )
    assert first.keys() == second.keys()
    assert all((first[k] == second[k]).all() for k in first)


@pytest.mark.slow
def test_run_holds_its_train_and_held_out_problems(trained, tmp_path):
    _, (early_dir, late_dir) = trained
    data = run_data_dir(late_dir)
    assert data == run_data_dir(early_dir)
    train, test = split_problems(CI_RUN["n_train"], CI_RUN["n_test"], seed=0)
    rows = [json.loads(line) for line in (data / "gsm8k" / "test.jsonl").read_text().splitlines()]
    assert rows == [p.to_record() for p in test]
    assert len((data / "gsm8k" / "train.jsonl").read_text().splitlines()) == len(train)
    with pytest.raises(FileNotFoundError, match="not a demo checkpoint"):
        run_data_dir(tmp_path / "model")
