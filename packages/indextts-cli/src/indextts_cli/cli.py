"""``indextts-tts``: speech from text in the voice of a short recording.

Examples::

    indextts-tts "Hello world." --spk-audio-prompt speaker.wav --play
    indextts-tts "Hello world." --voices-dir ~/voices --voice prunella --out out.wav
    indextts-tts --list-voices --voices-dir ~/voices
    indextts-tts "What a day!" --spk-audio-prompt s.wav \
        --emo-vector "0.8,0,0,0,0,0,0.2,0" --emo-alpha 0.5
    indextts-tts "Hello world." --spk-audio-prompt s.wav --seed 42 --no-use-random
    indextts-tts --segments-jsonl chapter01.jsonl --voices-dir ~/voices --out chapter01.wav
    indextts-tts "Hello." --voice ~/voices/prunella.wav
    cat story.txt | indextts-tts --voice narrator.wav --out story.flac
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from indextts_cli.player import play

EXAMPLES = __doc__.split("Examples::", 1)[1].strip("\n")


def _path(**kwargs: Any) -> click.Path:
    return click.Path(path_type=Path, **kwargs)


def _make_tts(
    weights_dir: Path | None,
    bpe_model: Path | None,
    cache_dir: Path | None,
    quiet: bool,
    low_memory: bool = False,
) -> Any:
    """The pipeline (a seam for tests)."""
    from indextts_mlx import IndexTTS2, WeightsConfig

    weights = WeightsConfig(weights_dir=weights_dir, bpe_model=bpe_model)

    def loaded(name: str, seconds: float) -> None:
        click.echo(f"loaded {name} ({seconds:.1f} s)", err=True)

    conditioning = cache_dir / "conditioning" if cache_dir else None
    return IndexTTS2(
        weights,
        progress=False if quiet else loaded,
        cache_dir=conditioning,
        low_memory=low_memory,
    )


def _read_text(text: str | None, text_file: Path | None) -> str | None:
    if text is not None and text_file is not None:
        raise click.UsageError("give the text as an argument or with --text-file, not both")
    if text_file is not None:
        if str(text_file) == "-":
            return sys.stdin.read()
        try:
            return text_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise click.UsageError(f"cannot read --text-file {text_file}: {e}") from e
    if text is None and not sys.stdin.isatty():
        return sys.stdin.read()
    return text


@click.command(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="\b\nExamples:\n" + EXAMPLES,
)
@click.argument("text", required=False)
@click.option("--text-file", type=_path(), help="Read the text from a file ('-': stdin).")
@click.option("--spk-audio-prompt", type=_path(), help="Speaker prompt audio (first 15 s used).")
@click.option("--reference-audio", type=_path(), help="Old name of --spk-audio-prompt.")
@click.option("--voice", help="Voice name in --voices-dir, or an audio file path.")
@click.option("--voices-dir", type=_path(), help="Folder of voice .wav files (name = file stem).")
@click.option("--list-voices", is_flag=True, help="List the voices in --voices-dir and exit.")
@click.option("--emo-audio-prompt", type=_path(), help="Emotion reference audio.")
@click.option(
    "--emo-alpha",
    type=float,
    default=1.0,
    show_default=True,
    help="Emotion strength (0-1): blend towards the emotion audio, or scale --emo-vector.",
)
@click.option(
    "--emo-vector",
    help="8 weights: happy,angry,sad,afraid,disgusted,melancholic,"
    "surprised,calm (needs the emotion matrices).",
)
@click.option("--emo-text", help="Describe the emotion in words (not available yet).")
@click.option(
    "--use-emo-text/--no-use-emo-text",
    default=None,
    help="Derive the emotion from text (default: when --emo-text is given).",
)
@click.option(
    "--emotion",
    type=float,
    default=1.0,
    show_default=True,
    help="Scale of the emotion in the conditioning (0 = none, 2 = double).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random draw.")
@click.option(
    "--use-random/--no-use-random",
    default=False,
    show_default=True,
    help="Draw a fresh seed each run (non-deterministic).",
)
@click.option(
    "--max-codes",
    type=int,
    default=1500,
    show_default=True,
    help="GPT code limit per segment (~50 codes per second of speech).",
)
@click.option("--temperature", type=float, default=0.8, show_default=True)
@click.option("--top-k", type=int, default=30, show_default=True)
@click.option("--top-p", type=float, default=0.8, show_default=True)
@click.option("--repetition-penalty", type=float, default=10.0, show_default=True)
@click.option("--num-beams", type=int, default=3, show_default=True)
@click.option("--greedy", is_flag=True, help="Greedy decoding instead of sampling.")
@click.option(
    "--cfm-steps",
    type=int,
    default=25,
    show_default=True,
    help="Flow-matching steps (fewer: faster, rougher).",
)
@click.option("--cfg-rate", type=float, default=0.7, show_default=True)
@click.option(
    "--weights-dir",
    type=_path(),
    envvar="INDEXTTS_MLX_WEIGHTS_DIR",
    help="Converted weights folder [env INDEXTTS_MLX_WEIGHTS_DIR].",
)
@click.option(
    "--bpe-model",
    type=_path(),
    envvar="INDEXTTS_MLX_BPE_MODEL",
    help="bpe.model (default: in the weights folder) [env INDEXTTS_MLX_BPE_MODEL].",
)
@click.option(
    "--cache-dir",
    type=_path(),
    help="Cache for prompts and chapter segments "
    "(default for chapters: ~/.cache/indextts-mlx/segments).",
)
@click.option(
    "--out",
    type=_path(),
    help="Output file; the extension picks the format "
    "(wav, flac, ogg, mp3 where libsndfile supports it).",
)
@click.option(
    "--format",
    "audio_format",
    type=click.Choice(["wav", "flac", "ogg", "mp3"]),
    help="Output format, overriding the extension.",
)
@click.option(
    "--sample-rate",
    type=click.IntRange(8000, 192000),
    help="Resample the output to this rate (the model renders 22,050 Hz).",
)
@click.option("--play", is_flag=True, help="Play the result through an audio player.")
@click.option("--segments-jsonl", type=_path(), help="Render a chapter: one JSON segment per line.")
@click.option("--continue-on-error", is_flag=True, help="Chapter: render what can be rendered.")
@click.option("--dry-run", is_flag=True, help="Chapter: print the plan, render nothing.")
@click.option(
    "--low-memory",
    is_flag=True,
    help="Release the prompt encoders (~1.7 GB) once a prompt is encoded.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
def main(**options: Any) -> None:
    """Speak TEXT in the voice of a short recording (IndexTTS-2 on MLX).

    TEXT may also come from --text-file or standard input. Give --out FILE and/or --play.
    """
    debug = options.pop("debug")
    try:
        _run(options)
    except click.ClickException:
        raise
    except Exception as e:  # one line, exit 2; the traceback only with --debug
        if debug:
            raise
        click.echo(f"error: {one_line(e)}", err=True)
        sys.exit(2)


def one_line(error: BaseException) -> str:
    """An error message on one line (multi-line messages joined with "; ")."""
    parts = [line.strip(" -") for line in str(error).splitlines() if line.strip(" -")]
    return "; ".join(parts).replace(":;", ":") or type(error).__name__


def _run(o: dict[str, Any]) -> None:
    from indextts_mlx import list_voices

    if o["list_voices"]:
        if o["voices_dir"] is None:
            raise click.UsageError("--list-voices needs --voices-dir")
        names = list_voices(o["voices_dir"])
        click.echo("\n".join(names) if names else f"no voices in {o['voices_dir']}")
        return
    if o["segments_jsonl"] is not None:
        _chapter(o)
        return
    text = _read_text(o["text"], o["text_file"])
    if text is None:
        raise click.UsageError("no text: give TEXT, --text-file FILE, or pipe it in")
    if o["out"] is None and not o["play"]:
        raise click.UsageError("nothing to do with the audio: give --out FILE and/or --play")
    tts = _make_tts(o["weights_dir"], o["bpe_model"], o["cache_dir"], o["quiet"], o["low_memory"])
    result = _render_with_progress(tts, text, o)
    target = o["out"]
    if target is not None:
        from indextts_mlx.output import write_audio

        audio, rate = result.audio, result.sample_rate
        if o["sample_rate"] and o["sample_rate"] != rate:
            import librosa

            audio = librosa.resample(audio, orig_sr=rate, target_sr=o["sample_rate"])
            rate = o["sample_rate"]
        write_audio(target, audio, rate, o["audio_format"])
        if not o["quiet"]:
            click.echo(f"wrote {target} ({result.duration:.2f} s of audio)", err=True)
    if o["play"]:
        _play(result, target)


def _synthesis_options(o: dict[str, Any]) -> dict[str, Any]:
    return {
        "emo_audio_prompt": o["emo_audio_prompt"],
        "emo_alpha": o["emo_alpha"],
        "emo_vector": o["emo_vector"],
        "emo_text": o["emo_text"],
        "use_emo_text": o["use_emo_text"],
        "emotion": o["emotion"],
        "seed": o["seed"],
        "use_random": o["use_random"],
        "max_codes": o["max_codes"],
        "temperature": o["temperature"],
        "top_k": o["top_k"],
        "top_p": o["top_p"],
        "repetition_penalty": o["repetition_penalty"],
        "num_beams": o["num_beams"],
        "do_sample": not o["greedy"],
        "cfm_steps": o["cfm_steps"],
        "cfg_rate": o["cfg_rate"],
    }


def _render_with_progress(tts: Any, text: str, o: dict[str, Any]) -> Any:
    bar: Any = None
    current = {"segment": -1, "codes": 0}

    def on_code(segment: int, codes: int) -> None:
        nonlocal bar
        if o["quiet"]:
            return
        if segment != current["segment"]:
            if bar is not None:
                bar.render_finish()
            bar = click.progressbar(
                length=o["max_codes"], label=f"segment {segment + 1}: codes", file=sys.stderr
            )
            current.update(segment=segment, codes=0)
        bar.update(codes - current["codes"])
        current["codes"] = codes

    try:
        return tts.render(
            text,
            o["spk_audio_prompt"],
            reference_audio=o["reference_audio"],
            voice=o["voice"],
            voices_dir=o["voices_dir"],
            on_code=on_code,
            **_synthesis_options(o),
        )
    finally:
        if bar is not None:
            bar.render_finish()


def _play(result: Any, written: Path | None) -> None:
    """Play the written file (WAV/FLAC), else a temporary WAV of the result."""
    if written is not None and written.suffix.lower() in (".wav", ".flac"):
        play(written)
        return
    from indextts_mlx.output import write_audio

    with tempfile.TemporaryDirectory() as tmp:
        play(write_audio(Path(tmp) / "indextts.wav", result.audio, result.sample_rate))


def _chapter(o: dict[str, Any]) -> None:
    from indextts_mlx import render_segments_jsonl

    if o["out"] is None and not o["dry_run"]:
        raise click.UsageError("--segments-jsonl needs --out FILE")
    tts = _make_tts(o["weights_dir"], o["bpe_model"], None, o["quiet"], o["low_memory"])
    settings = _synthesis_options(o)
    settings.update(
        voice=o["voice"],
        spk_audio_prompt=o["spk_audio_prompt"] or o["reference_audio"],
        audio_format=o["audio_format"],
        sample_rate=o["sample_rate"],
    )
    defaults = {k: v for k, v in settings.items() if v is not None}
    seed, steps = defaults.pop("seed"), defaults.pop("cfm_steps")
    if o["use_emo_text"] is None:
        defaults.pop("use_emo_text", None)
    bar: Any = None

    def on_segment(index: int, count: int, plan: Any) -> None:
        nonlocal bar
        if o["quiet"]:
            return
        if bar is None:
            bar = click.progressbar(length=count, label="chapter: segments", file=sys.stderr)
        bar.update(1)
        click.echo(f"  line {plan.line}: {plan.text[:60]}", err=True)

    try:
        report = render_segments_jsonl(
            o["segments_jsonl"],
            o["out"] or Path("dry-run.wav"),
            tts=tts,
            voices_dir=o["voices_dir"],
            seed=seed,
            cfm_steps=steps,
            cache_dir=o["cache_dir"],
            continue_on_error=o["continue_on_error"],
            dry_run=o["dry_run"],
            on_segment=on_segment,
            **defaults,
        )
    finally:
        if bar is not None:
            bar.render_finish()
    if o["dry_run"]:
        for plan in report.segments:
            state = "cached" if plan.cached else "render"
            click.echo(
                f"line {plan.line:>4}  {state:<6}  ~{plan.estimated_seconds:6.1f} s  "
                f"{plan.speaker.name:<20}  {plan.text[:50]}"
            )
        click.echo(
            f"{len(report.segments)} segments, {report.cache_hits} cached, "
            f"about {report.estimated_seconds / 60:.1f} min of audio"
        )
        return
    if not o["quiet"]:
        click.echo(
            f"wrote {report.output} ({report.duration / 60:.1f} min; {report.rendered} rendered, "
            f"{report.cache_hits} from cache) and {report.manifest.name}",
            err=True,
        )
    if o["play"]:
        play(report.output)
