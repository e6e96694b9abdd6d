"""The tokens a rehearsal holds, and the one way they reach a request.

Every token comes from an environment variable (``auth.token_env``, each role's
``token_env``), is checked before anything is sent, and stays a
:class:`~pytest_rehearsal.redact.Secret` until an auth flow
(:class:`~pytest_rehearsal._auth.CredentialAuth`) puts it in a header, and then only on
requests to staging's own origin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .config import RehearsalConfig
from .redact import Redactor, Secret

__all__ = ["MIN_TOKEN_LENGTH", "Credentials", "redactor_for"]

#: Shorter tokens are a usage error: masking "lock" would mask "blocked" in every report.
MIN_TOKEN_LENGTH = 8


@dataclass(frozen=True)
class Credentials:
    """Header name and secret value per credential set: ``"default"`` and each role name."""

    header: str
    scheme: str | None
    tokens: Mapping[str, Secret]

    @classmethod
    def from_config(cls, config: RehearsalConfig, environ: Mapping[str, str]) -> Credentials:
        """Read every ``token_env`` variable: the default auth's and each role's.

        Raises :class:`LookupError` naming every variable that is missing or unusable, one
        a line (never a value): unset or empty, shorter than :data:`MIN_TOKEN_LENGTH`
        characters, with surrounding whitespace, or not UTF-8 text.
        """
        auth = config.auth
        header = auth.header if auth else "Authorization"
        scheme = auth.scheme if auth else "Bearer"
        names: dict[str, str] = {}
        if auth and auth.token_env:
            names["default"] = auth.token_env
        if config.checks.permissions:
            for role, spec in config.checks.permissions.roles.items():
                names[role] = spec.token_env
        tokens: dict[str, Secret] = {}
        problems: dict[str, str] = {}  # by variable: two roles may share one
        for key, env_name in names.items():
            where = "auth.token_env" if key == "default" else f"roles.{key}.token_env"
            value = environ.get(env_name, "")
            problem = _token_problem(value)
            if problem is None:
                tokens[key] = Secret(value)
            elif env_name not in problems:
                problems[env_name] = f"environment variable {env_name} {problem} (named by {where})"
        if problems:
            raise LookupError("\n".join(problems.values()))
        return cls(header, scheme, tokens)

    def headers_for(self, name: str | None) -> dict[str, str]:
        """The credential header for *name* (None: anonymous, an unknown name: none)."""
        token = self.tokens.get(name) if name else None
        if token is None:
            return {}
        value = f"{self.scheme} {token.reveal()}" if self.scheme else token.reveal()
        return {self.header: value}


def _token_problem(value: str) -> str | None:
    """What makes *value* unusable as a token, or ``None``; never shows the value."""
    if not value:
        return "is not set; export it before the rehearsal: secrets only come from the environment"
    if value != value.strip():
        # A trailing newline from TOKEN=$(cat file) would be masked as part of the token
        # and leak on the lines it ends.
        return (
            "has whitespace around its value (a newline from $(cat file)?); "
            "strip it: a token is one word"
        )
    if len(value) < MIN_TOKEN_LENGTH:
        return (
            f"is shorter than {MIN_TOKEN_LENGTH} characters; such a token could not be masked "
            "in output without masking ordinary words"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "holds bytes that are not UTF-8; a token is text"
    return None


def redactor_for(credentials: Credentials) -> Redactor:
    """A redactor that knows every token value read from the environment."""
    return Redactor(token.reveal() for token in credentials.tokens.values())
