"""One error root for everything kiwi_cas refuses to do, with a kind that decides the exit code.

Library code raises a :class:`KiwiError` subclass with a message that names files, options,
positions and type names, never note text. The command line turns it into one line on
stderr and the exit code of its kind, in one place (``kiwi_cas.cli.KiwiGroup``); a corpus
run records per-file errors in ``errors.jsonl`` with :func:`describe`.

Exit codes (documented in the README, stable for scripts):

====  =========================================================================
0     everything asked for was done
1     the run finished, but some input files failed (listed in errors.jsonl)
2     usage: a bad option, argument or combination; nothing was processed
3     setup: a model, package or typesystem this machine lacks or cannot read
4     service: a message broker that cannot be reached or refuses the login
5     system: the operating system refused a write (disk full, permissions)
130   interrupted (Ctrl-C); every output written so far is complete
====  =========================================================================
"""

from __future__ import annotations

import errno
import os
from enum import Enum


class Kind(str, Enum):
    """What went wrong, from the user's side; each kind has one exit code."""

    INPUT = "input"  # one document (file or message) cannot be processed; the run goes on
    USAGE = "usage"
    SETUP = "setup"
    SERVICE = "service"
    SYSTEM = "system"


EXIT_OK = 0
EXIT_FILES_FAILED = 1
EXIT_CODES: dict[Kind, int] = {Kind.INPUT: 1, Kind.USAGE: 2, Kind.SETUP: 3, Kind.SERVICE: 4, Kind.SYSTEM: 5}
EXIT_INTERRUPTED = 130


class KiwiError(Exception):
    """Root of kiwi_cas's errors. ``code`` is a short machine-readable cause (``unknown_type``, ...).

    Subclasses name their kind and default code in the class statement:
    ``class InputError(KiwiError, kind=Kind.INPUT, code="bad_input")``.
    """

    kind: Kind = Kind.INPUT
    default_code: str = "error"

    def __init_subclass__(cls, kind: Kind | None = None, code: str | None = None, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if kind is not None:
            cls.kind = kind
        if code is not None:
            cls.default_code = code

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code or self.default_code

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.kind]


class InputError(KiwiError, kind=Kind.INPUT, code="bad_input"):
    """A document that cannot be processed (bad XML, unknown types, undecodable text, ...)."""


class UnsafeXmlError(InputError, code="unsafe_xml"):
    """XML refused before parsing (DOCTYPE/entity declarations, too large, undecodable)."""


class TypeSystemError(InputError, code="typesystem"):
    """A typesystem that cannot be read, resolved or merged (fails the documents that need it)."""


class UsageError(KiwiError, kind=Kind.USAGE, code="usage"):
    """Options or arguments that cannot work together; reported before any work starts."""


class SetupError(KiwiError, kind=Kind.SETUP, code="setup"):
    """A model folder, package or file this machine lacks (nothing is ever downloaded)."""


class ModelNotFoundError(SetupError, code="model_not_found"):
    """A model folder that is not there, or is not a kiwi_cas model."""


class ServiceError(KiwiError, kind=Kind.SERVICE, code="service"):
    """A message broker or other service that cannot be reached or refuses us."""


class SystemFailure(KiwiError, kind=Kind.SYSTEM, code="os_error"):
    """The operating system refused (disk full, read-only, permissions): the run cannot go on."""


def from_os_error(exc: OSError, what: str) -> SystemFailure:
    """A one-line :class:`SystemFailure` for an OSError while doing ``what`` (names no note text)."""
    cause = exc.strerror or errno.errorcode.get(exc.errno or 0, type(exc).__name__)
    where = f" ({exc.filename})" if exc.filename else ""
    code = "disk_full" if exc.errno == errno.ENOSPC else "os_error"
    return SystemFailure(f"{what}: {cause}{where}", code)


#: set to 1 to add library messages to errors (they may quote the note: for debugging on test data only)
SHOW_DETAILS_ENV = "KIWI_CAS_SHOW_ERROR_DETAILS"


def library_detail(exc: BaseException, limit: int = 300) -> str:
    """A library's own message, only when the user opted in with KIWI_CAS_SHOW_ERROR_DETAILS=1.

    Library messages quote their input (``invalid literal for int(): 'His hematocrit...'``), and
    the input is a clinical note, so by default an error is built from kiwi_cas's fixed words and
    positions only.
    """
    if os.environ.get(SHOW_DETAILS_ENV) != "1":
        return ""
    msg = str(exc)
    return f" [{msg if len(msg) <= limit else msg[:limit] + '...'}]"


def describe(exc: BaseException) -> tuple[str, str]:
    """(cause code, message) of a per-document failure, for errors.jsonl and error queues; never note text."""
    if isinstance(exc, KiwiError):
        return exc.code, str(exc)
    return type(exc).__name__, f"unexpected {type(exc).__name__} while processing the document" + \
        library_detail(exc)
