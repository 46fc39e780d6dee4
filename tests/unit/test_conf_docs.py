"""The generated option reference, and README.rst's copy of it."""

from pathlib import Path

import pytest

from django_uwsgi_server.conf import OPTIONS
from django_uwsgi_server.conf.docs import reference_rst
from tests.planned import mark_planned

README = Path(__file__).resolve().parents[2] / "README.rst"
BEGIN, END = ".. BEGIN OPTION REFERENCE", ".. END OPTION REFERENCE"


def test_reference_lists_every_option_once():
    text = reference_rst()
    for opt in OPTIONS:
        assert text.count(f"   * - ``{opt.name}``\n") == 1, opt.name
    assert "2 × CPU cores" in text
    assert "     - planned\n" not in text  # nothing is left planned


def test_reference_names_the_issue_of_planned_work(monkeypatch):
    from django_uwsgi_server.conf import registry

    assert "     - planned\n" not in reference_rst()
    mark_planned(monkeypatch, "shared-socket")
    assert "     - planned\n" in reference_rst()
    monkeypatch.setitem(registry.PLANNED_IN, "shared-socket", "issue #99")
    assert "planned (issue #99)" in reference_rst()


def test_reference_is_valid_rst():
    docutils_core = pytest.importorskip("docutils.core")
    docutils_core.publish_string(
        reference_rst(), writer_name="html",
        settings_overrides={"halt_level": 2, "report_level": 5},
    )


def test_readme_copy_is_up_to_date():
    if not README.exists():
        pytest.skip("no README.rst")
    text = README.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        pytest.skip("README.rst has no option reference markers")
    copy = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert copy.strip() == reference_rst().strip(), (
        "README.rst is out of date: paste `python -m django_uwsgi_server.conf.docs` "
        f"between {BEGIN!r} and {END!r}"
    )
