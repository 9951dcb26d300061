"""``manage.py strategy``: list, show, check, save and export saved strategies."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backtester.library.checking import SourceRefused
from backtester.library.files import source_read
from backtester.library.selectors import (
    UnknownStrategy,
    strategies_visible,
    strategy_get,
    version_get,
)
from backtester.library.services import StrategyError, strategy_save
from strategies.registry import STRATEGIES
from strategies.rules.errors import RuleError
from strategies.rules.program import compile_program


def _one_line(text: str) -> str:
    """Return a message on one line (a CommandError prints as one)."""
    return " ".join(str(text).split())


class Command(BaseCommand):
    help = "Manage strategies written in the rule language (the web editor's library)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", metavar="ACTION")
        sub.required = True
        sub.add_parser("list", help="List built-in, registered and saved strategies.")
        show = sub.add_parser("show", help="Show a saved strategy and its versions.")
        show.add_argument("key", help="The strategy's key.")
        check = sub.add_parser("check", help="Check a rule file without saving it.")
        check.add_argument("file", help="Path of the rule file.")
        save = sub.add_parser("save", help="Save a rule file as a new version.")
        save.add_argument("key", help="The strategy's key (a new one creates it).")
        save.add_argument("file", help="Path of the rule file.")
        save.add_argument("--name", help="Display name.")
        save.add_argument("--description", help="One-line description.")
        save.add_argument(
            "--shared",
            action="store_true",
            default=None,
            help="Let every user see and run it.",
        )
        export = sub.add_parser("export", help="Print a version's source.")
        export.add_argument("key", help="The strategy's key.")
        export.add_argument(
            "--version", type=int, help="Version number (default: the latest)."
        )

    def handle(self, *args, **options) -> None:
        action = options["action"]
        try:
            getattr(self, f"_{action}")(options)
        except (UnknownStrategy, StrategyError, SourceRefused, RuleError) as exc:
            raise CommandError(
                _one_line(getattr(exc, "message", None) or exc)
            ) from None

    def _list(self, options: dict) -> None:
        for key, spec in STRATEGIES.items():
            self.stdout.write(f"{key:<24} built-in   {spec.name}")
        for strategy in strategies_visible(None, trusted=True).select_related("owner"):
            latest = strategy.versions.order_by("-number").first()
            owner = strategy.owner.get_username() if strategy.owner else "-"
            scope = "shared" if strategy.shared else "private"
            self.stdout.write(
                f"{strategy.key:<24} v{latest.number if latest else 0:<3} {scope:<7} "
                f"{owner:<12} {strategy.label}"
            )

    def _show(self, options: dict) -> None:
        strategy = strategy_get(options["key"], user=None, trusted=True)
        latest = version_get(strategy)
        self.stdout.write(f"{strategy.key}: {strategy.label}")
        if strategy.description:
            self.stdout.write(strategy.description)
        owner = strategy.owner.get_username() if strategy.owner else "-"
        self.stdout.write(
            f"owner {owner}, {'shared' if strategy.shared else 'private'}"
        )
        for version in strategy.versions.order_by("number"):
            self.stdout.write(
                f"v{version.number}  {version.created_at:%Y-%m-%d %H:%M}  "
                f"sha256 {version.sha256[:16]}"
            )
        self.stdout.write("")
        self.stdout.write(
            latest.source, ending="" if latest.source.endswith("\n") else "\n"
        )

    def _check(self, options: dict) -> None:
        program = compile_program(source_read(options["file"]))
        params = ", ".join(
            f"{p.name}={p.default:g} ({p.min:g}..{p.max:g})" for p in program.params
        )
        self.stdout.write(
            f"ok: trades {' or '.join(program.directions)}; "
            f"parameters: {params or 'none'}"
        )

    def _save(self, options: dict) -> None:
        version = strategy_save(
            key=options["key"],
            source=source_read(options["file"]),
            trusted=True,
            name=options["name"],
            description=options["description"],
            shared=options["shared"],
        )
        self.stdout.write(
            f"saved {version.strategy.key} version {version.number} "
            f"(sha256 {version.sha256[:16]})"
        )

    def _export(self, options: dict) -> None:
        strategy = strategy_get(options["key"], user=None, trusted=True)
        version = version_get(strategy, options["version"])
        self.stdout.write(version.source, ending="")
