"""The Elasticsearch client factory and index set-up: the only place that knows how to connect.

In:  :class:`veille.core.config.Environment` (URL, credentials, CA bundle, index prefix).
Out: a configured ``elasticsearch.Elasticsearch`` client; ``setup_indices`` installs the index
     templates from ``index_config/`` and creates each alias's first index, idempotently.

Request and response bodies (JSON, and the NDJSON of ``bulk`` and ``msearch``) are encoded and
decoded with orjson, faster than the standard library on article-sized documents (README,
Performance); a body orjson refuses (a lone surrogate in a string, an integer over 64 bits) is
encoded by the standard library instead, exactly as the client would have.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from elasticsearch import BadRequestError, Elasticsearch, NotFoundError, helpers
from elasticsearch.serializer import JsonSerializer, NdjsonSerializer

from veille.core import languages
from veille.core.config import Environment
from veille.core.outages import quiet_client_logs

INDEX_CONFIG = Path(__file__).resolve().parents[2] / "index_config"


class _Orjson:
    """``json_dumps``/``json_loads`` of the client's serializers, by orjson where it can."""

    def json_dumps(self, data: Any) -> bytes:
        try:
            return orjson.dumps(data, default=self.default, option=orjson.OPT_SERIALIZE_NUMPY)  # type: ignore[attr-defined]
        except (TypeError, orjson.JSONEncodeError):
            return super().json_dumps(data)  # type: ignore[misc]

    def json_loads(self, data: bytes) -> Any:
        return orjson.loads(data)


class FastJsonSerializer(_Orjson, JsonSerializer):
    pass


class FastNdjsonSerializer(_Orjson, NdjsonSerializer):
    pass


SERIALIZERS = {
    FastJsonSerializer.mimetype: FastJsonSerializer(),
    FastNdjsonSerializer.mimetype: FastNdjsonSerializer(),
}


@dataclass(frozen=True)
class IndexNames:
    """Alias names for one index prefix (tests use their own prefix)."""

    prefix: str

    @property
    def articles(self) -> str:
        return f"{self.prefix}-articles"

    @property
    def crawls(self) -> str:
        return f"{self.prefix}-crawls"

    @property
    def alerts(self) -> str:
        return f"{self.prefix}-alerts"

    @property
    def notifications(self) -> str:
        return f"{self.prefix}-notifications"

    @property
    def clusters(self) -> str:
        return f"{self.prefix}-clusters"

    @property
    def verdicts(self) -> str:
        return f"{self.prefix}-verdicts"

    @property
    def rejected(self) -> str:
        return f"{self.prefix}-rejected"

    @property
    def stations(self) -> str:
        return f"{self.prefix}-stations"


def make_client(env: Environment | None = None, **options: Any) -> Elasticsearch:
    """A client for the configured cluster. TLS is verified unless told otherwise."""
    env = env or Environment.from_env()
    kwargs: dict[str, Any] = {
        "request_timeout": 30,
        "retry_on_timeout": True,
        "max_retries": 3,
        "serializers": SERIALIZERS,
    }
    if env.es_api_key:
        kwargs["api_key"] = env.es_api_key
    elif env.es_user:
        kwargs["basic_auth"] = (env.es_user, env.es_password or "")
    if env.es_url.startswith("https"):
        kwargs["verify_certs"] = env.es_verify_certs
        if env.es_ca_certs:
            kwargs["ca_certs"] = env.es_ca_certs
    kwargs.update(options)
    # The client logs each failed attempt of each request with a traceback; callers report an
    # outage once (veille/core/outages.py).
    quiet_client_logs()
    return Elasticsearch(env.es_url, **kwargs)


def load_template(name: str, prefix: str) -> dict[str, Any]:
    """An index template body from ``index_config/<name>.json`` with ``{prefix}`` filled in.

    The per-language parts of the articles template (analyzers, ``title_<code>``/``text_<code>``,
    ``translation.<code>``, the default query fields) come from veille/core/languages.py; the alerts
    template gets the articles' analysis and fields (a percolator parses each rule with the
    mapping of the documents it will see), so neither is written twice.
    """
    text = (INDEX_CONFIG / f"{name}.json").read_text(encoding="utf-8")
    body = json.loads(text.replace("{prefix}", prefix))
    template = body["template"]
    if name == "articles":
        settings = template["settings"]
        settings["analysis"] = {**settings["analysis"], **languages.analysis_settings()}
        settings["query"]["default_field"] += languages.analysed_fields()
        template["mappings"]["properties"].update(languages.mapping_properties())
    elif name == "alerts":
        articles = load_template("articles", prefix)["template"]
        template["settings"]["analysis"] = articles["settings"]["analysis"]
        own = template["mappings"]["properties"]
        template["mappings"]["properties"] = {**articles["mappings"]["properties"], **own}
    return body


class MappingConflict(RuntimeError):
    """An existing index whose mapping the current templates cannot update in place."""


