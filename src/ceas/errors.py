"""The one family of errors ceas raises for user mistakes and protocol failures.

Every error a user can cause subclasses :class:`CeasError`, so the CLI can catch one type, print one line and exit
with status 2 instead of a traceback.
"""

from __future__ import annotations


class CeasError(Exception):
    """Base class of every error ceas raises on purpose."""


class ConfigError(CeasError, ValueError):
    """A configuration value, file or command-line flag is not allowed."""


class ValidationError(CeasError, ValueError):
    """An argument to a library call is out of its allowed range (names the value and the range)."""


class UnknownNameError(CeasError, KeyError):
    """A registry lookup failed; the message suggests the closest valid name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ProtocolError(CeasError):
    """A protocol step cannot proceed (no key material, pool empty, message rejected, ...)."""


class ResumeError(CeasError):
    """A run cannot be resumed (missing or mismatched checkpoint)."""


class ConvergenceWarning(UserWarning):
    """An iterative solver hit its iteration limit before its tolerance; the result is its last iterate."""
