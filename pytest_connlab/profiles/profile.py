"""Lab profiles: ``labs/*.yaml`` -> validated :class:`Profile`.

A profile names OS settings as that OS names them, each with its source, the
limits they imply (``expect:``), and any Linux knobs the lab pins beside the
emulation (``linux:``), each with why. Every problem is a :class:`ProfileError`
that names the file and the key.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ProfileError, SysctlKeyError, YamlInputError
from . import safeyaml
from .emulation import Knobs, rule_for, worst
from .errnos import is_known_error_name
from .limits import CATALOG, LIMITS, limits_touched_by
from .sysctlkeys import check_profile_key

TOP_KEYS = {"name", "title", "os", "description", "sources", "settings", "linux", "expect"}
OSES = ("windows", "linux")
MAX_TEXT = 4000  # a description, source, note or why
MAX_SYSCTL_VALUE = 256
MAX_NOFILE = 1 << 30
UNLIMITED = "unlimited"
RLIMIT_PREFIX = "rlimit."
RLIMITS = ("nofile",)  # process limits a profile may set on the server's programs




@dataclass(frozen=True)
class Setting:
    """One setting as the profile's OS names it, its value, and where the value comes from."""

    key: str
    value: int | str
    source: str
    origin: str = ""  # the profile file, or the test whose settings marker gave it


@dataclass(frozen=True)
class Expectation:
    """A documented limit: ``value`` None means no limit (``unlimited``)."""

    limit: str
    value: int | None
    source: str
    ended_by: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Profile:
    """A validated lab profile."""

    name: str
    title: str
    os: str
    path: Path
    description: str = ""
    sources: dict[str, str] = field(default_factory=dict)
    settings: tuple[Setting, ...] = ()
    linux: tuple[Setting, ...] = ()
    expect: dict[str, Expectation] = field(default_factory=dict)

    def knobs(self) -> Knobs:
        """The Linux knobs that realise this profile on a lab."""
        knobs = Knobs()
        emulated = {s.key: int(s.value) for s in self.settings if rule_for(s.key)}
        for s in self.settings:
            rule = rule_for(s.key)
            if rule is not None:
                knobs.merge(rule.knobs(int(s.value), emulated))
            elif s.key.startswith(RLIMIT_PREFIX):
                knobs.rlimits.setdefault("server", {})[s.key[len(RLIMIT_PREFIX):]] = int(s.value)
            else:
                knobs.add_sysctl("all", s.key, str(s.value))
        for pin in self.linux:
            knobs.add_sysctl("all", pin.key, str(pin.value))
        return knobs

    def birth_limits(self) -> dict[str, str]:
        """Limits whose emulation needs a namespace created with birth sysctls, with the setting."""
        emulated = {s.key: int(s.value) for s in self.settings if rule_for(s.key)}
        needs: dict[str, str] = {}
        for s in self.settings:
            rule = rule_for(s.key)
            if rule is not None and rule.knobs(int(s.value), emulated).birth:
                needs.update({limit: s.key for limit in rule.limits})
        return needs

    def origin_of(self, sysctl_key: str) -> str:
        """Where the setting that gives ``sysctl_key`` comes from: the profile file, or the test
        whose settings marker set it (directly or through an emulated setting)."""
        for s in (*self.linux, *self.settings):
            if s.key == sysctl_key and s.origin:
                return s.origin
        emulated = {s.key: int(s.value) for s in self.settings if rule_for(s.key)}
        for s in self.settings:
            rule = rule_for(s.key)
            if rule is not None and s.origin and any(
                    sysctl_key in values for values in rule.knobs(int(s.value), emulated).sysctls.values()):
                return s.origin
        return str(self.path)

    def value_of(self, key: str) -> int | str | None:
        """The value this profile gives a setting, or None when it does not set it."""
        return next((s.value for s in (*self.settings, *self.linux) if s.key == key), None)

    def fidelity_for(self, limit: str) -> tuple[str, str]:
        """The fidelity of this profile's emulation of ``limit``, and why."""
        rules = [(r, s.value) for s in self.settings if (r := rule_for(s.key)) and limit in r.limits]
        played = CATALOG[limit].played_by if limit in CATALOG else ""
        if played:
            why = f"emulated by {played}; no kernel limit is involved."
            if not rules:
                return "approximate", why
            return worst(["approximate", *(r.fidelity for r, _ in rules)]), " ".join(
                [why, *(f"{r.setting}: {r.reason.replace('<value>', str(v))}" for r, v in rules)])
        if not rules:
            return "exact", "Linux knobs set directly" if self.os == "linux" else \
                "no Windows setting of this profile bears on it; the Linux kernel's behaviour"
        return worst([r.fidelity for r, _ in rules]), " ".join(
            f"{r.setting}: {r.reason.replace('<value>', str(v))}" for r, v in rules)

    def with_overrides(self, sysctl: dict[str, Any], windows: dict[str, Any], origin: str) -> Profile:
        """This profile with a test's ``settings`` marker applied on top. A limit whose knobs
        the marker changes loses its documented expectation: the probe derives it instead."""
        extra = [_linux_setting(origin, f"sysctl.{_name(k)}", k, v, origin) for k, v in sysctl.items()]
        extra += [_windows_setting(origin, f"windows.{_name(k)}", k, v, origin) for k, v in windows.items()]
        keys = {s.key for s in extra}
        kept = tuple(s for s in self.settings if s.key not in keys)
        pins = tuple(s for s in self.linux if s.key not in keys)
        touched = {lim for k in sysctl for lim in limits_touched_by(k)}
        touched |= {lim for k in windows if (r := rule_for(k)) for lim in r.limits}
        expect = {lim: e for lim, e in self.expect.items() if lim not in touched}
        return replace(self, settings=kept + tuple(extra), linux=pins, expect=expect)


