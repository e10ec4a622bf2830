"""Logits processing, sampling and beam search exactly as HF ``generate`` runs them for IndexTTS-2.

The reference (``indextts/infer_v2.py`` → ``UnifiedVoice.inference_speech`` →
``GPT2InferenceModel.generate``, transformers 5.x) decodes mel codes with
``do_sample=True, top_p=0.8, top_k=30, temperature=0.8, num_beams=3, length_penalty=0.0,
repetition_penalty=10.0``, ``eos_token_id = pad_token_id = 8193`` and at most
``max_mel_tokens = 1500`` new tokens. :class:`GenerationConfig` holds these settings.

**Processing order** (``GenerationMixin._get_logits_processor``): the repetition penalty
first, then — only when sampling — temperature, top-k, top-p. With ``num_beams > 1`` HF
applies them to ``log_softmax(logits)``, not to the logits, and ``min_tokens_to_keep`` of
top-k/top-p is 2 (the number of EOS ids + 1); with one beam it is 1. Without sampling only
the repetition penalty is applied. :func:`process_logits` reproduces this.

**Which ids the repetition penalty sees.** HF applies ``RepetitionPenaltyLogitsProcessor``
to the ``input_ids`` of the running sequences: the prompt ids passed to ``generate``
followed by the generated ones. ``inference_speech`` passes the conditioning + text
prefix as ``inputs_embeds`` (stored in the inference model) and gives ``generate`` *fake*
ids for it: ``1`` at every prefix position (``prepare_gpt_inputs``: ``torch.ones``), then
``start_mel_token = 8192``. ``prompt_ignore_length`` only skips left-padding positions
(``attention_mask == 0``; none for one text). So at every step the penalized set of a
sequence is ``{1, 8192}`` ∪ its generated codes: mel code ``1`` is always penalized, even
before it is generated. Each id is penalized once however often it occurs: a score ``s``
becomes ``s * penalty`` if ``s < 0`` else ``s / penalty``. :func:`presence` builds the
``(B, V)`` mask from those ids; :meth:`Presence.add` marks each new token.

Sampling draws from a seeded MLX key (:class:`Sampler`), so a run is deterministic for a
given seed; it does not reproduce torch's random stream (only the distribution).
Beam search (:class:`BeamSearch`) follows ``GenerationMixin._beam_search`` step by step;
its docstring gives the algorithm.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import mlx.core as mx
import numpy as np

#: ``generate``'s prompt ids in ``inference_speech``: one fake ``1`` per prefix position.
FAKE_PROMPT_ID = 1


@dataclass(frozen=True)
class GenerationConfig:
    """The ``generate`` settings of the reference's ``infer_v2`` (upstream HF names)."""

    do_sample: bool = True
    temperature: float = 0.8
    top_k: int = 30
    top_p: float = 0.8
    repetition_penalty: float = 10.0
    num_beams: int = 3
    length_penalty: float = 0.0
    eos_token_id: int = 8193
    max_new_tokens: int = 1500

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError("temperature must be positive (use do_sample=False for greedy)")
        if self.top_k < 0 or not 0.0 <= self.top_p <= 1.0 or self.repetition_penalty <= 0:
            raise ValueError("need top_k >= 0, 0 <= top_p <= 1, repetition_penalty > 0")
        if self.num_beams < 1 or self.max_new_tokens < 1:
            raise ValueError("need num_beams >= 1 and max_new_tokens >= 1")

    @property
    def min_tokens_to_keep(self) -> int:
        """2 with beams (one EOS id + 1, as HF), else 1."""
        return 2 if self.num_beams > 1 else 1


# ---------------------------------------------------------------------------------------
# Logits processors: each maps scores (B, V) float32 to scores (B, V).


def repetition_penalty(scores: mx.array, present: mx.array, penalty: float) -> mx.array:
    """HF ``RepetitionPenaltyLogitsProcessor`` given the ``(B, V)`` bool mask of seen ids."""
    if penalty == 1.0:
        return scores
    penalized = mx.where(scores < 0, scores * penalty, scores / penalty)
    return mx.where(present, penalized, scores)


