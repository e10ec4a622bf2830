"""The error boundary every command of ours runs in (``indextts-weights``, ``indextts-tts``).

* An expected error (bad input, missing or broken files) prints one ``error: ...`` line
  on stderr and exits with code 2.
* Anything else is a bug: one line that says so and how to report it, exit 2.
* ``--debug`` lets both propagate with their traceback.
* A warning prints once as one plain ``warning: ...`` line (no file path, no source line).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

import click

__all__ = ["error_boundary", "one_line"]


def one_line(error: BaseException | str) -> str:
    """A message on one line (multi-line messages joined with ``"; "``)."""
    parts = [line.strip(" -") for line in str(error).splitlines() if line.strip(" -")]
    text = "; ".join(parts).replace(":;", ":")
    if not text and isinstance(error, BaseException):
        return type(error).__name__
    return text


@contextmanager
def _plain_warnings() -> Iterator[None]:
    """Each distinct warning message once, as ``warning: message`` on stderr."""
    seen: set[str] = set()

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        text = one_line(str(message))
        if text not in seen:
            seen.add(text)
            click.echo(f"warning: {text}", err=True)

    with warnings.catch_warnings():
        warnings.simplefilter("always")  # ``seen`` decides, not the per-location registry
        warnings.simplefilter("ignore", DeprecationWarning)  # third-party noise, not ours
        warnings.showwarning = show
        yield


@contextmanager
def error_boundary(
    program: str, *, debug: bool, expected: tuple[type[BaseException], ...]
) -> Iterator[None]:
    """Run a command's body: ``expected`` errors become ``error: <message>``, others
    ``error: unexpected <type>: <message> (this is a bug ...)``, both exit 2; with
    ``debug`` both propagate. Click's own exceptions (usage, ``Exit``) pass through."""
    with _plain_warnings():
        try:
            yield
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if debug:
                raise
            _report(program, exc, expected)
            sys.exit(2)


def _report(program: str, exc: Exception, expected: tuple[type[BaseException], ...]) -> None:
    if isinstance(exc, expected):
        click.echo(f"error: {one_line(exc)}", err=True)
        return
    click.echo(
        f"error: unexpected {type(exc).__name__}: {one_line(exc)} (this is a bug: please "
        f"report it with the traceback that `{program} --debug ...` prints)",
        err=True,
    )
