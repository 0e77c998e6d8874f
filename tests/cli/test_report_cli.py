"""``dealflow report``: tables, CSV that matches the API's, and charts as real PNG and SVG files."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers import Cli, api

RANGE = ["--from", "2026-01-05", "--to", "2026-12-28"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Cli, str]:
    """A migrated SQLite file with the demo team, and the demo's API key."""
    cli = Cli(tmp_path_factory.mktemp("report"))
    cli.ok("migrate")
    out = cli.ok("demo")
    match = re.search(r"demo API key: (\S+)", out)
    assert match, out
    return cli, match.group(1)


@pytest.mark.parametrize(
    ("report", "header"),
    [
        ("volume", ["BUCKET", "OUTREACH"]),
        ("channels", ["TYPE", "VALUE", "OUTREACH", "CONTACTS", "DEALS", "DEALS_WON"]),
        ("users", ["USER_ID", "USER", "OUTREACH"]),
        ("funnel", ["STAGE", "FROM_STAGE", "REASON", "CURRENT", "ENTERED"]),
        ("forecast", ["MONTH", "CURRENCY", "DEALS", "AMOUNT", "WEIGHTED_AMOUNT"]),
    ],
)
def test_each_report_prints_a_table(demo, report, header) -> None:
    cli, _ = demo
    # When
    out = cli.ok("report", report, "--team", "Demo")
    # Then
    lines = out.splitlines()
    assert lines[0].startswith(f"{report} of team 'Demo'")
    assert "(Europe/Berlin)" in lines[0]
    assert lines[1].split()[: len(header)] == header
    assert len(lines) > 2, out


@pytest.mark.parametrize(
    ("report", "path", "extra"),
    [
        ("volume", "outreach-volume", ["--bucket", "month", "--by", "type"]),
        ("channels", "channels", ["--currency", "EUR"]),
        ("users", "users", []),
        ("funnel", "funnel", []),
    ],
)
def test_csv_is_what_the_api_answers(demo, report, path, extra) -> None:
    cli, key = demo
    # When
    out = cli.ok("report", report, "--team", "Demo", "--csv", *RANGE, *extra)
    # Then
    params = dict(zip(RANGE[::2], RANGE[1::2], strict=True)) | dict(
        zip(extra[::2], extra[1::2], strict=True)
    )
    params = {k.lstrip("-"): v for k, v in params.items()}
    with api(cli.url) as client:
        resp = client.get(
            f"/api/v1/analytics/{path}",
            params=params,
            headers={"Authorization": f"Bearer {key}", "Accept": "text/csv"},
        )
    assert resp.status_code == 200, resp.text
    printed = list(csv.reader(io.StringIO(out)))
    assert printed == list(csv.reader(io.StringIO(resp.text)))
    assert len(printed) > 1


@pytest.mark.parametrize(
    ("report", "name", "extra"),
    [
        ("volume", "volume.png", ["--by", "type"]),
        ("volume", "volume.svg", ["--bucket", "day"]),
        ("funnel", "funnel.png", []),
        ("funnel", "funnel.svg", []),
        ("forecast", "forecast.png", []),
        ("forecast", "forecast.svg", []),
    ],
)
def test_charts_are_valid_png_and_svg_files(demo, tmp_path: Path, report, name, extra) -> None:
    cli, _ = demo
    target = tmp_path / name
    # When
    out = cli.ok("report", report, "--team", "Demo", "--chart", target, *extra)
    # Then
    assert f"chart written to {target}" in out
    data = target.read_bytes()
    if name.endswith(".png"):
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert len(data) > 5_000
    else:
        root = ET.fromstring(data)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        # Text stays text: the labels can be found in the file.
        assert b"Europe/Berlin" in data or b"funnel" in data.lower() or b"Forecast" in data


def test_a_chart_with_csv_keeps_stdout_for_the_data(demo, tmp_path: Path) -> None:
    cli, _ = demo
    result = cli("report", "volume", "--team", "Demo", "--csv", "--chart", tmp_path / "v.svg")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "bucket,outreach"
    assert "chart written" in result.stderr and "chart written" not in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["channels", "--chart", "c.png"], "charts are drawn for volume, funnel, forecast"),
        (["volume", "--chart", "v.pdf"], "must end in .png or .svg"),
        (["volume", "--from", "2026-05-01", "--to", "2026-04-01"], "to: must be after from"),
        (["volume", "--bucket", "year"], "invalid choice"),
    ],
)
def test_bad_arguments_fail_cleanly(demo, args, message) -> None:
    cli, _ = demo
    result = cli("report", *args, "--team", "Demo")
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(cli.cwd.glob("*.pdf")) and not list(cli.cwd.glob("c.png"))


def test_a_chart_without_matplotlib_says_how_to_install_it(monkeypatch, tmp_path: Path) -> None:
    import sys

    from server.cli.report import check_chart
    from server.core.errors import DealflowError

    # Given matplotlib cannot be imported
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    # When / Then
    with pytest.raises(DealflowError, match=re.escape("pip install 'matplotlib")):
        check_chart("volume", tmp_path / "v.png")
