"""``indextts-weights``: get, convert, verify and describe the IndexTTS-MLX weight files."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from indextts_weights.cli_boundary import error_boundary
from indextts_weights.errors import WeightsError


def _handle_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``command`` in the shared error boundary (one line, exit 2; ``--debug``, given
    before the command name, shows the traceback)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = bool((click.get_current_context().obj or {}).get("debug"))
        with error_boundary("indextts-weights", debug=debug, expected=(WeightsError, OSError)):
            return command(*args, **kwargs)

    return wrapper


def _progress(line: str) -> None:
    click.echo(line, err=True)


def _named_paths(items: tuple[str, ...]) -> dict[str, Path]:
    """``--file NAME=PATH`` values as name → path.

    Raises:
        WeightsError: an item without ``=``, or a name given twice.
    """
    named: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise WeightsError(f"expected --file NAME=PATH, got {item!r}")
        if name in named:
            raise WeightsError(f"{name} given twice with --file")
        named[name] = Path(path).expanduser()
    return named


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="""\b
Examples:
  indextts-weights download --out ~/weights
  indextts-weights convert --src ~/IndexTTS-2 --out ~/weights
  indextts-weights verify ~/weights
  indextts-weights info ~/weights
  indextts-weights --debug verify ~/weights   # tracebacks on errors""",
)
@click.option(
    "--debug", is_flag=True, help="Show tracebacks on errors (give it before the command)."
)
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Manage IndexTTS-MLX weights (torch is never needed).

    Errors print one line and exit with code 2.
    """
    ctx.obj = {"debug": debug}


#: ``convert``'s and ``download``'s ``--dtype`` (:data:`indextts_weights.npz.DTYPES`).
_DTYPE_OPTION = click.option(
    "--dtype",
    type=click.Choice(["float32", "float16", "bfloat16"]),
    default="float32",
    show_default=True,
    help="Precision of the converted weights: float32 (the CPU fast path; half sources are "
    "widened), or float16/bfloat16 (half the size, for Metal/CUDA; models load in it).",
)


@main.command()
@click.option(
    "--src",
    "src",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder with the official checkpoints (any layout; searched recursively).",
)
@click.option(
    "--out",
    "out",
    default=None,
    type=click.Path(path_type=Path),
    help="Destination folder for the NPZ files, bpe.model and manifest.json "
    "(required unless --dry-run).",
)
@click.option(
    "--only",
    multiple=True,
    help="Convert just this file (repeatable), e.g. campplus or bpe_model.",
)
@click.option(
    "--file",
    "files",
    multiple=True,
    metavar="NAME=PATH",
    help="Use PATH as the source of NAME instead of searching SRC (repeatable), "
    "e.g. campplus=/data/campplus_cn_common.bin.",
)
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
@_DTYPE_OPTION
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the table of the files found and the configuration each model would be "
    "converted at, and stop (exit 2 if conversion would stop).",
)
@_handle_errors
def convert(
    src: Path,
    out: Path | None,
    only: tuple[str, ...],
    files: tuple[str, ...],
    force: bool,
    dtype: str,
    dry_run: bool,
) -> None:
    """Convert official checkpoints found under SRC into OUT.

    \b
    Looks for: gpt.pth, s2mel.pth, bigvgan_generator.pt, campplus_cn_common.bin,
    semantic_codec/model.safetensors, w2v-bert-2.0/model.safetensors,
    wav2vec2bert_stats.pt, feat1.pt, feat2.pt (optional), bpe.model,
    in a flat folder, a Hugging Face hub snapshot or cache, or an upstream
    index-tts checkpoints/ folder (old or new hf_cache layout). Identical
    copies count once. First prints (to stderr) each file and the path
    chosen; stops if a required file is missing or two different files
    match (then choose with --file NAME=PATH or leave it out with --only).
    Writes OUT/manifest.json (size, SHA-256, format version and array shapes
    of every output); refuses to overwrite existing outputs without --force.
    Progress (file, size, seconds) goes to stderr. A config.yaml beside
    the files is checked against the configuration the models are built
    at first. --dtype float16|bfloat16 keeps half precision.

    \b
    Example:
      indextts-weights convert --src ~/IndexTTS-2 --out ~/weights
      indextts-weights convert --src ~/IndexTTS-2 --out ~/weights-f16 --dtype float16
      indextts-weights convert --src ~/.cache/huggingface/hub --dry-run
      indextts-weights convert --src index-tts/checkpoints --out ~/weights \\
          --file campplus=~/campplus_cn_common.bin
    """
    from indextts_weights.convert import convert as run_convert
    from indextts_weights.convert import report_configs, source_plan
    from indextts_weights.sources import SourcePlan, format_plan

    def show(plan: SourcePlan) -> None:
        for line in format_plan(plan):
            click.echo(line, err=True)

    if dry_run:
        plan = source_plan(src, only=only or None, files=_named_paths(files), progress=_progress)
        show(plan)
        plan.check()
        report_configs(src, plan.sources(), _progress)
        click.echo(f"dry run: {len(plan.sources())} file(s) found, nothing converted", err=True)
        return
    if out is None:
        raise click.UsageError("Missing option '--out' (needed unless --dry-run).")
    written = run_convert(
        src,
        out,
        only=only or None,
        force=force,
        progress=_progress,
        files=_named_paths(files),
        on_plan=show,
        dtype=dtype,
    )
    for name, path in written.items():
        click.echo(f"{name}: {path}")


@main.command()
@click.argument("folder", type=click.Path(path_type=Path))
@click.option("--no-hash", is_flag=True, help="Skip the SHA-256 check (sizes and shapes only).")
@_handle_errors
def verify(folder: Path, no_hash: bool) -> None:
    """Check the weights in FOLDER against its manifest.json.

    \b
    One line per file: ok / missing / size mismatch / hash mismatch /
    shape mismatch / unreadable (and absent for missing optional files).
    Without a manifest only presence and NPZ readability are checked
    (with a warning). Exit code 0 when all is well, 1 otherwise.

    \b
    Example:
      indextts-weights verify ~/weights
    """
    from indextts_weights.manifest import MANIFEST_NAME
    from indextts_weights.manifest import verify as run_verify

    checks, has_manifest = run_verify(folder, hashes=not no_hash)
    if not has_manifest:
        click.echo(
            f"warning: no {MANIFEST_NAME} in {folder}: sizes and SHA-256 hashes cannot be "
            "checked, only presence and NPZ readability (convert again to write one)",
            err=True,
        )
    width = max(len(c.name) for c in checks)
    for check in checks:
        detail = f"  {check.detail}" if check.detail else ""
        click.echo(f"{check.status:<15} {check.name:<{width}}{detail}")
    failed = [c for c in checks if c.failed]
    if failed:
        click.echo(f"{len(failed)} problem(s) in {folder}", err=True)
        sys.exit(1)
    click.echo(f"all {sum(c.status == 'ok' for c in checks)} file(s) ok", err=True)


@main.command()
@click.argument("folder", type=click.Path(path_type=Path))
@_handle_errors
def info(folder: Path) -> None:
    """Describe the weights in FOLDER: each file's size, parameter count,
    format version and precision (as converted), whether the optional
    emotion matrices are there, and totals.

    \b
    Example:
      indextts-weights info ~/weights
    """
    from indextts_weights.manifest import OPTIONAL_FILES, human_size, inventory

    rows = inventory(folder)
    width = max(len(r.name) for r in rows)
    click.echo(f"{'file':<{width}}  {'size':>10}  {'parameters':>13}  format")
    for row in rows:
        if row.size is None:
            note = "(optional)" if row.name in OPTIONAL_FILES else "(missing)"
            click.echo(f"{row.name:<{width}}  {'-':>10}  {'-':>13}  {note}")
            continue
        params = f"{row.parameters:,}" if row.parameters is not None else "-"
        version = f"v{row.format_version}" if row.format_version is not None else "-"
        if row.dtype:
            version += f" {row.dtype}"
        if row.problem:
            version = f"unreadable: {row.problem}"
        click.echo(f"{row.name:<{width}}  {human_size(row.size):>10}  {params:>13}  {version}")
    present = [r for r in rows if r.size is not None]
    total_size = sum(r.size or 0 for r in present)
    total_params = sum(r.parameters or 0 for r in present)
    click.echo(
        f"{'total':<{width}}  {human_size(total_size):>10}  {total_params:>13,}  "
        f"{len(present)} file(s)"
    )
    optional = {r.name: r.size is not None for r in rows if r.name in OPTIONAL_FILES}
    if all(optional.values()):
        click.echo("emotion matrices: present (emo_vector available)")
    else:
        absent = ", ".join(name for name, there in sorted(optional.items()) if not there)
        click.echo(f"emotion matrices: absent ({absent}; emo_vector unavailable)")


@main.command()
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    default=None,
    help="Destination folder (default: $INDEXTTS_MLX_WEIGHTS_DIR or "
    "~/.local/share/indextts-mlx/weights).",
)
@click.option(
    "--cache",
    "cache",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the official files are downloaded (default: ~/.cache/indextts-mlx/official); "
    "files already there are not fetched again.",
)
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
@click.option(
    "--no-convert", is_flag=True, help="Only fetch (and check) the files; convert nothing."
)
@click.option(
    "--delete-originals",
    is_flag=True,
    help="After a successful conversion, remove the downloaded files (~7 GB) from the cache.",
)
@_DTYPE_OPTION
@_handle_errors
def download(
    out: Path | None,
    cache: Path | None,
    force: bool,
    no_convert: bool,
    delete_originals: bool,
    dtype: str,
) -> None:
    """Fetch the official checkpoints from the Hugging Face Hub and convert them.

    \b
    Fetches IndexTeam/IndexTTS-2 (gpt.pth, s2mel.pth, bpe.model,
    wav2vec2bert_stats.pt, feat1.pt, feat2.pt), amphion/MaskGCT
    (semantic_codec/model.safetensors), funasr/campplus
    (campplus_cn_common.bin), facebook/w2v-bert-2.0 (model.safetensors)
    and nvidia/bigvgan_v2_22khz_80band_256x (bigvgan_generator.pt),
    then converts them into OUT (as `convert` does).
    Prints the total size first, then each file and the running total;
    a download cut mid-file is resumed (Range requests), each file is
    checked against the hub's SHA-256, and nothing is removed unless
    --delete-originals. HF_ENDPOINT, HF_HUB_OFFLINE=1 (use the cache
    only) and the other huggingface_hub settings apply.
    Needs: pip install 'indextts-weights[download]'

    \b
    Example:
      indextts-weights download --out ~/weights
    """
    import indextts_weights.download as downloading
    from indextts_weights.config import default_weights_dir

    target = out if out is not None else default_weights_dir()
    written = downloading.download(
        target,
        cache_dir=cache,
        force=force,
        convert_files=not no_convert,
        delete_originals=delete_originals,
        progress=_progress,
        dtype=dtype,
    )
    for name, path in written.items():
        click.echo(f"{name}: {path}")


if __name__ == "__main__":
    main()
