"""Configuration: the shipped files are valid, and a broken file names its file, key and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.runner import ROOT, clean_env, run_veille
from veille.core.config import ConfigError, load_config, parse_duration
from veille.core.languages import LANGUAGES


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "config"
    shutil.copytree(ROOT / "config", folder)
    return folder


def test_shipped_config_is_valid():
    config = load_config(ROOT / "config")
    assert config.sources, "the shipped sources.yaml lists sources"
    topic = next(t for t in config.topics if t.name == "overseas-police-stations")
    assert set(topic.languages) == set(LANGUAGES), "the shipped topic has rules in every language"
    assert all(topic.languages[lang].rules for lang in LANGUAGES)


def test_a_language_outside_the_registry_names_file_line_and_key(config_copy: Path):
    path = config_copy / "topics" / "overseas-police-stations.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("\n  it:\n", "\n  pt:\n", 1), encoding="utf-8")
    line = text.split("\n").index("  it:") + 1
    with pytest.raises(ConfigError) as caught:
        load_config(config_copy)
    error = caught.value
    assert (error.file, error.line, error.key) == (str(path), line, "languages.pt")
    assert "'pt' is not a language of Veille: use one of fr, en, es, it, de" in str(error)

    sources = config_copy / "sources.yaml"
    sources.write_text(
        sources.read_text(encoding="utf-8").replace("language: it", "language: xx", 1), "utf-8"
    )
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(config_copy)
    assert caught.value.file == str(sources) and caught.value.key.endswith(".language")
    assert "'xx' is not a language of Veille" in str(caught.value)


def test_unknown_key_names_file_key_and_line(config_copy: Path):
    path = config_copy / "sources.yaml"
    text = path.read_text().replace("    country: GB\n", "    country: GB\n    contry: GB\n", 1)
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(config_copy)
    error = caught.value
    assert error.file == str(path)
    assert error.key.endswith(".contry")
    assert error.line == next(n for n, line in enumerate(text.splitlines(), 1) if "contry" in line)
    assert "remove it or check its spelling" in str(error)


def test_bad_value_says_how_to_fix(config_copy: Path):
    path = config_copy / "sources.yaml"
    path.write_text(path.read_text().replace("country: FR", "country: France", 1))
    with pytest.raises(ConfigError, match=r"sources\.\d+\.country.*two-letter ISO 3166"):
        load_config(config_copy)


def test_duplicate_source_name_is_rejected(config_copy: Path):
    path = config_copy / "sources.yaml"
    path.write_text(path.read_text().replace("name: france24-fr", "name: rfi-fr"))
    with pytest.raises(ConfigError, match=r"sources\.1\.name.*used twice") as caught:
        load_config(config_copy)
    assert caught.value.line is not None


def test_invalid_yaml_reports_the_line(config_copy: Path):
    path = config_copy / "topics" / "overseas-police-stations.yaml"
    path.write_text("name: x\nlanguages: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML") as caught:
        load_config(config_copy)
    assert caught.value.file == str(path)
    assert caught.value.line == 3


def test_schedule_needs_exactly_one_kind(config_copy: Path):
    path = config_copy / "sources.yaml"
    path.write_text(path.read_text().replace("schedule: {every: 1h}", "schedule: {}", 1))
    with pytest.raises(ConfigError, match="exactly one of 'every'"):
        load_config(config_copy)


def test_source_time_limit_is_a_duration_and_names_its_key(config_copy: Path):
    path = config_copy / "sources.yaml"
    text = path.read_text()
    path.write_text(text.replace("    country: GB\n", "    country: GB\n    time_limit: 45m\n", 1))
    limited = [s for s in load_config(config_copy).sources if s.time_limit]
    assert [s.time_limit_delta.total_seconds() for s in limited] == [2700]
    path.write_text(text.replace("    country: GB\n", "    country: GB\n    time_limit: soon\n", 1))
    with pytest.raises(ConfigError, match=r"sources\.\d+\.time_limit.*not a duration") as caught:
        load_config(config_copy)
    assert caught.value.line is not None


def test_durations():
    assert parse_duration("30m").total_seconds() == 1800
    assert parse_duration("2h").total_seconds() == 7200
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")


def test_cli_exits_2_and_names_file_and_key(config_copy: Path, tmp_path: Path):
    path = config_copy / "sources.yaml"
    path.write_text(path.read_text().replace("type: feed", "type: rss", 1))
    result = run_veille("--config", str(config_copy), "sources", env=clean_env())
    assert result.returncode == 2
    assert str(path) in result.stderr
    assert "sources.0.type" in result.stderr
    assert "use feed, sitemap or search" in result.stderr


def test_config_folder_from_environment(config_copy: Path):
    path = config_copy / "sources.yaml"
    path.write_text(path.read_text().replace("name: rfi-fr", "name: rfi-from-env"))
    result = run_veille("sources", "--json", env=clean_env(VEILLE_CONFIG=str(config_copy)))
    assert result.returncode == 0, result.stderr
    assert "rfi-from-env" in result.stdout
