"""Loading platform templates and site files, with errors that name file, key and reason.

A platform template comes from the workspace (`<scenarios_dir>/platforms/<name>.toml`) when the
workspace has one of that name, else from the templates built into the program; `find_platform`
alone decides, so every command agrees on which file a site's behaviour comes from.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from bot.config import describe_validation_error, dotted_key, read_toml
from bot.errors import ConfigError
from bot.resources import builtin_platforms_dir
from bot.scenario.schema import Scenario, SiteRecord

# Keys a site may override in its platform template; behaviour itself stays in the template.
OVERRIDABLE = {"selectors", "values", "limits", "time_formats", "status_map", "categories", "timeout_ms", "encoding",
               "blocked_titles", "blocked_phrases"}


# Overridable tables whose entries the template defines: a site may change them, not add to them.
NAMED_BY_TEMPLATE = ("selectors", "values")


WORKSPACE = "workspace"
BUILT_IN = "built-in"


@dataclass(frozen=True)
class TemplateSource:
    name: str
    path: Path
    origin: Literal["workspace", "built-in"]


def platforms_dir(scenarios_dir: Path) -> Path:
    """The workspace's own platform templates."""
    return Path(scenarios_dir) / "platforms"


def platform_sources(scenarios_dir: Path) -> dict[str, TemplateSource]:
    """Every platform template the workspace can use, by name, each from where `find_platform`
    takes it."""
    names = {p.stem for folder in (builtin_platforms_dir(), platforms_dir(scenarios_dir))
             for p in folder.glob("*.toml") if p.is_file()}
    return {name: find_platform(name, scenarios_dir) for name in sorted(names)}


def _is_file_name(name: str) -> bool:
    """A template name names a file in a folder: no separators, not "." or ".."."""
    return bool(name) and name not in (".", "..") and "/" not in name and "\\" not in name


def find_platform(name: str, scenarios_dir: Path, where: str = "") -> TemplateSource:
    """Where template `name` comes from: the workspace's file of that name wins (a workspace
    changes a built-in template by copying it into scenarios/platforms/ and editing the copy),
    else the built-in one; else a ConfigError listing the known names (at `where`, the site
    file naming it, when given)."""
    if _is_file_name(name):
        own = platforms_dir(scenarios_dir) / f"{name}.toml"
        if own.is_file():
            return TemplateSource(name, own, WORKSPACE)
        builtin = builtin_platforms_dir() / f"{name}.toml"
        if builtin.is_file():
            return TemplateSource(name, builtin, BUILT_IN)
    known = ", ".join(platform_sources(scenarios_dir)) or "none"
    message = (f"no platform template '{name}' (known: {known}; a workspace adds its own in "
               f"{platforms_dir(scenarios_dir)})")
    if where:
        raise ConfigError(f"key 'platform': {message}", where=where)
    raise ConfigError(message, where=str(platforms_dir(scenarios_dir)))


def _validation_error(err: ValidationError, where: str) -> ConfigError:
    e = err.errors()[0]
    if e["type"] == "union_tag_invalid":
        loc = dotted_key(e["loc"])
        return ConfigError(f"key '{loc}': unknown step op {e['input'].get('op')!r} "
                           f"(expected one of {', '.join(STEP_OPS)})", where=where)
    # The step's op is pydantic's tag of the step union, not a key of the file.
    return describe_validation_error(_without_tags(err), where)


STEP_OPS = ("goto", "request", "fill", "select", "check", "click", "wait_for", "captcha", "extract", "expect", "scan")


def _without_tags(err: ValidationError) -> ValidationError:
    """The error with the step union's tag left out of its locations: pydantic says
    `flows.submit.steps.8.expect.outcomes`, the file has `flows.submit.steps.8.outcomes`."""
    for e in err.errors():
        loc = e["loc"]
        e["loc"] = tuple(p for i, p in enumerate(loc) if not (p in STEP_OPS and i and isinstance(loc[i - 1], int)))
        return ValidationError.from_exception_data(err.title, [e])
    return err


def load_platform_data(name: str, scenarios_dir: Path) -> tuple[dict[str, Any], Path]:
    path = find_platform(name, scenarios_dir).path
    return read_toml(path), path


def load_platform(name: str, scenarios_dir: Path) -> Scenario:
    data, path = load_platform_data(name, scenarios_dir)
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        raise _validation_error(e, str(path)) from None


def merge_overrides(template: dict[str, Any], overrides: dict[str, Any], where: str) -> dict[str, Any]:
    merged = copy.deepcopy(template)
    for key, value in overrides.items():
        if key not in OVERRIDABLE:
            raise ConfigError(f"key 'overrides.{key}': cannot be overridden by a site "
                              f"(allowed: {', '.join(sorted(OVERRIDABLE))})", where=where)
        if key in NAMED_BY_TEMPLATE and isinstance(value, dict):
            # A site replaces what its template names; a name the template does not have is a
            # misspelling (`titel`), which would otherwise be ignored without a word.
            known = (template.get(key) or {})
            for name in value:
                if name not in known:
                    raise ConfigError(f"key 'overrides.{key}.{name}': the platform template has no {key[:-1]} "
                                      f"{name!r} (it has: {', '.join(sorted(known)) or 'none'})", where=where)
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def scenario_for(site: SiteRecord, scenarios_dir: Path, where: str = "") -> Scenario:
    """The site's platform template with the site's overrides merged in, validated."""
    where = where or site.key or site.name
    path = find_platform(site.platform, scenarios_dir, where=where).path
    data = read_toml(path)
    if site.platform_version is not None and site.platform_version != data.get("version", 1):
        raise ConfigError(f"key 'platform_version': site written for {site.platform} v{site.platform_version}, "
                          f"template is v{data.get('version', 1)}", where=where)
    merged = merge_overrides(data, site.overrides, where)
    try:
        return Scenario.model_validate(merged)
    except ValidationError as e:
        raise _validation_error(e, f"{where} (platform {path.name} with overrides)") from None


def load_site(path: Path) -> SiteRecord:
    data = read_toml(path)
    data.setdefault("key", path.stem)
    try:
        return SiteRecord.model_validate(data)
    except ValidationError as e:
        raise describe_validation_error(e, str(path)) from None


def load_sites(paths: list[Path], scenarios_dir: Path) -> list[tuple[SiteRecord, Scenario]]:
    """Loads and validates every site file and its merged scenario; the first fault raises."""
    out = []
    for p in paths:
        site = load_site(p)
        out.append((site, scenario_for(site, scenarios_dir, where=str(p))))
    return out


def valid_on(records: list[SiteRecord], day: date) -> list[SiteRecord]:
    """The site records in force on `day`. A site that moved to another platform has one record
    per period (same `key`, its own `valid_from`/`valid_to`), so past results stay with the
    record they were made with; two records of one site in force on the same day is an error."""
    current = [r for r in records if (r.valid_from is None or r.valid_from <= day)
               and (r.valid_to is None or day <= r.valid_to)]
    seen: dict[str, SiteRecord] = {}
    for r in current:
        if r.key in seen:
            raise ConfigError(f"site '{r.key}': two site records are in force on {day} "
                              f"({seen[r.key].platform} from {seen[r.key].valid_from or 'always'}, "
                              f"{r.platform} from {r.valid_from or 'always'}); give the older one a valid_to",
                              where=r.key)
        seen[r.key] = r
    return current