def temperature(scores: mx.array, value: float) -> mx.array:
    """HF ``TemperatureLogitsWarper``: ``scores / value``."""
    return scores if value == 1.0 else scores / value


def top_k(scores: mx.array, k: int, min_tokens_to_keep: int = 1) -> mx.array:
    """HF ``TopKLogitsWarper``: ``-inf`` below the ``max(k, min_tokens_to_keep)``-th largest
    score (ties with it are kept)."""
    if k == 0:
        return scores
    k = min(max(k, min_tokens_to_keep), scores.shape[-1])
    kth = mx.min(mx.topk(scores, k, axis=-1), axis=-1, keepdims=True)
    return mx.where(scores < kth, -mx.inf, scores)


def top_p(scores: mx.array, p: float, min_tokens_to_keep: int = 1) -> mx.array:
    """HF ``TopPLogitsWarper``: sort ascending, ``-inf`` where the cumulative softmax is
    ``<= 1 - p``, except the ``min_tokens_to_keep`` largest."""
    if p >= 1.0:
        return scores
    order = mx.argsort(scores, axis=-1)
    ascending = mx.take_along_axis(scores, order, axis=-1)
    cumulative = mx.cumsum(mx.softmax(ascending, axis=-1), axis=-1)
    remove = cumulative <= (1 - p)
    keep_tail = mx.arange(scores.shape[-1]) >= scores.shape[-1] - min_tokens_to_keep
    remove = mx.logical_and(remove, mx.logical_not(keep_tail))
    remove = mx.put_along_axis(mx.zeros(scores.shape, dtype=mx.bool_), order, remove, axis=-1)
    return mx.where(remove, -mx.inf, scores)


def log_softmax(logits: mx.array) -> mx.array:
    """``(logits - max) - log(sum(exp(logits - max)))`` over the last axis (beam scores).

    The normalizer is summed in float64 on the CPU stream: a float32 sum over 8194 ids
    drifts by up to ~1.5e-5 (torch's own float32 result is ~3e-6 from the exact value).
    """
    shifted = logits - mx.max(logits, axis=-1, keepdims=True)
    wide = shifted.astype(mx.float64, stream=mx.cpu)
    total = mx.sum(mx.exp(wide, stream=mx.cpu), axis=-1, keepdims=True, stream=mx.cpu)
    return shifted - mx.log(total, stream=mx.cpu).astype(logits.dtype, stream=mx.cpu)


def process_scores(scores: mx.array, present: mx.array, config: GenerationConfig) -> mx.array:
    """HF's ``LogitsProcessorList`` as ``generate`` builds it for ``config``.

    Args:
        scores: ``(B, V)`` float32: logits with one beam, ``log_softmax(logits)`` with beams.
        present: ``(B, V)`` bool, the ids the repetition penalty applies to (:func:`presence`).
        config: the generation settings.

    Returns:
        ``(B, V)``: repetition penalty, then, when sampling, temperature, top-k and top-p
        (filtered ids at ``-inf``).
    """
    scores = repetition_penalty(scores, present, config.repetition_penalty)
    if config.do_sample:
        keep = config.min_tokens_to_keep
        scores = temperature(scores, config.temperature)
        scores = top_k(scores, config.top_k, keep)
        scores = top_p(scores, config.top_p, keep)
    return scores


def process_logits(logits: mx.array, present: mx.array, config: GenerationConfig) -> mx.array:
    """The scores HF's ``generate`` selects tokens from, for one decode step: the logits
    (one beam) or their ``log_softmax`` (beams, as ``_beam_search``) through
    :func:`process_scores`.

    Args:
        logits: ``(B, V)`` float32, the ``mel_head`` output for the last position.
        present: ``(B, V)`` bool, the ids the repetition penalty applies to.
        config: the generation settings.

    Returns:
        ``(B, V)`` processed scores.
    """
    scores = log_softmax(logits) if config.num_beams > 1 else logits
    return process_scores(scores, present, config)


# ---------------------------------------------------------------------------------------
# Repetition-penalty bookkeeping.


