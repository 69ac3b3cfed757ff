"""The `tunesmith` command: subcommands → library functions.

A UserError prints one line (`error: ...`) and exits 2; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from tunesmith.errors import UserError

app = typer.Typer(
    help="Fine-tune pretrained language models on your own data.\n\nExample: tunesmith train examples/demo/config.yaml",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect configs.", no_args_is_help=True)
app.add_typer(config_app, name="config")
DEBUG = {"on": False}


@app.callback()
def _root(debug: Annotated[bool, typer.Option("--debug", help="show tracebacks for errors")] = False) -> None:
    DEBUG["on"] = debug


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="run config (YAML)")],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="dotted overrides, e.g. train.lr=1e-4")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="continue from the newest complete checkpoint")
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace an existing run folder")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress output")] = False,
) -> None:
    """Fine-tune a model as CONFIG says.

    Example: tunesmith train examples/demo/config.yaml train.max_steps=10 output.name=try1
    """
    from tunesmith.pipeline import train as run_train

    result = run_train(config, overrides or [], resume=resume, overwrite=overwrite, quiet=quiet)
    typer.echo(f"run folder: {result.run_dir}")


@config_app.command("show")
def config_show(
    config: Annotated[Path, typer.Argument(help="run config (YAML)")],
    overrides: Annotated[list[str] | None, typer.Argument(help="dotted overrides")] = None,
) -> None:
    """Print the fully resolved config, defaults included.

    Example: tunesmith config show examples/demo/config.yaml method.r=8
    """
    from tunesmith.config import dump_config, load_config

    typer.echo(dump_config(load_config(config, overrides or [])), nl=False)


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="a run folder (runs/NAME)")],
    out: Annotated[Path, typer.Option("--out", help="folder to write the model to")],
    merge: Annotated[bool, typer.Option("--merge", help="fold the adapter into the base weights")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace a non-empty --out folder")] = False,
) -> None:
    """Write the run's model as a standard transformers folder (merged where the method allows; otherwise
    the base model plus the method's files in OUT/method).

    Example: tunesmith export runs/demo --merge --out merged-model
    """
    from tunesmith.export.merge import export_model

    typer.echo(export_model(run_dir, out, merge, overwrite).note)


@app.command("eval")
def eval_command(
    runs: Annotated[list[Path], typer.Argument(help="run folders; results of one method share one base model")],
    data: Annotated[Path, typer.Option("--data", help="a data file in any format tunesmith reads")],
    base: Annotated[bool, typer.Option("--base/--no-base", help="also evaluate the untuned base model")] = True,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the results to this JSON file")] = None,
) -> None:
    """Eval loss and perplexity of the base model and each run on one data file.

    Example: tunesmith eval runs/fraud-lora runs/fraud-ia3 --data examples/demo/eval.jsonl --json eval.json
    """
    from tunesmith.evaluate.runs import evaluate_runs
    from tunesmith.pipeline import quiet_libraries
    from tunesmith.runs.folder import atomic_write_json

    quiet_libraries()
    results = evaluate_runs(list(runs), data, base)
    print_eval_table(results)
    if json_out is not None:
        atomic_write_json(json_out, {"data": str(data), "results": results})


def print_eval_table(results: dict[str, dict[str, float]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("model", "eval loss", "perplexity", "vs base", "tokens")
    base = results.get("base", {}).get("eval_loss")
    for name, r in results.items():
        delta = "" if base is None or name == "base" else f"{r['eval_loss'] - base:+.4f}"
        table.add_row(name, f"{r['eval_loss']:.4f}", f"{r['perplexity']:.3f}", delta, f"{r['eval_tokens']:.0f}")
    Console().print(table)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    try:
        app(args=args, standalone_mode=False)
    except UserError as exc:
        if DEBUG["on"] or "--debug" in args:
            raise
        typer.echo(f"error: {exc.message}", err=True)
        raise SystemExit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("interrupted: the newest complete checkpoint can be resumed with --resume", err=True)
        raise SystemExit(130) from None
    except Exception as exc:
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            raise SystemExit(2) from None
        if isinstance(exc, click.exceptions.Abort):
            raise SystemExit(1) from None
        raise
