"""``connlab report RESULTS... -o DIR``: an offline, single-file HTML report made by Allure 3.

Allure 3 comes from npm, pinned by ``report/package-lock.json``, installed by
``setup.sh --report`` into the project's own ``report/node_modules`` and called by path
(never a bare ``npx``, which would reach the network). Its Google Analytics tag is cut out
of the HTML, and the report is refused if any reference to another machine is left in a
``src`` or ``href``. History: the report folder keeps ``history.jsonl``; give the
previous report with ``--previous`` and the new one carries its history and trend.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import ConnlabError

TOOLS = Path(__file__).resolve().parents[2] / "report"
ALLURE = TOOLS / "node_modules" / ".bin" / "allure"
MARKER = ".connlab-report"  # a folder with it is a report connlab made, and may be replaced
GENERATE_BOUND_S = 600
ANALYTICS = re.compile(r"<script[^>]*googletagmanager\.com[^>]*>\s*</script>\s*"
                       r"<script>(?:(?!</script>).)*gtag\((?:(?!</script>).)*</script>", re.S)
REMOTE_REFERENCE = re.compile(r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)


class ReportError(ConnlabError):
    """The report cannot be made: the message names the folder or tool and why."""


def allure_binary() -> Path:
    if not ALLURE.exists():
        raise ReportError(f"Allure 3 is not installed in {TOOLS}: run ./setup.sh --report (npm ci there)")
    return ALLURE


def _results(folders: list[Path]) -> list[Path]:
    out = []
    for folder in folders:
        if not folder.is_dir():
            raise ReportError(f"{folder}: not a folder of Allure results (pytest --alluredir={folder})")
        if not any(folder.glob("*-result.json")):
            raise ReportError(f"{folder}: holds no Allure test results (*-result.json)")
        out.append(folder.resolve())
    return out


def _check_output(out: Path) -> None:
    if out.is_symlink():
        raise ReportError(f"{out}: a symbolic link; connlab never writes through a link")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise ReportError(f"{out}: exists and is not a report connlab made; give a new or empty folder")


def strip_analytics(html: str) -> str:
    """The HTML without Allure's analytics tag; ReportError if anything still loads from elsewhere."""
    cleaned = ANALYTICS.sub("", html)
    remote = REMOTE_REFERENCE.search(cleaned)
    if remote or "googletagmanager" in cleaned:
        where = remote.group(0) if remote else "googletagmanager"
        raise ReportError(f"the generated report still loads from another machine ({where[:80]}); not written")
    return cleaned


def generate(results: list[Path], out: Path, previous: Path | None = None, name: str = "connlab") -> Path:
    """Make the report in ``out`` (a new, empty or earlier connlab report folder); return index.html."""
    folders = _results(results)
    out = Path(os.path.abspath(out))
    _check_output(out)
    binary = allure_binary()
    previous = Path(os.path.abspath(previous)) if previous is not None else None
    if previous is not None and not (previous / "history.jsonl").is_file():
        raise ReportError(f"--previous {previous}: no history.jsonl there (not a connlab report?)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".connlab-report-", dir=out.parent) as work:
        staging = Path(work) / "report"
        history = Path(work) / "history.jsonl"
        if previous is not None:
            shutil.copyfile(previous / "history.jsonl", history)
        config = Path(work) / "allurerc.json"
        config.write_text(json.dumps({
            "name": name, "historyPath": str(history),
            "plugins": {"awesome": {"options": {"singleFile": True, "reportName": name,
                                                "stepTreeExpansion": "expanded"}}}}))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("npm_", "NPM_"))}
        env["NO_UPDATE_NOTIFIER"] = "1"
        try:
            done = subprocess.run([str(binary), "generate", "--config", str(config), "--output", str(staging),
                                   *map(str, folders)], cwd=work, env=env, capture_output=True, text=True,
                                  timeout=GENERATE_BOUND_S)
        except subprocess.TimeoutExpired:
            raise ReportError(f"allure generate took more than {GENERATE_BOUND_S} s; stopped") from None
        index = staging / "index.html"
        if done.returncode != 0 or not index.is_file():
            raise ReportError(f"allure generate failed ({done.returncode}): {(done.stderr or done.stdout)[-800:]}")
        index.write_text(strip_analytics(index.read_text(encoding="utf-8")), encoding="utf-8")
        if history.is_file():
            shutil.copyfile(history, staging / "history.jsonl")
        (staging / MARKER).write_text("made by connlab report\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging, out)
    return out / "index.html"
