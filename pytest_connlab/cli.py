"""``connlab``: list and show profiles, sweep what dead runs left, remove a kept lab."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from . import sheet
from .errors import ConnlabError, InventoryError, ProfileError, ReaperError
from .lab import reaper
from .lab.providers import every_provider
from .lab.providers.inventory import InventoryHost, load_inventory
from .profiles.emulation import rule_for
from .profiles.limits import LIMITS
from .profiles.profile import Profile, builtin_dir, discover
from .report import allure3


def _profiles(dirs: list[str]) -> dict[str, Profile]:
    return discover([Path(d) for d in dirs])


def _profile(args: argparse.Namespace) -> Profile:
    """The profile ``args.name``; ProfileError (printed by main, exit 2) when there is none."""
    profiles = _profiles(args.labs)
    if args.name not in profiles:
        raise ProfileError(f"unknown lab {args.name!r}; known: {', '.join(sorted(profiles))}")
    return profiles[args.name]


def cmd_list(args: argparse.Namespace) -> int:
    profiles = _profiles(args.labs)
    width = max(len(n) for n in profiles)
    for name, profile in sorted(profiles.items()):
        print(f"{name:<{width}}  {profile.title}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    p = _profile(args)
    print(f"{p.name}: {p.title} ({p.os})  [{p.path}]")
    if p.description:
        print(f"  {p.description}")
    print("settings:")
    for s in p.settings:
        rule = rule_for(s.key)
        played = ", played by the agent" if rule and rule.applied_by == "agent" else ""
        how = (f"{rule.linux.replace('<value>', str(s.value))}  [{rule.fidelity}{played}]" if rule
               else "set as is  [exact]")
        print(f"  {s.key} = {s.value}  ({s.source})\n      linux: {how}")
        if rule:
            print(f"      why: {rule.reason.replace('<value>', str(s.value))}")
    for pin in p.linux:
        print(f"  linux pin {pin.key} = {pin.value}: {pin.source}")
    print("expect:")
    for limit, e in p.expect.items():
        value = "unlimited" if e.value is None else e.value
        ended = f", ended by {e.ended_by}" if e.ended_by else ""
        print(f"  {limit}: {value}{ended}  ({e.source}) - {LIMITS[limit]}")
    return 0


def cmd_path(args: argparse.Namespace) -> int:
    print(builtin_dir())
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    removed = reaper.sweep(every_provider(), dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for run_id, names in removed.items():
        print(f"run {run_id}: {verb} {len(names)} namespaces, containers and networks: {' '.join(names)}")
    if not removed:
        print("nothing left by a dead run")
    for kept in sorted(reaper.kept_labs()):
        print(f"kept lab {kept} stays; remove it with: connlab down {kept}")
    return 0


def cmd_image_build(args: argparse.Namespace) -> int:
    from .errors import ImageBuildError
    try:
        if args.vm:
            from .lab.providers import vmimage
            vmimage.build(vmimage.VmRecipe(kernel=args.kernel, suite=args.suite, mirror=args.mirror),
                          force=args.force)
        else:
            if args.kernel:
                raise ImageBuildError("connlab image build: --kernel is for the vm image (--vm)")
            from .lab.providers.image import Recipe, build
            build(Recipe(suite=args.suite, mirror=args.mirror), force=args.force)
    except ImageBuildError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def cmd_windows_script(args: argparse.Namespace) -> int:
    from .profiles.windows import script
    try:
        sys.stdout.write(script(_profile(args)))
    except ValueError as exc:
        print(f"connlab: {exc}", file=sys.stderr)
        return 2
    return 0


def _windows_hosts(inventory: str) -> list[InventoryHost]:
    hosts = [h for h in load_inventory(Path(inventory)) if h.os == "windows"]
    if not hosts:
        raise ProfileError(f"inventory {inventory}: no host has os: windows")
    return hosts


def _state_file(inventory: str, host: str) -> Path:
    return Path(inventory).resolve().parent / f"connlab-windows-{host}.json"


def cmd_windows_apply(args: argparse.Namespace) -> int:
    """Set a profile on every Windows host of an inventory; keep the previous values for restore."""
    from .errors import WindowsSettingError
    from .lab.providers.ssh import connect
    from .profiles.windows import apply, plan_for, save, ssh_runner
    plan = plan_for(_profile(args))
    for host in _windows_hosts(args.inventory):
        state = _state_file(args.inventory, host.name)
        if os.path.lexists(state):
            print(f"connlab: {host.name}: {state} exists (settings applied before); "
                  "run `connlab windows restore` first", file=sys.stderr)
            return 2
        client = connect(host)
        try:
            applied = apply(plan, ssh_runner(client))
        except WindowsSettingError as exc:
            print(f"connlab: {host.name}: {exc}", file=sys.stderr)
            return 1
        finally:
            client.close()
        save(applied, state)
        print(f"{host.name}: applied {len(plan.registry)} registry values"
              f"{' and the dynamic port range' if plan.dynamic_ports else ''}; previous values in {state}")
        for need in plan.needs:
            print(f"  takes effect after {need}")
    for key, why in plan.not_applicable:
        print(f"not applied: {key}: {why}")
    return 0


def cmd_windows_restore(args: argparse.Namespace) -> int:
    """Put back what `connlab windows apply` changed on the inventory's Windows hosts."""
    from .errors import WindowsSettingError
    from .lab.providers.ssh import connect
    from .profiles.windows import load, ssh_runner
    status = 0
    for host in _windows_hosts(args.inventory):
        state = _state_file(args.inventory, host.name)
        if not state.exists():
            print(f"{host.name}: nothing to restore ({state} does not exist)")
            continue
        try:
            applied = load(state)
        except WindowsSettingError as exc:
            print(f"connlab: {exc}", file=sys.stderr)
            return 2
        client = connect(host)
        try:
            problems = applied.restore(ssh_runner(client))
        finally:
            client.close()
        if problems:
            print(f"connlab: {host.name}: " + "; ".join(problems), file=sys.stderr)
            status = 1
        else:
            state.unlink()
            print(f"{host.name}: previous values restored")
    return status


