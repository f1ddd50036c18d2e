"""Kibana: the saved objects analysts open (data views, searches, dashboards) and their import.

In:  ``index_config/kibana/*.ndjson``, saved objects in Kibana 8.x export form with ``{prefix}``
     where the index prefix goes; the index templates in ``index_config/`` they are checked
     against; ``VEILLE_KIBANA_URL`` and the Elasticsearch credentials of
     :class:`veille.core.config.Environment` (Kibana authenticates against the same users).
Out: :func:`setup_kibana` sets the ``kibana_system`` password when ``VEILLE_KIBANA_SYSTEM_PASSWORD``
     is given, waits for Kibana, checks every object against the templates, and imports them
     all in one ``POST /api/saved_objects/_import?overwrite=true`` (multipart field ``file``,
     ``kbn-xsrf`` header), so running it again updates the same objects.

A field renamed in a template and not in a saved object, or the other way round, is refused
here (:func:`check_saved_objects`) before anything reaches Kibana.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from elasticsearch import ApiError, Elasticsearch

from veille.core.config import ConfigError, Environment, env_secret
from veille.core.es import INDEX_CONFIG, load_template
from veille.core.languages import PIVOT

SAVED_OBJECTS = INDEX_CONFIG / "kibana"
IMPORT_PATH = "/api/saved_objects/_import?overwrite=true"
STATUS_PATH = "/api/status"
# Kibana's own status levels; it serves its API at every level but these two.
DOWN_LEVELS = ("unavailable", "critical")
DEFAULT_WAIT_S = 300.0

# Field types Elasticsearch can sort and aggregate on (doc values); ``text`` is not one of them.
AGGREGATABLE_TYPES = frozenset(
    {"keyword", "date", "date_nanos", "boolean", "ip", "long", "integer", "short", "byte",
     "double", "float", "half_float", "scaled_float"}
)  # fmt: skip

_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
_KQL_FIELD = re.compile(r"(?<![\w.*])([A-Za-z_@][\w.@]*)\s*:")


class KibanaError(Exception):
    """Kibana could not be set up: what went wrong and how to fix it."""


@dataclass(frozen=True)
class KibanaSettings:
    """Where Kibana is and how long to wait for it; credentials are Elasticsearch's."""

    url: str
    wait_s: float = DEFAULT_WAIT_S
    kibana_system_password: str | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def from_env(cls) -> KibanaSettings:
        url = (os.environ.get("VEILLE_KIBANA_URL") or "").rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(
                "(environment)",
                "VEILLE_KIBANA_URL",
                f"{url!r} is not Kibana's address" if url else "not set",
                "set it to Kibana's URL, e.g. VEILLE_KIBANA_URL=http://127.0.0.1:5601",
            )
        raw_wait = os.environ.get("VEILLE_KIBANA_WAIT") or str(DEFAULT_WAIT_S)
        try:
            wait_s = float(raw_wait)
        except ValueError:
            raise ConfigError(
                "(environment)",
                "VEILLE_KIBANA_WAIT",
                f"{raw_wait!r} is not a number of seconds",
                "write e.g. VEILLE_KIBANA_WAIT=300",
            ) from None
        password = env_secret("VEILLE_KIBANA_SYSTEM_PASSWORD")
        return cls(url=url, wait_s=wait_s, kibana_system_password=password)


# --- the saved objects ---------------------------------------------------------------------


def saved_object_files() -> list[Path]:
    return sorted(SAVED_OBJECTS.glob("*.ndjson"))


def load_saved_objects(prefix: str) -> list[dict[str, Any]]:
    """Every saved object in ``index_config/kibana/``, with the index prefix and the pivot
    language (``{pivot}``, veille/core/languages.py) filled in."""
    objects = []
    for path in saved_object_files():
        text = path.read_text(encoding="utf-8").replace("{prefix}", prefix)
        text = text.replace("{pivot}", PIVOT)
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                objects.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise KibanaError(f"{path}:{number}: not a JSON object ({exc.msg})") from None
    return objects


def to_ndjson(objects: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objects).encode("utf-8")


def _json_attribute(obj: dict[str, Any], *path: str) -> Any:
    """A JSON-encoded attribute (``visState``, ``searchSourceJSON``...) decoded, or ``{}``."""
    value: Any = obj.get("attributes", {})
    for key in path:
        value = value.get(key, {}) if isinstance(value, dict) else {}
    return json.loads(value) if isinstance(value, str) and value else {}


def _query_fields(search_source: dict[str, Any]) -> set[str]:
    fields = set()
    query = search_source.get("query", {}).get("query", "")
    if isinstance(query, str):
        fields |= set(_KQL_FIELD.findall(_QUOTED.sub('""', query)))
    for item in search_source.get("filter", []):
        key = item.get("meta", {}).get("key")
        if key:
            fields.add(key)
    return fields


