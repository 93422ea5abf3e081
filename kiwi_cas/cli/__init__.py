"""The ``kiwi-cas`` command line: a click group, one module per command, shared option decorators.

Commands stay thin: parse options, build typed configs, call the library, report. Every
:class:`~kiwi_cas.errors.KiwiError` (and any OS refusal) becomes one line on stderr and the
exit code of its kind, here and only here, so no user error ends in a traceback.
"""

from __future__ import annotations

import sys

import click

from kiwi_cas import __version__
from kiwi_cas.errors import EXIT_INTERRUPTED, KiwiError, SetupError, from_os_error


class KiwiGroup(click.Group):
    """A click group that turns kiwi_cas errors into one line and a documented exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KiwiError as exc:
            _fail(exc)
        except ModuleNotFoundError as exc:  # an optional part (training, LLaMA, the torch runtime)
            _fail(SetupError(f"this needs the Python package {exc.name!r}, which is not installed: "
                             "pip install 'kiwi_cas[train]' (torch, transformers, peft) or see the README",
                             "missing_package"))
        except OSError as exc:
            _fail(from_os_error(exc, "the operating system refused"))
        except KeyboardInterrupt:
            click.echo("interrupted: every output written so far is complete; rerun with --resume to go on", err=True)
            sys.exit(EXIT_INTERRUPTED)


def _fail(exc: KiwiError):
    click.echo(f"error: {exc}", err=True)
    sys.exit(exc.exit_code)


@click.group(cls=KiwiGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="kiwi-cas")
def main() -> None:
    """Clinical information extraction for UIMA XMI corpora.

    Adds Kiwi entities (problem, test, drug, treatment), 16 modifier types and
    entity-to-modifier relations to XMI files written by cTAKES, DKPro or INCEpTION,
    keeping every annotation that was there.

    \b
    Exit codes: 0 done; 1 some input files failed (see OUTDIR/errors.jsonl);
    2 usage error; 3 setup (missing model or package); 4 broker unreachable;
    5 the system refused a write (disk full, permissions); 130 interrupted.

    \b
    Example:
      kiwi-cas annotate notes/ -o annotated/
      kiwi-cas evaluate --gold gold/ --pred annotated/
    """


def _register() -> None:
    from kiwi_cas.cli import annotate, convert, evaluate, models, serve, train, view

    for module in (annotate, evaluate, train, convert, view, serve, models):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