class Presence:
    """The ``(B, V)`` mask of ids each sequence has seen (prompt + generated).

    Kept as a numpy array (host-side, updated in place per token) and handed to MLX as
    :attr:`mask`.
    """

    def __init__(self, seen: np.ndarray) -> None:
        self.seen = seen

    @property
    def mask(self) -> mx.array:
        """``(B, V)`` bool."""
        return mx.array(self.seen)

    def add(self, tokens: Iterable[int]) -> None:
        """Mark ``tokens[b]`` as seen by row ``b``."""
        for row, token in enumerate(tokens):
            self.seen[row, int(token)] = True

    def select(self, rows: Sequence[int]) -> None:
        """Reorder/pick rows (beam search)."""
        self.seen = self.seen[np.asarray(rows, dtype=np.int64)]


def presence(
    ids: Sequence[Sequence[int]] | np.ndarray,
    vocab_size: int,
    prompt_ignore_length: Sequence[int] | None = None,
) -> Presence:
    """:class:`Presence` of token ids ``(B, T)`` (HF ``input_ids``); ids ``>= vocab_size``
    are dropped, as HF does (they cannot be generated). ``prompt_ignore_length[b]`` leading
    ids of row ``b`` (left padding) are skipped, as HF's ``prompt_ignore_length``."""
    rows = [np.asarray(row, dtype=np.int64) for row in ids]
    seen = np.zeros((len(rows), vocab_size), dtype=bool)
    for b, row in enumerate(rows):
        if prompt_ignore_length is not None:
            row = row[int(prompt_ignore_length[b]) :]
        seen[b, row[row < vocab_size]] = True
    return Presence(seen)


def prompt_presence(
    prefix_length: int, start_token: int, vocab_size: int, batch: int = 1
) -> Presence:
    """What the reference's repetition penalty sees before the first code: ``prefix_length``
    fake ``1`` ids and ``start_token`` (8192) per row, i.e. ``{1, start_token}``."""
    ids = np.full((batch, prefix_length + 1), FAKE_PROMPT_ID, dtype=np.int64)
    ids[:, -1] = start_token
    return presence(ids, vocab_size)


# ---------------------------------------------------------------------------------------
# Token selection.


class Sampler:
    """Seeded token selection: categorical sampling from processed scores, or argmax.

    Each call draws with a fresh key split from the seed's key, so the sequence of draws
    is the same run to run for the same seed.
    """

    def __init__(self, seed: int = 0) -> None:
        self.key = mx.random.key(seed)

    def next_key(self) -> mx.array:
        self.key, key = mx.random.split(self.key)
        return key

    def sample(self, scores: mx.array) -> mx.array:
        """``(B, V)`` processed scores → ``(B,)`` int32 ids drawn from ``softmax(scores)``."""
        return mx.random.categorical(scores, axis=-1, key=self.next_key()).astype(mx.int32)

    def sample_without_replacement(self, scores: mx.array, count: int) -> mx.array:
        """``(B, N)`` scores → ``(B, count)`` distinct ids, drawn without replacement from
        ``softmax(scores)`` (Gumbel-top-k: the ``count`` largest of ``scores + Gumbel``;
        same distribution as ``torch.multinomial(..., replacement=False)``)."""
        gumbel = mx.random.gumbel(scores.shape, key=self.next_key())
        return mx.argsort(-(scores + gumbel), axis=-1)[:, :count].astype(mx.int32)


def greedy(scores: mx.array) -> mx.array:
    """``(B, V)`` → ``(B,)`` argmax ids."""
    return mx.argmax(scores, axis=-1).astype(mx.int32)


# ---------------------------------------------------------------------------------------
# Decoding state machines: feed the logits of the running rows, get the rows to keep and
# the tokens to feed next.


@dataclass(frozen=True)
class Step:
    """What one decode step decided.

    Attributes:
        parents: ``(rows,)`` row of the current batch each next row continues: reorder
            the KV cache with it (``select_rows``) before feeding ``tokens``.
        tokens: ``(rows,)`` the token each next row feeds.
        done: no more steps are needed (``parents``/``tokens`` are then meaningless).
    """

    parents: np.ndarray
    tokens: np.ndarray
    done: bool


