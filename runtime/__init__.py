"""callboard: route the LLM calls of long-running agent programs across providers, by role.

```python
from runtime import Callboard

with Callboard.from_config("config.toml") as board:
    reply = board.ask("coder", "Write a function that parses ISO dates")
    print(reply.text, reply.provider, reply.usage)
```
"""

import importlib
import typing

from runtime._version import __version__ as __version__

if typing.TYPE_CHECKING:
    from runtime._board.asking import AskOptions, EmbedOptions
    from runtime._board.board import Callboard
    from runtime._chat import (
        AttemptRecord,
        EmbedReply,
        ImagePart,
        Message,
        Progress,
        Reply,
        StreamDelta,
        StreamEnd,
        StreamEvent,
        StreamRestart,
        StreamToolDelta,
        TextPart,
        ToolResult,
        Usage,
    )
    from runtime._config.load import load_config, parse_config
    from runtime._config.schema import Config
    from runtime._errors import (
        BoardClosedError,
        BudgetExceededError,
        CallboardError,
        ChartUnavailableError,
        ConfigError,
        ConfigProblem,
        DeadlineExceededError,
        ErrorKind,
        MissingExtraError,
        PrometheusUnavailableError,
        ProviderError,
        StartupError,
        StoreError,
        StreamBrokenError,
        TaskCancelledError,
        TaskFailedError,
        UnknownProviderError,
        UnknownRoleError,
        UsageError,
    )
    from runtime._metrics.report import Flag, GroupStats, Report, Trend
    from runtime._metrics.stats import Stats
    from runtime._policy.budget_ledger import BudgetAlert, BudgetStatus
    from runtime._policy.provider_table import ProviderHealth
    from runtime._structured import Schema
    from runtime._tools import Tool, ToolCall, ToolCallDelta

_LAZY = {
    "AskOptions": "runtime._board.asking",
    "AttemptRecord": "runtime._chat",
    "BoardClosedError": "runtime._errors",
    "BudgetAlert": "runtime._policy.budget_ledger",
    "BudgetExceededError": "runtime._errors",
    "BudgetStatus": "runtime._policy.budget_ledger",
    "CallboardError": "runtime._errors",
    "ChartUnavailableError": "runtime._errors",
    "Config": "runtime._config.schema",
    "ConfigError": "runtime._errors",
    "ConfigProblem": "runtime._errors",
    "DeadlineExceededError": "runtime._errors",
    "EmbedOptions": "runtime._board.asking",
    "EmbedReply": "runtime._chat",
    "ErrorKind": "runtime._errors",
    "Flag": "runtime._metrics.report",
    "GroupStats": "runtime._metrics.report",
    "ImagePart": "runtime._chat",
    "Message": "runtime._chat",
    "MissingExtraError": "runtime._errors",
    "Progress": "runtime._chat",
    "PrometheusUnavailableError": "runtime._errors",
    "ProviderError": "runtime._errors",
    "ProviderHealth": "runtime._policy.provider_table",
    "Reply": "runtime._chat",
    "Report": "runtime._metrics.report",
    "Schema": "runtime._structured",
    "StartupError": "runtime._errors",
    "Stats": "runtime._metrics.stats",
    "StoreError": "runtime._errors",
    "StreamBrokenError": "runtime._errors",
    "StreamDelta": "runtime._chat",
    "StreamEnd": "runtime._chat",
    "StreamEvent": "runtime._chat",
    "StreamRestart": "runtime._chat",
    "StreamToolDelta": "runtime._chat",
    "TaskCancelledError": "runtime._errors",
    "TaskFailedError": "runtime._errors",
    "TextPart": "runtime._chat",
    "Tool": "runtime._tools",
    "ToolCall": "runtime._tools",
    "ToolCallDelta": "runtime._tools",
    "ToolResult": "runtime._chat",
    "Trend": "runtime._metrics.report",
    "UnknownProviderError": "runtime._errors",
    "UnknownRoleError": "runtime._errors",
    "Usage": "runtime._chat",
    "UsageError": "runtime._errors",
    "load_config": "runtime._config.load",
    "parse_config": "runtime._config.load",
}
"""Each public name and the module that defines it: imported on first use, so that
``import runtime`` (which every command of the command line runs first) stays light."""


__all__ = [
    "AskOptions",
    "AttemptRecord",
    "BoardClosedError",
    "BudgetAlert",
    "BudgetExceededError",
    "BudgetStatus",
    "Callboard",
    "CallboardError",
    "ChartUnavailableError",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "DeadlineExceededError",
    "EmbedOptions",
    "EmbedReply",
    "ErrorKind",
    "Flag",
    "GroupStats",
    "ImagePart",
    "Message",
    "MissingExtraError",
    "Progress",
    "PrometheusUnavailableError",
    "ProviderError",
    "ProviderHealth",
    "Reply",
    "Report",
    "Schema",
    "StartupError",
    "Stats",
    "StoreError",
    "StreamBrokenError",
    "StreamDelta",
    "StreamEnd",
    "StreamEvent",
    "StreamRestart",
    "StreamToolDelta",
    "TaskCancelledError",
    "TaskFailedError",
    "TextPart",
    "Tool",
    "ToolCall",
    "ToolCallDelta",
    "ToolResult",
    "Trend",
    "UnknownProviderError",
    "UnknownRoleError",
    "Usage",
    "UsageError",
    "load_config",
    "parse_config",
]


def __getattr__(name: str) -> object:
    """Import a public name on first use (`Callboard` with the price catalogue).

    The board pulls in the actors, which import this package's modules: importing it
    lazily lets ``import actors`` come first, and keeps ``import runtime`` light for
    code that only reads configs or uses `runtime.testing`. The price catalogue loads
    with it (tens of milliseconds), so that neither a board's start nor its first call
    waits for it or shares the interpreter with its loading.
    """
    if name == "Callboard":
        from runtime._config.price_source import load_catalogue  # noqa: PLC0415

        load_catalogue()
        from runtime._board.board import Callboard  # noqa: PLC0415 - see the docstring

        return Callboard
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'runtime' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
