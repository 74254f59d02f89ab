"""Scenarios: platform templates (behaviour, once per CMS family) and site records (data)."""

from bot.scenario.schema import Scenario, SiteRecord, Step
from bot.scenario.loader import load_platform, load_site, load_sites, scenario_for

__all__ = ["Scenario", "SiteRecord", "Step", "load_platform", "load_site", "load_sites", "scenario_for"]
