"""The stations register against the real node: updates are idempotent and order-free, a new
report moves the strongest action, a rebuild gives the same register, and two writers updating
one location at once lose no report."""

from __future__ import annotations

import threading
import uuid

import pytest

from veille.core.es import IndexNames, setup_indices
from veille.core.stations import Register

DUBLIN = {"key": "IE-2964574", "kind": "city", "name": "Dublin", "country": "IE",
          "geonameid": 2964574, "location": {"lat": 53.33306, "lon": -6.24889}}  # fmt: skip
PORTUGAL = {"key": "PT", "kind": "country", "name": "Portugal", "country": "PT"}


def article(number: int, day: str, station: dict, actions: list[str]) -> tuple[str, dict]:
    doc = {
        "url": f"https://news.example.org/{number}",
        "title": f"Article {number}",
        "source": {"name": f"outlet-{number % 3}", "country": "IE"},
        "language": ["en", "fr", "es"][number % 3],
        "published_at": f"{day}T09:00:00+00:00",
        "stations": [{**station, "actions": actions}],
        "authorities": ["Garda Síochána"] if "investigation" in actions else [],
        "action_evidence": [
            {"action": a, "rule": a, "sentence": f"{a} in {station['name']}"} for a in actions
        ],
    }
    return f"article-{number}", doc


@pytest.fixture
def register(es, index_prefix):
    """A register of its own (a sub-prefix the module's clean-up deletes)."""
    names = IndexNames(f"{index_prefix}-{uuid.uuid4().hex[:6]}")
    setup_indices(es, names.prefix)
    return Register(es, names)


def documents(register: Register) -> dict[str, dict]:
    client = register.client
    client.indices.refresh(index=register.index)
    hits = client.search(index=register.index, size=100, query={"match_all": {}})["hits"]["hits"]
    return {hit["_id"]: hit["_source"] for hit in hits}


def versions(register: Register) -> dict[str, int]:
    hits = register.client.search(
        index=register.index, size=100, seq_no_primary_term=True, query={"match_all": {}}
    )["hits"]["hits"]
    return {hit["_id"]: hit["_seq_no"] for hit in hits}


def test_the_first_report_of_a_location_creates_it_and_says_so(register):
    created = register.apply([article(1, "2022-10-20", DUBLIN, ["reported"]),
                              article(2, "2022-10-21", PORTUGAL, ["reported"])])  # fmt: skip
    assert created == [["IE-2964574"], ["PT"]]
    dublin = documents(register)["IE-2964574"]
    assert dublin["name"] == "Dublin" and dublin["location"] == DUBLIN["location"]
    assert dublin["reports_count"] == 1 and dublin["strongest_action"] == "reported"
    assert dublin["first_reported_at"] == dublin["last_reported_at"] == "2022-10-20T09:00:00+00:00"
    # A known location is not new again.
    assert register.apply([article(3, "2022-10-25", DUBLIN, ["reported"])]) == [[]]


def test_applying_the_same_articles_again_changes_nothing(register):
    batch = [article(1, "2022-10-20", DUBLIN, ["reported", "closure"]),
             article(2, "2022-11-02", DUBLIN, ["reported", "investigation"])]  # fmt: skip
    register.apply(batch)
    before, seq = documents(register), versions(register)
    assert register.apply(batch) == [[], []]
    assert documents(register) == before
    assert versions(register) == seq  # not even written again


def test_a_new_report_adds_to_the_history_and_moves_the_strongest_action(register):
    register.apply([article(1, "2022-10-20", DUBLIN, ["reported", "closure"])])
    register.apply([article(2, "2023-03-01", DUBLIN, ["reported", "arrest_or_charge"])])
    dublin = documents(register)["IE-2964574"]
    assert dublin["reports_count"] == 2
    assert dublin["strongest_action"] == "arrest_or_charge"
    assert dublin["last_reported_at"].startswith("2023-03-01")
    assert [(h["at"][:10], h["action"]) for h in dublin["action_history"]] == [
        ("2022-10-20", "closure"), ("2022-10-20", "reported"),
        ("2023-03-01", "arrest_or_charge"), ("2023-03-01", "reported"),
    ]  # fmt: skip
    assert dublin["articles"] == ["article-1", "article-2"]
    assert dublin["languages"] == ["es", "fr"]


def test_the_order_of_the_articles_does_not_matter(register, es, index_prefix):
    batch = [article(n, f"2023-0{n}-01", DUBLIN, ["reported", a])
             for n, a in enumerate(["closure", "denial", "investigation"], start=1)]  # fmt: skip
    register.apply(batch)
    other = Register(es, IndexNames(f"{index_prefix}-{uuid.uuid4().hex[:6]}"))
    setup_indices(es, other.names.prefix)
    for item in reversed(batch):
        other.apply([item])
    assert documents(other) == documents(register)


def test_rebuild_from_the_articles_gives_the_same_register(register):
    client, names = register.client, register.names
    batch = [article(1, "2022-10-20", DUBLIN, ["reported", "closure"]),
             article(2, "2022-11-02", PORTUGAL, ["reported"]),
             article(3, "2023-03-01", DUBLIN, ["reported", "investigation"])]  # fmt: skip
    for article_id, doc in batch:
        client.index(index=names.articles, id=article_id, document=doc)
    register.apply(batch)
    built = documents(register)
    done = register.rebuild()
    assert done == {"stations": 2, "reports": 3}
    assert documents(register) == built
    # The alias moved to the fresh index, which takes the next update.
    register.apply([article(4, "2024-01-01", DUBLIN, ["reported"])])
    assert documents(register)["IE-2964574"]["reports_count"] == 3


def test_two_writers_on_one_location_lose_no_report(register, es):
    # Each writer keeps its own client, as two crawl processes would.
    writers = [Register(es.options(), register.names) for _ in range(2)]
    batches = [[article(n, f"2023-01-{n:02d}", DUBLIN, ["reported"])] for n in range(1, 13)]
    errors: list[BaseException] = []

    def work(writer: Register, mine: list) -> None:
        try:
            for batch in mine:
                writer.apply(batch)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(w, batches[i::2])) for i, w in enumerate(writers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert documents(register)["IE-2964574"]["reports_count"] == 12


def test_articles_indexed_while_the_register_was_down_are_applied_later(register):
    client, names = register.client, register.names
    article_id, doc = article(1, "2022-10-20", PORTUGAL, ["reported"])
    pending = {**doc, "stations_status": "pending"}
    client.index(index=names.articles, id=article_id, document=pending, refresh=True)
    assert register.apply_pending() == {"articles": 1, "with_new_stations": 1}
    assert documents(register)["PT"]["articles"] == ["article-1"]
    stored = client.get(index=names.articles, id=article_id)["_source"]
    assert stored["stations_status"] == "registered" and stored["new_stations"] == ["PT"]
    assert register.apply_pending() == {"articles": 0, "with_new_stations": 0}
