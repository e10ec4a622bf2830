"""The IndexTTS-2 GPT (``indextts/gpt/model_v2.py: UnifiedVoice``): mel codes from text.

docs/data-flow.md steps 16-19. :class:`UnifiedVoice` extends
:class:`~mlx_indextts_models.gpt_conditioning.GPTConditioning` (speaker latents, emotion
vectors, the 34-position conditioning prefix) with the GPT-2 stack and what surrounds it,
under the official attribute names:

* ``text_embedding`` (12001 ids) + ``text_pos_embedding.emb`` (602 rows) and
  ``mel_embedding`` (8194 codes) + ``mel_pos_embedding.emb`` (1818 rows): the inputs;
  GPT-2's own position table is unused (zero);
* ``gpt`` (:class:`~mlx_indextts_models.gpt2.GPT2Model`, 24 blocks, 1280, 20 heads),
  ``final_norm``, ``mel_head`` (8194 logits) and ``text_head`` (unused at inference).

**Decoding** (:meth:`UnifiedVoice.generate`, ``inference_speech``): the prompt is
``[conds (34)][start_text, text..., stop_text][start_mel]`` with text positions
``0..L+1`` and the start code at mel position 0. Generated code ``k`` (1-based) is fed at
mel position ``k`` — what the reference computes as installed (transformers 5.x: its
``generate`` never hands the model its KV cache, so every step re-embeds the codes at
positions ``0..k``), and what training and the latent pass use. The reference's cached
path under transformers 4.x feeds code ``k`` at ``k + 1`` instead (an off-by-one of
``get_fixed_embedding(attention_mask.shape[1] - mel_len)``); ``position_shift=1``
reproduces it. Tokens are chosen by :mod:`mlx_indextts_models.sampling` (HF's logits
processing, sampling and beam search), beams batched through one KV cache whose rows
stay in place as beams are reordered (:class:`~mlx_indextts_models.cache.BeamSlots`).

**Latent pass** (:meth:`UnifiedVoice.latent`, ``UnifiedVoice.forward`` as ``infer_v2``
calls it): one causal pass over ``[conds][start_text, text, stop_text][start_mel, codes,
stop_mel]`` (mel positions ``0..n+1``), ``final_norm``, and the ``n`` states at the start
token and the codes but the last (state ``i`` predicted code ``i``).

**S_infer** (:func:`s_infer`): ``vq2emb(codes) + gpt_layer(latent)`` with
:class:`~mlx_indextts_models.s2mel.model.GPTLayer` (Linear 1280→256→128→1024, no
activations; stored in ``s2mel.pth``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from mlx_indextts_models.cache import BeamSlots, select_rows
from mlx_indextts_models.config import from_dict, own_fields
from mlx_indextts_models.gpt2 import GPT2Args, GPT2Model, linear_rows
from mlx_indextts_models.gpt_conditioning import GPTConditioning, GPTConditioningArgs
from mlx_indextts_models.sampling import GenerationConfig, Sampler, make_search, prompt_presence
from mlx_indextts_models.semantic_codec import RepCodec


@dataclass
class UnifiedVoiceArgs:
    """``cfg.gpt`` of IndexTTS-2 (upstream names and values)."""

    model_dim: int = 1280
    heads: int = 20
    layers: int = 24
    max_mel_tokens: int = 1815
    max_text_tokens: int = 600
    max_conditioning_inputs: int = 1
    number_text_tokens: int = 12000
    number_mel_codes: int = 8194
    start_mel_token: int = 8192
    stop_mel_token: int = 8193
    start_text_token: int = 0
    stop_text_token: int = 1
    conditioning: GPTConditioningArgs = field(default_factory=GPTConditioningArgs)

    def __post_init__(self) -> None:
        if self.conditioning.model_dim != self.model_dim:
            raise ValueError("conditioning.model_dim must equal model_dim")

    @classmethod
    def from_config(cls, gpt: Mapping[str, object]) -> UnifiedVoiceArgs:
        """From ``cfg.gpt`` of the official ``config.yaml`` (flat: the conditioning's keys
        beside the GPT's), built by :func:`~mlx_indextts_models.config.from_dict`; keys of
        ``cfg.gpt`` that configure neither (training settings) are not read."""
        record = own_fields(cls, gpt)
        record["conditioning"] = own_fields(GPTConditioningArgs, gpt)
        return from_dict(cls, record)

    @property
    def mel_positions(self) -> int:
        """Rows of ``mel_pos_embedding``: ``max_mel_tokens + 2 + max_conditioning_inputs``."""
        return self.max_mel_tokens + 2 + self.max_conditioning_inputs

    @property
    def text_positions(self) -> int:
        """Rows of ``text_pos_embedding``: ``max_text_tokens + 2``."""
        return self.max_text_tokens + 2

    @property
    def gpt2(self) -> GPT2Args:
        """The GPT-2 stack (``build_hf_gpt_transformer``)."""
        return GPT2Args(
            n_embd=self.model_dim,
            n_layer=self.layers,
            n_head=self.heads,
            n_positions=self.mel_positions + self.text_positions,
        )


class LearnedPositionEmbeddings(nn.Module):
    """A learned position table (``emb``, ``(rows, dim)``)."""

    def __init__(self, rows: int, dim: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(rows, dim)

    def __call__(self, length: int, start: int = 0) -> mx.array:
        """Rows ``start .. start+length-1`` → ``(length, dim)``."""
        if start + length > self.emb.weight.shape[0]:
            raise ValueError(
                f"positions up to {start + length - 1} exceed the table's "
                f"{self.emb.weight.shape[0]} rows"
            )
        return self.emb.weight[start : start + length]


@dataclass(frozen=True)
class GeneratedCodes:
    """Result of :meth:`UnifiedVoice.generate`.

    Attributes:
        codes: the mel codes, without the stop token.
        stopped: whether decoding ended on the stop token (False: ``max_new_tokens`` ran
            out, the reference warns then).
    """

    codes: list[int]
    stopped: bool


@dataclass(frozen=True)
class DecodeStep:
    """One step of :meth:`UnifiedVoice.generate_steps`.

    Attributes:
        count: codes generated so far (per beam), this step's included.
        tokens: ``(beams,)`` the codes this step chose, in beam order.
        result: the finished :class:`GeneratedCodes` on the last step, else None.
    """

    count: int
    tokens: np.ndarray
    result: GeneratedCodes | None


class UnifiedVoice(GPTConditioning):
    """The IndexTTS-2 GPT: conditioning (inherited) + text/mel embeddings + GPT-2 + heads."""

    def __init__(self, args: UnifiedVoiceArgs | None = None) -> None:
        args = args or UnifiedVoiceArgs()
        super().__init__(args.conditioning)
        self.args = args
        dim = args.model_dim
        self.text_embedding = nn.Embedding(args.number_text_tokens + 1, dim)
        self.mel_embedding = nn.Embedding(args.number_mel_codes, dim)
        self.text_pos_embedding = LearnedPositionEmbeddings(args.text_positions, dim)
        self.mel_pos_embedding = LearnedPositionEmbeddings(args.mel_positions, dim)
        self.gpt = GPT2Model(args.gpt2)
        self.final_norm = nn.LayerNorm(dim)
        self.text_head = nn.Linear(dim, args.number_text_tokens + 1)
        self.mel_head = nn.Linear(dim, args.number_mel_codes)

    # -- inputs -------------------------------------------------------------------------

    def _text_ids(self, text_tokens: Sequence[int] | mx.array, *, drop_markers: bool) -> mx.array:
        """``[start_text, tokens..., stop_text]`` as ``(L + 2,)`` int32."""
        args = self.args
        ids = np.asarray(text_tokens, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() > args.number_text_tokens):
            raise ValueError(f"text token ids must lie in 0..{args.number_text_tokens}")
        if drop_markers:  # prepare_gpt_inputs drops start/stop ids inside the text
            ids = ids[(ids != args.start_text_token) & (ids != args.stop_text_token)]
        ids = np.concatenate([[args.start_text_token], ids, [args.stop_text_token]])
        return mx.array(ids.astype(np.int32))

    def _text_input(self, ids: mx.array) -> mx.array:
        embedded: mx.array = self.text_embedding(ids) + self.text_pos_embedding(ids.shape[0])
        return embedded

    def text_prefix(self, conds: mx.array, text_tokens: Sequence[int] | mx.array) -> mx.array:
        """The decoding prompt before the start code (``prepare_gpt_inputs``, one text).

        Args:
            conds: ``(1, 34, model_dim)`` from :meth:`conditioning_prefix`.
            text_tokens: ``(L,)`` BPE ids (start/stop text ids inside are dropped, as the
                reference does).

        Returns:
            ``(1, 34 + L + 2, model_dim)``: ``[conds][start_text, text, stop_text]``.
        """
        if conds.ndim != 3 or conds.shape[0] != 1:
            raise ValueError(f"conds must be (1, positions, dim), got {conds.shape}")
        text = self._text_input(self._text_ids(text_tokens, drop_markers=True))
        return mx.concatenate([conds, text[None].astype(conds.dtype)], axis=1)

    def mel_input(self, codes: mx.array, position: int) -> mx.array:
        """``(B,)`` codes at one mel position → ``(B, 1, model_dim)``."""
        embedded: mx.array = self.mel_embedding(codes) + self.mel_pos_embedding(1, position)
        return embedded[:, None]

    def logits(self, hidden: mx.array) -> mx.array:
        """``(B, model_dim)`` last GPT-2 states → ``(B, number_mel_codes)`` mel logits
        (``final_norm`` then ``mel_head``)."""
        return linear_rows(self.final_norm(hidden), self.mel_head.weight, self.mel_head.bias)

    # -- decoding -----------------------------------------------------------------------

    def first_logits(self, conds: mx.array, text_tokens: Sequence[int] | mx.array) -> mx.array:
        """Mel logits ``(1, number_mel_codes)`` for the first code (at the start token)."""
        prompt = self._prompt(self.text_prefix(conds, text_tokens))
        return self.logits(self.gpt(prompt)[:, -1])

    def _prompt(self, prefix: mx.array) -> mx.array:
        start = self.mel_input(mx.array([self.args.start_mel_token]), 0)
        return mx.concatenate([prefix, start.astype(prefix.dtype)], axis=1)

    def generate(
        self,
        conds: mx.array,
        text_tokens: Sequence[int] | mx.array,
        config: GenerationConfig | None = None,
        *,
        sampler: Sampler | None = None,
        position_shift: int = 0,
        progress: Callable[[int], None] | None = None,
    ) -> GeneratedCodes:
        """Mel codes for one text (``inference_speech`` → ``generate``).

        Args:
            conds: ``(1, 34, model_dim)`` conditioning prefix.
            text_tokens: ``(L,)`` BPE ids of the segment.
            config: search settings (default: the reference's: 3 beams sampled,
                temperature 0.8, top-k 30, top-p 0.8, repetition penalty 10, 1500 codes).
            sampler: the seeded source of randomness (default ``Sampler(0)``).
            position_shift: 0 = the reference as installed (code ``k`` at mel position
                ``k``); 1 = its transformers-4.x cached path (module docstring).
            progress: called with the number of codes generated after each step.

        Returns:
            :class:`GeneratedCodes` (codes without the stop token).
        """
        prefix = self.text_prefix(conds, text_tokens)
        return self.generate_from_prefix(
            prefix, config, sampler=sampler, position_shift=position_shift, progress=progress
        )

    def generate_from_prefix(
        self,
        prefix: mx.array,
        config: GenerationConfig | None = None,
        *,
        sampler: Sampler | None = None,
        position_shift: int = 0,
        progress: Callable[[int], None] | None = None,
    ) -> GeneratedCodes:
        """:meth:`generate` from a ready ``(1, s, model_dim)`` :meth:`text_prefix`."""
        for step in self.generate_steps(
            prefix, config, sampler=sampler, position_shift=position_shift
        ):
            if progress is not None:
                progress(step.count)
        assert step.result is not None
        return step.result

    def generate_steps(
        self,
        prefix: mx.array,
        config: GenerationConfig | None = None,
        *,
        sampler: Sampler | None = None,
        position_shift: int = 0,
    ) -> Iterator[DecodeStep]:
        """The decoding loop as a generator: one :class:`DecodeStep` per chosen code
        (per beam), the last one carrying the result. Arguments as :meth:`generate`, from
        a ready :meth:`text_prefix`; stopping the iteration early abandons the search."""
        config = config or GenerationConfig()
        if config.eos_token_id != self.args.stop_mel_token:
            raise ValueError(f"eos_token_id must be the stop code {self.args.stop_mel_token}")
        limit = self.args.mel_positions - 1 - position_shift
        if config.max_new_tokens > limit:
            raise ValueError(f"max_new_tokens must be at most {limit} (mel position table)")
        cache = self.gpt.make_cache()
        hidden = self.gpt(self._prompt(prefix), cache)
        logits = self.logits(hidden[:, -1])
        seen = prompt_presence(
            prefix.shape[1], self.args.start_mel_token, self.args.number_mel_codes
        )
        search = make_search(config, seen, sampler)
        beams = config.num_beams
        if beams > 1:
            select_rows(cache, [0] * beams)
            logits = mx.repeat(logits, beams, axis=0)
        slots = BeamSlots(beams)
        generated = 0
        while True:
            step = search.step(logits)
            generated += 1
            if step.done:
                codes = search.result()
                stopped = bool(codes) and codes[-1] == self.args.stop_mel_token
                result = GeneratedCodes(codes[:-1] if stopped else codes, stopped)
                yield DecodeStep(generated, step.tokens, result)
                return
            yield DecodeStep(generated, step.tokens, None)
            slots.advance(cache, step.parents)
            tokens = mx.array(step.tokens.astype(np.int32))
            x = slots.to_physical(self.mel_input(tokens, generated + position_shift))
            logits = slots.to_logical(self.logits(self.gpt(x, cache)[:, 0]))

    # -- latent pass --------------------------------------------------------------------

    def latent(
        self,
        conds: mx.array,
        text_tokens: Sequence[int] | mx.array,
        codes: Sequence[int] | mx.array,
    ) -> mx.array:
        """GPT latents of the generated codes (``UnifiedVoice.forward`` as ``infer_v2`` calls
        it: speaker latents not re-encoded, ``use_speed`` zeros, ``return_latent``).

        Args:
            conds: ``(1, 34, model_dim)`` conditioning prefix (same as for decoding).
            text_tokens: ``(L,)`` BPE ids (kept as given, as ``forward`` does).
            codes: ``(n,)`` mel codes without the stop token.

        Returns:
            ``(1, n, model_dim)``: ``final_norm`` of the states at the start code and
            codes ``1..n-1`` (state ``i`` predicted code ``i``).
        """
        args = self.args
        ids = np.asarray(codes, dtype=np.int64).reshape(-1)
        if ids.size == 0:
            raise ValueError("latent needs at least one code")
        if ids.min() < 0 or ids.max() >= args.number_mel_codes:
            raise ValueError(f"mel codes must lie in 0..{args.number_mel_codes - 1}")
        mel_ids = np.concatenate([[args.start_mel_token], ids, [args.stop_mel_token]])
        mel_input = mx.array(mel_ids.astype(np.int32))
        mel = self.mel_embedding(mel_input) + self.mel_pos_embedding(mel_input.shape[0])
        text = self._text_input(self._text_ids(text_tokens, drop_markers=False))
        x = mx.concatenate([conds, text[None], mel[None]], axis=1)
        hidden = self.gpt(x)[:, -(ids.size + 2) : -2]
        latent: mx.array = self.final_norm(hidden)
        return latent

    def mel_logits(self, latent: mx.array) -> mx.array:
        """Teacher-forced mel logits ``(B, n, number_mel_codes)`` from :meth:`latent`."""
        return self.mel_head(latent)


def s_infer(codec: RepCodec, codes: mx.array, latent_proj: mx.array) -> mx.array:
    """The S2Mel input ``S_infer = vq2emb(codes) + gpt_layer(latent)``.

    Args:
        codec: the semantic codec.
        codes: ``(B, n)`` mel codes (first quantizer's indices).
        latent_proj: ``(B, n, 1024)`` from :class:`~mlx_indextts_models.s2mel.model.GPTLayer`.

    Returns:
        ``(B, n, 1024)``.
    """
    if codes.ndim != 2 or codes.shape != latent_proj.shape[:2]:
        raise ValueError(f"codes {codes.shape} do not match latents {latent_proj.shape}")
    return codec.quantizer.vq2emb(codes[None].astype(mx.int32)) + latent_proj
