"""``hf-passk``: lm_eval's HF backend, sampling n completions per prompt with one prefill.

lm_eval turns ``repeats: K`` into K identical ``generate_until`` requests. Stock ``hf`` batches
them as K independent sequences, running the same prompt through the model K times. Here the K
copies are collapsed (``grouping.group_requests``), each distinct prompt is run through the model
once, its key/value cache and last logits are copied K times, and the K continuations are
sampled together. Prompts of several problems share a batch under a row and token budget; rows
that have finished (EOS or a stop string) leave the batch, and the next problems' rows join it
as soon as there is room (continuous batching), so decode steps stay full.

Sampling follows stock ``hf`` exactly: the generation settings are merged with the model's
``generation_config`` by transformers' own code and turned into the same logits processors
(temperature, top-k, top-p, repetition penalty, ...) (``compat.transformers``); logits are
processed in float32 and sampled with ``torch.multinomial``.
Decoded text is cut at the stop strings with lm_eval's ``postprocess_generated_text``.
"""

from __future__ import annotations

import copy
import logging
from collections import deque
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
from transformers.cache_utils import DynamicCache
from transformers.generation.configuration_utils import GenerationMode

from passk_plugin.backends.grouping import (
    RequestGroup,
    group_by_settings,
    group_requests,
    scatter,
)
from passk_plugin.compat import transformers as hf_compat

log = logging.getLogger(__name__)

DEFAULT_MAX_NUM_SEQS = 64
DEFAULT_MAX_BATCH_TOKENS = 65536
DEFAULT_MAX_PREFILL_TOKENS = 8192
# Finished rows are dropped from the cache once they make up this share of the batch: each drop
# copies the whole cache, so doing it for every single finished row would cost more than it saves.
COMPACT_FRACTION = 0.125


# Generation settings whose logits processors count tokens from where the prompt ends: rows of
# different prompt lengths or start times must not share their batch, as in stock hf.
_LENGTH_DEPENDENT = (
    "min_length",
    "min_new_tokens",
    "exponential_decay_length_penalty",
    "begin_suppress_tokens",
    "forced_eos_token_id",
)


def joins_running_batch(config: transformers.GenerationConfig) -> bool:
    """Whether new rows may join a batch mid-way under these settings (continuous batching)."""
    return not any(getattr(config, name, None) for name in _LENGTH_DEPENDENT)


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
    """Samples of one prompt that join a batch together, sharing one prefill."""

    prompt: list[int]
    samples: list[list[int]]  # one token list per sample, filled while decoding


@dataclass
class _Rows:
    """The batch being decoded: one row per sample, all tensors left-aligned to one width."""

    cache: DynamicCache
    ids: torch.Tensor  # (rows, width): prompt and sampled tokens, left-padded
    mask: torch.Tensor  # (rows, width): 1 where ids holds a real token
    positions: torch.Tensor  # (rows,): position id of each row's next token
    logits: torch.Tensor  # (rows, vocab): float32 next-token logits, not yet sampled
    out: list[list[int]]  # each row's sample, shared with its unit
    limit: list[int]  # each row's most new tokens
    done: list[bool]

    @property
    def n(self) -> int:
        return len(self.out)

    @property
    def width(self) -> int:
        return int(self.ids.shape[1])

    def select(self, keep: list[int]) -> _Rows:
        index = torch.tensor(keep, device=self.ids.device)
        hf_compat.select_rows(self.cache, index)
        return _Rows(
            cache=self.cache,
            ids=self.ids.index_select(0, index),
            mask=self.mask.index_select(0, index),
            positions=self.positions.index_select(0, index),
            logits=self.logits.index_select(0, index),
            out=[self.out[r] for r in keep],
            limit=[self.limit[r] for r in keep],
            done=[self.done[r] for r in keep],
        )

    def trim_left(self) -> None:
        """Drop leading columns that are padding in every row (cache included)."""
        lead = int((self.mask != 0).int().argmax(dim=-1).min())
        if lead == 0:
            return
        hf_compat.trim_left(self.cache, lead)
        self.ids, self.mask = self.ids[:, lead:], self.mask[:, lead:]

    def pad_left(self, width: int, pad_id: int) -> None:
        extra = width - self.width
        if extra <= 0:
            return
        hf_compat.pad_left(self.cache, extra)
        self.ids = torch.nn.functional.pad(self.ids, (extra, 0), value=pad_id)
        self.mask = torch.nn.functional.pad(self.mask, (extra, 0), value=0)

    def extend(self, other: _Rows, pad_id: int) -> None:
        """Add another batch's rows below these ones (both left-padded to one width)."""
        width = max(self.width, other.width)
        self.pad_left(width, pad_id)
        other.pad_left(width, pad_id)
        self.cache = hf_compat.concat_rows([self.cache, other.cache])
        self.ids = torch.cat([self.ids, other.ids], dim=0)
        self.mask = torch.cat([self.mask, other.mask], dim=0)
        self.positions = torch.cat([self.positions, other.positions], dim=0)
        self.logits = torch.cat([self.logits, other.logits], dim=0)
        self.out += other.out
        self.limit += other.limit
        self.done += other.done


