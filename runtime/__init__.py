"""callboard: route the LLM calls of long-running agent programs across providers, by role.

```python
from runtime import Callboard

with Callboard.from_config("config.toml") as board:
    reply = board.ask("coder", "Write a function that parses ISO dates")
    print(reply.text, reply.provider, reply.usage)
```
"""

import typing

from runtime._board.asking import AskOptions, EmbedOptions
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
from runtime._version import __version__ as __version__

if typing.TYPE_CHECKING:
    from runtime._board.board import Callboard

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
    """Import `Callboard` on first use.

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
    raise AttributeError(f"module 'runtime' has no attribute {name!r}")
