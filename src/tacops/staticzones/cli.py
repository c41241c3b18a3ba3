"""`tacops static-zones …`: sync, publish, verify, front."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import threading
from pathlib import Path
from typing import Any, Callable

from tacops.foundation.errors import ExitCode, InvalidInputError
from tacops.foundation.i18n import _, ngettext
from tacops.foundation.paths import lab_dir, reports_dir
from tacops.staticzones.config import StaticZonesConfig, load_config
from tacops.staticzones.publisher import TargetOutcome, worst_exit_code

DEFAULT_CONFIG = Path("/etc/tacops/static-zones.yaml")


def config_path(args: argparse.Namespace) -> Path:
    if args.config is not None:
        return args.config
    return Path(os.environ.get("TACOPS_STATIC_ZONES_CONFIG", str(DEFAULT_CONFIG)))


def ssh_command_for(source: str) -> list[str] | None:
    """SSH to a lab host goes through the lab's ssh_config and its route guard."""
    from tacops.staticzones.source import parse_location

    host, _path = parse_location(source)
    if host is None:
        return None
    command = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
    lab_config = lab_dir() / "ssh" / "ssh_config"
    if lab_config.is_file() and f"Host {host}\n" in lab_config.read_text(encoding="utf-8"):
        command[1:1] = ["-F", str(lab_config)]
    return [*command, host]


class _Progress:
    """One rich progress bar per target (and one for the origin's headers)."""

    def __init__(self, console) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console, transient=True)
        self.tasks: dict[str, Any] = {}
        self.total: int | None = None
        self.lock = threading.Lock()

    def __enter__(self) -> "_Progress":
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def stage(self, name: str, total: int | None) -> None:
        if total is not None:
            self.total = total

    def advance(self, key: str, count: int) -> None:
        with self.lock:
            if key not in self.tasks:
                label = _("origin headers") if key == "origin" else _("target {name}").format(name=key)
                self.tasks[key] = self.progress.add_task(label, total=self.total)
            self.progress.advance(self.tasks[key], count)


def _print_outcomes(outcomes: list[TargetOutcome], out, console) -> None:
    for outcome in outcomes:
        if outcome.ok:
            out.print("✓ " + _("{target}: {uploaded} uploaded ({size:.1f} MiB), {skipped} unchanged, index "
                               "published: {index}; {deleted} stale deleted, {kept} stale kept; {seconds:.1f} s")
                      .format(target=outcome.target, uploaded=len(outcome.uploaded),
                              size=outcome.bytes_uploaded / 2**20, skipped=outcome.skipped,
                              index=", ".join(outcome.index_published) or _("none changed"),
                              deleted=len(outcome.deleted), kept=outcome.stale_kept, seconds=outcome.seconds),
                      markup=False)
            if outcome.kept_published:
                count = len(outcome.kept_published)
                out.print("  " + ngettext(
                    "{count} file that a data job published (publish) was left as it is: {example}.",
                    "{count} files that a data job published (publish) were left as they are, such as {example}.",
                    count).format(count=count, example=outcome.kept_published[0]), markup=False)
        else:
            console.print("✗ " + _("{target}: FAILED after {uploaded} uploads: {error}").format(
                target=outcome.target, uploaded=len(outcome.uploaded), error=outcome.error), markup=False)
            if outcome.hint:
                console.print("  " + _("Hint") + f": {outcome.hint}", markup=False)


def _targets(config: StaticZonesConfig, names: list[str]):
    seen: list[str] = []
    for name in names:
        if name not in seen:
            seen.append(name)
    return [config.target(name) for name in seen]


def run(args: argparse.Namespace, *, out, console, print_json: Callable[[Any], None]) -> int:
    config = load_config(config_path(args))
    action = args.zones_action
    if action in ("sync", "publish"):
        from tacops.staticzones import operations

        targets = _targets(config, args.targets)
        with _Progress(console) as progress:
            if action == "sync":
                result = operations.sync(config, source=args.source, origin_url=args.origin, targets=targets,
                                         ssh_command=ssh_command_for(args.source), recheck=args.recheck,
                                         on_stage=progress.stage,
                                         on_progress=progress.advance)
            else:
                progress.stage("upload", None)
                result = operations.publish(config, directory=args.source, targets=targets, under=args.under,
                                            origin_url=args.origin, prune_under=args.prune_under,
                                            require_one_index=args.require_one_index, on_progress=progress.advance)
        if args.json:
            print_json(result.to_dict())
        for path, status in result.not_served[:20]:
            console.print("! " + _("{path}: the origin returns {status}, so it is not published.").format(
                path=path, status=status), markup=False)
        if len(result.not_served) > 20:
            console.print("! " + _("… and {count} more files the origin does not serve.").format(
                count=len(result.not_served) - 20), markup=False)
        _print_outcomes(result.outcomes, out if not args.json else console, console)
        return worst_exit_code(result.outcomes)

    if action == "verify":
        from tacops.staticzones import verify as verify_module

        paths = _verify_paths(config, args)
        report = verify_module.verify(origin_url=args.origin, front_url=args.front,
                                      paths=verify_module.url_paths(paths, config.verify.extra_paths),
                                      settings=config.verify, workers=config.concurrency)
        report_path = args.report or reports_dir() / dt.datetime.now(dt.timezone.utc).strftime(
            "static-zones-verify-%Y%m%dT%H%M%SZ.json")
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        if args.json:
            print_json(report.to_dict())
        (console if args.json else out).print(verify_module.render_summary(report), markup=False)
        console.print(_("Report: {path}").format(path=report_path), markup=False)
        return ExitCode.OK if report.identical else ExitCode.DIFFERENCES

    if action == "front":
        from tacops.staticzones import front as front_module
        from tacops.staticzones.publisher import published_state

        if config.front is None:
            raise InvalidInputError(_("The static-zones configuration has no front section."),
                                    hint=_("Add front: target, server_names, certificate and certificate_key."))
        target = config.target(config.front.target)
        state = published_state(config, target)
        paths = state["objects"]
        if not paths:
            raise InvalidInputError(_("Nothing is published on target {target} yet.").format(target=target.name),
                                    hint=_("Run tacops static-zones sync first: the front is built from what "
                                           "is published."))
        front_module.write(front_module.render(config.front, target, state), args.output)
        if args.json:
            print_json({"target": target.name, "output": str(args.output), "files": len(paths),
                        "directories": len(state.get("directories", {}))})
        console.print(_("nginx configuration for {count} files written to {path}; check it with nginx -t, then "
                        "reload nginx.").format(count=len(paths), path=args.output), markup=False)
        return ExitCode.OK
    return ExitCode.UNEXPECTED


def _verify_paths(config: StaticZonesConfig, args: argparse.Namespace) -> list[str]:
    from tacops.staticzones.publisher import published_paths
    from tacops.staticzones.source import list_files, stage

    if not args.source and not args.targets:
        raise InvalidInputError(_("verify needs the list of files: give --from DOCROOT, --to TARGET, or both."),
                                hint=_("--from reads the docroot; --to reads what is published on a target."))
    paths: set[str] = set()
    if args.source:
        with stage(args.source, ssh_command=ssh_command_for(args.source)) as tree:
            paths.update(path.relative_to(tree.root).as_posix() for path in list_files(tree.root))
    for target in _targets(config, args.targets):
        paths.update(published_paths(config, target))
    return sorted(paths)
