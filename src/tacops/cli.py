"""The `tacops` command line: the only place that prints and chooses exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Sequence

from rich.console import Console
from rich.markup import escape

from tacops import __version__
from tacops.foundation.errors import EXIT_CODE_TABLE, ExitCode, TacopsError
from tacops.foundation.i18n import _

# soft_wrap: long messages stay on one line in pipes and CI logs instead of wrapping at 80 columns.
console = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


def _exit_code_epilog() -> str:
    lines = [_("Exit codes:")]
    lines += [f"  {int(code):>3}  {_(text)}" for code, text in EXIT_CODE_TABLE]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    epilog = _exit_code_epilog()
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="tacops", formatter_class=formatter, epilog=epilog,
        description=_("Back up, put to sleep, restore, wake and verify the TousAntiCovid contact-tracing "
                      "back end; run restore drills on the built-in lab."))
    parser.add_argument("--version", action="version", version=f"tacops {__version__}",
                        help=_("print the version of tacops and exit"))
    parser.add_argument("--description", metavar="FILE",
                        help=_("description of the CT system (YAML); default: the one shipped with tacops"))
    parser.add_argument("--profile", default="lab", help=_("profile of the description to act on (default: lab)"))
    parser.add_argument("--operator-secret-file", metavar="FILE", type=Path,
                        help=_("file holding the operator secret that opens the key custody "
                               "(default: $TACOPS_OPERATOR_SECRET_FILE or /root/.config/tacops/operator-secret)"))
    parser.add_argument("-v", "--verbose", action="count", default=0, help=_("more log output (repeatable)"))
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_text, description=help_text, epilog=epilog,
                                   formatter_class=formatter)

    lab = command("lab", _("manage the built-in lab"))
    lab.add_argument("action", choices=["up", "down", "status"],
                     help=_("up: boot the lab and the demonstration CT system; down: remove everything; "
                            "status: show each host"))

    inventory = command("inventory", _("write the Ansible inventory generated from the description"))
    inventory.add_argument("--output", type=Path, help=_("file to write (default: print on standard output)"))

    backup = command("backup", _("back up every CT host onto every backup host"))
    backup.add_argument("--dry-run", action="store_true", help=_("print what would be done and touch nothing"))
    backup.add_argument("--keep-last", type=int, metavar="N",
                        help=_("retention: keep the N newest complete backup sets (default: 7)"))
    backup.add_argument("--keep-within-days", type=int, metavar="DAYS",
                        help=_("retention: also keep every set younger than DAYS days (default: 30)"))

    backups = command("backups", _("inspect the backup sets"))
    backups.add_argument("action", choices=["list"])
    backups.add_argument("--max-age", type=_positive_hours, metavar="HOURS",
                         help=_("exit with code 8 when the newest verified set is older than HOURS"))
    backups.add_argument("--json", action="store_true", help=_("print JSON"))

    command("sleep", _("verify every replica, then stop the CT system (on the lab: destroy the CT hosts)"))

    restore = command("restore", _("restore the CT system onto blank hosts from the first healthy replica"))
    restore.add_argument("--mode", choices=["operation", "sleep"], default="operation",
                         help=_("operation (default): units enabled and running; sleep: installed, disabled and "
                                "stopped"))
    restore.add_argument("--set", dest="set_id", metavar="SET_ID", help=_("backup set to restore (default: newest)"))
    restore.add_argument("--host", action="append", help=_("restore only this host (repeatable)"))
    restore.add_argument("--role", action="append", help=_("restore only the hosts of this role (repeatable)"))
    restore.add_argument("--dry-run", action="store_true", help=_("print what would be done and touch nothing"))

    wake = command("wake", _("enable and start the units of a system restored in sleep mode"))
    wake.add_argument("--host", action="append", help=_("wake only this host (repeatable)"))

    verify = command("verify", _("run the identity checks of a backup set's fingerprints against the hosts"))
    verify.add_argument("--mode", choices=["operation", "sleep"], default="operation",
                        help=_("state the checks expect (default: operation)"))
    verify.add_argument("--set", dest="set_id", metavar="SET_ID", help=_("backup set (default: newest)"))
    verify.add_argument("--host", action="append", help=_("check only this host (repeatable)"))

    drill = command("drill", _("run a whole restore drill on the built-in lab and write its report"))
    drill.add_argument("--report-dir", type=Path, help=_("where to write the report (default: "
                                                         "/var/lib/tacops/reports/<time>)"))
    drill.add_argument("--mode", choices=["sleep", "operation"], default="sleep",
                       help=_("restore mode of the drill; sleep also tests wake (default: sleep)"))
    drill.add_argument("--fresh-lab", action="store_true", help=_("rebuild the lab before the drill"))

    preview = command("preview", _("show what a change of the Pulumi programs would do to a platform: the real "
                                   "pulumi preview when the pulumi CLI is installed, else an offline plan"))
    preview.add_argument("--stack", required=True, choices=["outscale", "flexible-engine"],
                         help=_("stack (platform) to preview"))
    preview.add_argument("--update", action="store_true",
                         help=_("offline plan: rewrite the committed snapshot infra/plans/<stack>.json"))
    preview.add_argument("--json", action="store_true", help=_("offline plan: print the diff as JSON"))
    preview.add_argument("--manifests", metavar="DIR", type=Path,
                         help=_("offline plan: write the Kubernetes manifests into DIR after validating them"))
    preview.add_argument("--kubernetes-version", default="1.29", metavar="VERSION",
                         help=_("Kubernetes version whose schemas validate the manifests (default: 1.29)"))
    preview.add_argument("--policy-pack", metavar="DIR", type=Path,
                         help=_("also run this policy pack (offline: through the tacops harness)"))
    preview.add_argument("--offline", action="store_true",
                         help=_("plan offline even when the pulumi CLI is installed"))

    zones_epilog = "\n".join([_("Exit codes:")] + [f"  {code:>3}  {text}" for code, text in (
        (0, _("success (verify: identical)")),
        (1, _("unexpected error (a bug: report it with the log)")),
        (2, _("invalid option, configuration or input; the target concerned received nothing")),
        (3, _("verify: differences were found, or no pinned key")),
        (4, _("the origin, the front, a target or the docroot's host is unreachable")),
        (5, _("a target stored a file or a header differently; its index was not published")),
        (6, _("credentials of a target are missing or were rejected")),
        (130, _("interrupted (Ctrl-C)")))])

    def zones_command(name: str, help_text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help_text, description=help_text, epilog=zones_epilog,
                                   formatter_class=formatter)

    zones = zones_command("static-zones", _("move the static zones from Apache to object-storage buckets and prove "
                                      "that every URL returns the same response"))
    zones.add_argument("--config", type=Path, metavar="FILE",
                       help=_("static-zones configuration: targets, index patterns, retention, front, pins "
                              "(default: $TACOPS_STATIC_ZONES_CONFIG or /etc/tacops/static-zones.yaml)"))
    zones.add_argument("--json", action="store_true", help=_("print the result as JSON on standard output"))
    actions = zones.add_subparsers(dest="zones_action", metavar="ACTION")
    actions.required = True

    def action(name: str, help_text: str) -> argparse.ArgumentParser:
        return actions.add_parser(name, help=help_text, description=help_text, epilog=zones_epilog,
                                  formatter_class=formatter)

    sync = action("sync", _("upload the docroot to the targets with the headers the origin returns, index files "
                            "last, then delete stale files after the retention window"))
    sync.add_argument("--from", dest="source", required=True, metavar="DOCROOT",
                      help=_("directory Apache serves: a local path or HOST:/path read over SSH"))
    sync.add_argument("--origin", required=True, metavar="URL", help=_("URL of the origin that serves DOCROOT"))
    sync.add_argument("--to", dest="targets", action="append", required=True, metavar="TARGET",
                      help=_("target named in the configuration (repeatable)"))
    sync.add_argument("--recheck", action="store_true",
                      help=_("read every stored object back (hash, headers) instead of trusting the state "
                             "of the last run; repairs objects changed in the bucket"))
    publish = action("publish", _("publish the files an upstream job produced (news, key figures, blacklist, CLEA "
                                  "clusters) through the same path, index files last"))
    publish.add_argument("--from", dest="source", required=True, type=Path, metavar="DIR",
                         help=_("directory holding the new files"))
    publish.add_argument("--to", dest="targets", action="append", required=True, metavar="TARGET",
                         help=_("target named in the configuration (repeatable)"))
    publish.add_argument("--under", default="", metavar="PATH",
                         help=_("path in the zone where DIR's files go, such as v1 (default: the zone's root)"))
    publish.add_argument("--origin", metavar="URL",
                         help=_("take the headers from this origin; without it, from the headers rules of the "
                                "configuration"))
    publish.add_argument("--prune-under", action="append", default=[], metavar="PATH",
                         help=_("files under PATH that this set leaves out become stale and are deleted after the "
                                "retention window (repeatable)"))
    publish.add_argument("--require-one-index", action="store_true",
                         help=_("reject the set unless it contains exactly one index file (CLEA's rule)"))
    zverify = action("verify", _("compare the origin and the front URL by URL and check the front's TLS pins"))
    zverify.add_argument("--origin", required=True, metavar="URL", help=_("URL of the origin (Apache)"))
    zverify.add_argument("--front", required=True, metavar="URL", help=_("URL of the web front of the bucket"))
    zverify.add_argument("--from", dest="source", metavar="DOCROOT",
                         help=_("take the URLs from this docroot (local or HOST:/path)"))
    zverify.add_argument("--to", dest="targets", action="append", default=[], metavar="TARGET",
                         help=_("also take the URLs from what is published on this target (repeatable)"))
    zverify.add_argument("--report", type=Path, metavar="FILE",
                         help=_("where to write the JSON report (default: /var/lib/tacops/reports/)"))
    front = action("front", _("write the nginx configuration of the web front from what is published"))
    front.add_argument("--output", type=Path, required=True, metavar="FILE", help=_("file to write"))

    custody = command("custody", _("key custody"))
    custody.add_argument("action", choices=["export"], help=_("export: write the key material for a plain "
                                                               "ansible-playbook run into a 0600 file"))
    custody.add_argument("--to", type=Path, required=True, help=_("file to create (mode 0600)"))
    return parser


def _positive_hours(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(_("invalid number of hours: {value!r}").format(value=text)) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(_("the number of hours must be more than 0, not {value}").format(value=text))
    return value


def _print_json(value: Any) -> None:
    """Print JSON for tools: plain text, never wrapped or colored."""
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def _to_jsonable(value: Any) -> Any:
    if is_dataclass(value):
        return asdict(value)
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value


class _PlaybookProgress:
    """A progress bar fed by ansible-runner events: one step per host and task."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed} "),
                                 TimeElapsedColumn(), console=console, transient=True)
        self.task_id = None

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        data = event.get("event_data", {})
        if kind == "playbook_on_play_start":
            if self.task_id is None:
                self.progress.start()
                self.task_id = self.progress.add_task(data.get("play", ""), total=None)
            else:
                self.progress.update(self.task_id, description=data.get("play", ""))
        elif kind == "playbook_on_task_start" and self.task_id is not None:
            self.progress.update(self.task_id, description=f"{data.get('play', '')}: {data.get('task', '')}")
        elif kind in ("runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable"):
            if self.task_id is not None:
                self.progress.advance(self.task_id)
        elif kind == "playbook_on_stats":
            self.stop()

    def stop(self) -> None:
        if self.task_id is not None:
            self.progress.stop()
            self.task_id = None