def _fail(path: Path | str, key: str, message: str) -> ProfileError:
    return ProfileError(f"{path}: {key}: {message}")


def _name(key: object) -> str:
    """A key as it goes into a message: as typed when plain, quoted when odd."""
    text = str(key)
    return text if text.isprintable() and len(text) <= 80 and " " not in text else repr(text)[:80]


def _string_keys(path: Path | str, where: str, raw: dict[Any, Any]) -> dict[str, Any]:
    for key in raw:
        if not isinstance(key, str):
            raise _fail(path, f"{where}.{_name(key)}" if where else _name(key),
                        f"a key must be a string, got {type(key).__name__}")
    return raw


def _text(path: Path | str, where: str, value: Any, max_len: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise _fail(path, where, f"expected a string, got {type(value).__name__}")
    if len(value) > max_len:
        raise _fail(path, where, f"longer than {max_len} characters")
    return value


def _rlimit_setting(path: Path | str, where: str, key: str, value: Any, source: str) -> Setting:
    name = key[len(RLIMIT_PREFIX):]
    if name not in RLIMITS:
        raise _fail(path, where, f"unknown process limit; known: {', '.join(RLIMIT_PREFIX + r for r in RLIMITS)}")
    if isinstance(value, bool) or not isinstance(value, int) or not 16 <= value <= MAX_NOFILE:
        raise _fail(path, where, f"expected a whole number from 16 to {MAX_NOFILE}, got {value!r}")
    return Setting(key, value, source, str(path))


def _sysctl_value(path: Path | str, where: str, value: Any) -> int | str:
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        value = " ".join(str(v) for v in value)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _fail(path, where, f"expected an integer or a string, got {type(value).__name__} {_name(value)}")
    if isinstance(value, int) and not -(1 << 63) <= value < (1 << 64):
        raise _fail(path, where, f"{value} does not fit a kernel integer")
    if isinstance(value, str) and (not value.strip() or len(value) > MAX_SYSCTL_VALUE
                                   or not value.isprintable()):
        raise _fail(path, where, f"expected one line of at most {MAX_SYSCTL_VALUE} printable characters, "
                    f"got {_name(value)}")
    return value


def _linux_setting(path: Path | str, where: str, key: Any, value: Any, source: str) -> Setting:
    if isinstance(key, str) and key.startswith(RLIMIT_PREFIX):
        return _rlimit_setting(path, where, key, value, source)
    try:
        check_profile_key(key)
    except SysctlKeyError as exc:
        raise _fail(path, where, str(exc)) from None
    return Setting(key, _sysctl_value(path, where, value), source, str(path))


def _windows_setting(path: Path | str, where: str, key: Any, value: Any, source: str) -> Setting:
    rule = rule_for(key) if isinstance(key, str) else None
    if rule is None:
        from .emulation import RULES
        raise _fail(path, where, f"unknown emulated setting; known: {', '.join(sorted(RULES))}")
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(path, where, f"expected an integer, got {_name(value)}")
    if not rule.low <= value <= rule.high:
        raise _fail(path, where, f"{value} is outside the documented range {rule.low}..{rule.high}")
    return Setting(key, value, source, str(path))


def _mapping(path: Path, where: str, raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise _fail(path, where, f"expected a mapping, got {type(raw).__name__}")
    return _string_keys(path, where, raw)


def _entry(path: Path, where: str, raw: Any, required: set[str],
           optional: frozenset[str] = frozenset({"note"})) -> dict[str, Any]:
    """A ``{value: ..., source: ...}`` entry with no unknown and no missing keys."""
    if not isinstance(raw, dict):
        raise _fail(path, where, f"expected a mapping with {', '.join(sorted(required))}")
    entry: dict[str, Any] = _string_keys(path, where, raw)
    for key in entry:
        if key not in required | optional:
            raise _fail(path, f"{where}.{_name(key)}", "unknown key")
    for key in required:
        if key not in entry:
            raise _fail(path, where, f"missing '{key}'")
    for key in ("note", "why"):
        if key in entry:
            _text(path, f"{where}.{key}", entry[key])
    return entry


def _settings(path: Path, os_name: str, raw: Any, sources: dict[str, str]) -> tuple[Setting, ...]:
    out = []
    for key, raw_entry in _mapping(path, "settings", raw).items():
        where = f"settings.{_name(key)}"
        entry = _entry(path, where, raw_entry, {"value", "source"})
        _check_source(path, where, entry["source"], sources)
        make = _windows_setting if rule_for(key) or (
            os_name == "windows" and not key.startswith(("net.", RLIMIT_PREFIX))) else _linux_setting
        out.append(make(path, where, key, entry["value"], entry["source"]))
    return tuple(out)


def _linux_pins(path: Path, raw: Any) -> tuple[Setting, ...]:
    out = []
    for key, raw_entry in _mapping(path, "linux", raw).items():
        where = f"linux.{_name(key)}"
        entry = _entry(path, where, raw_entry, {"value", "why"})
        out.append(_linux_setting(path, where, key, entry["value"], entry["why"]))
    return tuple(out)


def _check_source(path: Path, where: str, source: Any, sources: dict[str, str]) -> None:
    if not isinstance(source, str):
        raise _fail(path, f"{where}.source", f"expected the name of a source (a string), got "
                    f"{type(source).__name__}")
    if source not in sources:
        raise _fail(path, f"{where}.source", f"{_name(source)} is not listed under 'sources'")


def _sources(path: Path, raw: Any) -> dict[str, str]:
    return {k: _text(path, f"sources.{_name(k)}", v) for k, v in _mapping(path, "sources", raw).items()}


def _expectation(path: Path, limit: str, raw: Any, sources: dict[str, str]) -> Expectation:
    where = f"expect.{_name(limit)}"
    if limit not in LIMITS:
        raise _fail(path, where, f"unknown limit; known: {', '.join(sorted(LIMITS))}")
    entry = _entry(path, where, raw, {"value", "source"}, frozenset({"ended_by", "note"}))
    _check_source(path, where, entry["source"], sources)
    value = entry["value"]
    if value != UNLIMITED and (isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 63):
        raise _fail(path, f"{where}.value", f"expected a whole number or '{UNLIMITED}', got {_name(value)}")
    ended_by = entry.get("ended_by")
    if ended_by is not None and (not isinstance(ended_by, str) or not is_known_error_name(ended_by)):
        raise _fail(path, f"{where}.ended_by", f"{_name(ended_by)} is not an errno or Winsock error name")
    return Expectation(limit, None if value == UNLIMITED else value, entry["source"],
                       ended_by, entry.get("note", ""))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = safeyaml.load(path)
    except YamlInputError as exc:
        raise _fail(path, exc.where, exc.message) from None
    if not isinstance(data, dict):
        raise _fail(path, "top level", "expected a mapping")
    return _string_keys(path, "", data)


def load(path: Path) -> Profile:
    """Read and validate one profile file."""
    data = _read_yaml(path)
    for key in data:
        if key not in TOP_KEYS:
            raise _fail(path, _name(key), f"unknown key; known: {', '.join(sorted(TOP_KEYS))}")
    for key in ("title", "os"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise _fail(path, key, "missing (a non-empty string is required)")
        _text(path, key, data[key], 200)
    if data["os"] not in OSES:
        raise _fail(path, "os", f"expected one of {', '.join(OSES)}, got {_name(data['os'])}")
    name = data.get("name", path.stem)
    if name != path.stem:
        raise _fail(path, "name", f"{_name(name)} differs from the file name {path.stem!r}")
    sources = _sources(path, data.get("sources"))
    expect = {k: _expectation(path, k, v, sources) for k, v in _mapping(path, "expect", data.get("expect")).items()}
    description = _text(path, "description", data.get("description", ""))
    return Profile(name=name, title=data["title"].strip(), os=data["os"], path=path,
                   description=description.strip(), sources=sources,
                   settings=_settings(path, data["os"], data.get("settings"), sources),
                   linux=_linux_pins(path, data.get("linux")), expect=expect)


def builtin_dir() -> Path:
    """The shipped ``labs/``: inside the wheel, or beside the package in a source checkout."""
    package = Path(__file__).resolve().parents[1]  # pytest_connlab/
    packaged = package / "labs"
    return packaged if packaged.is_dir() else package.parent / "labs"


def discover(extra_dirs: list[Path]) -> dict[str, Profile]:
    """Every profile by name; a user's folder (listed first) shadows the shipped one."""
    found: dict[str, Profile] = {}
    for folder in [*extra_dirs, builtin_dir()]:
        if not folder.is_dir():
            raise ProfileError(f"{folder}: connlab_labs: not a folder")
        for path in sorted(folder.glob("*.yaml")):
            if path.stem not in found:
                found[path.stem] = load(path)
    return found