def aggregated_fields(obj: dict[str, Any]) -> set[str]:
    """The fields one saved object sorts or aggregates on: time field, sort, aggregations."""
    attributes = obj.get("attributes", {})
    fields = set()
    if obj["type"] == "index-pattern" and attributes.get("timeFieldName"):
        fields.add(attributes["timeFieldName"])
    if obj["type"] == "search":
        fields |= {s[0] for s in attributes.get("sort", [])}
    if obj["type"] == "visualization":
        for agg in _json_attribute(obj, "visState").get("aggs", []):
            if agg.get("params", {}).get("field"):
                fields.add(agg["params"]["field"])
    for layer in _map_layers(obj):
        source = layer.get("sourceDescriptor") or {}
        if source.get("sortField"):
            fields.add(source["sortField"])
        fields |= {
            join["right"]["term"]
            for join in layer.get("joins") or ()
            if "term" in join.get("right", {})
        }
        # A style by a field's values reads them with an aggregation (its range or categories).
        for prop in ((layer.get("style") or {}).get("properties") or {}).values():
            field = (prop.get("options") or {}).get("field") or {}
            if prop.get("type") == "DYNAMIC" and field.get("origin") == "source":
                fields.add(field["name"])
    return fields


def _map_layers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """The layers of a Kibana map (``layerListJSON``), or none for other objects."""
    if obj["type"] != "map":
        return []
    text = obj.get("attributes", {}).get("layerListJSON") or "[]"
    return json.loads(text)


def referenced_fields(obj: dict[str, Any]) -> set[str]:
    """Every index field one saved object reads: the aggregated ones, columns, queries, filters."""
    fields = aggregated_fields(obj)
    fields |= _query_fields(_json_attribute(obj, "kibanaSavedObjectMeta", "searchSourceJSON"))
    if obj["type"] == "search":
        fields |= {c for c in obj["attributes"].get("columns", []) if c != "_source"}
    for layer in _map_layers(obj):
        source = layer.get("sourceDescriptor") or {}
        if source.get("type") == "ES_SEARCH":
            fields.add(source["geoField"])
            fields |= set(source.get("tooltipProperties") or ())
    return fields


def mapped_fields(mapping: dict[str, Any], parent: str = "") -> dict[str, str]:
    """Each field path of an index mapping with its type, sub-fields (``title.keyword``) too."""
    fields = {}
    for name, spec in mapping.get("properties", {}).items():
        path = f"{parent}{name}"
        if "properties" in spec:
            fields.update(mapped_fields(spec, f"{path}."))
        else:
            fields[path] = _field_type(spec)
            for sub, sub_spec in spec.get("fields", {}).items():
                fields[f"{path}.{sub}"] = _field_type(sub_spec)
    return fields


def _field_type(spec: dict[str, Any]) -> str:
    kind = spec.get("type", "object")
    return f"{kind} (doc_values off)" if spec.get("doc_values") is False else kind


def check_saved_objects(objects: list[dict[str, Any]], prefix: str) -> list[str]:
    """What is wrong with the saved objects, as sentences; empty when they can be imported.

    Every reference must point to an object of the set, every data view to one of our index
    aliases (``<prefix>-<template>``), every field an object reads to a field of that template,
    and every field it sorts or aggregates on to one Elasticsearch can aggregate.
    """
    problems = []
    by_key = {(o["type"], o["id"]): o for o in objects}
    template_fields: dict[str, dict[str, str]] = {}
    for obj in objects:
        if obj["type"] != "index-pattern":
            continue
        title = obj["attributes"]["title"]
        name = title.removeprefix(f"{prefix}-")
        template = INDEX_CONFIG / f"{name}.json"
        if name == title or not template.exists():
            problems.append(
                f"data view {title!r} is not an index alias of this project "
                f"(expected {prefix}-<name> with index_config/<name>.json)"
            )
            continue
        mappings = load_template(name, prefix)["template"]["mappings"]
        template_fields[obj["id"]] = mapped_fields(mappings)
    for obj in objects:
        label = f"{obj['type']} {obj['attributes'].get('title', obj['id'])!r}"
        data_views = {obj["id"]} if obj["type"] == "index-pattern" else set()
        for ref in obj.get("references", []):
            if (ref["type"], ref["id"]) not in by_key:
                problems.append(f"{label} refers to {ref['type']} {ref['id']!r}, which is missing")
            elif ref["type"] == "index-pattern":
                data_views.add(ref["id"])
        for data_view in data_views & template_fields.keys():
            alias = by_key[("index-pattern", data_view)]["attributes"]["title"]
            mapped = template_fields[data_view]
            for field in sorted(referenced_fields(obj) - mapped.keys()):
                problems.append(f"{label} uses field {field!r}, which {alias} does not map")
            for field in sorted(aggregated_fields(obj) & mapped.keys()):
                if mapped[field] not in AGGREGATABLE_TYPES:
                    problems.append(
                        f"{label} sorts or aggregates on {field!r}, a {mapped[field]} field "
                        f"of {alias}: use a keyword, date or number field with doc values"
                    )
    return problems


# --- Kibana's HTTP API ---------------------------------------------------------------------


def _auth_headers(env: Environment) -> dict[str, str]:
    if env.es_api_key:
        return {"Authorization": f"ApiKey {env.es_api_key}"}
    if env.es_user:
        return urllib3.make_headers(basic_auth=f"{env.es_user}:{env.es_password or ''}")
    return {}