class SingleSearch:
    """One sequence, ``num_beams == 1``: HF ``_sample`` (``do_sample``) or greedy.

    Args:
        config: settings (``num_beams`` must be 1).
        seen: ids the repetition penalty starts from (:func:`prompt_presence`).
        sampler: the seeded :class:`Sampler` (used when ``config.do_sample``).
    """

    def __init__(
        self, config: GenerationConfig, seen: Presence, sampler: Sampler | None = None
    ) -> None:
        if config.num_beams != 1:
            raise ValueError("SingleSearch decodes one beam; use BeamSearch")
        self.config = config
        self.seen = seen
        self.sampler = sampler or Sampler(0)
        self.tokens: list[int] = []

    def step(self, logits: mx.array) -> Step:
        """``logits (1, V)`` of the last position → the next token."""
        scores = process_logits(logits, self.seen.mask, self.config)
        chosen = self.sampler.sample(scores) if self.config.do_sample else greedy(scores)
        token = int(chosen)
        self.tokens.append(token)
        self.seen.add([token])
        done = token == self.config.eos_token_id or len(self.tokens) >= self.config.max_new_tokens
        return Step(np.zeros(1, dtype=np.int64), np.array([token]), done)

    def result(self) -> list[int]:
        """The generated ids (ending with ``eos_token_id`` unless the length ran out)."""
        return list(self.tokens)


_NEG = np.float32(-1.0e9)


