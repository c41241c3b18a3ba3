"""Typed errors and the exit codes shared by every command.

Library code raises these; only the CLI turns them into messages and exit codes.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    UNEXPECTED = 1
    INVALID_INPUT = 2
    DIFFERENCES = 3
    UNREACHABLE = 4
    INTEGRITY = 5
    AUTHENTICATION = 6
    LOCKED = 7
    STALE = 8
    INTERRUPTED = 130


# (code, English text); the CLI translates the text when it prints the table.
EXIT_CODE_TABLE: list[tuple[ExitCode, str]] = [
    (ExitCode.OK, "success"),
    (ExitCode.UNEXPECTED, "unexpected error (a bug: report it with the log)"),
    (ExitCode.INVALID_INPUT, "invalid usage, description, inventory or option"),
    (ExitCode.DIFFERENCES, "ran to the end, but differences were found"),
    (ExitCode.UNREACHABLE, "a host or backup host is unreachable"),
    (ExitCode.INTEGRITY, "a backup failed its verification, or no healthy replica is left"),
    (ExitCode.AUTHENTICATION, "wrong repository password or operator secret"),
    (ExitCode.LOCKED, "another run holds the lock on this system"),
    (ExitCode.STALE, "the newest verified backup set is older than --max-age"),
    (ExitCode.INTERRUPTED, "interrupted (Ctrl-C)"),
]


class TacopsError(Exception):
    """Base of every expected failure; ``hint`` says what to do next."""

    exit_code: ExitCode = ExitCode.UNEXPECTED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class DescriptionError(TacopsError):
    exit_code = ExitCode.INVALID_INPUT


class InvalidInputError(TacopsError):
    exit_code = ExitCode.INVALID_INPUT


class UnreachableError(TacopsError):
    exit_code = ExitCode.UNREACHABLE

    def __init__(self, message: str, *, host: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.host = host


class CommandFailedError(TacopsError):
    """A remote or local command ran and exited with a code it was not expected to."""

    exit_code = ExitCode.UNEXPECTED

    def __init__(self, message: str, *, host: str, command: str, returncode: int, stderr: str = "",
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.host = host
        self.command = command
        self.returncode = returncode
        self.stderr = stderr


class IntegrityError(TacopsError):
    exit_code = ExitCode.INTEGRITY


class AuthenticationError(TacopsError):
    exit_code = ExitCode.AUTHENTICATION


class LockedError(TacopsError):
    exit_code = ExitCode.LOCKED


class StaleBackupError(TacopsError):
    exit_code = ExitCode.STALE


class LabError(TacopsError):
    exit_code = ExitCode.UNEXPECTED


class RouteGuardError(TacopsError):
    """The route to a lab address does not go through the lab's own bridge."""

    exit_code = ExitCode.UNREACHABLE