def _add_missing_analysis(client: Elasticsearch, alias: str, template: dict[str, Any]) -> None:
    """Define on the alias's indices the analyzers and filters the template has and they lack
    (a language added to veille/core/languages.py), so that its fields can be mapped. Elasticsearch
    takes new analyzers only on a closed index: each such index is closed for a moment."""
    wanted = template["template"]["settings"].get("analysis", {})
    found = client.indices.get_settings(index=alias, name="index.analysis*")
    for index, body in found.items():
        have = body["settings"].get("index", {}).get("analysis", {})
        missing = {
            section: {
                name: spec for name, spec in specs.items() if name not in have.get(section, {})
            }
            for section, specs in wanted.items()
        }
        missing = {section: specs for section, specs in missing.items() if specs}
        if not missing:
            continue
        client.indices.close(index=index)
        try:
            client.indices.put_settings(index=index, settings={"analysis": missing})
        finally:
            client.indices.open(index=index, wait_for_active_shards="1")


def _ensure_alias(client: Elasticsearch, alias: str, template: dict[str, Any]) -> str:
    """Create ``<alias>-000001`` behind the alias, or push the analysis and mapping to the
    existing indices."""
    if client.indices.exists_alias(name=alias):
        mappings = template["template"]["mappings"]
        try:
            _add_missing_analysis(client, alias, template)
            client.indices.put_mapping(index=alias, properties=mappings["properties"])
        except BadRequestError as exc:
            cause = exc.body.get("error", {}).get("reason", str(exc)) if exc.body else str(exc)
            raise MappingConflict(
                f"{alias}: its indices were created by an earlier Veille and cannot take the "
                f"current mapping in place ({cause}). Existing articles are not migrated: use "
                f"another VEILLE_INDEX_PREFIX, or delete the indices {alias}-* and crawl again."
            ) from exc
        return "updated"
    try:
        client.indices.create(index=f"{alias}-000001", aliases={alias: {"is_write_index": True}})
    except BadRequestError as exc:
        # Another process set up the same prefix a moment ago: that is what we wanted.
        if exc.error != "resource_already_exists_exception":
            raise
        return "updated"
    return "created"


def template_names() -> list[str]:
    """The index templates in ``index_config/``: ``<name>.json`` backs ``<prefix>-<name>``."""
    return sorted(path.stem for path in INDEX_CONFIG.glob("*.json"))


def setup_indices(client: Elasticsearch, prefix: str) -> dict[str, str]:
    """Install templates and aliases. Safe to run any number of times; returns what it did."""
    done: dict[str, str] = {}
    for template_name in template_names():
        alias = f"{prefix}-{template_name}"
        body = load_template(template_name, prefix)
        client.indices.put_index_template(name=alias, **body)
        done[alias] = _ensure_alias(client, alias, body)
    client.cluster.health(wait_for_status="yellow", timeout="30s")
    return done


def delete_indices(client: Elasticsearch, prefix: str) -> None:
    """Remove every index and template of a prefix (tests and ``veille setup --reset``)."""
    # Deleting by wildcard is refused by default (action.destructive_requires_name): name them.
    names = list(
        client.indices.get(index=f"{prefix}-*", allow_no_indices=True, expand_wildcards="all")
    )
    if names:
        client.indices.delete(index=",".join(names))
    try:
        templates = client.indices.get_index_template(name=f"{prefix}-*")
    except NotFoundError:
        return
    for item in templates["index_templates"]:
        client.indices.delete_index_template(name=item["name"])


def delete_matching(
    client: Elasticsearch, index: str, query: dict[str, Any], page_size: int = 1000
) -> int:
    """Delete the documents ``query`` finds, ``page_size`` at a time; returns how many went.

    The local node has no ``_delete_by_query``, so one point in time is paged through and each
    page deleted in one bulk. A delete carries the sequence number the page saw, so a document
    written again meanwhile stays; documents already gone or written again are not counted.
    """
    pit = client.open_point_in_time(index=index, keep_alive="2m")["id"]
    deleted = 0
    after: list[Any] | None = None
    try:
        while True:
            page = client.search(
                pit={"id": pit, "keep_alive": "2m"},
                query=query,
                sort=[{"_shard_doc": "asc"}],
                size=page_size,
                source=False,
                seq_no_primary_term=True,
                track_total_hits=False,
                search_after=after,
            )
            pit, hits = page["pit_id"], page["hits"]["hits"]
            if not hits:
                return deleted
            actions = [
                {
                    "_op_type": "delete",
                    "_index": hit["_index"],
                    "_id": hit["_id"],
                    "if_seq_no": hit["_seq_no"],
                    "if_primary_term": hit["_primary_term"],
                }
                for hit in hits
            ]
            done, _ = helpers.bulk(client, actions, chunk_size=page_size, ignore_status=(404, 409))
            deleted += done
            after = hits[-1]["sort"]
    finally:
        client.close_point_in_time(id=pit)
