"""Tiny real transformers models with their own tokenizers, built locally (no hub).

Used by the demo (as the starting point of training) and by the tests (as stand-ins for
real checkpoints).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

SPECIAL_TOKENS = ["<|pad|>", "<|bos|>", "<|eos|>"]


def build_tokenizer(texts: Iterable[str], vocab_size: int = 512, *, split_digits: bool = False):
    """A byte-level BPE tokenizer trained on `texts`: any string round-trips.

    split_digits makes every digit its own token (numbers are never merged), as in the
    Llama and Qwen tokenizers.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    if split_digits:
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), byte_level]
        )
    else:
        tok.pre_tokenizer = byte_level
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<|pad|>",
        bos_token="<|bos|>",
        eos_token="<|eos|>",
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def default_corpus() -> list[str]:
    """A small mixed corpus (word problems, LaTeX, Python) for test tokenizers."""
    return [
        "Q: Tom has 3 apples and buys 12 more. How many apples does he have? "
        "A: 3 + 12 = 15. The answer is 15. #### 15",
        "Problem: Find $x$ if $2x + 3 = 7$. Solution: $x = \\boxed{2}$. "
        "Final Answer: The final answer is $2$. I hope it is correct.",
        "def add(a: int, b: int) -> int:\n    return a + b\n\nassert add(1, 2) == 3\n",
        "for i in range(10):\n    print(i * 2)\n",
        "The quick brown fox jumps over the lazy dog 0123456789 $,.;:!?()[]{}",
    ] * 4


def build_tiny_llama(
    out_dir: str | Path,
    *,
    tokenizer=None,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    seed: int = 0,
    max_position_embeddings: int = 2048,
    dtype: str = "float32",
    intermediate_size: int | None = None,
) -> Path:
    """Write a randomly initialised Llama-style causal LM and its tokenizer to out_dir."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if tokenizer is None:
        tokenizer = build_tokenizer(default_corpus())
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size or hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(getattr(torch, dtype))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out
