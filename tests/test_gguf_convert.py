"""GGUF -> Hugging Face checkpoint, then `passk eval` on the result with its chat template.

The GGUF is written here with the `gguf` package from a tiny random Llama whose weights we
know, in llama.cpp's layout (tensor names, rotary Q/K row order, byte-level BPE vocabulary and
merges, chat template in the metadata). Why not the real SmolLM2 GGUF: it is a 93 MB download
plus ~30 s of conversion and a 135M-parameter evaluation on CI's 2 cores, and a wrong answer
from a pretrained model proves nothing about the conversion; with known weights the converted
model must reproduce the source model's logits exactly. bench/real_model_wiseft.py converts
the real file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gguf")

HEADS, KV_HEADS = 4, 2  # grouped-query attention, so the K permutation uses its own head count
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|eos|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


def _llama_cpp_rows(weight: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's row order for rotary Q/K weights (its converter's `permute`)."""
    rows = weight.shape[0]
    return (
        weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


def write_tiny_gguf(path: Path, model, tokenizer) -> Path:
    """A float32 llama GGUF of `model` with `tokenizer`'s byte-level BPE and a chat template."""
    import gguf

    cfg = model.config
    state = {k: v.detach().float().numpy() for k, v in model.state_dict().items()}
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_rope_freq_base(10000.0)
    writer.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    writer.add_vocab_size(cfg.vocab_size)

    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    vocab = spec["model"]["vocab"]
    tokens = sorted(vocab, key=vocab.get)
    assert [vocab[t] for t in tokens] == list(range(len(tokens)))
    special = set(tokenizer.all_special_tokens)
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if t in special else 1 for t in tokens])  # 3: control
    writer.add_token_merges(merges)
    writer.add_bos_token_id(tokenizer.bos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_chat_template(CHAT_TEMPLATE)

    names = {
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
        "input_layernorm": "attn_norm",
        "post_attention_layernorm": "ffn_norm",
    }
    writer.add_tensor("token_embd.weight", state["model.embed_tokens.weight"])
    for layer in range(cfg.num_hidden_layers):
        for hf_name, gguf_name in names.items():
            weight = state[f"model.layers.{layer}.{hf_name}.weight"]
            if gguf_name == "attn_q":
                weight = _llama_cpp_rows(weight, cfg.num_attention_heads)
            elif gguf_name == "attn_k":
                weight = _llama_cpp_rows(weight, cfg.num_key_value_heads)
            writer.add_tensor(f"blk.{layer}.{gguf_name}.weight", np.ascontiguousarray(weight))
    writer.add_tensor("output_norm.weight", state["model.norm.weight"])
    writer.add_tensor("output.weight", state["lm_head.weight"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """(GGUF file, the Llama it was written from, its tokenizer)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from passk_plugin.demo.tiny import build_tokenizer, default_corpus

    tokenizer = build_tokenizer(default_corpus())
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    path = write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf", model, tokenizer)
    return path, model, tokenizer


@pytest.fixture(scope="module")
def converted(source, tmp_path_factory) -> Path:
    from passk_plugin.gguf_convert import convert_gguf

    return convert_gguf(source[0], tmp_path_factory.mktemp("hf") / "tiny-hf")


def test_converted_checkpoint_reproduces_the_source_model(source, converted):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, model, tokenizer = source
    loaded = AutoModelForCausalLM.from_pretrained(converted, dtype=torch.float32)
    assert getattr(loaded.config, "quantization_config", None) is None  # plain, trainable
    text = "Q: Tom has 3 apples and buys 12 more. A: 3 + 12 = 15. The answer is 15."
    ids = tokenizer(text, return_tensors="pt").input_ids
    converted_tok = AutoTokenizer.from_pretrained(converted)
    assert converted_tok(text, return_tensors="pt").input_ids.tolist() == ids.tolist()
    with torch.no_grad():
        expected = model(ids).logits
        got = loaded(ids).logits
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)

    assert converted_tok.chat_template == CHAT_TEMPLATE
    assert converted_tok.eos_token == "<|eos|>"
    record = json.loads((converted / "passk_gguf.json").read_text())
    assert record["source_name"] == "tiny.gguf" and record["chat_template"] is True
    assert record["parameters"] == sum(p.numel() for p in model.parameters())


def test_conversion_is_cached_and_checks_its_input(source, converted, tmp_path, monkeypatch):
    from passk_plugin import gguf_convert

    def no_reload(*args, **kwargs):
        raise AssertionError("a finished conversion must not be redone")

    with monkeypatch.context() as mp:
        mp.setattr(gguf_convert, "dense_model_from_gguf", no_reload)
        assert gguf_convert.convert_gguf(source[0], converted) == converted

    other = tmp_path / "other.gguf"
    other.write_bytes(source[0].read_bytes() + b"\0")
    with pytest.raises(ValueError, match="already holds a conversion of tiny.gguf"):
        gguf_convert.convert_gguf(other, converted)
    not_gguf = tmp_path / "model.safetensors"
    not_gguf.write_bytes(b"\x00" * 16)
    with pytest.raises(ValueError, match="is not a GGUF file"):
        gguf_convert.convert_gguf(not_gguf, tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="GGUF file not found"):
        gguf_convert.convert_gguf(tmp_path / "missing.gguf", tmp_path / "out")


# The first two GSM8K test problems: `--limit 2` reads no further.
GSM8K_ROWS = [
    {
        "question": "Janet\u2019s ducks lay 16 eggs per day. She eats three for breakfast every "
        "morning and bakes muffins for her friends every day with four. She sells the remainder "
        "at the farmers' market daily for $2 per fresh duck egg. How much in dollars does she "
        "make every day at the farmers' market?",
        "answer": "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\nShe makes 9 * 2 = "
        "$<<9*2=18>>18 every day at the farmer\u2019s market.\n#### 18",
    },
    {
        "question": "A robe takes 2 bolts of blue fiber and half that much white fiber.  How "
        "many bolts in total does it take?",
        "answer": "It takes 2/2=<<2/2=1>>1 bolt of white fiber\nSo the total amount of fabric "
        "is 2+1=<<2+1=3>>3 bolts of fabric\n#### 3",
    },
]


@pytest.mark.slow
def test_converted_checkpoint_in_passk_eval_zeroshot(converted, tmp_path, monkeypatch):
    """`passk eval --apply_chat_template` on the zero-shot task, no extra flags for the model."""
    from passk_plugin.cli import main as passk_main
    from passk_plugin.graders import gsm8k
    from passk_plugin.harness import parse_verdicts

    data = tmp_path / "data" / "gsm8k"
    data.mkdir(parents=True)
    (data / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in GSM8K_ROWS))
    monkeypatch.setenv("PASSK_DATA_DIR", str(data.parent))
    out = tmp_path / "out"
    argv = ["eval", "--model", "hf-passk", "--model_args", f"pretrained={converted}"]
    argv += ["--device", "cpu", "--tasks", "gsm8k_passk_zeroshot", "--apply_chat_template"]
    argv += ["--limit", "2", "--n", "2", "--gen_kwargs", "max_gen_toks=8"]
    argv += ["--output_path", str(out), "--log_samples"]
    assert passk_main(argv) == 0

    (results_file,) = out.rglob("results_*.json")
    metrics = json.loads(results_file.read_text())["results"]["gsm8k_passk_zeroshot"]
    (samples_file,) = out.rglob("samples_gsm8k_passk_zeroshot_*.jsonl")
    samples = [json.loads(line) for line in samples_file.open()]
    assert len(samples) == 2
    for sample in samples:
        prompt = sample["arguments"]["gen_args_0"]["arg_0"]
        # The GGUF's own chat template framed the task's instruction.
        assert prompt.startswith("<|user|>\nSolve the following math word problem")
        assert prompt.endswith("<|assistant|>\n")
        (texts,) = sample["resps"]
        verdicts = parse_verdicts(sample["filtered_resps"][0])
        assert len(texts) == len(verdicts) == 2
        for text, verdict in zip(texts, verdicts, strict=True):
            assert verdict["correct"] == gsm8k.grade(text, sample["doc"]).correct
    assert metrics["n,all"] == 2


SHORT_TRAIN_ROWS = [
    {
        "question": f"Tom has {a} apples and buys {b} more. How many?",
        "answer": f"{a}+{b}={a + b}\n#### {a + b}",
    }
    for a, b in ((3, 12), (4, 5), (7, 2), (6, 6))
]


@pytest.mark.slow
def test_study_script_smallest_size_runs_and_resumes(source, tmp_path):
    """bench/real_model_wiseft.py --size ci end to end on the tiny GGUF, then a rerun resumes."""
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    data = tmp_path / "data" / "gsm8k"
    data.mkdir(parents=True)
    (data / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in GSM8K_ROWS))
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in SHORT_TRAIN_ROWS))
    work = tmp_path / "work"
    cmd = [sys.executable, str(repo / "bench" / "real_model_wiseft.py"), "--size", "ci"]
    cmd += ["--gguf", str(source[0]), "--work", str(work)]
    env = {**os.environ, "PASSK_DATA_DIR": str(data.parent)}
    first = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-3000:]

    sft = json.loads((work / "sft" / "DONE.json").read_text())
    assert sft["steps"] == 4 and sft["checkpoints"] == [0, 2, 4]
    # 3 checkpoints, WiSE-FT α = 0.5 of 2 with 4, the last at T = 1.0 and at top_p = 0.8
    done = sorted((work / "study" / "points").glob("*/DONE.json"))
    assert len(done) == 6
    results = (work / "results.md").read_text()
    for row in ("| 0 |", "| 2 (early) |", "| 4 (late) |", "| 0.5 |", "| T = 1 |", "| top_p=0.8 |"):
        assert row in results
    assert "passk sweep --checkpoints" in results

    stamps = {p: p.stat().st_mtime_ns for p in [work / "sft" / "DONE.json", *done]}
    second = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # nothing redone