def cmd_down(args: argparse.Namespace) -> int:
    """Take down a lab that `connlab up` holds, or remove one that --lab-keep left standing;
    anything else is refused and nothing changes."""
    try:
        if sheet.down_up_lab(args.lab):
            print(f"took down lab {args.lab} (held by connlab up)")
            return 0
    except ConnlabError as exc:
        print(f"connlab down: {exc}", file=sys.stderr)
        return 2
    try:
        names = reaper.remove_kept_lab(args.lab, every_provider())
    except ReaperError as exc:
        print(f"connlab down: {exc}", file=sys.stderr)
        return 2
    print(f"removed {len(names)} namespaces of {args.lab}: {' '.join(names)}" if names else
          f"removed lab {args.lab} (nothing of it was left standing)")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """An offline single-file HTML report of Allure results."""
    try:
        index = allure3.generate([Path(r) for r in args.results], Path(args.output),
                                 Path(args.previous) if args.previous else None, args.name)
    except ConnlabError as exc:
        print(f"connlab report: {exc}", file=sys.stderr)
        return 2
    print(f"report: {index}")
    return 0


def _lab_commands(sub: Any) -> None:
    """probe, sheet, up and report."""
    def lab_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--provider", default="netns", choices=["netns", "docker"],
                       help="how lab hosts are made (default: netns)")
    probe = sub.add_parser("probe", help="run one limit's probe on a new lab; the same table and JSON row "
                           "as pytest")
    probe.add_argument("limit")
    probe.add_argument("--lab", required=True, metavar="NAME", help="the profile")
    probe.add_argument("--target", metavar="CMD", help="your own server program, started in the lab's server")
    probe.add_argument("--port", type=int, metavar="P", help="the TCP port it listens on")
    probe.add_argument("--json", action="store_true", help="print the JSON row instead of the table")
    probe.add_argument("--plots", metavar="DIR", help="write the evidence's PNG plots to DIR (needs matplotlib)")
    lab_options(probe)
    probe.set_defaults(func=sheet.cmd_probe)
    limit_sheet = sub.add_parser("sheet", help="every probe that can take a target, against your program: "
                                 "the limit sheet of that server under that profile")
    limit_sheet.add_argument("--lab", required=True, metavar="NAME")
    limit_sheet.add_argument("--target", required=True, metavar="CMD")
    limit_sheet.add_argument("--port", required=True, type=int, metavar="P")
    limit_sheet.add_argument("--json", action="store_true")
    limit_sheet.add_argument("--plots", metavar="DIR")
    lab_options(limit_sheet)
    limit_sheet.set_defaults(func=sheet.cmd_sheet)
    up = sub.add_parser("up", help="keep a lab of a profile standing to explore, until Ctrl-C or connlab down")
    up.add_argument("name", help="the profile")
    up.add_argument("--clients", type=int, default=1)
    up.add_argument("--ips-per-client", type=int, default=1)
    up.add_argument("--router", action="store_true")
    lab_options(up)
    up.set_defaults(func=sheet.cmd_up)
    report = sub.add_parser("report", help="an offline single-file HTML report (Allure 3) of --alluredir results")
    report.add_argument("results", nargs="+", metavar="RESULTS", help="folders of Allure results")
    report.add_argument("-o", "--output", required=True, metavar="DIR")
    report.add_argument("--previous", metavar="DIR", help="the previous report: carry its history and trend")
    report.add_argument("--name", default="connlab", help="the report's title")
    report.set_defaults(func=cmd_report)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="connlab", description="connection-limit labs")
    parser.add_argument("--labs", action="append", default=[], metavar="DIR",
                        help="a folder of your own profiles (may repeat)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the lab profiles with their titles").set_defaults(func=cmd_list)
    show = sub.add_parser("show", help="a profile's settings, their Linux emulation and fidelity")
    show.add_argument("name")
    show.set_defaults(func=cmd_show)
    sub.add_parser("path", help="the folder of the shipped profiles and reproduction suite"
                   ).set_defaults(func=cmd_path)
    clean = sub.add_parser("clean", help="remove what dead runs left (never a live run's labs)")
    clean.add_argument("--dry-run", action="store_true")
    clean.set_defaults(func=cmd_clean)
    image = sub.add_parser("image", help="the docker provider's lab image, or the vm provider's guest image")
    image_sub = image.add_subparsers(dest="image_command", required=True)
    image_build = image_sub.add_parser("build", help="debootstrap a minimal Debian and docker import it "
                                       "(cached by content hash)")
    image_build.add_argument("--suite", default="bookworm")
    image_build.add_argument("--mirror", default="",
                             help="Debian mirror URI (default: the one this machine's apt sources use)")
    image_build.add_argument("--force", action="store_true", help="build even if the tag exists")
    image_build.add_argument("--vm", action="store_true",
                             help="build the vm provider's guest image instead: a Debian kernel (apt-get "
                                  "download, dpkg -x), a debootstrapped read-only root, a busybox initramfs, in "
                                  "/var/cache/connlab/vm/<hash>")
    image_build.add_argument("--kernel", default="", metavar="PACKAGE",
                             help="with --vm: the guest kernel package (default: the one linux-image-amd64 "
                                  "depends on)")
    image_build.set_defaults(func=cmd_image_build)
    windows = sub.add_parser("windows", help="set a profile on real Windows hosts with reg and netsh "
                             "(untested until a Windows host runs it)")
    windows_sub = windows.add_subparsers(dest="windows_command", required=True)
    winscript = windows_sub.add_parser("script", help="the cmd.exe commands that set a profile, with what "
                                       "each needs")
    winscript.add_argument("name")
    winscript.set_defaults(func=cmd_windows_script)
    winapply = windows_sub.add_parser("apply", help="set a profile on the inventory's os: windows hosts over "
                                      "SSH; the previous values go to connlab-windows-<host>.json")
    winapply.add_argument("name")
    winapply.add_argument("--inventory", required=True)
    winapply.set_defaults(func=cmd_windows_apply)
    winrestore = windows_sub.add_parser("restore", help="put back what `connlab windows apply` changed")
    winrestore.add_argument("--inventory", required=True)
    winrestore.set_defaults(func=cmd_windows_restore)
    down = sub.add_parser("down", help="take down a lab held by `connlab up` or kept by --lab-keep")
    down.add_argument("lab")
    down.set_defaults(func=cmd_down)
    _lab_commands(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ProfileError, InventoryError) as exc:
        print(f"connlab: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and cut short: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except PermissionError as exc:
        print(f"connlab: {exc.filename}: permission denied (run as root)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
