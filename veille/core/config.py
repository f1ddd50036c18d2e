"""Configuration: the operator's YAML files and the process environment, validated in one place.

In:  a config folder (``--config DIR``, ``VEILLE_CONFIG``, default ``./config``) holding
     ``sources.yaml`` and ``topics/*.yaml``; environment variables ``VEILLE_*``.
Out: a frozen :class:`Config` with :class:`Source` and :class:`Topic` objects, and
     :class:`Environment` for connection settings and secrets.

Every problem raises :class:`ConfigError`, which names the file, the key, the line, what is
wrong and how to fix it. The CLI turns it into exit status 2.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationError,
    field_validator,
    model_validator,
)

from veille.core.languages import check_code
from veille.core.query import Node, QuerySyntaxError, parse, problems

SOURCE_TYPES = ("feed", "sitemap", "search")


class ConfigError(Exception):
    """A configuration problem an operator can fix: file, key, line, what and how."""

    def __init__(
        self, file: Path | str, key: str, message: str, hint: str = "", line: int | None = None
    ) -> None:
        self.file = str(file)
        self.key = key
        self.line = line
        self.message = message
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        text = f"{where}: {self.key}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


# --- YAML models -------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """Parse ``"30m"``, ``"2h"``, ``"1d"``, ``"45s"`` into a timedelta."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a duration; write a number and a unit, e.g. 30m, 2h, 1d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


Duration = Annotated[str, AfterValidator(_check_duration)]
# A language of veille/core/languages.py, as a value or a mapping key; others are refused by name.
LanguageCode = Annotated[str, AfterValidator(check_code)]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Schedule(StrictModel):
    """When a source is crawled: ``every: 30m`` or ``cron: "0 6 * * *"``, with optional jitter."""

    every: Duration | None = None
    cron: str | None = None
    jitter: Duration = "2m"

    @model_validator(mode="after")
    def _one_kind(self) -> Schedule:
        if (self.every is None) == (self.cron is None):
            raise ValueError("give exactly one of 'every' (e.g. 30m) or 'cron' (e.g. '0 6 * * *')")
        if self.cron is not None and len(self.cron.split()) != 5:
            raise ValueError(f"cron {self.cron!r} needs 5 fields: minute hour day month weekday")
        return self


class Source(StrictModel):
    """One place Veille looks for articles: a feed, a news sitemap or a search endpoint."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=80)]
    type: Literal["feed", "sitemap", "search"] = "feed"
    urls: Annotated[list[HttpUrl], Field(min_length=1)]
    language: LanguageCode | None = None
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    schedule: Schedule = Schedule(every="1h")
    topics: list[str] | None = None
    enabled: bool = True
    # How long one crawl of this source may run (e.g. 45m); VEILLE_CRAWL_TIME_LIMIT when unset.
    time_limit: Duration | None = None

    @field_validator("urls", mode="before")
    @classmethod
    def _single_url(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("time_limit")
    @classmethod
    def _positive_limit(cls, value: str | None) -> str | None:
        if value is not None and parse_duration(value).total_seconds() < 1:
            raise ValueError(f"time_limit {value!r} must be 1s or more, e.g. 45m")
        return value

    @property
    def url_strings(self) -> list[str]:
        return [str(url) for url in self.urls]

    @property
    def time_limit_delta(self) -> timedelta | None:
        return parse_duration(self.time_limit) if self.time_limit else None


class SourcesFile(StrictModel):
    sources: list[Source]

    @model_validator(mode="after")
    def _unique_names(self) -> SourcesFile:
        seen: set[str] = set()
        for index, source in enumerate(self.sources):
            if source.name in seen:
                raise ValueError(f"sources.{index}.name: {source.name!r} is used twice")
            seen.add(source.name)
        return self


RuleName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=80)]


class Rule(StrictModel):
    """One way an article shows it belongs to a topic: a query (veille/core/query.py). ``weight``
    only ranks articles (``relevance.score`` adds up the weights of the rules that matched)."""

    query: Annotated[str, Field(min_length=1)]
    weight: Annotated[float, Field(gt=0)] = 1.0


def _rules(value: Any) -> Any:
    """``name: query`` is short for ``name: {query: query}``."""
    if isinstance(value, dict):
        return {
            name: {"query": rule} if isinstance(rule, str) else rule for name, rule in value.items()
        }
    return value


_OLD_FORMAT = (
    "weighted terms, exclude and min_score were replaced by rules: give each way of being on "
    'topic a name and a query, e.g. rules: {chinese-station: \'"police station" NEAR/5 '
    "(Chinese OR China)'} (README: Topics and relevance)"
)


class LanguageRules(StrictModel):
    """A language's rules, and the groups (named parts, ``@name`` in a rule) they share."""

    groups: dict[RuleName, Annotated[str, Field(min_length=1)]] = {}
    rules: Annotated[dict[RuleName, Rule], Field(min_length=1)]

    @model_validator(mode="before")
    @classmethod
    def _not_the_old_format(cls, value: Any) -> Any:
        if isinstance(value, dict) and {"terms", "exclude"} & set(value):
            raise ValueError(_OLD_FORMAT)
        return value

    @field_validator("rules", mode="before")
    @classmethod
    def _plain_rules(cls, value: Any) -> Any:
        return _rules(value)


