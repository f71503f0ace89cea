"""A deterministic, labelled synthetic bank-traffic simulator (telecom-fraud typologies and
hard-negative background), for training, evaluation, demos and load tests."""

from models.simulator.config import DEFAULT_START, TYPOLOGIES, SimulationConfig
from models.simulator.engine import Simulation, simulate
from models.simulator.live import live_profiles, live_stream
from models.simulator.writer import write_simulation

__all__ = [
    "DEFAULT_START",
    "TYPOLOGIES",
    "Simulation",
    "SimulationConfig",
    "live_profiles",
    "live_stream",
    "simulate",
    "write_simulation",
]
