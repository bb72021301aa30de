"""`driftradar demo`: the closed loop on the local stack, shown live (see docs/demo.md)."""

from streams.demo.app import DemoError, DemoOptions, run_demo
from streams.demo.plan import DemoPlan, DemoTopics, PlanError

__all__ = ["DemoError", "DemoOptions", "DemoPlan", "DemoTopics", "PlanError", "run_demo"]