class Glossary(StrictModel):
    """Names kept verbatim through translation, and fixed translations per source language."""

    keep: list[str] = []
    translate: dict[LanguageCode, dict[str, str]] = {}


ACTION_NAMES = (
    "reported",
    "denial",
    "legislation",
    "investigation",
    "closure",
    "expulsion",
    "arrest_or_charge",
)
Action = Literal[
    "reported", "denial", "legislation", "investigation", "closure", "expulsion", "arrest_or_charge"
]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]


class Authority(StrictModel):
    """A police, justice or government body, by its name in the register and per language the
    names it goes by (each a phrase); a generic body (``kind``: "foreign-ministry") is also
    named by its kind's words when the sentence is about its ``country``."""

    name: Annotated[str, Field(min_length=1)]
    country: CountryCode | None = None
    kind: RuleName | None = None
    names: dict[LanguageCode, list[Annotated[str, Field(min_length=1)]]] = {}

    def query(self, language: str) -> str:
        """Its names in ``language`` as one query: any of the phrases."""
        names = self.names.get(language, [])  # type: ignore[call-overload]
        return " OR ".join('"' + name.replace('"', "") + '"' for name in names)


class EventLanguage(StrictModel):
    """One language's event rules: the words that name a station (and the plainer ones that
    name one right before its place), a query per action, and the words of each generic kind
    of body."""

    station: Annotated[str, Field(min_length=1)]
    premises: str | None = None
    actions: dict[Action, Annotated[str, Field(min_length=1)]] = {}
    bodies: dict[RuleName, Annotated[str, Field(min_length=1)]] = {}


class Events(StrictModel):
    """Where and what happened (veille/core/events.py): ``origin``, the country the stations answer
    to (its places are never stations); ``actions`` from weakest to strongest."""

    origin: CountryCode | None = None
    actions: list[Action] = list(ACTION_NAMES)
    languages: dict[LanguageCode, EventLanguage] = {}
    authorities: list[Authority] = []


class Topic(StrictModel):
    """What the monitor looks for: named rules per language, and names for any language.

    An article belongs to the topic when one rule of its language, or of ``any_language``,
    matches its title and text (veille/core/topics.py).
    """

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    title: str
    any_language: dict[RuleName, Rule] = {}
    languages: dict[LanguageCode, LanguageRules]
    glossary: Glossary = Glossary()
    events: Events | None = None

    @model_validator(mode="before")
    @classmethod
    def _not_the_old_format(cls, value: Any) -> Any:
        if isinstance(value, dict) and (
            "min_score" in value or isinstance(value.get("any_language"), list)
        ):
            raise ValueError(_OLD_FORMAT)
        return value

    @field_validator("any_language", mode="before")
    @classmethod
    def _plain_rules(cls, value: Any) -> Any:
        return _rules(value)

    @model_validator(mode="after")
    def _queries_usable(self) -> Topic:
        for language, rules in self.languages.items():
            groups: dict[str, Node] = {}
            for name, text in rules.groups.items():
                where = f"languages.{language}.groups.{name}"
                groups[name] = _checked(text, groups, language, where, f"group {name!r}")
        for language, key, name, rule in self.rule_entries():
            checked = (language,) if language != "any" else tuple(self.languages)
            for each in checked:
                groups = self.groups(each) if language != "any" else {}
                _checked(rule.query, groups, each, f"{key}.{name}", f"rule {name!r}")
        for where, language, what, text in self.event_queries():
            _checked(text, self.groups(language), language, where, what)
        return self

    def event_queries(self) -> list[tuple[str, str, str, str]]:
        """Every query of ``events`` as ``(key, language, what, query)``."""
        if self.events is None:
            return []
        found = []
        for language, rules in self.events.languages.items():
            key = f"events.languages.{language}"
            found.append((f"{key}.station", language, "station words", rules.station))
            if rules.premises:
                found.append((f"{key}.premises", language, "premises words", rules.premises))
            found += [(f"{key}.actions.{name}", language, f"action {name!r}", text)
                      for name, text in rules.actions.items()]  # fmt: skip
            found += [(f"{key}.bodies.{name}", language, f"body {name!r}", text)
                      for name, text in rules.bodies.items()]  # fmt: skip
        for number, authority in enumerate(self.events.authorities):
            for language in authority.names:
                where = f"events.authorities.{number}.names.{language}"
                what = f"authority {authority.name!r}"
                found.append((where, language, what, authority.query(language)))
        return found

    def groups(self, language: str) -> dict[str, Node]:
        """The groups of ``language`` by name, parsed (each may use the ones before it)."""
        rules = self.languages.get(language)  # type: ignore[call-overload]
        groups: dict[str, Node] = {}
        for name, text in (rules.groups if rules else {}).items():
            groups[name] = parse(text, groups)
        return groups

    def rule_query(self, language: str, rule: Rule) -> Node:
        """A rule parsed for ``language`` (its groups known; none for ``any_language``)."""
        return parse(rule.query, self.groups(language) if language != "any" else {})

    def rule_entries(self) -> list[tuple[str, str, str, Rule]]:
        """Every rule as ``(language or "any", its key in the file, name, rule)``, file order."""
        entries = [
            (language, f"languages.{language}.rules", name, rule)
            for language, rules in self.languages.items()
            for name, rule in rules.rules.items()
        ]
        entries += [("any", "any_language", name, rule) for name, rule in self.any_language.items()]
        return entries


