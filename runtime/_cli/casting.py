"""What a config casts, as the commands show it: role chains, workflow roles, and warnings.

A role that is not configured is served by ``default_provider`` when there is one, so a
typo in a role's name would pass unseen: ``ask`` and ``run`` warn about it, and ``check``
says which roles each workflow needs and whether they can be served.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from runtime._config.routing import strategy_line
from runtime._config.schema import Config


def unconfigured_role(config: Config, role: str) -> str | None:
    """Say that ``role`` is served only because a default exists (``None``: it is configured)."""
    default = config.default_provider
    if role in config.roles or default is None:
        return None
    roles = ", ".join(sorted(config.roles)) or "none"
    return (
        f"role {role!r} is not configured; the default provider {default} serves it "
        f"(configured roles: {roles})"
    )


def role_providers(config: Config, role: str) -> tuple[str, ...]:
    """Return every provider a task of ``role`` may reach: its chain and its rules' chains."""
    found = list(config.chain(role) or ())
    settings = config.roles.get(role)
    for rule in settings.rules if settings is not None else ():
        found += rule.providers
    return tuple(dict.fromkeys(found))


def role_lines(config: Config) -> list[str]:
    """Return one line per configured role: its chain, the last resort marked, its strategy."""
    lines = []
    for role in sorted(config.roles):
        chain = " -> ".join(config.chain(role) or ())
        last = " (last resort)" if config.last_resort(role) else ""
        strategy = strategy_line(config.roles[role])
        lines.append(f"  role {role}: {chain}{last}; strategy {strategy}")
    return lines


@dataclass(frozen=True, slots=True)
class WorkflowRoles:
    """The roles one workflow needs, and those it would lack or get only by default."""

    name: str
    roles: tuple[str, ...]
    unserved: tuple[str, ...]
    """Roles no provider serves: not configured, and no default provider."""
    by_default: tuple[str, ...]
    """Roles not configured that the default provider serves (a typo?)."""

    def summary(self) -> str:
        """One line for ``check``."""
        verdict = "cannot run (see the warning)" if self.unserved else "can be served"
        return f"  workflow {self.name}: {', '.join(self.roles)}: {verdict}"

    def problems(self, config: Config) -> list[str]:
        """What to warn about: roles no provider serves, roles only the default serves."""
        found = []
        if self.unserved:
            found.append(
                f"workflow {self.name} cannot run: no provider serves {_roles(self.unserved)}; "
                'add [roles.<role>] tables or set default_provider = "..."'
            )
        if self.by_default:
            verb, them = ("is", "it") if len(self.by_default) == 1 else ("are", "them")
            found.append(
                f"workflow {self.name}: {_roles(self.by_default)} {verb} not configured; "
                f"the default provider {config.default_provider} serves {them}"
            )
        return found


def workflow_roles(config: Config, names: Sequence[str] | None = None) -> list[WorkflowRoles]:
    """Return the roles of each workflow (default: the built-in one and every configured)."""
    if names is None:
        names = ["default", *sorted(name for name in config.workflow if name != "default")]
    found = []
    for name in names:
        stages = config.workflow_stages(name) or {}
        roles = tuple(dict.fromkeys(stage.role for stage in stages.values()))
        unserved = tuple(role for role in roles if config.chain(role) is None)
        by_default = tuple(
            role for role in roles if role not in config.roles and role not in unserved
        )
        found.append(WorkflowRoles(name, roles, unserved, by_default))
    return found


def _roles(roles: Sequence[str]) -> str:
    noun = "role" if len(roles) == 1 else "roles"
    return f"{noun} {', '.join(roles)}"