class BeamSearch:
    """HF ``GenerationMixin._beam_search`` (transformers 5.x) for one prompt, greedy or sampled.

    State: ``num_beams`` running sequences with float32 scores (initially ``[0, -1e9, ...]``
    so the first step only expands beam 0, all beams holding the same prompt), and
    ``num_beams`` finished slots (scores ``-1e9``, none finished). One step, given the
    running beams' logits ``(num_beams, V)``:

    1. ``scores = process_logits(logits)`` (``log_softmax``, repetition penalty over each
       beam's own ids, and when sampling temperature, top-k, top-p with
       ``min_tokens_to_keep=2``), plus the beam's running score; flattened to
       ``num_beams * V`` candidates.
    2. Keep ``K = 2 * num_beams`` candidates: greedy, the ``K`` best (``topk``); sampling,
       ``K`` drawn without replacement from ``softmax`` of the flattened scores, then
       sorted by score, descending. Candidate ``i`` continues beam ``i // V`` with token
       ``i % V``.
    3. A candidate *hits the stop* if its token is ``eos_token_id`` or its length reaches
       ``max_new_tokens``.
    4. Next running beams: the ``num_beams`` best candidates after adding ``-1e9`` to the
       ones that hit the stop; their scores are those sums.
    5. Finished slots: candidates among the first ``num_beams`` of the ``K`` that hit the
       stop are offered with score ``score / generated_length ** length_penalty`` (``/ 1``
       with ``length_penalty=0``); the others get ``-1e9`` more, and so does everyone once
       the early-stop heuristic says no improvement is possible. The ``num_beams`` best of
       (old slots ‖ offered) stay, in ``topk`` order.
    6. Early-stop heuristic (``early_stopping=False``): improvement stays possible while any
       slot is unfinished or the best running score (divided by
       ``generated_length ** length_penalty``) beats the worst finished one.
    7. Stop when no improvement is possible or every one of the ``K`` candidates hit the
       stop (the length limit); the answer is the best finished slot.

    Differences from HF, by design: (a) sampling uses the seeded MLX key (Gumbel-top-k),
    not torch's stream — same distribution; when fewer than ``K`` candidates have non-zero
    probability, both fill up with zero-probability ones, which may be different ones
    (they can never be chosen over a real candidate); (b) one prompt at a time (HF's batch
    of prompts is not needed: the reference decodes one segment per call).

    Args:
        config: settings (``num_beams >= 1``; ``num_beams == 1`` here is beam search with
            one beam, which is *not* what HF does for one beam — use :class:`SingleSearch`).
        seen: ids the repetition penalty starts from, one row (every beam holds the prompt).
        sampler: the seeded :class:`Sampler` (used when ``config.do_sample``).
    """

    def __init__(
        self, config: GenerationConfig, seen: Presence, sampler: Sampler | None = None
    ) -> None:
        if seen.seen.shape[0] != 1:
            raise ValueError("BeamSearch takes the prompt's ids as one row")
        self.config = config
        self.sampler = sampler or Sampler(0)
        n = config.num_beams
        self.seen = Presence(np.repeat(seen.seen, n, axis=0))
        self.running: list[list[int]] = [[] for _ in range(n)]
        self.running_scores = np.full(n, _NEG, dtype=np.float32)
        self.running_scores[0] = 0.0
        self.finished: list[list[int]] = [[] for _ in range(n)]
        self.finished_scores = np.full(n, _NEG, dtype=np.float32)
        self.is_finished = np.zeros(n, dtype=bool)
        self.improvement_possible = True
        self.length = 0  # tokens generated per running beam

    @property
    def candidates(self) -> int:
        """``K``: candidates kept per step (``max(2, 1 + n_eos) * num_beams``)."""
        return 2 * self.config.num_beams

    def _top_candidates(self, scores: mx.array) -> tuple[np.ndarray, np.ndarray]:
        flat = scores.reshape(1, -1)
        k = self.candidates
        if self.config.do_sample:
            index = self.sampler.sample_without_replacement(flat, k)[0]
            values = mx.take(flat[0], index)
            order = mx.argsort(-values)
            index, values = mx.take(index, order), mx.take(values, order)
        else:
            index = mx.argsort(-flat[0])[:k]
            values = mx.take(flat[0], index)
        return np.array(index).astype(np.int64), np.array(values).astype(np.float32)

    def step(self, logits: mx.array) -> Step:
        """``logits (num_beams, V)`` of the running beams → the next running beams."""
        config, n = self.config, self.config.num_beams
        vocab = logits.shape[-1]
        scores = process_logits(logits, self.seen.mask, config)
        scores = scores + mx.array(self.running_scores)[:, None]
        index, values = self._top_candidates(scores)
        parents, tokens = index // vocab, index % vocab
        generated = self.length + 1
        hits = (tokens == config.eos_token_id) | (generated >= config.max_new_tokens)
        sequences = [self.running[p] + [int(t)] for p, t in zip(parents, tokens, strict=True)]

        # 4. running beams for the next step
        running = values + hits.astype(np.float32) * _NEG
        keep = _topk(running, n)
        # 5. finished slots
        offered = values / np.float32(float(generated) ** config.length_penalty)
        if not self.improvement_possible:
            offered = offered + _NEG
        just_finished = hits & (np.arange(len(hits)) < n)
        offered = offered + (~just_finished).astype(np.float32) * _NEG
        merged_scores = np.concatenate([self.finished_scores, offered.astype(np.float32)])
        merged = self.finished + sequences
        merged_done = np.concatenate([self.is_finished, just_finished])
        best = _topk(merged_scores, n)
        self.finished = [merged[i] for i in best]
        self.finished_scores = merged_scores[best]
        self.is_finished = merged_done[best]

        self.running = [sequences[i] for i in keep]
        self.running_scores = running[keep].astype(np.float32)
        self.length = generated
        self.seen.select(parents[keep])
        self.seen.add(tokens[keep])
        # 6. early-stop heuristic, 7. stop condition
        best_running = self.running_scores[0] / np.float32(
            float(self.length) ** config.length_penalty
        )
        worst = np.where(self.is_finished, self.finished_scores.min(), _NEG)
        self.improvement_possible = self.improvement_possible and bool(np.any(best_running > worst))
        done = not self.improvement_possible or bool(np.all(hits))
        return Step(parents[keep], tokens[keep], done)

    def result(self) -> list[int]:
        """The best finished sequence's generated ids."""
        return list(self.finished[0])


def _topk(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest, largest first (ties: lower index first)."""
    return np.argsort(-values, kind="stable")[:k]


def make_search(
    config: GenerationConfig, seen: Presence, sampler: Sampler | None = None
) -> SingleSearch | BeamSearch:
    """The decoder HF would run for ``config``: :class:`SingleSearch` for one beam, else
    :class:`BeamSearch`."""
    cls = SingleSearch if config.num_beams == 1 else BeamSearch
    return cls(config, seen, sampler)
