"""``indextts-weights``: convert the official IndexTTS-2 checkpoints to MLX NPZ files."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from indextts_weights.errors import WeightsError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks on errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Manage IndexTTS-MLX weights (torch is never needed)."""
    ctx.obj = {"debug": debug}


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
    required=True,
    type=click.Path(path_type=Path),
    help="Destination folder for the NPZ files.",
)
@click.option("--only", multiple=True, help="Convert just this file (repeatable), e.g. campplus.")
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
@click.pass_context
def convert(ctx: click.Context, src: Path, out: Path, only: tuple[str, ...], force: bool) -> None:
    """Convert official checkpoints found under SRC into OUT.

    \b
    Looks for: campplus_cn_common.bin, semantic_codec/model.safetensors,
    w2v-bert-2.0/model.safetensors, wav2vec2bert_stats.pt, feat1.pt, feat2.pt, bpe.model.
    """
    from indextts_weights.convert import convert as run_convert

    try:
        written = run_convert(
            src,
            out,
            only=only or None,
            force=force,
            progress=lambda line: click.echo(line, err=True),
        )
    except WeightsError as exc:
        if ctx.obj["debug"]:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if not written:
        click.echo(f"error: no official checkpoint found under {src}", err=True)
        sys.exit(2)
    for name, path in written.items():
        click.echo(f"{name}: {path}")
