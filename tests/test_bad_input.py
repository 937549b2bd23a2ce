"""No input of any kind writes outside the lab: 300+ generated bad profiles, 60+ bad options,
ini keys, markers and inventories are each a clear error naming the file, key, option or test;
no traceback, no hang; the host's sysctls, names and canary files are unchanged afterwards."""
import json
import os
import re
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pytest_connlab.errors import ProfileError
from pytest_connlab.lab.providers.base import local_agent_argv
from pytest_connlab.profiles.profile import load

from .badinput import ESCAPING_KEYS, cases, host_snapshot, make

CANARY = Path("/tmp/connlab-canary")
PLACE = re.compile(r"^: (line \d+|file|yaml|top level|[^:\n]+): \S")  # after the path: where, then why
CASE_BOUND_S = 5  # each case, in process
RUN_BOUND_S = 60  # each pytest run


@pytest.fixture
def canaries(tmp_path):
    """Files an escaping key would hit, with known contents; the host snapshot includes them."""
    CANARY.write_text("canary\n")
    yield [CANARY]
    CANARY.unlink(missing_ok=True)


class CaseTimeout(Exception):
    pass


def _bounded(seconds: int):
    def expire(signum, frame):
        raise CaseTimeout(f"took more than {seconds} s")
    signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)


def test_generated_profiles_are_errors_naming_file_and_place(tmp_path, canaries):
    before = host_snapshot(canaries)
    generated = cases()
    assert len(generated) >= 300
    problems = []
    for i, case in enumerate(generated):
        folder = tmp_path / f"c{i}"
        folder.mkdir()
        path = make(case, folder)
        _bounded(CASE_BOUND_S)
        try:
            load(path)
            problems.append(f"{case.name}: loaded without an error")
        except ProfileError as exc:
            message = str(exc)
            if not message.startswith(f"{path}: {case.where}") or not PLACE.match(message[len(str(path)):]):
                problems.append(f"{case.name}: {message[:200]!r} does not start with {path}: {case.where}")
        except BaseException as exc:  # anything else is a traceback for a user
            problems.append(f"{case.name}: {type(exc).__name__}: {str(exc)[:200]}")
        finally:
            signal.alarm(0)
    assert not problems, "\n".join(problems)
    assert host_snapshot(canaries) == before


@pytest.mark.parametrize("key", ["net./tmp/x", "net.core/../../x", "net./tmp/connlab-canary"])
def test_an_escaping_key_is_an_error_naming_file_and_key(tmp_path, key):
    path = tmp_path / "p.yaml"
    path.write_text(f'title: T\nos: linux\nsources: {{S: s}}\nsettings:\n  "{key}": {{value: 1, source: S}}\n')
    with pytest.raises(ProfileError) as info:
        load(path)
    assert str(info.value).startswith(f"{path}: settings.{key}: "), str(info.value)


def _agent(*args: str) -> dict:
    # in a network namespace of its own that dies with it: nothing the test sends can reach the host's
    done = subprocess.run(["unshare", "--net", *local_agent_argv(list(args))], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[0])


@pytest.mark.usefixtures("needs_netns")
def test_the_agent_refuses_every_path_outside_proc_sys_net(canaries):
    """The agent checks again on its own: a key that got past the controller still opens nothing."""
    before = host_snapshot(canaries)
    domainname = Path("/proc/sys/kernel/domainname").read_text()
    well_formed = re.compile(r"net(\.[a-z0-9_-]+)+")
    refused = [k for k in ESCAPING_KEYS if not well_formed.fullmatch(k)]  # kernel-wide net.* keys: controller's job
    for key in [*refused, "kernel.domainname", "net.core.somaxconn/../../../kernel/domainname"]:
        reply = _agent("sysctl", "--set", json.dumps({key: "pwned"}))
        assert reply["error"] and reply["error"]["key"] == key, (key, reply)
        assert reply["previous"] == {}, (key, reply)  # refused before anything was read or written
    read = _agent("sysctl", "--get", "net./etc/shadow", "net.core/../../../../etc/hostname", "net.core.somaxconn")
    assert read["values"]["net./etc/shadow"] is None and read["values"]["net.core/../../../../etc/hostname"] is None
    assert read["values"]["net.core.somaxconn"].isdigit()
    assert Path("/proc/sys/kernel/domainname").read_text() == domainname
    assert host_snapshot(canaries) == before


PLAIN_TEST = "def test_p(lab_profile):\n    pass\n"


def _run_pytest(folder: Path, args: list[str], ini: str = "", test: str = PLAIN_TEST) -> tuple[int, str]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test_case.py").write_text(test)
    (folder / "pytest.ini").write_text("[pytest]\n" + ini)
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
                          cwd=folder, capture_output=True, text=True, timeout=RUN_BOUND_S)
    return done.returncode, done.stdout + done.stderr


