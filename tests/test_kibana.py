"""Kibana saved objects: consistent with the index templates, imported in the API's documented form.

No Kibana runs here: ``KibanaDouble`` is a local HTTP server that answers the two endpoints
``veille setup --kibana`` uses and refuses, as Kibana does, a request not in the documented form
(``POST /api/saved_objects/_import?overwrite=true``, ``kbn-xsrf`` header, multipart field
``file`` holding an ``.ndjson`` file). Elasticsearch is the real local node.
"""

from __future__ import annotations

import base64
import copy
import json
import threading
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.runner import clean_env, run_veille
from veille.ops.kibana import check_saved_objects, load_saved_objects

USER, PASSWORD = "elastic", "s3cret-elastic"


class KibanaDouble:
    """Kibana's status and saved-objects import endpoints on 127.0.0.1, checking each request."""

    def __init__(self, not_ready_answers: int = 0, import_errors: list | None = None) -> None:
        self.not_ready_answers = not_ready_answers
        self.import_errors = import_errors or []
        self.status_calls = 0
        self.imports: list[dict] = []
        self.refused: list[str] = []
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                double.handle_get(self)

            def do_POST(self) -> None:
                double.handle_post(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> KibanaDouble:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def answer(handler: BaseHTTPRequestHandler, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def authorized(self, handler: BaseHTTPRequestHandler) -> bool:
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if handler.headers.get("Authorization") == expected:
            return True
        self.answer(handler, 401, {"statusCode": 401, "error": "Unauthorized"})
        return False

    def refuse(self, handler: BaseHTTPRequestHandler, message: str) -> None:
        self.refused.append(message)
        self.answer(handler, 400, {"statusCode": 400, "error": "Bad Request", "message": message})

    def handle_get(self, handler: BaseHTTPRequestHandler) -> None:
        if urlsplit(handler.path).path != "/api/status":
            self.answer(handler, 404, {"statusCode": 404, "error": "Not Found"})
            return
        self.status_calls += 1
        if self.status_calls <= self.not_ready_answers:
            self.answer(handler, 503, {"message": "Kibana server is not ready yet"})
        elif self.authorized(handler):
            self.answer(
                handler,
                200,
                {"version": {"number": "8.17.4"}, "status": {"overall": {"level": "available"}}},
            )

    def handle_post(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        if url.path != "/api/saved_objects/_import":
            self.answer(handler, 404, {"statusCode": 404, "error": "Not Found"})
            return
        if not self.authorized(handler):
            return
        if "kbn-xsrf" not in {k.lower() for k in handler.headers}:
            self.refuse(handler, "Request must contain a kbn-xsrf header.")
            return
        if parse_qs(url.query) != {"overwrite": ["true"]}:
            self.refuse(handler, f"expected ?overwrite=true, got {url.query!r}")
            return
        content_type = handler.headers.get("Content-Type", "")
        if not content_type.startswith("multipart/form-data; boundary="):
            self.refuse(handler, f"expected multipart/form-data, got {content_type!r}")
            return
        body = handler.rfile.read(int(handler.headers["Content-Length"]))
        form = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body
        )
        files = [p for p in form.iter_parts() if p.get_param("name", header="content-disposition")]
        by_name = {p.get_param("name", header="content-disposition"): p for p in files}
        if list(by_name) != ["file"]:
            self.refuse(handler, f"expected one form field 'file', got {list(by_name)}")
            return
        filename = by_name["file"].get_filename() or ""
        if not filename.endswith(".ndjson"):
            self.refuse(handler, f"Invalid file extension {filename!r}")
            return
        lines = by_name["file"].get_payload(decode=True).decode("utf-8").splitlines()
        objects = [json.loads(line) for line in lines if line.strip()]
        self.imports.append(
            {"headers": dict(handler.headers), "filename": filename, "objects": objects}
        )
        failed = {(e["type"], e["id"]) for e in self.import_errors}
        landed = [o for o in objects if (o["type"], o["id"]) not in failed]
        self.answer(
            handler,
            200,
            {
                "success": not self.import_errors,
                "successCount": len(landed),
                "successResults": [{"type": o["type"], "id": o["id"]} for o in landed],
                **({"errors": self.import_errors} if self.import_errors else {}),
            },
        )


def kibana_env(es_url: str, prefix: str, kibana_url: str, **extra: str) -> dict[str, str]:
    values = {
        "VEILLE_ES_URL": es_url,
        "VEILLE_INDEX_PREFIX": prefix,
        "VEILLE_ES_USER": USER,
        "VEILLE_ES_PASSWORD": PASSWORD,
        "VEILLE_KIBANA_URL": kibana_url,
        "VEILLE_KIBANA_WAIT": "30",
    }
    return clean_env(**{**values, **extra})


# --- the saved objects against the index templates ----------------------------------------


def test_every_field_a_saved_object_uses_is_mapped_by_its_index_template():
    objects = load_saved_objects("veille")
    assert check_saved_objects(objects, "veille") == []


def test_a_field_renamed_in_a_saved_object_is_caught_before_import():
    objects = load_saved_objects("veille")
    renamed = copy.deepcopy(objects)
    top_sources = next(o for o in renamed if o["attributes"].get("title") == "Top sources")
    top_sources["attributes"]["visState"] = top_sources["attributes"]["visState"].replace(
        '"source.name"', '"source_name"'
    )
    failed_runs = next(o for o in renamed if o["attributes"].get("title") == "Failed crawl runs")
    failed_runs["attributes"]["columns"].append("exit_status")
    pending = next(o for o in renamed if o["attributes"].get("title") == "Pending translation")
    pending["attributes"]["sort"] = [["title", "desc"]]

    problems = check_saved_objects(renamed, "veille")

    assert problems == [
        "search 'Pending translation' sorts or aggregates on 'title', a text field of "
        "veille-articles: use a keyword, date or number field with doc values",
        "visualization 'Top sources' uses field 'source_name', which veille-articles does not map",
        "search 'Failed crawl runs' uses field 'exit_status', which veille-crawls does not map",
    ]


def test_dashboards_and_searches_only_refer_to_objects_that_are_imported_with_them():
    objects = load_saved_objects("veille")
    without_data_view = [o for o in objects if o["id"] != "veille-crawls"]

    problems = check_saved_objects(without_data_view, "veille")

    assert problems and all("refers to index-pattern 'veille-crawls'" in p for p in problems)
    assert {p.split(" refers")[0] for p in problems} == {
        "search 'Failed crawl runs'",
        "visualization 'Crawl runs per source'",
        "visualization 'Crawl failures'",
        "visualization 'Articles per run'",
    }


def test_analysts_get_the_promised_data_views_searches_and_dashboards():
    objects = load_saved_objects("veille")
    by_title = {(o["type"], o["attributes"]["title"]): o for o in objects}

    articles = by_title[("index-pattern", "veille-articles")]
    assert articles["attributes"]["timeFieldName"] == "published_at"
    crawls = by_title[("index-pattern", "veille-crawls")]
    assert crawls["attributes"]["timeFieldName"] == "started_at"

    def query(title: str) -> str:
        meta = by_title[("search", title)]["attributes"]["kibanaSavedObjectMeta"]
        return json.loads(meta["searchSourceJSON"])["query"]["query"]

    assert query("All coverage") == ""
    assert query("Coverage in other languages, with translation") == (
        'language : * and not language : "en"'
    ), "every language but the pivot (veille/core/languages.py), whatever the registry holds"
    assert query("Pending translation") == 'translation_status : "pending"'
    assert query("Syndicated copies") == "duplicate_of : *"
    translated = by_title[("search", "Coverage in other languages, with translation")]
    assert "translation.en.title" in translated["attributes"]["columns"]
    for title in ("All coverage", "Coverage in other languages, with translation"):
        # why each article is on topic: the rule that matched (mapped: the test above checks)
        assert "relevance.rule" in by_title[("search", title)]["attributes"]["columns"]

    def panels(title: str) -> set[str]:
        dashboard = by_title[("dashboard", title)]
        ids = {r["id"] for r in dashboard["references"]}
        return {o["attributes"]["title"] for o in objects if o["id"] in ids}

    judged = by_title[("search", "Judged irrelevant")]
    assert judged["attributes"]["sort"] == [["verdict.at", "desc"]]
    assert "verdict.note" in judged["attributes"]["columns"]
    off_topic = by_title[("search", "Off topic after a topic edit")]
    assert off_topic["attributes"]["sort"] == [["off_topic.at", "desc"]]
    assert {"relevance.rule", "off_topic.closest"} <= set(off_topic["attributes"]["columns"])

    assert panels("Coverage") == {
        "Articles per day by language", "Top sources", "Countries mentioned", "All coverage",
    }  # fmt: skip
    assert panels("Crawl health") == {
        "Crawl runs per source", "Crawl failures", "Articles per run", "Failed crawl runs",
    }  # fmt: skip


def _filters_as_query(obj: dict) -> dict:
    """The Elasticsearch query Kibana makes of a saved object's filters (its pills)."""
    source = json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
    query: dict = {"filter": [], "must_not": []}
    for item in source["filter"]:
        if not item["meta"].get("disabled"):
            query["must_not" if item["meta"]["negate"] else "filter"].append(item["query"])
    return {"bool": query}


def test_default_views_leave_out_articles_judged_irrelevant_or_off_topic_and_searches_show_them(
    es, index_prefix
):
    from veille.core.article import utcnow
    from veille.core.es import IndexNames, setup_indices
    from veille.core.verdicts import ArticleRef, Verdict, record_verdict

    setup_indices(es, index_prefix)
    names = IndexNames(index_prefix)
    for name in ("unjudged", "judged-irrelevant", "judged-relevant"):
        es.index(index=names.articles, id=name, document={"title": name}, refresh=True)
    for name, label in (("judged-irrelevant", "irrelevant"), ("judged-relevant", "relevant")):
        [hit] = es.search(index=names.articles, query={"ids": {"values": [name]}})["hits"]["hits"]
        record_verdict(es, names, ArticleRef.from_hit(hit), Verdict(label, utcnow(), "cli"))
    # As `veille topics rescore` marks an article the edited topic files no longer keep.
    marked = {"title": "off-topic", "off_topic": {"at": utcnow().isoformat(), "closest": "en/x"}}
    es.index(index=names.articles, id="off-topic", document=marked, refresh=True)
    objects = load_saved_objects(index_prefix)
    on_articles = [
        o for o in objects
        if o["type"] in ("search", "visualization")
        and any(r["id"] == f"{index_prefix}-articles" for r in o["references"])
    ]  # fmt: skip

    shown = {}
    for obj in on_articles:
        hits = es.search(index=names.articles, query=_filters_as_query(obj))["hits"]["hits"]
        shown[obj["attributes"]["title"]] = {hit["_id"] for hit in hits}

    assert shown.pop("Judged irrelevant") == {"judged-irrelevant"}
    assert shown.pop("Off topic after a topic edit") == {"off-topic"}
    assert len(shown) >= 7
    assert all(ids == {"unjudged", "judged-relevant"} for ids in shown.values()), shown


def test_saved_objects_follow_the_index_prefix():
    objects = load_saved_objects("acme-news")

    assert all(o["id"].startswith("acme-news-") for o in objects)
    assert all(r["id"].startswith("acme-news-") for o in objects for r in o["references"])
    data_views = {o["attributes"]["title"] for o in objects if o["type"] == "index-pattern"}
    assert data_views == {"acme-news-articles", "acme-news-crawls", "acme-news-stations"}
    assert check_saved_objects(objects, "acme-news") == []


# --- veille setup --kibana against the local Kibana double --------------------------------


def test_setup_kibana_waits_for_kibana_then_imports_every_object_in_the_documented_form(
    es_url, index_prefix
):
    with KibanaDouble(not_ready_answers=2) as kibana:
        env = kibana_env(es_url, index_prefix, kibana.url)
        first = run_veille("setup", "--kibana", env=env)
        second = run_veille("setup", "--kibana", env=env)

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert kibana.refused == []
    assert kibana.status_calls >= 3  # two "not ready yet" answers, then ready
    expected = load_saved_objects(index_prefix)
    assert f"kibana: {len(expected)} saved objects imported" in first.stdout
    assert "dashboards: Coverage, Crawl health, Stations" in first.stdout

    assert len(kibana.imports) == 2
    sent = kibana.imports[0]
    assert sent["filename"].endswith(".ndjson")
    assert sent["objects"] == expected
    data_views = {o["attributes"]["title"] for o in sent["objects"] if o["type"] == "index-pattern"}
    assert data_views == {
        f"{index_prefix}-articles", f"{index_prefix}-crawls", f"{index_prefix}-stations"
    }  # fmt: skip
    # Running setup again overwrites the same objects instead of adding copies.
    assert [(o["type"], o["id"]) for o in kibana.imports[1]["objects"]] == [
        (o["type"], o["id"]) for o in sent["objects"]
    ]


def test_setup_kibana_names_the_objects_kibana_rejected(es_url, index_prefix):
    rejected = {
        "type": "dashboard",
        "id": f"{index_prefix}-dashboard-coverage",
        "meta": {"title": "Coverage"},
        "error": {"type": "missing_references", "references": []},
    }
    with KibanaDouble(import_errors=[rejected]) as kibana:
        result = run_veille("setup", "--kibana", env=kibana_env(es_url, index_prefix, kibana.url))

    assert result.returncode == 1
    assert "dashboard 'Coverage': missing_references" in result.stderr


def test_setup_kibana_gives_up_with_a_clear_error_when_kibana_never_gets_ready(
    es_url, index_prefix
):
    with KibanaDouble(not_ready_answers=10_000) as kibana:
        env = kibana_env(es_url, index_prefix, kibana.url, VEILLE_KIBANA_WAIT="2")
        result = run_veille("setup", "--kibana", env=env)

    assert result.returncode == 1
    assert f"Kibana at {kibana.url} was not ready after 2s (HTTP 503)" in result.stderr
    assert kibana.imports == []


def test_setup_kibana_reports_wrong_credentials_instead_of_waiting(es_url, index_prefix):
    with KibanaDouble() as kibana:
        env = kibana_env(es_url, index_prefix, kibana.url, VEILLE_ES_PASSWORD="wrong")
        result = run_veille("setup", "--kibana", env=env)

    assert result.returncode == 1
    assert "refused the credentials (HTTP 401)" in result.stderr
    assert kibana.status_calls == 1


def test_setup_kibana_without_kibana_url_says_which_variable_to_set(es_url, index_prefix):
    env = kibana_env(es_url, index_prefix, "")
    result = run_veille("setup", "--kibana", env=env)

    assert result.returncode == 2
    assert "VEILLE_KIBANA_URL: not set" in result.stderr


@pytest.mark.parametrize("wait", ["soon", "5m"])
def test_setup_kibana_refuses_a_wait_that_is_not_seconds(es_url, index_prefix, wait):
    with KibanaDouble() as kibana:
        env = kibana_env(es_url, index_prefix, kibana.url, VEILLE_KIBANA_WAIT=wait)
        result = run_veille("setup", "--kibana", env=env)

    assert result.returncode == 2
    assert f"VEILLE_KIBANA_WAIT: {wait!r} is not a number of seconds" in result.stderr


def test_setup_kibana_system_password_is_set_before_kibana_is_contacted(es_url, index_prefix):
    # The local node has no security (no X-Pack): the security API is refused, and setup stops
    # there with what it needs, before waiting for a Kibana that could not log in anyway.
    with KibanaDouble() as kibana:
        env = kibana_env(
            es_url, index_prefix, kibana.url, VEILLE_KIBANA_SYSTEM_PASSWORD="kibana-pw-456"
        )
        result = run_veille("setup", "--kibana", env=env)

    assert result.returncode == 1
    assert "could not set the kibana_system password" in result.stderr
    assert "/_security/user/kibana_system/_password" in result.stderr
    assert "xpack.security.enabled" in result.stderr
    assert kibana.status_calls == 0


def test_the_stations_dashboard_maps_the_register_and_the_countries_mentioned():
    objects = load_saved_objects("veille")
    by_title = {(o["type"], o["attributes"]["title"]): o for o in objects}
    dashboard = by_title[("dashboard", "Stations")]
    ids = {r["id"] for r in dashboard["references"]}
    assert {o["attributes"]["title"] for o in objects if o["id"] in ids} == {
        "Stations map", "Countries mentioned map", "Actions over time", "Station register",
    }  # fmt: skip
    layers = json.loads(by_title[("map", "Stations map")]["attributes"]["layerListJSON"])
    (points,) = [layer for layer in layers if layer["type"] == "GEOJSON_VECTOR"]
    style = points["style"]["properties"]
    assert points["sourceDescriptor"]["geoField"] == "location"
    assert style["iconSize"]["options"]["field"]["name"] == "reports_count"
    assert style["fillColor"]["options"]["field"]["name"] == "strongest_action"
    countries = json.loads(
        by_title[("map", "Countries mentioned map")]["attributes"]["layerListJSON"]
    )
    (join,) = [j for layer in countries for j in layer.get("joins", [])]
    assert join["leftField"] == "iso2" and join["right"]["term"] == "countries"
    register = by_title[("search", "Station register")]
    assert register["attributes"]["sort"] == [["reports_count", "desc"]]


def test_a_field_renamed_in_a_map_is_caught_before_import():
    objects = copy.deepcopy(load_saved_objects("veille"))
    stations_map = next(o for o in objects if o["attributes"].get("title") == "Stations map")
    attributes = stations_map["attributes"]
    attributes["layerListJSON"] = attributes["layerListJSON"].replace(
        '"reports_count"', '"report_count"'
    )
    countries_map = next(
        o for o in objects if o["attributes"].get("title") == "Countries mentioned map"
    )
    countries_map["attributes"]["layerListJSON"] = countries_map["attributes"][
        "layerListJSON"
    ].replace('"term":"countries"', '"term":"text"')

    problems = check_saved_objects(objects, "veille")

    assert problems == [
        "map 'Stations map' uses field 'report_count', which veille-stations does not map",
        "map 'Countries mentioned map' sorts or aggregates on 'text', a text field of "
        "veille-articles: use a keyword, date or number field with doc values",
    ]
