"""The command-line interface: the only home of typer, rich, prompts, exit codes.

``main()`` builds only what the invoked command needs: `confvault age …`
(single files, often large and in pipelines) starts without importing the
vault, so its start-up cost stays small next to the work.
"""

from __future__ import annotations

import sys
from typing import Any


def _age_only_app() -> Any:
    import typer

    from confvault.cli import age
    from confvault.cli._errors import EXIT_STATUS, ConfvaultGroup

    app = typer.Typer(
        cls=ConfvaultGroup,
        name="confvault",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
        epilog=EXIT_STATUS,
    )
    app.add_typer(age.app, name="age")
    return app


def main() -> None:
    """Console-script entry point."""
    if len(sys.argv) > 1 and sys.argv[1] == "age":
        _age_only_app()(prog_name="confvault")
        return
    from confvault.cli._app import app

    app(prog_name="confvault")


def __getattr__(name: str) -> Any:
    if name == "app":  # the full app, for tests and embedding
        from confvault.cli._app import app

        return app
    raise AttributeError(name)