def _option_cases(tmp: Path) -> list[tuple[list[str], str, str, str]]:
    """(args, ini, test source, text the error must contain), all usage errors."""
    (tmp / "fifo").mkdir()
    os.mkfifo(tmp / "fifo" / "inv.yaml")
    (tmp / "link.json").symlink_to(tmp / "elsewhere.json")
    (tmp / "dupinv.yaml").write_text("hosts:\n  server: {address: 198.18.0.1}\n  server: {address: 198.18.0.2}\n")
    (tmp / "badns.yaml").write_text("hosts:\n  server: {address: 198.18.0.1, user: root, key: /etc/hostname, "
                                    "role: server, netns: ../../etc}\n")
    (tmp / "notyaml.yaml").write_bytes(b"\xff\xfe hosts")
    (tmp / "labsfile").write_text("x")
    out: list[tuple[list[str], str, str, str]] = []
    for value in ["", " ", "win95", "win2003,", ",", "all,win2003", "../etc/passwd", "win2003\x01", "a b"]:
        out.append(([f"--lab={value}"], "", PLAIN_TEST, "--lab"))
    for value in ["", "kubernetes", "netns ", "NETNS", "../netns", "ssh"]:
        out.append(([f"--lab-provider={value}"], "", PLAIN_TEST, "--lab-provider"))
    for value in ["", "UPPER", "a;rm -rf /", "x:" + "y" * 200, "-rm"]:
        out.append(([f"--lab-image={value}"], "", PLAIN_TEST, "--lab-image"))
    for value in ["", str(tmp / "no" / "x.json"), str(tmp), str(tmp / "link.json"), "/proc/x.json",
                  "/proc/self/x.json", "/sys/x.json", "."]:
        out.append(([f"--lab-json={value}"], "", PLAIN_TEST, "--lab-json"))
    (tmp / "notjson.json").write_text("{results: nope")
    (tmp / "nolist.json").write_text('{"results": 3}')
    (tmp / "badrow.json").write_text('{"results": [{"test": "t", "limit": "x", "observed": "many"}]}')
    (tmp / "otherformat.json").write_text('{"format": "other/9", "results": []}')
    (tmp / "ok.json").write_text('{"results": []}')
    for value in ["", str(tmp / "missing.json"), str(tmp / "notjson.json"), str(tmp / "nolist.json"),
                  str(tmp / "badrow.json"), str(tmp / "otherformat.json"), str(tmp / "fifo"), "/dev/zero",
                  str(tmp / "fifo" / "inv.yaml")]:
        out.append(([f"--lab-compare={value}"], "", PLAIN_TEST, "--lab-compare"))
    for value in ["", "x", "-1", "5%%", "nan", "inf", "warp:0", "ephemeral_ports:", ","]:
        out.append(([f"--lab-compare={tmp / 'ok.json'}", f"--lab-compare-fail={value}"], "", PLAIN_TEST,
                    "--lab-compare-fail"))
    out.append((["--lab-compare-fail=0"], "", PLAIN_TEST, "--lab-compare-fail"))
    for value in ["", str(tmp / "no" / "b.json"), str(tmp), str(tmp / "link.json"), "/proc/b.json"]:
        out.append(([f"--lab-baseline-save={value}"], "", PLAIN_TEST, "--lab-baseline-save"))
    for inv in ["", str(tmp / "missing.yaml"), str(tmp / "fifo" / "inv.yaml"), str(tmp / "dupinv.yaml"),
                str(tmp / "badns.yaml"), str(tmp / "notyaml.yaml"), "/dev/zero", str(tmp)]:
        expect = "--lab-inventory" if not inv else "inventory"
        out.append((["--lab-provider=ssh", f"--lab-inventory={inv}"], "", PLAIN_TEST, expect))
    out.append((["--lab-provider=vagrant", f"--lab-vagrant-dir={tmp / 'nowhere'}"], "", PLAIN_TEST,
                "--lab-vagrant-dir"))
    out.append((["--lab-vagrant-dir="], "", PLAIN_TEST, "--lab-vagrant-dir"))
    out.append(([], "connlab_provider = bogus\n", PLAIN_TEST, "--lab-provider"))
    out.append(([], "connlab_vagrant_provider = hyperv\n", PLAIN_TEST, "connlab_vagrant_provider"))
    out.append(([], f"connlab_labs = {tmp / 'nolabs'}\n", PLAIN_TEST, "connlab_labs"))
    out.append(([], f"connlab_labs = {tmp / 'labsfile'}\n", PLAIN_TEST, "connlab_labs"))
    out.append(([], "connlab_docker_image = a b\n", PLAIN_TEST, "--lab-image"))
    markers = [
        "settings(sysctl={'net./tmp/connlab-canary': 1})", "settings(sysctl={'net.core/../../x': 1})",
        "settings(sysctl={'kernel.domainname': 'x'})", "settings(sysctl={1: 2})", "settings(sysctl=[1])",
        "settings(sysctl={'net.core.somaxconn': [1, 'x']})", "settings(sysctl={'net.core.somaxconn': 'a\\nb'})",
        "settings(sysctl={'fs.protected_regular': 1})", "topology(memory='lots')", "topology(vcpus=0)",
        "settings(windows={'Tcpip.MaxUserPort': 'x'})",
        "settings(windows={1: 1})", "settings(windows={'Tcpip.Nope': 1})", "settings(emulated={'x': 1})",
        "settings(rlimit={'nofile': 1})", "settings(rlimit={'stack': 100})", "settings(rlimit={'nofile': 'x'})",
        "settings({'a': 1})", "settings(registry={})", "topology(clients='x')", "topology(clients=10**9)",
        "topology(ips_per_client=-1)", "topology(router='yes')", "topology(1)", "topology(servers=2)",
        "limit()", "limit(1)", "limit('a', 'b')", "limit('warp')",
    ]
    for marker in markers:
        test = f"import pytest\n\n@pytest.mark.{marker}\ndef test_marked(lab):\n    pass\n"
        out.append(([], "", test, "test_case.py::test_marked"))
    return out


