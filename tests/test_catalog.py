"""The catalog check: every limit in profiles/limits.py has all its pieces, and each failure names
the file to write. A new limit needs: its entry in the catalog, a probe module (one function of the
limit's name) with its line in the facade, a rule in profiles/emulation.py if a Windows setting
emulates it, the profiles' ``expect:`` where a source documents it, and a test in labs/."""
from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

from pytest_connlab.probes import Probes
from pytest_connlab.profiles.emulation import RULES
from pytest_connlab.profiles.limits import CATALOG
from pytest_connlab.profiles.profile import discover

REPO = Path(__file__).resolve().parent.parent
PROBES = REPO / "pytest_connlab" / "probes"
HELPERS = {"__init__", "common", "hold", "holdplan", "sampling"}  # probe modules that are not one limit's
LABS_TESTS = {path: path.read_text() for path in sorted((REPO / "labs").glob("test_*.py"))}


@pytest.mark.parametrize("limit", sorted(CATALOG))
def test_each_limit_has_a_probe_module_with_one_function_of_its_name(limit):
    path = PROBES / f"{limit}.py"
    assert path.is_file(), f"{limit}: write pytest_connlab/probes/{limit}.py with def {limit}(lab, ...)"
    func = getattr(importlib.import_module(f"pytest_connlab.probes.{limit}"), limit, None)
    assert callable(func), f"{limit}: pytest_connlab/probes/{limit}.py has no function {limit}(lab, ...)"
    assert next(iter(inspect.signature(func).parameters)) == "lab", f"{limit}: its first parameter is the lab"
    assert func.__doc__, f"{limit}: give {limit}() a docstring (help(lab.probe.{limit}) shows it)"


@pytest.mark.parametrize("limit", sorted(CATALOG))
def test_the_catalog_says_which_probes_take_your_program(limit):
    func = getattr(importlib.import_module(f"pytest_connlab.probes.{limit}"), limit)
    takes = "target" in inspect.signature(func).parameters
    assert CATALOG[limit].takes_target == takes, (f"{limit}: set takes_target={takes} in its catalog entry "
                                                  "(pytest_connlab/profiles/limits.py)")


@pytest.mark.parametrize("limit", sorted(CATALOG))
def test_each_limit_is_in_the_facade(limit):
    assert limit in vars(Probes), (f"{limit}: add '{limit} = _probe({limit}.{limit})' (and the import) "
                                   "to pytest_connlab/probes/__init__.py")


@pytest.mark.parametrize("limit", sorted(CATALOG))
def test_each_limit_has_a_labs_test_that_runs_its_probe_and_names_it(limit):
    runs = [p.name for p, text in LABS_TESTS.items() if f"lab.probe.{limit}(" in text]
    assert runs, f"{limit}: no test in labs/ calls lab.probe.{limit}(...)"
    named = [p.name for p, text in LABS_TESTS.items()
             if re.search(rf"mark\.limit\(\s*[\"']{limit}[\"']\s*\)", text)]
    assert named, f"{limit}: mark its labs test with @pytest.mark.limit({limit!r}) ({', '.join(runs)})"


@pytest.mark.parametrize("limit", sorted(CATALOG))
def test_each_limit_says_what_it_is(limit):
    sentence = CATALOG[limit].sentence
    assert sentence.startswith("How ") and sentence.endswith("."), \
        f"{limit}: its catalog sentence in pytest_connlab/profiles/limits.py says how many/long, as a sentence"


def test_every_probe_module_is_a_catalogued_limit():
    modules = {p.stem for p in PROBES.glob("*.py")} - HELPERS
    assert not modules - set(CATALOG), \
        f"probe modules without a catalog entry in pytest_connlab/profiles/limits.py: {sorted(modules - set(CATALOG))}"


def test_every_emulation_rule_names_catalogued_limits():
    wrong = {r.setting: sorted(set(r.limits) - set(CATALOG)) for r in RULES.values() if set(r.limits) - set(CATALOG)}
    assert not wrong, f"rules in pytest_connlab/profiles/emulation.py name unknown limits: {wrong}"


def test_every_shipped_expectation_is_a_catalogued_limit_with_a_probe():
    for profile in discover([]).values():
        for limit in profile.expect:
            assert limit in CATALOG and (PROBES / f"{limit}.py").is_file(), f"{profile.path}: expect {limit}"
