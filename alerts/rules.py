"""Alert rules: ``config/alerts.yaml`` loaded and validated.

In:  the config folder's ``alerts.yaml``: a list of ``rules``, each with a ``name``, a keyword
     ``query`` (or a raw Elasticsearch ``es_query``), optional ``languages``, ``countries``,
     ``sources``, ``min_relevance``, ``actions`` (articles reporting one of these actions) and
     ``new_station: true`` (articles that added a location to the stations register; a rule
     with one of these two may have no query), the ``recipients`` and a ``frequency``
     (``immediate``, ``hourly``, or ``daily`` with ``at: "HH:MM"`` and a ``timezone``).
Out: a :class:`RuleSet` of frozen :class:`AlertRule` objects. A mistake raises
     :class:`veille.core.config.ConfigError` naming the file, the line, the key, the rule and what
     is wrong. A config folder without ``alerts.yaml`` has no rules (``RuleSet.missing``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, field_validator, model_validator

from alerts.query import QuerySyntaxError, compile_keywords, with_filters
from veille.core.config import (
    Action,
    ConfigError,
    LanguageCode,
    StrictModel,
    config_dir,
    line_of,
    load_yaml,
    validate_model,
)

RULES_FILE = "alerts.yaml"
_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def normalize_recipient(value: str) -> str:
    """An email address as rules and the log store it (domain in lower case)."""
    address = value.strip()
    if not _ADDRESS.match(address):
        raise ValueError(f"{value!r} is not an email address; write one like analyst@example.org")
    local, _, domain = address.partition("@")
    return f"{local}@{domain.lower()}"


Recipient = Annotated[str, AfterValidator(normalize_recipient)]


class AlertRule(StrictModel):
    """One subscription: what to look for, where, who gets it and how often."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=80)]
    description: str = ""
    query: str | None = None
    es_query: dict[str, Any] | None = None
    languages: list[LanguageCode] = []
    countries: list[Annotated[str, Field(pattern=r"^[A-Z]{2}$")]] = []
    sources: list[str] = []
    min_relevance: Annotated[float, Field(ge=0)] | None = None
    actions: list[Action] = []
    new_station: bool = False
    recipients: Annotated[list[Recipient], Field(min_length=1)]
    frequency: Literal["immediate", "hourly", "daily"] = "immediate"
    at: str | None = None
    timezone: str | None = None
    enabled: bool = True

    @field_validator("query")
    @classmethod
    def _keywords_compile(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                compile_keywords(value)
            except QuerySyntaxError as exc:
                raise ValueError(str(exc)) from exc
        return value

    @field_validator("es_query")
    @classmethod
    def _one_query_clause(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(value) != 1:
            raise ValueError(
                "write one Elasticsearch query clause, e.g. {match: {title: police}} or {bool: …}"
            )
        return value

    @field_validator("recipients")
    @classmethod
    def _once_each(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("at")
    @classmethod
    def _clock(cls, value: str | None) -> str | None:
        if value is not None and not _CLOCK.match(value):
            raise ValueError(f"{value!r} is not a time of day; write HH:MM in quotes, e.g. '08:00'")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(
                    f"{value!r} is not a time zone; use an IANA name such as Europe/Paris"
                ) from exc
        return value

    def problem(self) -> tuple[str, str] | None:
        """A mistake spanning several keys, as (key, message), or None."""
        if self.query is not None and self.es_query is not None:
            return "query", "give exactly one of 'query' (keywords) or 'es_query' (raw query)"
        if self.query is None and self.es_query is None and not (self.actions or self.new_station):
            return "query", (
                "give 'query' (keywords) or 'es_query' (raw query), or select by 'actions' "
                "or 'new_station: true'"
            )
        if self.frequency != "daily" and (self.at or self.timezone):
            key = "at" if self.at else "timezone"
            return key, f"'{key}' only applies to frequency: daily"
        return None

    @property
    def frequency_key(self) -> str:
        """The digest its matches go to: ``immediate``, ``hourly``, ``daily 08:00 Europe/Paris``."""
        if self.frequency == "daily":
            return f"daily {self.at or '08:00'} {self.timezone or 'UTC'}"
        return self.frequency

    def due_at(self, matched_at: datetime) -> datetime:
        """When a match made at ``matched_at`` is emailed: at once, the next full hour (UTC),
        or the next daily time in the rule's time zone."""
        if self.frequency == "immediate":
            return matched_at
        if self.frequency == "hourly":
            hour = matched_at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
            return hour + timedelta(hours=1)
        zone = ZoneInfo(self.timezone or "UTC")
        hour, minute = (int(part) for part in (self.at or "08:00").split(":"))
        local = matched_at.astimezone(zone)
        day = local.date()
        due = datetime.combine(day, clock_time(hour, minute), tzinfo=zone)
        if due <= local:
            due = datetime.combine(day + timedelta(days=1), clock_time(hour, minute), tzinfo=zone)
        return due.astimezone(UTC)

    def search_query(self) -> dict[str, Any]:
        """The Elasticsearch query for this rule: keywords or raw query, with its filters."""
        base: dict[str, Any] = {"match_all": {}}
        if self.es_query is not None:
            base = self.es_query
        elif self.query is not None:
            base = compile_keywords(self.query)
        return with_filters(
            base,
            languages=self.languages,
            countries=self.countries,
            sources=self.sources,
            min_relevance=self.min_relevance,
            actions=self.actions,
            new_station=self.new_station,
        )

    def fingerprint(self) -> str:
        """Changes whenever anything that decides matching or delivery changes."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


class AlertsFile(StrictModel):
    rules: list[AlertRule]

    @model_validator(mode="after")
    def _whole_rules(self) -> AlertsFile:
        seen: set[str] = set()
        for index, rule in enumerate(self.rules):
            if rule.name in seen:
                raise ValueError(f"rules.{index}.name: {rule.name!r} is used twice")
            seen.add(rule.name)
            problem = rule.problem()
            if problem:
                raise ValueError(f"rules.{index}.{problem[0]}: {problem[1]}")
        return self


def missing_rules_note(path: Path) -> str:
    """What the operator is told when ``alerts.yaml`` does not exist."""
    return (
        f"no alert rules: {path} does not exist, so no alert email is sent "
        '(create it to add rules; README "Alerts")'
    )


@dataclass(frozen=True)
class RuleSet:
    """The enabled rules of one ``alerts.yaml``, by name."""

    path: Path
    rules: tuple[AlertRule, ...]
    root: Any = None
    missing: bool = False

    def get(self, name: str) -> AlertRule | None:
        return next((rule for rule in self.rules if rule.name == name), None)

    def require(self, name: str) -> AlertRule:
        rule = self.get(name)
        if rule is None:
            known = ", ".join(r.name for r in self.rules) or "none"
            raise ConfigError(self.path, name, "no such enabled rule", f"known rules: {known}")
        return rule

    def error(self, name: str, key: str, message: str, hint: str = "") -> ConfigError:
        """A ConfigError about one key of one rule, with its line in the file."""
        index = self._index(name)
        line = line_of(self.root, ("rules", index, key)) if index is not None else None
        return ConfigError(
            self.path, f"rules.{index}.{key}", f"rule {name!r}: {message}", hint, line=line
        )

    def _index(self, name: str) -> int | None:
        data = self.root
        if data is None:
            return None
        for index, node in enumerate(_rule_nodes(data)):
            names = [value.value for key, value in node.value if key.value == "name"]
            if names == [name]:
                return index
        return None


def _rule_nodes(root: Any) -> list[Any]:
    for key, value in getattr(root, "value", []):
        if getattr(key, "value", None) == "rules":
            return list(value.value)
    return []


def _with_rule_name(error: ConfigError, data: Any) -> ConfigError:
    match = re.match(r"^rules\.(\d+)\b", error.key)
    rules = data.get("rules") if isinstance(data, dict) else None
    if not match or not isinstance(rules, list) or int(match.group(1)) >= len(rules):
        return error
    rule = rules[int(match.group(1))]
    name = rule.get("name") if isinstance(rule, dict) else None
    label = f"rule {name!r}" if name else f"rule number {int(match.group(1)) + 1}"
    return ConfigError(error.file, error.key, f"{label}: {error.message}", error.hint, error.line)


def load_rules(
    directory: str | os.PathLike[str] | None = None,
    known_sources: Iterable[str] | None = None,
) -> RuleSet:
    """Read and validate ``alerts.yaml`` from the config folder; disabled rules are left out.

    ``known_sources`` (the names in sources.yaml) lets a misspelt source be reported.
    """
    path = config_dir(directory) / RULES_FILE
    if not path.exists():
        return RuleSet(path, (), missing=True)
    data, root = load_yaml(path)
    if data is None:
        data = {"rules": []}
    try:
        parsed: AlertsFile = validate_model(AlertsFile, data, path, root)
    except ConfigError as exc:
        raise _with_rule_name(exc, data) from exc
    rules = RuleSet(path, tuple(rule for rule in parsed.rules if rule.enabled), root)
    if known_sources is not None:
        known = set(known_sources)
        for rule in rules.rules:
            unknown = sorted(set(rule.sources) - known)
            if unknown:
                raise rules.error(
                    rule.name,
                    "sources",
                    f"unknown source {unknown[0]!r}",
                    f"known sources: {', '.join(sorted(known)) or 'none'}",
                )
    return rules