def test_bad_options_ini_keys_markers_and_inventories_are_usage_errors(tmp_path, canaries):
    before = host_snapshot(canaries)
    runs = _option_cases(tmp_path)
    assert len(runs) >= 60
    with ThreadPoolExecutor(max_workers=3) as pool:
        outcomes = list(pool.map(lambda ic: _run_pytest(tmp_path / f"run{ic[0]}", *ic[1][:3]), enumerate(runs)))
    problems = []
    for (args, ini, _, named), (code, output) in zip(runs, outcomes):
        what = f"{args} {ini.strip()!r}"
        if code != pytest.ExitCode.USAGE_ERROR:
            problems.append(f"{what}: exit {code}: {output[-300:]}")
        elif "Traceback" in output:
            problems.append(f"{what}: a traceback: {output[-300:]}")
        elif named not in output:
            problems.append(f"{what}: the error does not name {named!r}: {output[-300:]}")
    assert not problems, "\n".join(problems)
    assert host_snapshot(canaries) == before


def test_a_bad_user_profile_in_a_folder_stops_the_run_naming_it(tmp_path):
    labs = tmp_path / "mylabs"
    labs.mkdir()
    os.mkfifo(labs / "stuck.yaml")  # a FIFO once hung pytest for ever
    code, output = _run_pytest(tmp_path / "run", ["--lab=stuck"], ini=f"connlab_labs = {labs}\n")
    assert code == pytest.ExitCode.USAGE_ERROR and "Traceback" not in output
    assert re.search(rf"{labs}/stuck.yaml: file: not a regular file", output), output


@pytest.mark.usefixtures("needs_netns")
def test_a_sysctl_the_kernel_refuses_from_a_marker_names_the_test(tmp_path):
    test = ("import pytest\n\n@pytest.mark.settings(sysctl={'net.ipv4.no_such_knob': 1})\n"
            "def test_marked(lab):\n    pass\n")
    code, output = _run_pytest(tmp_path / "run", [], test=test)
    assert code == pytest.ExitCode.TESTS_FAILED and "Traceback" not in output, output
    assert "test_case.py::test_marked[linux-default] @pytest.mark.settings: server: sysctl net.ipv4.no_such_knob" \
        in output and "During handling" not in output, output
    assert "linux-default.yaml" not in output, output


def test_an_unwritable_lab_json_at_the_end_keeps_the_results_and_leaves_nothing(tmp_path):
    """The folder is checked at the start; if it goes away during the run the table still shows."""
    out = tmp_path / "gone" / "r.json"
    out.parent.mkdir()
    test = (f"import shutil\n\ndef test_p(lab_profile):\n    shutil.rmtree({str(out.parent)!r})\n")
    code, output = _run_pytest(tmp_path / "run", [f"--lab-json={out}"], test=test)
    assert code == pytest.ExitCode.OK and "Traceback" not in output, output
    assert f"--lab-json {out}: not written" in output, output


def test_lab_json_replaces_a_link_planted_beside_it_without_following_it(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("root's file\n")
    out = tmp_path / "r.json"
    for planted in (tmp_path / "r.json.tmp", tmp_path / ".r.json.tmp"):
        planted.symlink_to(victim)
    code, output = _run_pytest(tmp_path / "run", [f"--lab-json={out}"])
    assert code == pytest.ExitCode.OK, output
    assert victim.read_text() == "root's file\n"
    assert json.loads(out.read_text())["results"] == []
    assert not [p for p in tmp_path.iterdir() if p.name.endswith((".tmp", ".probe")) and not p.is_symlink()]