def _checked(text: str, groups: dict[str, Node], language: str, where: str, what: str) -> Node:
    """``text`` parsed, or a ValueError naming ``where`` (its key), ``what`` and the position."""
    try:
        node = parse(text, groups)
    except QuerySyntaxError as exc:
        raise ValueError(f"{where}: {what}: {exc}") from exc
    for position, problem in problems(node, language):
        raise ValueError(f"{where}: {what}: at character {position}: {problem} (in {language})")
    return node


# --- Loading with file and line in every error ---------------------------------------------


def line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """Line (1-based) of the YAML node at a pydantic error location, or the nearest parent."""
    line = node.start_mark.line + 1 if node is not None else None
    for number, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == part), None)
            if pair is None:
                break
            if loc[number + 1 : number + 2] == ("[key]",):  # the key itself is wrong
                return pair[0].start_mark.line + 1
            node = pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


def _key(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc if part != "[key]") or "(top level)"


def load_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            path, "(file)", "file not found", "create it or pass --config DIR"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(path, "(file)", "not UTF-8 text", "save the file as UTF-8") from exc
    try:
        return yaml.safe_load(text), yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError(
            path,
            "(syntax)",
            f"invalid YAML: {getattr(exc, 'problem', exc)}",
            "check indentation and quoting",
            line=mark.line + 1 if mark else None,
        ) from exc


_HINTS = {
    "extra_forbidden": "remove it or check its spelling",
    "missing": "add it",
    "literal_error": "use one of the listed values",
    "url_parsing": "write a full URL such as https://example.org/feed.xml",
    "url_scheme": "use an http or https URL",
    "string_pattern_mismatch": "use lowercase letters, digits, '-' and '_'",
}
_FIELD_HINTS = {
    "country": "use the two-letter ISO 3166 code in capitals, e.g. FR",
    "type": "use feed, sitemap or search",
}


def validate_model(model: type[BaseModel], data: Any, path: Path, root: yaml.Node | None) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(part for part in error["loc"] if not str(part).startswith("function-"))
        message = error["msg"].removeprefix("Value error, ")
        # Errors raised by a whole-object check name their key in the message ("sources.3.name: …").
        nested = re.match(r"^([\w.-]+): (.*)$", message)
        if nested:
            loc = tuple(int(p) if p.isdigit() else p for p in nested.group(1).split("."))
            message = nested.group(2)
        raise ConfigError(
            path,
            _key(loc),
            message,
            _FIELD_HINTS.get(str(loc[-1]) if loc else "", _HINTS.get(error["type"], "")),
            line=line_of(root, loc),
        ) from exc


@dataclass(frozen=True)
class Config:
    """The validated operator configuration from one folder."""

    directory: Path
    sources: tuple[Source, ...]
    topics: tuple[Topic, ...]

    def source(self, name: str) -> Source:
        for source in self.sources:
            if source.name == name:
                return source
        known = ", ".join(s.name for s in self.sources) or "none"
        raise ConfigError(
            self.directory / "sources.yaml", name, "no such source", f"known sources: {known}"
        )

    def topics_for(self, source: Source) -> tuple[Topic, ...]:
        if source.topics is None:
            return self.topics
        return tuple(t for t in self.topics if t.name in source.topics)