def admits(
    rows: int, width: int, *, max_rows: int, max_tokens: int | None, gen_tokens: int
) -> bool:
    """Whether a batch of ``rows`` rows, ``width`` tokens wide so far, stays within budget.

    Its token cost is rows times (width + ``gen_tokens``): what its key/value cache may reach.
    """
    if rows > max_rows:
        return False
    return max_tokens is None or rows * (width + gen_tokens) <= max_tokens


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
      64. A group larger than this is split, and each piece runs its prompt once. As rows
      finish, the next problems' rows join the running batch, unless the settings hold a
      logits processor that counts from the prompt's end (``min_new_tokens`` and the like):
      then, as in stock ``hf``, a batch runs to its end before the next one starts.
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
        config, model_kwargs = hf_compat.prepare_generation_config(
            self.model, **{"pad_token_id": self.tokenizer.pad_token_id, **kwargs}
        )
        if model_kwargs:
            raise _Unsupported(f"unknown generation arguments {sorted(model_kwargs)}")
        mode = config.get_generation_mode()
        if mode not in (GenerationMode.SAMPLE, GenerationMode.GREEDY_SEARCH):
            raise _Unsupported(f"generation mode {mode.value}")
        hf_compat.prepare_special_tokens(self.model, config, self.device)
        return SampleSettings(
            until=until,
            max_gen_toks=max_gen_toks,
            max_length=None if max_length is None else int(max_length),
            generation_config=config,
        )

    def _check_cache_support(self) -> None:
        names = hf_compat.unshareable_layer_kinds(self.model.config)
        if names:
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
        samples = self.sample(prompts, [g.size for g in groups], settings, generator, pbar)
        return [[self._finish_text(t, settings.until) for t in group] for group in samples]

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
    def sample(
        self,
        prompts: Sequence[list[int]],
        counts: Sequence[int],
        settings: SampleSettings,
        generator: torch.Generator,
        pbar: tqdm | None = None,
    ) -> list[list[list[int]]]:
        """Sample ``counts[i]`` continuations of ``prompts[i]`` (token ids).

        Each prompt is prefilled once per piece of at most ``max_num_seqs`` samples (fewer
        under ``max_batch_tokens``). Returns, per prompt, per sample, the generated tokens up
        to and including the one that ended the sample (EOS, a special stop token, the one
        completing a stop string), or the first ``max_gen_toks``.
        """
        if len(prompts) != len(counts):
            raise ValueError(f"{len(prompts)} prompts but {len(counts)} counts")
        # Empty prompts condition on the prefix token, as lm_eval does for loglikelihoods.
        prompts = [list(p) if len(p) else [self.prefix_token_id] for p in prompts]
        results: list[list[list[int]]] = [[[] for _ in range(n)] for n in counts]
        units: list[_Unit] = []
        # Longest first, like stock hf: any out-of-memory error shows up at once.
        for i in sorted(range(len(prompts)), key=lambda i: -len(prompts[i])):
            cap = unit_cap(
                len(prompts[i]),
                max_rows=self.max_num_seqs,
                max_tokens=self.max_batch_tokens,
                gen_tokens=settings.max_gen_toks,
            )
            for start in range(0, counts[i], cap):
                units.append(_Unit(prompts[i], results[i][start : start + cap]))
        self._decode_units(deque(units), settings, generator, pbar)
        return results

    def _limit(self, settings: SampleSettings, width: int) -> int:
        if settings.max_length is not None:
            # stock hf: max_length counts the (padded) prompt too
            return max(0, settings.max_length - width)
        return settings.max_gen_toks

    def _fits(
        self, rows: _Rows | None, admitted: list[_Unit], unit: _Unit, settings: SampleSettings
    ) -> bool:
        n_rows = (rows.n if rows else 0) + sum(len(u.samples) for u in admitted)
        width = max([rows.width if rows else 0] + [len(u.prompt) for u in admitted])
        return admits(
            n_rows + len(unit.samples),
            max(width, len(unit.prompt)),
            max_rows=self.max_num_seqs,
            max_tokens=self.max_batch_tokens,
            gen_tokens=settings.max_gen_toks,
        )

    def _decode_units(
        self,
        queue: deque[_Unit],
        settings: SampleSettings,
        generator: torch.Generator,
        pbar: tqdm | None,
    ) -> None:
        """Decode all units, filling their sample lists; rows join and leave as room allows."""
        refill = joins_running_batch(settings.generation_config)
        until = [t for t in settings.until if t]
        # a stop string completed by the newest token lies within the last few tokens
        window = 4 * max((len(t) for t in until), default=0) + 4
        end_ids = self._stop_token_ids(settings.until) | hf_compat.eos_token_ids(
            settings.generation_config
        )

        rows: _Rows | None = None
        processors: Any = None
        while True:
            admitted: list[_Unit] = []
            if rows is None or refill:
                while queue and (
                    # an empty batch always takes one unit, even one over budget
                    (rows is None and not admitted)
                    or self._fits(rows, admitted, queue[0], settings)
                ):
                    admitted.append(queue.popleft())
            if admitted:
                new = self._start_rows(admitted, settings)
                if rows is None:
                    rows = new
                else:
                    rows.extend(new, self._pad_id)
                config = copy.copy(settings.generation_config)
                config.max_length = rows.width + settings.max_gen_toks
                processors = hf_compat.logits_processors(self.model, config, rows.ids, self.device)
            if rows is None:
                return

            scores = processors(rows.ids, rows.logits)
            if settings.do_sample:
                probs = torch.softmax(scores, dim=-1)
                nxt = torch.multinomial(probs, num_samples=1, generator=generator).squeeze(1)
            else:
                nxt = torch.argmax(scores, dim=-1)
            rows.ids = torch.cat([rows.ids, nxt[:, None]], dim=-1)
            rows.mask = torch.cat([rows.mask, rows.mask.new_ones((rows.n, 1))], dim=-1)
            candidates: list[int] = []
            finished = 0
            for r, tok in enumerate(nxt.tolist()):
                if rows.done[r]:
                    continue
                rows.out[r].append(tok)
                if tok in end_ids or len(rows.out[r]) >= rows.limit[r]:
                    rows.done[r] = True
                    finished += 1
                elif until:
                    candidates.append(r)
            if candidates:
                finished += self._check_stops(candidates, rows, until, window)
            if pbar is not None and finished:
                pbar.update(finished)

            keep = [r for r, d in enumerate(rows.done) if not d]
            if not keep:
                rows = None
                continue
            n_done = rows.n - len(keep)
            room = (
                refill
                and bool(queue)
                and admits(
                    len(keep) + len(queue[0].samples),
                    max(rows.width, len(queue[0].prompt)),
                    max_rows=self.max_num_seqs,
                    max_tokens=self.max_batch_tokens,
                    gen_tokens=settings.max_gen_toks,
                )
            )
            # Each drop copies the whole cache: drop a few rows at once, or to make room.
            if n_done and (n_done >= COMPACT_FRACTION * rows.n or room):
                rows = rows.select(keep)
                if refill:
                    rows.trim_left()
            rows.logits = self._decode_step(rows.ids[:, -1], rows.mask, rows.positions, rows.cache)
            rows.positions = rows.positions + 1

    @property
    def _pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return self.eot_token_id if pad is None else int(pad)

    def _start_rows(self, units: list[_Unit], settings: SampleSettings) -> _Rows:
        """Prefill the units' prompts once each and copy them to one row per sample."""
        device = self.device
        width = max(len(u.prompt) for u in units)
        ids = torch.full((len(units), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(units), width), dtype=torch.long)
        for i, unit in enumerate(units):
            ids[i, width - len(unit.prompt) :] = torch.tensor(unit.prompt, dtype=torch.long)
            mask[i, width - len(unit.prompt) :] = 1
        ids, mask = ids.to(device), mask.to(device)
        cache, logits = self._prefill(ids, mask)
        index = torch.repeat_interleave(
            torch.arange(len(units), device=device),
            torch.tensor([len(u.samples) for u in units], device=device),
        )
        hf_compat.select_rows(cache, index)
        mask = mask.index_select(0, index)
        out = [sample for unit in units for sample in unit.samples]
        limit = self._limit(settings, width)
        return _Rows(
            cache=cache,
            ids=ids.index_select(0, index),
            mask=mask,
            positions=mask.sum(dim=-1),
            logits=logits.index_select(0, index),
            out=out,
            limit=[limit] * len(out),
            done=[limit <= 0] * len(out),
        )

    def _check_stops(
        self, candidates: list[int], rows: _Rows, until: list[str], window: int
    ) -> int:
        """Mark rows done whose text now holds a stop string; how many were marked.

        A stop string completed by the newest token lies in the last few tokens, so only rows
        whose tail holds one are decoded in full.
        """
        tails = self.tokenizer.batch_decode([rows.out[r][-window:] for r in candidates])
        marked = 0
        for r, tail in zip(candidates, tails, strict=True):
            if not any(t in tail for t in until):
                continue
            text = self._response_text(rows.out[r])
            if text is not None and len(postprocess_generated_text(text, until, None)) < len(text):
                rows.done[r] = True
                marked += 1
        return marked

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
        keep_one = {"logits_to_keep": 1} if hf_compat.supports_logits_to_keep(self.model) else {}
        caches: list[DynamicCache] = []
        last: list[torch.Tensor] = []
        for start in range(0, ids.shape[0], per_chunk):
            sl = slice(start, start + per_chunk)
            cache = hf_compat.new_cache(self.model.config)
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
        return hf_compat.concat_rows(caches), torch.cat(last, dim=0)

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
