r"""``indextts-tts``: speech from text in the voice of a short recording.

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

The options keep the library's flat names (``--top-k`` is ``top_k``); their defaults and
ranges come from the library (:data:`indextts_mlx.settings.DEFAULTS`). Every check that
needs no model runs before any model loads: the settings, the output path and format, the
player, the text, the voice and emotion files, a chapter's every line.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from indextts_cli.options import PATH, options_from, synthesis_options
from indextts_cli.player import NoPlayerError, find_player, play
from indextts_mlx.errors import IndexTTSError
from indextts_mlx.models import Precision
from indextts_mlx.output import FORMATS, audio_format_for, write_audio
from indextts_weights import WeightsConfig, WeightsError
from indextts_weights.cli_boundary import error_boundary
from indextts_weights.loading import MX_DTYPES
from indextts_weights.manifest import human_size
from mlx_indextts_models.gpt2 import QUANTIZE_BITS

if TYPE_CHECKING:
    from click._termui_impl import ProgressBar

    from indextts_mlx import IndexTTS2, SynthesisResult
    from indextts_mlx.chapter import ChapterPlan, SegmentPlan

if __doc__ is None:  # pragma: no cover  (python -OO strips docstrings)
    raise ImportError("indextts-tts needs its docstrings (do not run it with python -OO)")
EXAMPLES = __doc__.split("Examples::", 1)[1].lstrip("\n").split("\n\n", 1)[0]
#: What a user can get wrong (one line, exit 2); anything else is reported as a bug.
EXPECTED_ERRORS = (IndexTTSError, WeightsError, OSError, NoPlayerError)


@dataclass(frozen=True)
class Output:
    """Where the audio goes: a file (format from its extension, or ``audio_format``),
    resampled to ``sample_rate`` when given, and/or the speakers."""

    path: Path | None
    audio_format: str | None
    sample_rate: int | None
    play: bool

    def check(self) -> None:
        """Raise now what writing or playing would raise after the synthesis."""
        if self.path is not None:
            audio_format_for(self.path, self.audio_format)
        if self.play:
            find_player()


def _make_tts(
    weights: WeightsConfig,
    cache_dir: Path | None,
    quiet: bool,
    low_memory: bool,
    download: bool,
    precision: Precision,
) -> IndexTTS2:
    """The pipeline, on a first run after fetching the weights (a seam for tests)."""
    from indextts_mlx import IndexTTS2
    from indextts_mlx.first_run import ensure_weights

    say = None if quiet else (lambda line: click.echo(line, err=True))
    ensure_weights(weights, download=download, say=say)
    progress = False if quiet else _LoadBars()
    return IndexTTS2(
        weights, progress=progress, cache_dir=cache_dir, low_memory=low_memory,
        dtype=precision.dtype, quantize_gpt=precision.quantize_gpt,
    )  # fmt: skip


class _LoadBars:
    """A bar per model as it loads: the bytes of its files read so far."""

    def __init__(self) -> None:
        self.bar: ProgressBar[int] | None = None
        self.total = self.seen = 0

    def start(self, name: str, total_bytes: int) -> None:
        label = f"loading {name} ({human_size(total_bytes)})"
        self.total, self.seen = max(total_bytes, 1), 0
        self.bar = click.progressbar(length=self.total, label=label, file=sys.stderr)

    def advance(self, nbytes: int) -> None:
        step = min(nbytes, self.total - self.seen)  # the zip directory is read twice
        if self.bar is not None and step > 0:
            self.bar.update(step)
            self.seen += step

    def done(self, name: str, seconds: float) -> None:
        if self.bar is not None:
            self.bar.update(self.total - self.seen)
            self.bar.render_finish()
            self.bar = None
        click.echo(f"loaded {name} ({seconds:.1f} s)", err=True)


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
@click.option("--text-file", type=PATH, help="Read the text from a file ('-': stdin).")
@click.option("--list-voices", is_flag=True, help="List the voices in --voices-dir and exit.")
@synthesis_options
@click.option(
    "--weights-dir",
    type=PATH,
    envvar="INDEXTTS_MLX_WEIGHTS_DIR",
    help="Converted weights folder [env INDEXTTS_MLX_WEIGHTS_DIR].",
)
@click.option(
    "--bpe-model",
    type=PATH,
    envvar="INDEXTTS_MLX_BPE_MODEL",
    help="bpe.model (default: in the weights folder) [env INDEXTTS_MLX_BPE_MODEL].",
)
@click.option(
    "--cache-dir",
    type=PATH,
    help="Cache for prompts and chapter segments "
    "(default for chapters: ~/.cache/indextts-mlx/segments).",
)
@click.option(
    "--out",
    type=PATH,
    help="Output file; the extension picks the format "
    "(wav, flac, ogg, mp3 where libsndfile supports it).",
)
@click.option(
    "--format",
    "audio_format",
    type=click.Choice(sorted(ext.lstrip(".") for ext in FORMATS)),
    help="Output format, overriding the extension.",
)
@click.option(
    "--sample-rate",
    type=click.IntRange(8000, 192000),
    help="Resample the output to this rate (the model renders 22,050 Hz).",
)
@click.option("--play", is_flag=True, help="Play the result through an audio player.")
@click.option("--segments-jsonl", type=PATH, help="Render a chapter: one JSON segment per line.")
@click.option("--continue-on-error", is_flag=True, help="Chapter: render what can be rendered.")
@click.option("--dry-run", is_flag=True, help="Chapter: print the plan, render nothing.")
@click.option(
    "--no-download",
    is_flag=True,
    help="Never fetch the weights (also INDEXTTS_MLX_OFFLINE=1 or HF_HUB_OFFLINE=1); "
    "by default a first run downloads and converts them (several GB).",
)
@click.option(
    "--low-memory",
    is_flag=True,
    help="Release the prompt encoders (~1.7 GB) once a prompt is encoded.",
)
@click.option(
    "--dtype",
    type=click.Choice(sorted(MX_DTYPES)),
    help="Hold every model in this precision (default: as converted, float32). "
    "Half precision is for Metal and CUDA; on the CPU it is many times slower.",
)
@click.option(
    "--quantize-gpt",
    type=click.Choice([str(b) for b in QUANTIZE_BITS]),
    help="Quantize the GPT's transformer weights to this many bits after loading.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
def main(**params: Any) -> None:
    """Speak TEXT in the voice of a short recording (IndexTTS-2 on MLX).

    TEXT may also come from --text-file or standard input. Give --out FILE and/or --play.
    """
    with error_boundary("indextts-tts", debug=params.pop("debug"), expected=EXPECTED_ERRORS):
        _run(params)


def _run(params: dict[str, Any]) -> None:
    if params["list_voices"]:
        _list_voices(params["voices_dir"])
        return
    output = Output(params["out"], params["audio_format"], params["sample_rate"], params["play"])
    weights = WeightsConfig(weights_dir=params["weights_dir"], bpe_model=params["bpe_model"])
    bits = params["quantize_gpt"]
    precision = Precision(params["dtype"], None if bits is None else int(bits))

    def make_tts(cache_dir: Path | None) -> IndexTTS2:
        download = not params["no_download"]
        quiet, low_memory = params["quiet"], params["low_memory"]
        return _make_tts(weights, cache_dir, quiet, low_memory, download, precision)

    if params["segments_jsonl"] is not None:
        _chapter(params, output, weights, make_tts, precision)
        return
    text = _read_text(params["text"], params["text_file"])
    if text is None:
        raise click.UsageError("no text: give TEXT, --text-file FILE, or pipe it in")
    if output.path is None and not output.play:
        raise click.UsageError("nothing to do with the audio: give --out FILE and/or --play")
    _speak(text, params, output, make_tts)


def _list_voices(voices_dir: Path | None) -> None:
    from indextts_mlx import list_voices

    if voices_dir is None:
        raise click.UsageError("--list-voices needs --voices-dir")
    names = list_voices(voices_dir)
    click.echo("\n".join(names) if names else f"no voices in {voices_dir}")


def _speak(
    text: str, params: dict[str, Any], output: Output, make_tts: Callable[[Path | None], IndexTTS2]
) -> None:
    from indextts_mlx.pipeline import prepare_request
    from indextts_mlx.settings import SynthesisRequest

    request = SynthesisRequest.from_options(
        text, params["spk_audio_prompt"], **options_from(params)
    )
    output.check()
    prepared = prepare_request(request)  # text, voice, emotion: before any model loads
    cache = params["cache_dir"] / "conditioning" if params["cache_dir"] else None
    tts = make_tts(cache)
    with _CodeProgress(request.generation.max_new_tokens, params["quiet"]) as progress:
        result = tts.run(prepared, on_code=progress.update)
    if output.path is not None:
        write_audio(
            output.path, result.audio, result.sample_rate, output.audio_format,
            resample_to=output.sample_rate,
        )  # fmt: skip
        if not params["quiet"]:
            click.echo(f"wrote {output.path} ({result.duration:.2f} s of audio)", err=True)
    if output.play:
        _play(result, output.path)


class _CodeProgress:
    """One progress bar per segment, advanced as the GPT emits codes."""

    def __init__(self, limit: int, quiet: bool) -> None:
        self.limit, self.quiet = limit, quiet
        self.bar: ProgressBar[int] | None = None
        self.segment, self.codes = -1, 0

    def __enter__(self) -> _CodeProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.render_finish()

    def update(self, segment: int, codes: int) -> None:
        if self.quiet:
            return
        if self.bar is None or segment != self.segment:
            if self.bar is not None:
                self.bar.render_finish()
            label = f"segment {segment + 1}: codes"
            self.bar = click.progressbar(length=self.limit, label=label, file=sys.stderr)
            self.segment, self.codes = segment, 0
        self.bar.update(codes - self.codes)
        self.codes = codes


def _play(result: SynthesisResult, written: Path | None) -> None:
    """Play the written file (WAV/FLAC), else a temporary WAV of the result."""
    if written is not None and written.suffix.lower() in (".wav", ".flac"):
        play(written)
        return
    with tempfile.TemporaryDirectory() as tmp:
        play(write_audio(Path(tmp) / "indextts.wav", result.audio, result.sample_rate))


def _chapter(
    params: dict[str, Any],
    output: Output,
    weights: WeightsConfig,
    make_tts: Callable[[Path | None], IndexTTS2],
    precision: Precision,
) -> None:
    from indextts_mlx.chapter import ChapterRenderError, plan_chapter, render_chapter

    if output.path is None and not params["dry_run"]:
        raise click.UsageError("--segments-jsonl needs --out FILE")
    plan = plan_chapter(
        params["segments_jsonl"],
        weights,
        cache_dir=params["cache_dir"],
        precision=precision,
        spk_audio_prompt=params["spk_audio_prompt"],
        sample_rate=output.sample_rate,
        audio_format=output.audio_format,
        **options_from(params),
    )  # every line checked, no model loaded
    if params["dry_run"]:
        _print_plan(plan)
        return
    assert output.path is not None
    replace(output, audio_format=plan.audio_format).check()  # the lines may set the format
    try:
        with _SegmentProgress(params["quiet"]) as progress:
            report = render_chapter(
                plan, output.path, make_tts(None),
                continue_on_error=params["continue_on_error"], on_segment=progress.update,
            )  # fmt: skip
    except ChapterRenderError as e:  # one line per failed segment, then exit 2
        failed = [s for s in e.report.segments if s.error]
        for segment in failed:
            click.echo(f"error: line {segment.line}: {segment.error}", err=True)
        click.echo(
            f"{len(failed)} of {len(e.report.segments)} segments failed; {output.path} was "
            "not written (the rendered segments are cached: run again to retry the rest)",
            err=True,
        )
        sys.exit(2)
    assert report.output is not None and report.manifest is not None  # both were written
    if not params["quiet"]:
        click.echo(
            f"wrote {report.output} ({report.duration / 60:.1f} min; {report.rendered} rendered, "
            f"{report.cache_hits} from cache) and {report.manifest.name}",
            err=True,
        )
    if output.play:
        play(report.output)


def _print_plan(plan: ChapterPlan) -> None:
    for segment in plan.segments:
        state = "cached" if segment.cached else "render"
        click.echo(
            f"line {segment.line:>4}  {state:<6}  ~{segment.estimated_seconds:6.1f} s  "
            f"{segment.speaker.name:<20}  {segment.text[:50]}"
        )
    click.echo(
        f"{len(plan.segments)} segments, {plan.cache_hits} cached, "
        f"about {plan.estimated_seconds / 60:.1f} min of audio"
    )


class _SegmentProgress:
    """A chapter-wide bar, one step per rendered segment, with the line being rendered."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: ProgressBar[int] | None = None

    def __enter__(self) -> _SegmentProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.render_finish()

    def update(self, index: int, count: int, segment: SegmentPlan) -> None:
        if self.quiet:
            return
        if self.bar is None:
            self.bar = click.progressbar(length=count, label="chapter: segments", file=sys.stderr)
        self.bar.update(1)
        click.echo(f"  line {segment.line}: {segment.text[:60]}", err=True)