def config_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The config folder: explicit argument, else ``VEILLE_CONFIG``, else ``./config``."""
    return Path(explicit or os.environ.get("VEILLE_CONFIG") or "config").resolve()


def load_config(directory: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate ``sources.yaml`` and ``topics/*.yaml`` from the config folder."""
    folder = config_dir(directory)
    if not folder.is_dir():
        raise ConfigError(folder, "(folder)", "config folder not found", "pass --config DIR")
    sources_path = folder / "sources.yaml"
    data, root = load_yaml(sources_path)
    if data is None:
        data = {"sources": []}
    sources: SourcesFile = validate_model(SourcesFile, data, sources_path, root)

    topics: list[Topic] = []
    for path in sorted((folder / "topics").glob("*.y*ml")):
        data, root = load_yaml(path)
        topics.append(validate_model(Topic, data, path, root))
    names = [t.name for t in topics]
    duplicated = {n for n in names if names.count(n) > 1}
    if duplicated:
        raise ConfigError(folder / "topics", "name", f"topic {duplicated.pop()!r} defined twice")
    if not topics:
        raise ConfigError(
            folder / "topics", "(folder)", "no topic file", "add topics/<name>.yaml (see README)"
        )
    for index, source in enumerate(sources.sources):
        unknown = set(source.topics or ()) - set(names)
        if unknown:
            raise ConfigError(
                sources_path,
                f"sources.{index}.topics",
                f"unknown topic {sorted(unknown)[0]!r}",
                f"known topics: {', '.join(names)}",
                line=line_of(root, ("sources", index, "topics")),
            )
    return Config(folder, tuple(sources.sources), tuple(topics))


@lru_cache(maxsize=8)
def cached_config(directory: str) -> Config:
    """load_config, once per process and folder (components of one crawl share it)."""
    return load_config(directory)


# --- Environment -------------------------------------------------------------------------


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError("(environment)", name, f"{raw!r} is not a boolean", "use true or false")


def env_secret(name: str) -> str | None:
    """A secret from the variable ``name``, or from the file that ``<name>_FILE`` names (as
    Docker hands secrets over: Compose's passwords, veille/ops/compose_passwords.py); not both."""
    value = os.environ.get(name) or None
    path = os.environ.get(f"{name}_FILE")
    if not path:
        return value
    if value is not None:
        raise ConfigError(
            "(environment)", name, f"both {name} and {name}_FILE are set", "unset one of them"
        )
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except OSError as exc:
        raise ConfigError(
            "(environment)", f"{name}_FILE", f"cannot read {path} ({exc.strerror})",
            "name a readable file holding the secret, or set the variable itself",
        ) from None  # fmt: skip


@dataclass(frozen=True)
class Environment:
    """Connection settings and secrets, read from ``VEILLE_*`` environment variables only."""

    es_url: str = "http://127.0.0.1:9200"
    es_user: str | None = None
    es_password: str | None = field(default=None, repr=False)
    es_api_key: str | None = field(default=None, repr=False)
    es_ca_certs: str | None = None
    es_verify_certs: bool = True
    index_prefix: str = "veille"
    data_dir: Path = Path("data")
    # The places gazetteer's cache (veille/core/gazetteer.py): files named by what they are built
    # from, so data folders may share one.
    gazetteer_dir: Path = Path("data/gazetteer")

    @classmethod
    def from_env(cls) -> Environment:
        prefix = os.environ.get("VEILLE_INDEX_PREFIX", "veille")
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", prefix):
            raise ConfigError(
                "(environment)",
                "VEILLE_INDEX_PREFIX",
                f"{prefix!r} is not a valid index name",
                "use lowercase letters, digits, '-' and '_'",
            )
        es_url = os.environ.get("VEILLE_ES_URL") or cls.es_url
        if "@" in urlsplit(es_url).netloc:
            raise ConfigError(
                "(environment)",
                "VEILLE_ES_URL",
                "the URL holds credentials, which would end up in logs and error messages",
                "remove them from the URL and set VEILLE_ES_USER and VEILLE_ES_PASSWORD "
                "(or VEILLE_ES_API_KEY)",
            )
        data_dir = Path(os.environ.get("VEILLE_DATA_DIR") or "data").resolve()
        return cls(
            es_url=es_url,
            es_user=os.environ.get("VEILLE_ES_USER") or None,
            es_password=env_secret("VEILLE_ES_PASSWORD"),
            es_api_key=os.environ.get("VEILLE_ES_API_KEY") or None,
            es_ca_certs=os.environ.get("VEILLE_ES_CA_CERTS") or None,
            es_verify_certs=_flag("VEILLE_ES_VERIFY_CERTS", True),
            index_prefix=prefix,
            data_dir=data_dir,
            gazetteer_dir=Path(
                os.environ.get("VEILLE_GAZETTEER_DIR") or data_dir / "gazetteer"
            ).resolve(),
        )
