from __future__ import annotations

import os
from pathlib import Path

import pytest

# Nothing in the tests may wait on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
# The offline benchmark data beside the checkout; PASSK_TEST_DATA points elsewhere (worktrees).
SHARED_DATA = Path(os.environ.get("PASSK_TEST_DATA", REPO.parent / "shared" / "data"))


def data_missing(reason: str) -> None:
    """Skip a test whose data is missing, or fail it when PASSK_REQUIRE_DATA=1 (as CI sets).

    Every test that needs data outside the repository goes through here, so a CI run without
    the data fails instead of passing while testing less.
    """
    if os.environ.get("PASSK_REQUIRE_DATA") == "1":
        pytest.fail(f"{reason}; PASSK_REQUIRE_DATA=1 requires it", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The offline copies of GSM8K and MATH-500 beside the checkout."""
    if not (SHARED_DATA / "gsm8k" / "test.jsonl").exists():
        data_missing(f"offline benchmark data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from passk_plugin.demo.tiny import build_tokenizer, default_corpus

    return build_tokenizer(default_corpus())


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tiny_tokenizer) -> Path:
    """A randomly initialised tiny Llama checkpoint on disk (seed 0)."""
    from passk_plugin.demo.tiny import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "model", tokenizer=tiny_tokenizer)


@pytest.fixture(scope="session")
def tiny_pair(tmp_path_factory, tiny_tokenizer) -> tuple[Path, Path]:
    """Two checkpoints of one architecture (seeds 1 and 2): an 'early' and a 'late'."""
    from passk_plugin.demo.tiny import build_tiny_llama

    root = tmp_path_factory.mktemp("pair")
    early = build_tiny_llama(root / "early", tokenizer=tiny_tokenizer, seed=1)
    late = build_tiny_llama(root / "late", tokenizer=tiny_tokenizer, seed=2)
    return early, late


@pytest.fixture(scope="session")
def wide_model(tmp_path_factory, tiny_tokenizer) -> Path:
    """A checkpoint of the tiny model's family with a different hidden size (96)."""
    from passk_plugin.demo.tiny import build_tiny_llama

    return build_tiny_llama(
        tmp_path_factory.mktemp("wide") / "model", tokenizer=tiny_tokenizer, hidden_size=96
    )
