"""``hf-passk``: lm_eval's HF backend, sampling n completions per prompt with one prefill.

lm_eval turns ``repeats: K`` into K identical ``generate_until`` requests. Stock ``hf`` batches
them as K independent sequences, running the same prompt through the model K times. Here the K
copies are collapsed (``grouping.group_requests``), each distinct prompt is run through the model
once, its key/value cache and last logits are copied K times, and the K continuations are
sampled together. Prompts of several problems share a batch under a row and token budget, and
rows that have finished (EOS or a stop string) leave the batch so later decode steps only compute
live rows.

Sampling follows stock ``hf`` exactly: the generation settings are merged with the model's
``generation_config`` by transformers' own ``_prepare_generation_config`` and turned into the same
logits processors (temperature, top-k, top-p, repetition penalty, ...) by
``_get_logits_processor``; logits are processed in float32 and sampled with ``torch.multinomial``.
Decoded text is cut at the stop strings with lm_eval's ``postprocess_generated_text``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import transformers
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import (
    handle_stop_sequences,
    normalize_gen_kwargs,
    postprocess_generated_text,
)
from tqdm import tqdm
from transformers.cache_utils import DynamicCache, DynamicLayer
from transformers.generation.configuration_utils import GenerationMode

from passk_plugin.backends.grouping import (
    RequestGroup,
    group_by_settings,
    group_requests,
    scatter,
    split_group,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_NUM_SEQS = 64
DEFAULT_MAX_BATCH_TOKENS = 65536
DEFAULT_MAX_PREFILL_TOKENS = 8192
# Finished rows are dropped from the cache once they make up this share of the batch: each drop
# copies the whole cache, so doing it for every single finished row would cost more than it saves.
COMPACT_FRACTION = 0.125


class _Unsupported(Exception):
    """Settings or a model this backend cannot run; those requests go to stock HFLM."""


@dataclass(frozen=True)
class SampleSettings:
    """One request group's generation settings, resolved the way stock ``hf`` resolves them."""

    until: list[str]
    max_gen_toks: int
    max_length: int | None
    generation_config: transformers.GenerationConfig

    @property
    def do_sample(self) -> bool:
        return bool(self.generation_config.do_sample)


@dataclass
class _Unit:
    """Rows of one request group that run in one batch: one prompt, ``n`` samples."""

    group: int
    prompt: list[int]
    n: int


def plan_batches(
    lengths: Sequence[int],
    sizes: Sequence[int],
    *,
    max_rows: int,
    max_tokens: int | None,
    gen_tokens: int,
) -> list[list[int]]:
    """Pack consecutive units into batches.

    A batch's rows are the sum of its units' ``sizes``; its token cost is rows times (longest
    prompt + ``gen_tokens``), the size its key/value cache may reach. A batch holds at least one
    unit even when that unit alone is over budget (the caller sizes units to fit).
    """
    if len(lengths) != len(sizes):
        raise ValueError("lengths and sizes differ in length")
    batches: list[list[int]] = []
    current: list[int] = []
    rows = 0
    longest = 0
    for i, (length, size) in enumerate(zip(lengths, sizes, strict=True)):
        new_rows = rows + size
        new_longest = max(longest, length)
        over_rows = new_rows > max_rows
        over_tokens = max_tokens is not None and new_rows * (new_longest + gen_tokens) > max_tokens
        if current and (over_rows or over_tokens):
            batches.append(current)
            current, rows, new_rows, new_longest = [], 0, size, length
        current.append(i)
        rows, longest = new_rows, new_longest
    if current:
        batches.append(current)
    return batches


