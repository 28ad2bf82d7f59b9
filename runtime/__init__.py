"""callboard: route the LLM calls of long-running agent programs across providers, by role.

```python
from runtime import Callboard

with Callboard.from_config("config.toml") as board:
    reply = board.ask("coder", "Write a function that parses ISO dates")
    print(reply.text, reply.provider, reply.usage)
```
"""

from runtime._board import Callboard
from runtime._chat import AttemptRecord, Message, Reply, Usage
from runtime._config import Config
from runtime._config_load import load_config, parse_config
from runtime._errors import (
    BoardClosedError,
    CallboardError,
    ConfigError,
    ConfigProblem,
    DeadlineExceededError,
    ErrorKind,
    ProviderError,
    StartupError,
    TaskCancelledError,
    TaskFailedError,
    UnknownRoleError,
)
from runtime._stats import Stats

__all__ = [
    "AttemptRecord",
    "BoardClosedError",
    "Callboard",
    "CallboardError",
    "Config",
    "ConfigError",
    "ConfigProblem",
    "DeadlineExceededError",
    "ErrorKind",
    "Message",
    "ProviderError",
    "Reply",
    "StartupError",
    "Stats",
    "TaskCancelledError",
    "TaskFailedError",
    "UnknownRoleError",
    "Usage",
    "load_config",
    "parse_config",
]