def _http(env: Environment) -> urllib3.PoolManager:
    options: dict[str, Any] = {"timeout": urllib3.Timeout(connect=5, read=60), "retries": False}
    if not env.es_verify_certs:
        options["cert_reqs"] = "CERT_NONE"
    elif env.es_ca_certs:
        options["ca_certs"] = env.es_ca_certs
    return urllib3.PoolManager(**options)


def wait_for_kibana(http: urllib3.PoolManager, settings: KibanaSettings, headers: dict) -> str:
    """Poll ``GET /api/status`` until Kibana serves its API; return its version."""
    deadline = time.monotonic() + settings.wait_s
    last = "no answer yet"
    while True:
        try:
            response = http.request("GET", settings.url + STATUS_PATH, headers=headers)
        except urllib3.exceptions.HTTPError as exc:
            last = f"cannot connect ({exc.__class__.__name__})"
        else:
            if response.status in (401, 403):
                raise KibanaError(
                    f"Kibana at {settings.url} refused the credentials (HTTP {response.status}): "
                    "check VEILLE_ES_USER/VEILLE_ES_PASSWORD or VEILLE_ES_API_KEY"
                )
            if response.status == 200:
                body = json.loads(response.data or b"{}")
                level = body.get("status", {}).get("overall", {}).get("level", "")
                if level not in DOWN_LEVELS:
                    return body.get("version", {}).get("number", "unknown")
                last = f"status {level}"
            else:
                last = f"HTTP {response.status}"
        if time.monotonic() >= deadline:
            raise KibanaError(
                f"Kibana at {settings.url} was not ready after {settings.wait_s:.0f}s ({last}): "
                "check that it is running and VEILLE_KIBANA_URL, or wait longer with "
                "VEILLE_KIBANA_WAIT=SECONDS"
            )
        time.sleep(min(2.0, max(0.1, settings.wait_s / 20)))


def import_saved_objects(
    http: urllib3.PoolManager, settings: KibanaSettings, headers: dict, objects: list[dict]
) -> int:
    """Import ``objects`` in one request, overwriting earlier copies; return how many landed."""
    body, content_type = urllib3.encode_multipart_formdata(
        {"file": ("veille.ndjson", to_ndjson(objects), "application/ndjson")}
    )
    try:
        response = http.request(
            "POST",
            settings.url + IMPORT_PATH,
            body=body,
            headers={**headers, "kbn-xsrf": "veille", "Content-Type": content_type},
        )
    except urllib3.exceptions.HTTPError as exc:
        raise KibanaError(f"the import request to {settings.url} failed: {exc}") from None
    try:
        answer = json.loads(response.data or b"{}")
    except json.JSONDecodeError:
        answer = {"message": response.data[:200].decode("utf-8", "replace")}
    if response.status != 200:
        raise KibanaError(
            f"Kibana refused the saved objects import (HTTP {response.status}): "
            f"{answer.get('message', answer)}"
        )
    if not answer.get("success"):
        failures = [
            f"{e.get('type')} {e.get('meta', {}).get('title') or e.get('title') or e.get('id')!r}: "
            f"{e.get('error', {}).get('type', 'error')}"
            for e in answer.get("errors", [])
        ]
        raise KibanaError(
            f"Kibana imported {answer.get('successCount', 0)} of {len(objects)} saved objects; "
            f"failed: {'; '.join(failures) or answer}"
        )
    return int(answer.get("successCount", len(objects)))


def set_kibana_system_password(client: Elasticsearch, password: str) -> None:
    """Give the built-in ``kibana_system`` user the password Kibana is configured with."""
    try:
        client.security.change_password(username="kibana_system", password=password)
    except ApiError as exc:
        raise KibanaError(
            f"could not set the kibana_system password ({exc.message}): Elasticsearch must run "
            "with security on (xpack.security.enabled) and VEILLE_ES_USER must be allowed to "
            "manage users (elastic is)"
        ) from None


def setup_kibana(env: Environment, client: Elasticsearch) -> Iterator[str]:
    """Prepare Kibana for analysts; yields one line per step done. Safe to run again."""
    settings = KibanaSettings.from_env()
    objects = load_saved_objects(env.index_prefix)
    problems = check_saved_objects(objects, env.index_prefix)
    if problems:
        raise KibanaError(
            f"the saved objects in {SAVED_OBJECTS} do not match the index templates: "
            + "; ".join(problems)
        )
    if settings.kibana_system_password:
        set_kibana_system_password(client, settings.kibana_system_password)
        yield "kibana_system: password set"
    http = _http(env)
    headers = _auth_headers(env)
    version = wait_for_kibana(http, settings, headers)
    yield f"kibana {version} at {settings.url}: ready"
    count = import_saved_objects(http, settings, headers, objects)
    dashboards = [o["attributes"]["title"] for o in objects if o["type"] == "dashboard"]
    yield f"kibana: {count} saved objects imported (dashboards: {', '.join(dashboards)})"