def unit_cap(length: int, *, max_rows: int, max_tokens: int | None, gen_tokens: int) -> int:
    """The most samples of one prompt of ``length`` tokens that fit one batch."""
    if max_tokens is None:
        return max_rows
    return max(1, min(max_rows, max_tokens // (length + gen_tokens)))


@register_model("hf-passk")
class HFPassKLM(HFLM):
    """lm_eval's ``hf`` model with n samples per prompt sharing one prefill.

    Model arguments (besides all of ``hf``'s, e.g. ``pretrained``, ``dtype``, ``device``):

    - ``max_num_seqs``: the most sequences decoded together. Defaults to ``--batch_size`` when
      that is an integer above 1 (the same meaning as for ``hf``: sequences per batch), else
      64. A group larger than this is split, and each piece runs its prompt once.
    - ``max_batch_tokens`` (default 65536): the most key/value-cache tokens a batch may reach,
      rows times (longest prompt + max_gen_toks). Bounds memory; lower it for large models.
    - ``max_prefill_tokens`` (default 8192): prompt tokens (padded) run through the model in one
      forward pass when a batch's prompts are prefilled.
    - ``seed``: seeds the sampler's own ``torch.Generator`` at each ``generate_until`` call, so
      runs reproduce. Defaults to ``torch.initial_seed()``, i.e. lm_eval's ``--seed``.

    Greedy decoding when ``do_sample`` is false or the temperature is 0. Settings this backend
    does not implement (beam search, contrastive search), encoder-decoder models, and caches
    other than plain full-attention ``DynamicCache`` layers fall back to stock ``hf``.

    A sample ends as soon as its text holds a stop string, and is cut there the way stock
    ``hf`` cuts: the same result as stock ``hf`` at batch size 1. (At larger batch sizes stock
    ``hf`` keeps sampling a row until every row of its batch holds one same stop string, which
    moves the cut only when stop strings overlap, like ``abc`` and ``b``.) A stop string that is
    a single special token (e.g. ``<|im_end|>`` when it is not the EOS token) ends a sample at
    that token; stock ``hf`` strips special tokens before cutting, so it keeps text generated
    past such a token while other rows run.
    """

    def __init__(
        self,
        pretrained: Any,
        max_num_seqs: int | None = None,
        max_batch_tokens: int | None = DEFAULT_MAX_BATCH_TOKENS,
        max_prefill_tokens: int = DEFAULT_MAX_PREFILL_TOKENS,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(pretrained, **kwargs)
        if max_num_seqs is None:
            bs = self.batch_size
            max_num_seqs = bs if isinstance(bs, int) and bs > 1 else DEFAULT_MAX_NUM_SEQS
        self.max_num_seqs = _positive_int("max_num_seqs", max_num_seqs)
        self.max_batch_tokens = (
            None
            if max_batch_tokens is None
            else _positive_int("max_batch_tokens", max_batch_tokens)
        )
        self.max_prefill_tokens = _positive_int("max_prefill_tokens", max_prefill_tokens)
        self.seed = int(seed) if seed is not None else torch.initial_seed()

    # ----------------------------------------------------------------------------------------
    # lm_eval entry point

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        if not requests:
            return []
        if self.backend != "causal":
            log.warning("hf-passk shares prefill for decoder-only models only; using stock hf")
            return super().generate_until(requests, disable_tqdm=disable_tqdm)

        groups = group_requests(requests)
        results: list[list[str] | None] = [None] * len(groups)
        index_of = {id(g): i for i, g in enumerate(groups)}
        fallback: list[RequestGroup] = []
        generator = torch.Generator(device=self.device).manual_seed(self.seed)
        pbar = tqdm(
            total=len(requests),
            disable=disable_tqdm or self.rank != 0,
            desc="Running generate_until requests (hf-passk)",
        )
        for same_settings in group_by_settings(groups).values():
            try:
                settings = self.resolve_settings(same_settings[0].gen_kwargs)
                self._check_cache_support()
            except _Unsupported as err:
                log.warning("hf-passk: %s; these requests run on stock hf", err)
                fallback.extend(same_settings)
                continue
            texts = self._generate_groups(same_settings, settings, generator, pbar)
            for group, group_texts in zip(same_settings, texts, strict=True):
                results[index_of[id(group)]] = group_texts
                for text in group_texts:
                    self.cache_hook.add_partial(
                        "generate_until", (group.context, group.gen_kwargs), text
                    )
        pbar.close()

        if fallback:
            stock_args = [_Args((g.context, g.gen_kwargs)) for g in fallback for _ in range(g.size)]
            stock = super().generate_until(stock_args, disable_tqdm=disable_tqdm)
            pos = 0
            for group in fallback:
                results[index_of[id(group)]] = stock[pos : pos + group.size]
                pos += group.size
        return scatter(groups, [r if r is not None else [] for r in results], len(requests))

    # ----------------------------------------------------------------------------------------
    # settings

    def resolve_settings(self, gen_kwargs: Mapping[str, Any]) -> SampleSettings:
        """Turn lm_eval gen_kwargs into stop strings, a token limit and a GenerationConfig.

        Mirrors ``HFLM.generate_until`` and ``HFLM._model_generate``, except that
        ``do_sample: true`` with temperature 0 means greedy (stock ``hf`` crashes there).
        """
        kwargs = dict(normalize_gen_kwargs(dict(gen_kwargs), self.max_gen_toks))
        eos = self.tok_decode(self.eot_token_id, skip_special_tokens=False)
        until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
        max_gen_toks = int(kwargs.pop("max_gen_toks"))
        max_length = kwargs.pop("max_length", None)
        temperature = float(kwargs.get("temperature", 0.0) or 0.0)
        if not kwargs.get("do_sample") or temperature == 0.0:
            kwargs["do_sample"] = False
            kwargs.pop("temperature", None)
        config, model_kwargs = self.model._prepare_generation_config(
            None, **{"pad_token_id": self.tokenizer.pad_token_id, **kwargs}
        )
        if model_kwargs:
            raise _Unsupported(f"unknown generation arguments {sorted(model_kwargs)}")
        mode = config.get_generation_mode()
        if mode not in (GenerationMode.SAMPLE, GenerationMode.GREEDY_SEARCH):
            raise _Unsupported(f"generation mode {mode.value}")
        self.model._prepare_special_tokens(
            config, kwargs_has_attention_mask=True, device=self.device
        )
        return SampleSettings(
            until=until,
            max_gen_toks=max_gen_toks,
            max_length=None if max_length is None else int(max_length),
            generation_config=config,
        )

    def _check_cache_support(self) -> None:
        cache = DynamicCache(config=self.model.config)
        kinds = {type(layer) for layer in cache.layers}
        if kinds and kinds != {DynamicLayer}:
            names = sorted(k.__name__ for k in kinds)
            raise _Unsupported(f"cache layers {names} (only full-attention layers are shared)")

    # ----------------------------------------------------------------------------------------
    # scheduling

    def _encode_prompt(self, context: str, max_gen_toks: int) -> list[int]:
        ids, mask = self.tok_batch_encode(
            [context],
            left_truncate_len=self.max_length - max_gen_toks,
            truncation=self.truncation,
        )
        return ids[0][mask[0].bool()].tolist()

    def _generate_groups(
        self,
        groups: Sequence[RequestGroup],
        settings: SampleSettings,
        generator: torch.Generator,
        pbar: tqdm,
    ) -> list[list[str]]:
        if self.max_length - settings.max_gen_toks <= 0:
            raise ValueError(
                f"max_gen_toks ({settings.max_gen_toks}) must be below the model's maximum "
                f"length ({self.max_length}); lower max_gen_toks or raise max_length"
            )
        prompts = [self._encode_prompt(g.context, settings.max_gen_toks) for g in groups]
        # Longest first, like stock hf: any out-of-memory error shows up at once.
        order = sorted(range(len(groups)), key=lambda i: (-len(prompts[i]), groups[i].context))
        units: list[_Unit] = []
        for gi in order:
            cap = unit_cap(
                len(prompts[gi]),
                max_rows=self.max_num_seqs,
                max_tokens=self.max_batch_tokens,
                gen_tokens=settings.max_gen_toks,
            )
            for piece in split_group(groups[gi], cap):
                units.append(_Unit(group=gi, prompt=prompts[gi], n=piece.size))

        tokens: list[list[list[int]]] = [[] for _ in groups]
        batches = plan_batches(
            [len(u.prompt) for u in units],
            [u.n for u in units],
            max_rows=self.max_num_seqs,
            max_tokens=self.max_batch_tokens,
            gen_tokens=settings.max_gen_toks,
        )
        for batch in batches:
            batch_units = [units[i] for i in batch]
            samples = self.sample_batch(
                [u.prompt for u in batch_units],
                [u.n for u in batch_units],
                settings,
                generator,
            )
            for unit, unit_samples in zip(batch_units, samples, strict=True):
                tokens[unit.group].extend(unit_samples)
            pbar.update(sum(u.n for u in batch_units))
        return [[self._finish_text(t, settings.until) for t in group] for group in tokens]

    # ----------------------------------------------------------------------------------------
    # text

    def _finish_text(self, cont_toks: list[int], until: list[str]) -> str:
        """Decoded, stop-cut text of one sample: the same steps as HFLM.generate_until."""
        if isinstance(self.think_end_token, int):
            marks = [i for i, t in enumerate(cont_toks) if t == self.think_end_token]
            if marks:
                cont_toks = cont_toks[marks[-1] + 1 :]
        s = self.tok_decode(cont_toks)
        if isinstance(self.think_end_token, int):
            s = s.lstrip()
        return postprocess_generated_text(
            generation=s,
            stop=until,
            think_end_token=self.think_end_token if isinstance(self.think_end_token, str) else None,
        )

    def _response_text(self, cont_toks: list[int]) -> str | None:
        """The text that stop strings apply to, or None while a thinking trace is still open."""
        think = self.think_end_token
        if isinstance(think, int):
            if think not in cont_toks:
                return None
            last = len(cont_toks) - 1 - cont_toks[::-1].index(think)
            return self.tok_decode(cont_toks[last + 1 :]).lstrip()
        text = self.tok_decode(cont_toks)
        if isinstance(think, str) and think:
            if think not in text:
                return None
            return text.split(think)[-1].lstrip()
        return text

    def _stop_token_ids(self, until: Sequence[str]) -> set[int]:
        """Ids of stop strings that are single special tokens (they end a sample directly)."""
        special = set(self.tokenizer.all_special_tokens) | {
            tok.content for tok in self.tokenizer.added_tokens_decoder.values() if tok.special
        }
        out: set[int] = set()
        for term in until:
            if term in special:
                tid = self.tokenizer.convert_tokens_to_ids(term)
                if isinstance(tid, int) and tid >= 0 and tid != self.tokenizer.unk_token_id:
                    out.add(tid)
        return out

    # ----------------------------------------------------------------------------------------
    # the sampler

    @torch.inference_mode()
    def sample_batch(
        self,
        prompts: Sequence[list[int]],
        counts: Sequence[int],
        settings: SampleSettings,
        generator: torch.Generator,
    ) -> list[list[list[int]]]:
        """Sample ``counts[i]`` continuations of ``prompts[i]``, each prompt prefilled once.

        Returns, per prompt, per sample, the generated token ids up to and including the token
        that ended the sample (EOS, a special stop token, the one completing a stop string) or
        ``max_gen_toks`` tokens.
        """
        if len(prompts) != len(counts) or not prompts:
            raise ValueError("need one count per prompt and at least one prompt")
        device = self.device
        pad_id = self.tokenizer.pad_token_id
        if pad_id is None:
            pad_id = self.eot_token_id
        width = max(len(p) for p in prompts)
        max_new = settings.max_gen_toks
        if settings.max_length is not None:
            max_new = settings.max_length - width
        if max_new <= 0:
            return [[[] for _ in range(n)] for n in counts]

        ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, p in enumerate(prompts):
            ids[i, width - len(p) :] = torch.tensor(p, dtype=torch.long)
            mask[i, width - len(p) :] = 1
        ids, mask = ids.to(device), mask.to(device)

        cache, logits = self._prefill(ids, mask)
        rows = torch.repeat_interleave(
            torch.arange(len(prompts), device=device),
            torch.tensor(list(counts), device=device),
        )
        cache.batch_select_indices(rows)
        logits = logits.index_select(0, rows)
        ids = ids.index_select(0, rows)
        mask = mask.index_select(0, rows)
        positions = mask.sum(dim=-1)

        config = copy.copy(settings.generation_config)
        config.max_length = width + max_new
        processors = self.model._get_logits_processor(
            generation_config=config,
            input_ids_seq_length=width,
            encoder_input_ids=ids,
            device=device,
            model_kwargs={},
        )
        end_ids = self._stop_token_ids(settings.until)
        eos = config._eos_token_tensor
        if eos is not None:
            end_ids |= {int(t) for t in eos.flatten().tolist()}
        until = [t for t in settings.until if t]
        window = 4 * max((len(t) for t in until), default=0) + 4

        n_rows = int(rows.numel())
        owner = rows.tolist()  # the prompt each live row samples for
        slot = [0] * n_rows  # each row's sample index within its prompt
        seen: dict[int, int] = {}
        for r, p in enumerate(owner):
            slot[r] = seen.get(p, 0)
            seen[p] = slot[r] + 1
        out: list[list[list[int]]] = [[[] for _ in range(n)] for n in counts]
        gen = [out[owner[r]][slot[r]] for r in range(n_rows)]  # live rows' token lists
        done = [False] * n_rows

        step = 0
        while True:
            scores = processors(ids, logits)
            if settings.do_sample:
                probs = torch.softmax(scores, dim=-1)
                nxt = torch.multinomial(probs, num_samples=1, generator=generator).squeeze(1)
            else:
                nxt = torch.argmax(scores, dim=-1)
            step += 1
            ids = torch.cat([ids, nxt[:, None]], dim=-1)
            new = nxt.tolist()
            candidates: list[int] = []
            for r, tok in enumerate(new):
                if done[r]:
                    continue
                gen[r].append(tok)
                if tok in end_ids or step >= max_new:
                    done[r] = True
                elif until:
                    candidates.append(r)
            if candidates:
                self._check_stops(candidates, gen, done, until, window)
            if all(done):
                break

            n_done = sum(done)
            if n_done and n_done >= COMPACT_FRACTION * len(done):
                keep = [r for r, d in enumerate(done) if not d]
                sel = torch.tensor(keep, device=device)
                cache.batch_select_indices(sel)
                ids, mask, positions, nxt = (
                    t.index_select(0, sel) for t in (ids, mask, positions, nxt)
                )
                gen = [gen[r] for r in keep]
                done = [False] * len(keep)
                mask = self._trim_left(cache, mask)

            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
            logits = self._decode_step(nxt, mask, positions, cache)
            positions = positions + 1
        return out

    def _check_stops(
        self,
        candidates: list[int],
        gen: list[list[int]],
        done: list[bool],
        until: list[str],
        window: int,
    ) -> None:
        """Mark rows done whose text now holds a stop string.

        A stop string completed by the newest token lies in the last few tokens, so only rows
        whose tail holds one are decoded in full.
        """
        tails = self.tokenizer.batch_decode([gen[r][-window:] for r in candidates])
        for r, tail in zip(candidates, tails, strict=True):
            if not any(t in tail for t in until):
                continue
            text = self._response_text(gen[r])
            if text is not None and len(postprocess_generated_text(text, until, None)) < len(text):
                done[r] = True

    def _autocast(self) -> Any:
        return torch.autocast(
            device_type=self.device.type,
            dtype=self.mixed_precision_dtype,
            enabled=self.mixed_precision_dtype is not None,
        )

    def _prefill(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[DynamicCache, torch.Tensor]:
        """Run the prompts through the model in chunks; one cache and the last logits."""
        width = ids.shape[1]
        per_chunk = max(1, self.max_prefill_tokens // width)
        positions = (mask.cumsum(dim=-1) - 1).clamp(min=0)
        keep_one = {"logits_to_keep": 1} if self.model._supports_logits_to_keep() else {}
        caches: list[DynamicCache] = []
        last: list[torch.Tensor] = []
        for start in range(0, ids.shape[0], per_chunk):
            sl = slice(start, start + per_chunk)
            cache = DynamicCache(config=self.model.config)
            with self._autocast():
                outputs = self.model(
                    input_ids=ids[sl],
                    attention_mask=mask[sl],
                    position_ids=positions[sl],
                    past_key_values=cache,
                    use_cache=True,
                    **keep_one,
                )
            last.append(outputs.logits[:, -1, :].to(dtype=torch.float32))
            caches.append(outputs.past_key_values)
        merged = caches[0]
        if len(caches) > 1:
            for li, layer in enumerate(merged.layers):
                layer.keys = torch.cat([c.layers[li].keys for c in caches], dim=0)
                layer.values = torch.cat([c.layers[li].values for c in caches], dim=0)
        return merged, torch.cat(last, dim=0)

    def _decode_step(
        self,
        tokens: torch.Tensor,
        mask: torch.Tensor,
        positions: torch.Tensor,
        cache: DynamicCache,
    ) -> torch.Tensor:
        with self._autocast():
            outputs = self.model(
                input_ids=tokens[:, None],
                attention_mask=mask,
                position_ids=positions[:, None],
                past_key_values=cache,
                use_cache=True,
            )
        return outputs.logits[:, -1, :].to(dtype=torch.float32)

    @staticmethod
    def _trim_left(cache: DynamicCache, mask: torch.Tensor) -> torch.Tensor:
        """Drop cache columns that are padding for every remaining row."""
        lead = int((mask != 0).int().argmax(dim=-1).min())
        if lead == 0:
            return mask
        for layer in cache.layers:
            layer.keys = layer.keys[:, :, lead:, :]
            layer.values = layer.values[:, :, lead:, :]
        return mask[:, lead:]


@dataclass(frozen=True)
class _Args:
    """The one attribute of an lm_eval Instance that HFLM.generate_until reads."""

    args: tuple[str, Mapping[str, Any]]


def _positive_int(name: str, value: Any) -> int:
    try:
        out = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive integer, got {value!r}") from None
    if out < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return out
