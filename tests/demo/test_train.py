from __future__ import annotations

import json

import pytest

from passk_plugin.atomic import umask_dir_mode
from passk_plugin.demo import train as train_module
from passk_plugin.demo.problems import split_problems
from passk_plugin.demo.train import (
    DemoTrainConfig,
    finetune_lr_at,
    pretrain_lr_at,
    run_data_dir,
    saved_checkpoints,
    train_demo_checkpoints,
)

# A run small enough for CI: it exercises every step of the real training, not its quality.
CI_RUN = dict(
    n_train=48,
    n_test=8,
    hidden_size=32,
    num_layers=1,
    num_heads=2,
    batch_size=8,
    n_pretrain=40,
    pretrain_steps=6,
    steps=12,
    early_step=5,
    checkpoint_steps=(5, 12),
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
    with pytest.raises(ValueError, match="checkpoint_steps"):
        DemoTrainConfig(steps=100, early_step=10, checkpoint_steps=(10, 200))
    with pytest.raises(ValueError, match="broad stage"):
        DemoTrainConfig(n_pretrain=0, pretrain_steps=10)


def test_saved_steps_hold_the_base_the_early_and_the_late_checkpoint():
    cfg = DemoTrainConfig(steps=100, early_step=10, checkpoint_steps=(50,))
    assert cfg.saved_steps == (0, 10, 50, 100)


def test_broad_stage_decays_by_cosine_and_fine_tuning_holds_its_rate():
    cfg = DemoTrainConfig(
        pretrain_steps=200, warmup_steps=20, pretrain_lr=1e-3, pretrain_min_lr=1e-4, lr=5e-4
    )
    broad = [pretrain_lr_at(step, cfg) for step in range(cfg.pretrain_steps)]
    assert broad[0] == pytest.approx(1e-3 / 20)
    assert max(broad) == pytest.approx(1e-3)
    after = broad[cfg.warmup_steps :]
    assert all(a > b for a, b in zip(after, after[1:], strict=False))
    # Half-way through the decay the cosine is at the mean of its ends.
    assert pretrain_lr_at(20 + 90, cfg) == pytest.approx(5.5e-4)
    assert pretrain_lr_at(cfg.pretrain_steps, cfg) == pytest.approx(1e-4)
    tuned = [finetune_lr_at(step, cfg) for step in range(500)]
    assert tuned[0] == pytest.approx(5e-4 / 20)
    assert set(tuned[cfg.warmup_steps :]) == {5e-4}


def test_cache_key_changes_with_every_setting():
    base = DemoTrainConfig()
    assert base.cache_key() == DemoTrainConfig().cache_key()
    assert base.cache_key() != DemoTrainConfig(seed=1).cache_key()
    assert base.cache_key() != DemoTrainConfig(lr=base.lr / 2).cache_key()


@pytest.mark.slow
def test_loadable_checkpoints_of_one_architecture_along_the_run(trained):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, (early_dir, late_dir) = trained
    found = saved_checkpoints(early_dir.parent)
    assert [step for step, _ in found] == [0, 5, 12]
    assert dict(found)[5] == early_dir and dict(found)[12] == late_dir
    models = [AutoModelForCausalLM.from_pretrained(path) for _, path in found]

    def architecture(model):
        return {k: v for k, v in model.config.to_dict().items() if k != "_name_or_path"}

    states = [model.state_dict() for model in models]
    for model, state in zip(models[1:], states[1:], strict=True):
        assert architecture(model) == architecture(models[0])
        assert state.keys() == states[0].keys()
        assert all(state[k].shape == states[0][k].shape for k in state)
    # Training went on between saved steps: the weights differ from one to the next.
    for before, after in zip(states, states[1:], strict=False):
        assert any(not torch.equal(before[k], after[k]) for k in before)

    late = models[-1]
    tokenizer = AutoTokenizer.from_pretrained(late_dir)
    for _, path in found:
        assert AutoTokenizer.from_pretrained(path).get_vocab() == tokenizer.get_vocab()
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
