"""Our pipeline's stages on one voice and text, named and laid out as
:func:`parity.pipeline_reference.run_reference` returns the reference's.

The stages come from :class:`indextts_mlx.IndexTTS2`'s public methods (the ones ``render``
composes); the intermediate encoder outputs the methods do not return (W2V-BERT
``hidden[17]``, the codec's codes and ``S_ref``, the latent before ``gpt_layer``) are
recomputed from the same models and inputs. GPT decoding uses the reference run's search
settings (``num_beams=1, top_k=1``: greedy through the sampler); the CFM starts from the
reference's noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np

from indextts_mlx import IndexTTS2, WeightsConfig
from indextts_mlx.audio import load_speaker_audio
from mlx_audio_features import seamless_fbank
from mlx_indextts_models import GenerationConfig
from mlx_indextts_models.s2mel.regulator import target_lengths
from parity.converted import CONVERTIBLE, converted_weights

#: The reference run's ``generate`` settings (``pipeline_reference.GREEDY``), as ours.
GREEDY = {"do_sample": True, "num_beams": 1, "top_k": 1}


def our_pipeline(bpe_model: Path, seed: int = 0) -> IndexTTS2:
    """``IndexTTS2`` on the CLI-converted seeded checkpoints (all files, emotion matrices too)."""
    weights = WeightsConfig(weights_dir=converted_weights(CONVERTIBLE, seed), bpe_model=bpe_model)
    return IndexTTS2(weights, progress=False)


def our_stages(
    tts: IndexTTS2,
    voice_wav: Path,
    text: str,
    *,
    max_codes: int,
    noise: np.ndarray,
) -> dict[str, np.ndarray]:
    """Every stage of one single-segment synthesis.

    Args:
        noise: the reference's CFM start noise ``(1, 80, T_ref + T_gen)``.

    Returns:
        name → array, in the reference's layouts (channels-first mels, ``(1, n)`` codes).
    """
    models = tts.models
    audio = load_speaker_audio(voice_wav)
    features, mask = seamless_fbank(audio.audio_16k)
    hidden = models.w2vbert(mx.array(features)[None], mx.array(mask)[None])
    speaker = tts.encode_speaker(voice_wav)
    sem_codes, s_ref = models.semantic_codec.quantize(speaker.spk_cond_emb)
    emotion = tts.encode_emotion(voice_wav)
    emovec = tts.emotion_vector(speaker, emotion)
    (ids,) = tts.text_segments(text)
    conds = tts.conditioning_prefix(speaker, emovec)
    config = GenerationConfig(**GREEDY, max_new_tokens=max_codes)
    generated = tts.generate_codes(conds, ids, config)
    latent = models.gpt.latent(conds, ids, generated.codes)
    s_infer = tts.codes_to_latent(conds, ids, generated.codes)
    regulated = models.s2mel.length_regulator(s_infer, target_lengths(len(generated.codes)))
    mel = tts.latent_to_mel(s_infer, speaker, noise=mx.array(noise).transpose(0, 2, 1))
    wave = tts.vocode(mel)
    arrays: Mapping[str, Any] = {
        "seamless fbank": mx.array(features)[None],
        "attention mask": mx.array(mask)[None],
        "W2V-BERT hidden[17]": hidden,
        "normalized semantic features": speaker.spk_cond_emb,
        "semantic_codec codes": sem_codes,
        "semantic_codec S_ref": s_ref,
        "ref_mel": speaker.ref_mel.transpose(0, 2, 1),
        "CAMPPlus speaker style": speaker.style,
        "prompt regulator": speaker.prompt_condition,
        "emo normalized semantic features": emotion.emo_cond_emb,
        "text ids": mx.array([ids]),
        "emovec": emovec,
        "speaker latent": speaker.spk_latent,
        "codes": mx.array([generated.codes]),
        "GPT latent": latent,
        "GPT latent proj": models.s2mel.gpt_layer(latent),
        "S_infer": s_infer,
        "inference regulator": regulated,
        "CFM mel": mel.transpose(0, 2, 1),
        "BigVGAN waveform": wave[None],
    }
    return {k: np.array(v) for k, v in arrays.items()}


def our_render(
    tts: IndexTTS2, voice_wav: Path, text: str, *, max_codes: int, noise: np.ndarray
) -> Any:
    """``tts.render`` with the reference's settings, the CFM fed the reference's noise."""
    latent_to_mel = tts.latent_to_mel

    def with_noise(s_infer: mx.array, speaker: Any, **kwargs: Any) -> mx.array:
        kwargs.pop("seed", None)
        return latent_to_mel(s_infer, speaker, noise=mx.array(noise).transpose(0, 2, 1), **kwargs)

    tts.latent_to_mel = with_noise  # type: ignore[method-assign]
    try:
        return tts.render(text, voice_wav, max_codes=max_codes, **GREEDY)
    finally:
        del tts.latent_to_mel
