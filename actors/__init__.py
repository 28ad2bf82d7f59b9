"""The actors of callboard: provider, router, metrics and their supervisor."""

from actors._metrics import MetricsActor
from actors._provider import ProviderActor
from actors._router import RouterActor
from actors._supervisor import Supervisor

__all__ = ["MetricsActor", "ProviderActor", "RouterActor", "Supervisor"]
