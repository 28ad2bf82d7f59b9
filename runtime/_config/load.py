"""Read a config file, check all of it, and report every problem with its place.

`parse_config` is pure (text and environment in, `Config` or `ConfigError` out);
`load_config` reads the file. Checks run in three passes whose problems are all gathered
before anything is raised: TOML syntax, then ``${VAR}`` expansion and the shape of every
value (pydantic), then the references between sections (roles to providers).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import toml
from pydantic import BaseModel, ValidationError

from runtime._config.budgets import BudgetSettings, TenantSettings, budget_problems
from runtime._config.provider_types import (
    COMMON_AUTHS,
    KINDS,
    TYPE_KEYS,
    types_taking,
    types_with_auth,
)
from runtime._config.routing import role_policy_problems
from runtime._config.schema import Config, PriceSettings, ProviderSettings, RoleSettings
from runtime._config.workflows import StageSettings, check_workflow
from runtime._errors import ConfigError, ConfigProblem

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_VAR_OR_LITERAL = re.compile(r"\$(\$\{)|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
"""``${VAR}``, ``${VAR:-default}``, or ``$${`` (a literal ``${``)."""
_ID = re.compile(r"^[A-Za-z0-9_-]+$")
_TUNING_KEYS = (
    "providers, fallback_to_default, hedge_after_s, strategy, weights, slo, rules, "
    "temperature, max_tokens, top_p and stop"
)
_TABLES_OF_TABLES: dict[str, type[BaseModel]] = {
    "providers": ProviderSettings,
    "roles": RoleSettings,
    "prices": PriceSettings,
    "budgets": BudgetSettings,
    "tenants": TenantSettings,
}


def load_config(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate the config file at ``path``.

    Raises:
        ConfigError: the file cannot be read or has problems; all of them are listed.
    """
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        problem = ConfigProblem("", f"cannot read the file: {exc.strerror or exc}")
        raise ConfigError(source, [problem]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(source, _undecodable(raw)) from None
    return parse_config(text, source=source, environ=os.environ if environ is None else environ)


def _undecodable(raw: bytes) -> list[ConfigProblem]:
    """Locate every byte of ``raw`` that is not UTF-8: one problem per line, with its key."""
    text = raw.decode("utf-8", errors="replace")
    lines = _KeyLines(text)
    problems: dict[int, ConfigProblem] = {}
    start = 0
    while start < len(raw):
        try:
            raw[start:].decode("utf-8")
            break
        except UnicodeDecodeError as exc:
            at = start + exc.start
            line = raw.count(b"\n", 0, at) + 1
            column = at - (raw.rfind(b"\n", 0, at) + 1) + 1
            message = (
                f"the file is not UTF-8 text: byte 0x{raw[at]:02x} at column {column}; "
                "save it as UTF-8"
            )
            problems.setdefault(line, ConfigProblem(lines.key_at(line), message, line))
            start = start + exc.end
    return list(problems.values())


def parse_config(text: str, *, source: str = "<memory>", environ: Mapping[str, str]) -> Config:
    """Validate config ``text``; ``environ`` supplies the ``${VAR}`` values.

    Raises:
        ConfigError: every problem found, each with its key path and line.
    """
    try:
        raw = toml.loads(text)
    except toml.TomlDecodeError as exc:
        problem = ConfigProblem("", f"not valid TOML: {exc.msg}", line=exc.lineno)
        raise ConfigError(source, [problem]) from None
    lines = _KeyLines(text)
    problems, env_names = _expand_env(raw, environ)
    problems += _check_ids(raw)
    config: Config | None = None
    try:
        config = Config.model_validate_json(json.dumps(raw, default=str), strict=True)
    except ValidationError as exc:
        problems += _shape_problems(exc, raw)
    problems += _reference_problems(raw)
    problems += _provider_problems(raw)
    problems += _value_problems(raw, env_names)
    if config is not None:
        problems += _workflow_problems(config)
        problems += _audit_problems(config)
        problems += _routing_problems(config)
        problems += _budget_problems(config)
        problems += _metrics_problems(config)
    if problems:
        located = [ConfigProblem(p.location, p.message, lines.find(p.location)) for p in problems]
        unique = list(dict.fromkeys(located))
        raise ConfigError(source, sorted(unique, key=lambda p: (p.line or 0, p.location)))
    assert config is not None  # noqa: S101 - no problems means validation succeeded
    providers = {
        pid: settings.model_copy(update={"api_key_env": env_names.get(pid)})
        for pid, settings in config.providers.items()
    }
    otel = config.otel
    if otel.enabled is None:
        otel = otel.model_copy(update={"enabled": any(environ.get(v) for v in OTEL_VARIABLES)})
    return config.model_copy(update={"providers": providers, "source": source, "otel": otel})


OTEL_VARIABLES = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
)
"""Any of these set turns OpenTelemetry on when ``[otel] enabled`` is not given."""


def _workflow_problems(config: Config) -> list[ConfigProblem]:
    """Check each workflow's stages, and that every role they name can be served."""
    problems = []
    for name, stages in config.workflow.items():
        problems += [
            ConfigProblem(where, message) for where, message in check_workflow(name, stages)
        ]
        for stage, settings in stages.items():
            if config.chain(settings.role) is None:
                roles = ", ".join(sorted(config.roles)) or "none"
                problems.append(
                    ConfigProblem(
                        f"workflow.{name}.{stage}.role",
                        f'unknown role "{settings.role}"; configured roles: {roles} '
                        "(or set default_provider)",
                    )
                )
    return problems


def _routing_problems(config: Config) -> list[ConfigProblem]:
    """Check each role's strategy keys and rules."""
    return [
        ConfigProblem(where, message)
        for role, settings in config.roles.items()
        for where, message in role_policy_problems(
            role, settings, settings.providers, config.providers
        )
    ]


def _budget_problems(config: Config) -> list[ConfigProblem]:
    """Check the budgets' and tenants' names and references."""
    own = [role for tenant in config.tenants.values() for role in tenant.roles]
    roles = None if config.default_provider else [*config.roles, *own]
    found = budget_problems(config.budgets, config.tenants, list(config.providers), roles)
    return [ConfigProblem(where, message) for where, message in found]


def _audit_problems(config: Config) -> list[ConfigProblem]:
    """Check that rotation has one rule and a file to rotate."""
    audit, problems = config.audit, []
    if audit.max_bytes and audit.rotate_every is not None:
        problems.append(
            ConfigProblem("audit.rotate_every", "set max_bytes or rotate_every, not both")
        )
    if audit.path in ("-", "off"):
        rules = [k for k in ("max_bytes", "rotate_every") if getattr(audit, k)]
        problems += [
            ConfigProblem(f"audit.{key}", f'rotation needs an audit file; path is "{audit.path}"')
            for key in rules
        ]
    return problems


def _metrics_problems(config: Config) -> list[ConfigProblem]:
    """Check that a metrics store URL names a PostgreSQL database."""
    url = config.metrics.url
    if url is None or urllib.parse.urlsplit(url).scheme in ("postgresql", "postgres"):
        return []
    shown = url.split("://", 1)[0] if "://" in url else "no scheme"
    return [
        ConfigProblem(
            "metrics.url",
            f"expected a PostgreSQL URL like postgresql://user@host:5432/db (got {shown}); "
            "for a SQLite file set path instead",
        )
    ]


def _expand_env(
    raw: dict[str, Any], environ: Mapping[str, str]
) -> tuple[list[ConfigProblem], dict[str, str]]:
    """Replace ``${VAR}`` (or ``${VAR:-default}``) in every string value, in place.

    ``$${`` stands for a literal ``${``. Names (table keys) are taken literally: a variable
    in one is a problem. Returns the problems and, per provider whose ``api_key`` is one
    variable, that variable's name (for advice about the key).
    """
    key_vars: dict[str, str] = {}
    providers = raw.get("providers")
    for pid, table in providers.items() if isinstance(providers, dict) else ():
        key = table.get("api_key") if isinstance(table, dict) else None
        match = _VAR.fullmatch(key.strip()) if isinstance(key, str) else None
        if match:
            key_vars[pid] = match.group(1)
    problems: list[ConfigProblem] = []
    _expand_in(raw, "", environ, problems)
    return problems, key_vars


def _expand_in(
    node: dict[str, Any] | list[Any],
    where: str,
    environ: Mapping[str, str],
    problems: list[ConfigProblem],
) -> None:
    """Expand the strings under ``node`` (at key path ``where``), recursively."""
    entries = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
    for name, value in entries:
        place = f"{where}[{name}]" if isinstance(name, int) else _join(where, name)
        if isinstance(name, str) and "${" in name:
            problems.append(
                ConfigProblem(place, "names are taken literally: ${VAR} is expanded in values only")
            )
        if isinstance(value, str):
            node[name] = _expand(value, place, environ, problems)  # type: ignore[index]
        elif isinstance(value, dict | list):
            _expand_in(value, place, environ, problems)


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _expand(
    value: str, location: str, environ: Mapping[str, str], problems: list[ConfigProblem]
) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(1):
            return "${"  # $${ is a literal ${
        name, default = match.group(2), match.group(3)
        if name in environ and environ[name] != "":
            return environ[name]
        if default is not None:
            return default
        problems.append(ConfigProblem(location, f"environment variable {name} is not set"))
        return match.group(0)

    return _VAR_OR_LITERAL.sub(replace, value)


def _check_ids(raw: dict[str, Any]) -> list[ConfigProblem]:
    problems = []
    for section in ("providers", "roles"):
        table = raw.get(section)
        if isinstance(table, dict):
            problems += [
                ConfigProblem(
                    f"{section}.{name}",
                    "names may hold only letters, digits, '-' and '_'",
                )
                for name in table
                if not _ID.match(name)
            ]
    return problems


def _shape_problems(exc: ValidationError, raw: dict[str, Any]) -> list[ConfigProblem]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        location = _format_loc(loc)
        problems.append(ConfigProblem(location, _explain(error, loc, raw)))
    return problems


def _explain(error: Mapping[str, Any], loc: tuple[Any, ...], raw: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return _unknown_key_message(loc)
    if kind == "missing":
        return "required, but not set"
    message = str(error["msg"]).replace("Input should be", "must be")
    message = message[0].lower() + message[1:] if message else message
    secret = any(part in ("api_key", "headers") for part in loc)
    if not secret and kind not in ("model_type", "dict_type"):
        value = _dig(raw, loc)
        if value is not _MISSING:
            message += f" (got {json.dumps(value, default=str)})"
    return message


def _unknown_key_message(loc: tuple[Any, ...]) -> str:
    key = str(loc[-1])
    model = _model_at(loc[:-1])
    known = sorted(f for f in model.model_fields if f not in ("api_key_env", "source"))
    hint = difflib.get_close_matches(key, known, n=1)
    if model is RoleSettings and key in ProviderSettings.model_fields:
        return (
            f"{key!r} cannot be set per role: only {_TUNING_KEYS} may be; "
            "credentials, endpoints and models belong to a provider"
        )
    suggestion = f'; did you mean "{hint[0]}"?' if hint else f"; known keys: {', '.join(known)}"
    return f"unknown key {key!r}{suggestion}"


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel]:
    model: type[BaseModel] = Config
    index = 0
    while index < len(loc):
        part = loc[index]
        if model is Config and part == "workflow":
            model = StageSettings
            index += 3
            continue
        if model is Config and part in _TABLES_OF_TABLES:
            model = _TABLES_OF_TABLES[part]
            index += 2
            continue
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field is not None else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        index += 1
    return model


def _provider_problems(raw: dict[str, Any]) -> list[ConfigProblem]:
    """Check each provider's type, and what that type needs (a key, a base URL)."""
    providers = raw.get("providers")
    if not isinstance(providers, dict):
        return []
    problems = []
    for pid, table in providers.items():
        if not isinstance(table, dict) or not isinstance(table.get("type"), str):
            continue
        kind = KINDS.get(table["type"])
        where = f"providers.{pid}"
        if kind is None:
            hint = difflib.get_close_matches(table["type"], list(KINDS), n=1)
            tail = f'did you mean "{hint[0]}"?' if hint else f"known types: {', '.join(KINDS)}"
            problems.append(
                ConfigProblem(f"{where}.type", f'unknown type "{table["type"]}"; {tail}')
            )
            continue
        if kind.base_url is None and not table.get("base_url"):
            example = f" (e.g. {kind.base_url_example})" if kind.base_url_example else ""
            problems.append(
                ConfigProblem(f"{where}.base_url", f"required for type {kind.name}{example}")
            )
        auth = table.get("auth", "default")
        own_base_url = bool(table.get("base_url"))
        if kind.needs_key_for(str(auth), own_base_url=own_base_url) and not table.get("api_key"):
            usual = f' (usually "${{{kind.key_env}}}")' if kind.key_env else ""
            problems.append(
                ConfigProblem(f"{where}.api_key", f"required for type {kind.name}{usual}")
            )
        problems += _type_only_problems(where, kind.name, table)
    return problems


def _value_problems(raw: dict[str, Any], key_vars: Mapping[str, str]) -> list[ConfigProblem]:
    """Check what HTTP will carry: base URLs, and keys and headers as ASCII text."""
    providers = raw.get("providers")
    if not isinstance(providers, dict):
        return []
    problems = []
    for pid, table in providers.items():
        if not isinstance(table, dict):
            continue
        where = f"providers.{pid}"
        url = table.get("base_url")
        if isinstance(url, str) and url:
            problems += _url_problems(f"{where}.base_url", url)
        key = table.get("api_key")
        if isinstance(key, str):
            source = f" (from ${{{key_vars[pid]}}})" if pid in key_vars else ""
            problems += _header_text_problems(f"{where}.api_key", key, source)
        headers = table.get("headers")
        if isinstance(headers, dict):
            for name, value in headers.items():
                problems += _header_text_problems(f"{where}.headers.{name}", name, " (its name)")
                if isinstance(value, str):
                    problems += _header_text_problems(f"{where}.headers.{name}", value, "")
    return problems


def _url_problems(where: str, url: str) -> list[ConfigProblem]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme in ("http", "https") and parts.hostname:
        return []
    return [
        ConfigProblem(where, f"must be a URL that starts with http:// or https:// (got {url!r})")
    ]


def _header_text_problems(where: str, text: str, source: str) -> list[ConfigProblem]:
    """HTTP headers carry printable ASCII only; say which character is not, never the value."""
    for index, char in enumerate(text):
        if not (" " <= char <= "~" or char == "\t"):
            shown = f"U+{ord(char):04X}" + (f" {char!r}" if char.isprintable() else "")
            kind = "a non-ASCII" if ord(char) > 0x7F else "a control"  # noqa: PLR2004
            return [
                ConfigProblem(
                    where,
                    f"holds {kind} character{source}: {shown} at position {index + 1}; HTTP "
                    "headers take ASCII text only (a key pasted with an ellipsis or a curly "
                    "quote?)",
                )
            ]
    return []


def _type_only_problems(where: str, type_name: str, table: dict[str, Any]) -> list[ConfigProblem]:
    kind = KINDS[type_name]
    problems = [
        ConfigProblem(
            f"{where}.{key}",
            f"only type {' or '.join(types_taking(key))} takes {key}, not {type_name}",
        )
        for key in TYPE_KEYS
        if key in table and key not in kind.keys
    ]
    auth = table.get("auth")
    if isinstance(auth, str) and auth not in COMMON_AUTHS and auth not in kind.auths:
        owners = types_with_auth(auth)
        if owners:
            problems.append(
                ConfigProblem(
                    f"{where}.auth",
                    f'auth = "{auth}" is for type {" or ".join(owners)}, not {type_name}',
                )
            )
    return problems


def _reference_problems(raw: dict[str, Any]) -> list[ConfigProblem]:
    providers = raw.get("providers")
    known = sorted(providers) if isinstance(providers, dict) else []
    problems: list[ConfigProblem] = []
    if not known:
        problems.append(
            ConfigProblem("providers", "no provider is configured; add [providers.<id>]")
        )
    default = raw.get("default_provider")
    if isinstance(default, str) and known and default not in known:
        problems.append(_unknown_provider("default_provider", default, known))
    roles = raw.get("roles")
    if not isinstance(roles, dict):
        return problems
    for name, table in roles.items():
        cast = table.get("providers", []) if isinstance(table, dict) else []
        if not isinstance(cast, list):
            continue
        problems += _cast_problems(name, cast, known)
        if not cast and not isinstance(default, str):
            problems.append(
                ConfigProblem(
                    f"roles.{name}",
                    'no providers and no default_provider: add providers = ["..."] '
                    'or set default_provider = "..."',
                )
            )
    return problems


def _cast_problems(role: str, cast: list[Any], known: list[str]) -> list[ConfigProblem]:
    problems = []
    seen: set[str] = set()
    for index, pid in enumerate(cast):
        where = f"roles.{role}.providers[{index}]"
        if not isinstance(pid, str):
            continue
        if known and pid not in known:
            problems.append(_unknown_provider(where, pid, known))
        elif pid in seen:
            problems.append(ConfigProblem(where, f'provider "{pid}" is listed twice'))
        seen.add(pid)
    return problems


def _unknown_provider(location: str, pid: str, known: Iterable[str]) -> ConfigProblem:
    names = list(known)
    hint = difflib.get_close_matches(pid, names, n=1)
    tail = f'did you mean "{hint[0]}"?' if hint else f"configured: {', '.join(names)}"
    return ConfigProblem(location, f'unknown provider "{pid}"; {tail}')


def _format_loc(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


_MISSING = object()


def _dig(raw: Any, loc: tuple[Any, ...]) -> Any:
    node = raw
    for part in loc:
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            node = node[part]
        else:
            return _MISSING
    return node


class _KeyLines:
    """Finds the line of a dotted key path in TOML text, best effort."""

    _HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
    _ARRAY = re.compile(r"^\s*\[\[\s*([^\[\]]+?)\s*\]\]\s*(#.*)?$")
    """``[[budgets]]``: the next element of an array of tables, ``budgets[N]``."""
    _KEY = re.compile(r'^\s*("[^"]+"|[A-Za-z0-9_.-]+)\s*=')

    def __init__(self, text: str) -> None:
        self._lines: dict[str, int] = {}
        self._at: list[str] = [""]
        """The key path set on each line (1-based), else the table the line is in."""
        table = ""
        arrays: dict[str, int] = {}
        for number, line in enumerate(text.splitlines(), start=1):
            array = self._ARRAY.match(line)
            if array:
                name = _normalize(array.group(1))
                arrays[name] = arrays.get(name, -1) + 1
                table = f"{name}[{arrays[name]}]"
                self._lines.setdefault(table, number)
                self._at.append(table)
                continue
            header = self._HEADER.match(line)
            key = None if header else self._KEY.match(line)
            if header:
                table = _normalize(header.group(1))
                self._lines.setdefault(table, number)
            elif key:
                path = f"{table}.{_normalize(key.group(1))}" if table else _normalize(key.group(1))
                self._lines.setdefault(path, number)
            self._at.append(path if key else table)

    def key_at(self, line: int) -> str:
        """Return the key path set on ``line``, or the table it is in (``""``: none)."""
        return self._at[line] if 0 < line < len(self._at) else ""

    def find(self, location: str) -> int | None:
        path = location
        while "[" in path:  # an element of an array of tables: budgets[1].scope
            if path in self._lines:
                return self._lines[path]
            path = path.rpartition(".")[0]
        path = re.sub(r"\[\d+\]", "", location)
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path.rpartition(".")[0]
        return None


def _normalize(key: str) -> str:
    return ".".join(part.strip().strip('"') for part in key.split("."))
