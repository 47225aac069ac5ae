"""The `oomfuzz` command line: thin commands that parse, call one library function and render."""

from __future__ import annotations

import sys

import click

from .common import UserError
from . import bench as _bench
from . import engine_cmds as _engine_cmds
from . import farm as _farm
from . import fuzz as _fuzz
from . import seed as _seed
from . import triage as _triage


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="oomfuzz")
def cli() -> None:
    """Find races in the Linux OOM killer, oom_reaper and exit path with a deterministic model."""


cli.add_command(_engine_cmds.variants)
cli.add_command(_engine_cmds.replay)
cli.add_command(_engine_cmds.explore)
cli.add_command(_bench.bench)
cli.add_command(_fuzz.fuzz)
cli.add_command(_triage.triage)
cli.add_command(_farm.farm)
cli.add_command(_seed.seed)


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit status 2."""
    try:
        cli.main(standalone_mode=False)
    except UserError as exc:
        click.echo(f"oomfuzz: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("oomfuzz: aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if exc.exit_code == 1 else exc.exit_code)
    except KeyboardInterrupt:
        click.echo("oomfuzz: interrupted", err=True)
        sys.exit(130)