def _context(args: argparse.Namespace, bar: _PlaybookProgress):
    from tacops.orchestration.context import Context

    def progress(message: str) -> None:
        bar.stop()
        console.print(f"[bold]›[/bold] {message}")

    return Context.load(args.description, profile=args.profile, operator_secret_file=args.operator_secret_file,
                        progress=progress, on_event=bar)


def _run(args: argparse.Namespace) -> int:
    if args.command == "static-zones":
        from tacops.staticzones.cli import run as run_static_zones

        return run_static_zones(args, out=out, console=console, print_json=_print_json)
    from tacops.orchestration import operations

    bar = _PlaybookProgress()
    ctx = _context(args, bar)
    try:
        return _dispatch(args, ctx, operations)
    finally:
        bar.stop()


def _locked(ctx, args):
    from tacops.foundation.lock import system_lock
    from tacops.foundation.paths import state_dir

    return system_lock(state_dir() / "locks", f"{ctx.description.system}-{ctx.profile}", args.command)


def _dispatch(args: argparse.Namespace, ctx, operations) -> int:
    if args.command == "inventory":
        from tacops.foundation.inventory import build_inventory
        import yaml

        text = yaml.safe_dump(build_inventory(ctx.description, profile=ctx.profile, ssh_config=ctx.ssh_config,
                                              description_path=ctx.description_path), sort_keys=False)
        if args.output:
            args.output.write_text(text, encoding="utf-8")
        else:
            out.print(text, end="", markup=False)
        return ExitCode.OK

    if args.command == "lab" and args.action == "status":
        status = ctx.lab.status()
        if not any(item.running for item in status.values()):
            console.print(_("The lab is down: run `tacops lab up`."))
        headers = (_("host"), _("address"), _("role"), _("state"), "SSH", _("root"))
        out.print("{:<16} {:<15} {:<16} {:<8} {:<8} {}".format(*headers), markup=False)
        for host, item in status.items():
            state = _("running") if item.running else _("stopped")
            ssh = _("SSH ok") if item.ssh_ok else _("no SSH")
            out.print(f"{host:<16} {item.address:<15} {item.role:<16} {state:<8} {ssh:<8} {item.root}")
        return ExitCode.OK if status and all(item.running for item in status.values()) else ExitCode.UNREACHABLE

    if args.command == "backups":
        manifests, source = operations.list_backup_sets(ctx)
        if args.json:
            _print_json([m.model_dump(mode="json") for m in manifests])
        else:
            import datetime as dt

            out.print(_("Backup sets (read from {host}):").format(host=source))
            statuses = {"complete": _("complete"), "incomplete": _("incomplete")}
            now = dt.datetime.now(dt.timezone.utc)
            for manifest in sorted(manifests, key=lambda m: m.set_id):
                age = str(now - (manifest.finished or manifest.time)).split(".")[0]
                stored = sum(host.bytes_added for host in manifest.hosts.values()) / 2**20
                verified = _("verified on {replicas}").format(replicas=", ".join(manifest.replicas)) \
                    if manifest.is_verified else _("NOT verified")
                out.print("  " + _("{set_id}  {status}, {age} old, {hosts} hosts, {stored:.1f} MiB stored, "
                                   "{verified}").format(set_id=manifest.set_id,
                                                        status=statuses.get(manifest.status, manifest.status),
                                                        age=age, hosts=len(manifest.hosts), stored=stored,
                                                        verified=verified), markup=False)
        if args.max_age is not None:
            operations.check_max_age(manifests, args.max_age)
        return ExitCode.OK

    if args.command == "backup" and args.dry_run:
        plan = operations.plan_backup(ctx)
        out.print(_("Dry run: nothing is touched."))
        _print_json(_to_jsonable(plan))
        return ExitCode.OK

    if args.command == "restore" and args.dry_run:
        plan = operations.plan_restore(ctx, mode=args.mode, set_id=args.set_id, hosts=args.host, roles=args.role)
        out.print(_("Dry run: nothing is touched."))
        _print_json(plan)
        return ExitCode.OK

    if args.command == "preview":
        return _preview(args)

    if args.command == "custody":
        material, host = ctx.read_key_material()
        descriptor = os.open(args.to, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        import yaml

        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            yaml.safe_dump({"tacops_repository_password": material.repository_password.get_secret_value(),
                            "tacops_hsm_pin": material.hsm_pin.get_secret_value(),
                            "tacops_hsm_so_pin": material.hsm_so_pin.get_secret_value()}, handle)
        console.print(_("Key material from {host} written to {path} (mode 0600); delete it after use.").format(
            host=host, path=args.to))
        return ExitCode.OK

    with _locked(ctx, args):
        if args.command == "lab":
            if args.action == "up":
                result = operations.lab_up(ctx)
                console.print(_("Lab up in {seconds} s; operator secret: {path}").format(
                    seconds=result["seconds"], path=result["operator_secret_file"]))
            else:
                ctx.lab.down()
                console.print(_("Lab down: no host, mount, namespace or link of the lab is left."))
            return ExitCode.OK
        if args.command == "backup":
            outcome = operations.backup(ctx, keep_last=args.keep_last, keep_within_days=args.keep_within_days)
            console.print(_("Backup set {set_id} written and verified on every replica in {seconds} s.").format(
                set_id=outcome.set_id, seconds=outcome.seconds))
            return ExitCode.OK
        if args.command == "sleep":
            result = operations.sleep(ctx)
            console.print(_("The CT system sleeps ({seconds} s).").format(seconds=result["seconds"]))
            return ExitCode.OK
        if args.command == "restore":
            outcome = operations.restore(ctx, mode=args.mode, set_id=args.set_id, hosts=args.host, roles=args.role)
            console.print(_("Backup set {set_id} restored from {replica} in {mode} mode in {seconds} s.").format(
                set_id=outcome.set_id, replica=outcome.replica, mode=outcome.mode, seconds=outcome.seconds))
            return ExitCode.OK
        if args.command == "wake":
            result = operations.wake(ctx, hosts=args.host)
            console.print(_("The CT system is awake ({seconds} s).").format(seconds=result["seconds"]))
            return ExitCode.OK
        if args.command == "verify":
            result = operations.verify(ctx, mode=args.mode, set_id=args.set_id, hosts=args.host)
            failed = [check for check in result.checks if check.outcome in ("failed", "error")]
            for check in failed:
                console.print(f"[red]✗[/red] {check.host} {check.check}")
                for difference in check.differences:
                    item = difference.get("item")
                    if difference.get("attribute"):
                        item = f"{item} ({difference['attribute']})"
                    console.print("    " + _("{item}: expected {expected!r}, found {found!r}").format(
                        item=item, expected=difference.get("expected"), found=difference.get("found")), markup=False)
            console.print(_("{passed} checks passed, {failed} failed.").format(
                passed=len(result.checks) - len(failed), failed=len(failed)))
            return ExitCode.DIFFERENCES if failed else ExitCode.OK
        if args.command == "drill":
            import datetime as dt
            from tacops.foundation.paths import reports_dir
            from tacops.orchestration.drill import run_drill
            from tacops.report import render_summary

            report_dir = args.report_dir or reports_dir() / dt.datetime.now(dt.timezone.utc).strftime(
                "drill-%Y%m%dT%H%M%SZ")
            try:
                report = run_drill(ctx, report_dir=report_dir, restore_mode=args.mode, fresh_lab=args.fresh_lab)
            finally:
                console.print(_("Report: {path}").format(path=report_dir))
            out.print(render_summary(report), markup=False)
            return ExitCode.OK if report.result == "identical" else ExitCode.DIFFERENCES
    return ExitCode.UNEXPECTED


def _preview(args: argparse.Namespace) -> int:
    from tacops.infra import preview

    root = preview.find_project_root(Path.cwd())
    pulumi = None if args.offline else preview.pulumi_cli()
    if pulumi is not None:
        return preview.real_preview(pulumi, args.stack, root, policy_pack=args.policy_pack,
                                    on_line=lambda line: out.print(line, markup=False, highlight=False))

    console.print(_("OFFLINE PLAN (Pulumi mocks; no provider was called)"))
    stack_config = preview.load_stack_config(root, args.stack)
    result = preview.offline_preview(stack_config, update=args.update)
    if args.json:
        _print_json(result.diff.to_dict())
    else:
        symbols = {"create": "[green]+[/green]", "update": "[yellow]~[/yellow]", "delete": "[red]-[/red]"}
        for change in result.diff.changes:
            out.print(f"{symbols[change.action]} {escape(change.urn)}", soft_wrap=True)
            for item in change.changes:
                out.print(f"    {item.path}: {json.dumps(item.old)} → {json.dumps(item.new)}", markup=False,
                          soft_wrap=True)
        out.print(result.diff.summary(), markup=False)
    if result.snapshot_found:
        console.print(_("Compared with the committed plan {path}.").format(path=result.snapshot_path))
    else:
        console.print(_("No snapshot at {path}: every resource counts as created.").format(path=result.snapshot_path))
    if result.updated:
        console.print(_("Snapshot written: {path}").format(path=result.snapshot_path))

    failed = False
    if args.manifests is not None or args.stack == "flexible-engine":
        from tacops.infra.manifests import render_manifests, validate_manifests, write_manifests

        manifests = render_manifests(result.plan)
        failures = validate_manifests(manifests, args.kubernetes_version)
        for failure in failures:
            console.print(f"[red]✗[/red] {escape(str(failure))}", soft_wrap=True)
        console.print(_("{count} Kubernetes manifests, {failed} invalid (Kubernetes {version}, strict).").format(
            count=len(manifests), failed=len(failures), version=args.kubernetes_version))
        failed = bool(failures)
        if args.manifests is not None:
            write_manifests(manifests, args.manifests)
            console.print(_("Manifests written to {path}").format(path=args.manifests))
    if args.policy_pack is not None:
        from tacops.infra.policy_harness import run_policy_pack

        report = run_policy_pack(result.plan, args.policy_pack, stack_config=stack_config.config,
                                 secret_keys=stack_config.secret_keys)
        for diagnostic in report.diagnostics:
            console.print(f"[red]✗[/red] {escape(diagnostic.message.splitlines()[-1])}", soft_wrap=True)
        console.print(_("Policy pack {pack}: {count} violations.").format(pack=report.pack,
                                                                           count=len(report.diagnostics)))
        failed = failed or bool(report.mandatory_violations)
    if failed:
        return ExitCode.INVALID_INPUT
    return result.exit_code


def _bind_argparse_catalog() -> None:
    """Make argparse's own texts (usage, errors) follow the locale too.

    argparse looks its texts up in gettext's global domain, so that domain is pointed at
    the catalog tacops ships for argparse.
    """
    import gettext
    from importlib import resources

    gettext.bindtextdomain("argparse", str(resources.files("tacops") / "locale"))
    gettext.textdomain("argparse")


def main(argv: Sequence[str] | None = None) -> int:
    _bind_argparse_catalog()
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2),
                        format="%(levelname)s %(name)s: %(message)s" if args.verbose else "%(levelname)s: %(message)s")
    try:
        return int(_run(args))
    except TacopsError as error:
        label = _("Error")
        console.print(f"[red]{label}:[/red] {escape(error.message)}", markup=True, highlight=False)
        if error.hint:
            hint_label = _("Hint")
            console.print(f"{hint_label}: {error.hint}", markup=False)
        return int(error.exit_code)
    except KeyboardInterrupt:
        console.print(_("Interrupted."))
        return int(ExitCode.INTERRUPTED)
    except Exception as error:  # noqa: BLE001 - a bug: report it with its traceback at -v
        logging.getLogger("tacops").debug("unexpected error", exc_info=True)
        console.print(_("Unexpected error: {error}").format(error=f"{type(error).__name__}: {error}"), markup=False)
        console.print(_("Run the command again with -vv to see the traceback, and report it."), markup=False)
        return int(ExitCode.UNEXPECTED)


if __name__ == "__main__":
    sys.exit(main())
