"""Mutation testing of the rule modules with mutmut, one module at a time (``make mutation``).

Each module runs in its own copy of the tree under ``var/mutation/NAME`` with a
``[mutmut]`` section of its own: the rule module to mutate, the functions that hold its
rules, and the fast SQLite tests that cover them. mutmut records which test calls which
function, then runs each mutant against those tests only, one process at a time.

    python scripts/mutation.py                 # every module
    python scripts/mutation.py deadlines intake
    python scripts/mutation.py --list
    python scripts/mutation.py --again workflow   # new tests: rerun only the survivors
    python scripts/mutation.py --resume workflow  # go on after an interruption
    python scripts/mutation.py --one-by-one intake  # each survivor again, in a fresh pytest
    python scripts/mutation.py --one-by-one intake --mutant x_store__mutmut_24  # one of them

mutmut's long sequential runs here report survivors that the same tests kill when the
mutant is run alone (intake's ``_row`` with ``rater = None``, 2026-12-03). ``--one-by-one``
is the check of record for survivors: each one runs in a pytest process of its own (no
fork server, no state shared with the mutants before it) against the module's whole test
selection, and its verdict is written back into mutmut's state. A survivor in a function
listed in the module's ``postgres`` runs on PostgreSQL instead (the same tests, and the
PostgreSQL-only paths the SQLite run cannot reach).

The summary (killed / survived / timeout per module) goes to stdout and to
``var/mutation/summary.txt``; ``var/mutation/NAME/`` keeps mutmut's state, so
``cd var/mutation/NAME && ../../../.venv/bin/mutmut show MUTANT`` shows a survivor.
See docs/testing.md for the last scores and the survivors explained.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "var" / "mutation"
TREES = ("service", "models", "config", "workers", "tests")
TIMEOUT_CONSTANT = 10  # seconds, see mutmut_section


@dataclass(frozen=True)
class Module:
    source: str  # the file mutated
    functions: tuple[str, ...]  # mutant name patterns (mutmut's x_NAME / Class.xǁ... form); () = all
    tests: tuple[str, ...]  # pytest arguments choosing the fast tests
    # Functions (name patterns, as ``functions``) with PostgreSQL-only paths: ``--one-by-one``
    # runs their SQLite survivors again on PostgreSQL, with the same tests.
    postgres: tuple[str, ...] = ()


MODULES = {
    "workflow": Module("service/cases/workflow.py", (), ("tests/test_workflow_table.py",)),
    "routing": Module("service/cases/routing.py", (), (
        "tests/test_routing.py", "tests/test_sweep_backoff.py",
        "-k", "not (assigned_case or unassigned or good_rating_gets or visible_through or sweep_task)")),
    "clock": Module("models/clock.py", (), (
        "tests/test_deadlines.py", "tests/test_routing.py::test_routing_counts_from_the_shanghai_date")),
    "deadlines": Module("service/cases/deadlines.py", (), (
        "tests/test_deadlines.py", "tests/test_routing.py::test_routing_uses_the_calendar_the_admin_entered")),
    "intake": Module("service/ratings/intake.py", ("x__canonical", "x__row", "x__insert_rows", "x_store"), (
        "tests/test_intake.py", "tests/test_routing.py::test_an_offline_rating_routes_from_the_day_it_was_received",
        "tests/test_exchange_outbox.py::test_a_single_rating_writes_its_record",
        "tests/test_exchange_outbox.py::test_a_batch_writes_one_record_per_created_rating_and_a_replay_none",
        "tests/test_exchange_outbox.py::test_with_the_outbox_off_ratings_write_none",
        "tests/test_citizen.py::test_a_rating_and_its_follow_up_carry_the_invitation",
        "tests/test_reasons.py::test_rating_reasons_checked_per_level",
        "tests/test_exchange_inbound.py::test_a_replay_is_duplicate_and_a_changed_record_a_conflict",
        "tests/test_exchange_inbound.py::"
        "test_upstream_records_in_the_exchange_profile_are_pc_or_mobile_ratings_not_reported_back",
        "-k", "not (batch_limit or rate_limit or eight_concurrent or cached_row_expires)"),
        # the unnest / scalar INSERTs, every column the row must name, the group commit
        postgres=("x__insert_rows", "x__row", "x_store")),
    # test_stats.py without its random round (a minute per survivor); the replay is PostgreSQL only.
    # The default ratings' figures (一事一评) and a breakdown with no department scope are in
    # test_default_ratings.py (the sweep by the console script; the figures in process); by=reason
    # in test_reasons.py.
    "figures": Module("service/stats/figures.py", (), (
        "tests/test_stats.py", "tests/test_default_ratings.py::test_expired_invitations_become_default_ratings",
        "tests/test_default_ratings.py::test_breakdowns_carry_the_application_figures_equal_to_raw_counts",
        "tests/test_default_ratings.py::test_default_ratings_of_any_level_are_counted_apart_from_the_rated",
        "tests/test_reasons.py::test_breakdown_by_reason_counts_raw_rows", "-k", "not random_inserts")),
    # rebuild and differences (test_stats.py, the CLI in process); adjust is the suspicious
    # flag's exclusion and restore (test_suspicious.py) and over more than one chunk of ids;
    # differences' default-channel check (test_default_ratings.py).
    "rollup": Module("service/stats/rollup.py", (), (
        "tests/test_stats.py::test_rollup_rebuild_equals_trigger_maintained_rollup",
        "tests/test_stats.py::test_cli_check_and_rebuild",
        "tests/test_suspicious.py::test_confirm_excludes_the_good_ratings_exactly_and_restore_puts_them_back",
        "tests/test_stats.py::test_rollup_adjust_takes_every_id_of_more_than_one_chunk_once",
        "tests/test_default_ratings.py::"
        "test_the_rollup_check_holds_with_default_ratings_and_lists_a_flag_off_its_channel"),
        # the PostgreSQL spellings (the Shanghai day, the month, a quoted "window"), rebuild's lock
        postgres=("x__q", "x_closed_day_sql", "x_month_sql", "x__counts_select", "x_rebuild", "x_adjust",
                  "x_differences")),
    "masking": Module("service/privacy.py", ("x_mask_phone", "x_mask_name", "x_normalise_phone"), (
        "tests/test_privacy.py", "tests/test_intake.py::test_get_rating_needs_staff_and_masks_rater")),
    # The department scope. (staff_required's role check is applied when the views are
    # decorated, at import, before mutmut switches a mutant in: its mutants cannot be run.)
    "scope": Module("service/auth/access.py", ("x_scope_filter", "x_in_scope"), (
        "tests/test_privacy_rules.py", "tests/test_cases_api.py", "tests/test_staff_auth.py")),
}


def mutmut_section(module: Module) -> str:
    def lines(values) -> str:
        return "".join(f"\n    {v}" for v in values)
    return (f"\n[mutmut]\nsource_paths ={lines(['service', 'models'])}\n"
            f"only_mutate = {module.source}\n"
            f"also_copy ={lines(['config', 'workers', 'tests', 'setup.cfg'])}\n"
            f"pytest_add_cli_args_test_selection ={lines(module.tests)}\n"
            "pytest_add_cli_args =\n    -p\n    no:cacheprovider\n"
            # mutmut's time limit is (the tests' call time + constant) × multiplier: the call
            # time leaves out the fixtures (a fresh database each test), and half the limit is a
            # wall-clock one, which a loaded machine at nice 19 overran on most of figures' mutants
            # (2026-12-03: "timeouts" that survived alone). A real endless loop costs minutes.
            f"timeout_constant = {TIMEOUT_CONSTANT}\n")


def prepare(name: str, module: Module) -> Path:
    """A fresh copy of the tree for this module, with its [mutmut] section."""
    work = OUT / name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "faults", "fuzz")
    for tree in TREES:
        shutil.copytree(ROOT / tree, work / tree, ignore=ignore)
    config = (ROOT / "setup.cfg").read_text(encoding="utf-8") + mutmut_section(module)
    (work / "setup.cfg").write_text(config, encoding="utf-8")
    return work


def patterns(module: Module) -> list[str]:
    """mutmut's names for the mutants of ``module``'s chosen functions (all when none chosen)."""
    mod = module.source.removesuffix(".py").replace("/", ".")
    return [f"{mod}.{f}__mutmut_*" for f in module.functions] or [f"{mod}.*"]


def counts(work: Path, module: Module) -> dict[str, int]:
    """killed / survived / timeout / other (not checked, no tests, ...) from ``mutmut results``."""
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "mutmut"), "results", "--all", "true"], cwd=work,
                         capture_output=True, text=True, check=True).stdout
    tally = {"killed": 0, "survived": 0, "timeout": 0, "other": 0}
    survivors = []
    for line in out.splitlines():
        if ":" not in line:
            continue
        mutant, status = (part.strip() for part in line.rsplit(":", 1))
        if not any(fnmatch.fnmatchcase(mutant, p) for p in patterns(module)):
            continue
        key = status if status in tally else "other"
        tally[key] += 1
        if status != "killed":
            survivors.append(f"{mutant}: {status}")
    (work / "survivors.txt").write_text("\n".join(survivors) + "\n", encoding="utf-8")
    return tally


def unchecked(work: Path, module: Module) -> list[str]:
    """The mutants of ``module`` an interrupted run did not check."""
    meta = json.loads((work / "mutants" / (module.source + ".meta")).read_text(encoding="utf-8"))
    return [n for n, code in meta["exit_code_by_key"].items()
            if code is None and any(fnmatch.fnmatchcase(n, p) for p in patterns(module))]


def refresh_tests(work: Path, module: Module) -> list[str]:
    """Bring the tests (and their selection) of an earlier run up to date; the mutants it did
    not kill, to run again."""
    config = (ROOT / "setup.cfg").read_text(encoding="utf-8") + mutmut_section(module)
    (work / "setup.cfg").write_text(config, encoding="utf-8")
    for where in (work / "tests", work / "mutants" / "tests"):
        shutil.rmtree(where)
        shutil.copytree(ROOT / "tests", where, ignore=shutil.ignore_patterns("__pycache__", "faults", "fuzz"))
    (work / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)  # the tests changed: record again
    names = (work / "survivors.txt").read_text(encoding="utf-8").split()
    return [n.rstrip(":") for n in names if n.startswith(("service.", "models."))]


def _pytest(work: Path, module: Module, mutant: str, timeout: float, backend: str = "sqlite") -> int:
    """Exit code of the module's tests with ``mutant`` switched in, in a fresh process (36: timeout)."""
    env = {**os.environ, "HCP_TEST_BACKEND": backend, "MUTANT_UNDER_TEST": mutant}
    cmd = ["nice", "-n", "10", str(ROOT / ".venv" / "bin" / "python"), "-m", "pytest", "-x", "-q",
           "--rootdir=.", "-p", "no:cacheprovider", "-p", "no:randomly", *module.tests]
    try:
        return subprocess.run(cmd, cwd=work / "mutants", env=env, check=False, timeout=timeout,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    except subprocess.TimeoutExpired:
        return 36


def one_by_one(name: str, module: Module, only: list[str] | None = None) -> None:
    """Run each survivor and timeout of the last run (or those of ``only``) alone in a fresh
    pytest; record the verdicts in mutmut's state. (A timeout counts as killed, but on the
    shared machine it may be the load, not the mutant.)"""
    work = OUT / name
    names = [n for n in refresh_tests(work, module)
             if n in {line.split(":")[0] for line in (work / "survivors.txt").read_text().splitlines()
                      if line.endswith((": survived", ": timeout"))} and (not only or n.rpartition(".")[2] in only)]
    start = time.monotonic()
    if _pytest(work, module, "", 3600) != 0:
        raise SystemExit(f"{name}: the tests fail without a mutant")
    clean = time.monotonic() - start
    if module.postgres and _pytest(work, module, "", 3600, backend="postgres") != 0:
        raise SystemExit(f"{name}: the tests fail on PostgreSQL without a mutant")
    if _pytest(work, module, "fail", 3600) == 0:  # the mutated tree is not the one imported
        raise SystemExit(f"{name}: the forced failure passed; the tests do not run the mutants/ tree")
    meta_path = work / "mutants" / (module.source + ".meta")
    print(f"== {name}: {len(names)} survivors one by one (clean run {clean:.0f} s)", flush=True)
    on_postgres = patterns(Module(module.source, module.postgres, ())) if module.postgres else []
    for n, mutant in enumerate(names, 1):
        # A survivor of the SQLite run in a function with PostgreSQL-only paths: PostgreSQL
        # runs the same tests (and more), so it alone tells.
        backend = "postgres" if any(fnmatch.fnmatchcase(mutant, p) for p in on_postgres) else "sqlite"
        code = _pytest(work, module, mutant, timeout=20 * clean + 60, backend=backend)
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        meta["exit_code_by_key"][mutant] = code
        meta_path.write_text(json.dumps(meta, indent=4), encoding="utf-8")
        print(f"   {n}/{len(names)} {mutant}: exit {code} ({backend})", flush=True)


def run(name: str, module: Module, again: bool = False, resume: bool = False,
        alone: bool = False, only: list[str] | None = None, children: int = 1) -> dict[str, int]:
    if alone:
        one_by_one(name, module, only)
        return counts(OUT / name, module)
    work = OUT / name
    names = None
    if again and (work / "survivors.txt").exists():
        names = refresh_tests(work, module)
        if not names:
            return counts(work, module)
    elif resume and (work / "mutants").exists():
        # By name: mutmut given patterns runs every mutant they match again, checked or not.
        names = unchecked(work, module)
        if not names:
            return counts(work, module)
    else:
        work = prepare(name, module)
    env = {**os.environ, "HCP_TEST_BACKEND": "sqlite"}
    mutmut = str(ROOT / ".venv" / "bin" / "mutmut")
    cmd = ["nice", "-n", "10", mutmut, "run", "--max-children", str(children), *(names or patterns(module))]
    print(f"== {name}: {module.source}", flush=True)
    subprocess.run(cmd, cwd=work, env=env, check=False, stdout=subprocess.DEVNULL)
    return counts(work, module)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("modules", nargs="*", help=f"any of {', '.join(MODULES)} (default: all)")
    parser.add_argument("--list", action="store_true", help="list the modules and their tests")
    parser.add_argument("--resume", action="store_true",
                        help="go on with an interrupted run: the mutants not checked yet")
    parser.add_argument("--again", action="store_true",
                        help="with the current tests, run again only the mutants an earlier run left alive")
    parser.add_argument("--one-by-one", action="store_true",
                        help="run each survivor of the last run again alone, in a fresh pytest process")
    parser.add_argument("--mutant", action="append", metavar="NAME",
                        help="with --one-by-one: only this survivor (x_FUNCTION__mutmut_N; repeatable)")
    parser.add_argument("--children", type=int, default=1,
                        help="mutants tested at once (default 1: the machine is shared; 2 on an idle two-core one)")
    args = parser.parse_args()
    if args.list:
        for name, module in MODULES.items():
            print(f"{name:10} {module.source:30} {' '.join(module.tests)}")
        return 0
    unknown = set(args.modules) - set(MODULES)
    if unknown:
        parser.error(f"unknown module(s): {', '.join(sorted(unknown))}")
    rows = []
    for name in args.modules or MODULES:
        tally = run(name, MODULES[name], again=args.again, resume=args.resume, alone=args.one_by_one, only=args.mutant,
                    children=args.children)
        total = sum(tally.values())
        score = 100 * (tally["killed"] + tally["timeout"]) / total if total else 0.0
        rows.append(f"{name:10} killed {tally['killed']:4}  survived {tally['survived']:4}  "
                    f"timeout {tally['timeout']:3}  other {tally['other']:3}  score {score:5.1f}%")
        print(rows[-1], flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "summary.txt", "a", encoding="utf-8") as summary:
        summary.write("\n".join(rows) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
