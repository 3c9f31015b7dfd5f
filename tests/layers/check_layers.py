#!/usr/bin/env python3
# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
"""The library's folders are layers, and a header only includes headers of lower layers.

This file is where the order is written down (LAYERS, lowest first). A header of folder A includes
headers of its own folder and of folders of lower layers; folders of the same layer do not include
each other. A folder's detail/ holds what is not public API; it belongs to the folder's layer. reference/ is the oracle the tests check the
library against: no library header includes it (the umbrella mhaprune.hpp offers it to users).

usage: check_layers.py <include dir>            check the tree, print every violation, exit 1 on any
       check_layers.py --self-test <scratch dir> prove on made-up trees that violations are found
"""
import pathlib
import re
import shutil
import sys

LAYERS = [
    ["error.hpp", "version.hpp"],
    ["core"],
    ["layouts", "reference", "linalg"],
    ["calibration"],
    ["criteria", "selection", "schedules"],
    ["compensation"],
    ["pruner"],
    ["io"],
    ["checkpoint"],
    ["mhaprune.hpp"],
]
ORACLE = "reference"
UMBRELLA = "mhaprune.hpp"
LEVEL = {unit: level for level, units in enumerate(LAYERS) for unit in units}
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"](mhaprune/[^>"]+)[>"]', re.M)


def unit_of(rel):
    """'criteria/obs.hpp' -> 'criteria'; 'io/detail/x.hpp' -> 'io'; 'error.hpp' -> 'error.hpp'."""
    return rel.split("/")[0]


def violations(include_dir):
    root = pathlib.Path(include_dir) / "mhaprune"
    found = []
    headers = sorted(p for p in root.rglob("*.hpp"))
    if not headers:
        return [f"{root}: no headers"]
    for path in headers:
        rel = path.relative_to(root).as_posix()
        unit = unit_of(rel)
        if unit not in LEVEL:
            found.append(f"{rel}: folder '{unit}' has no layer in tests/layers/check_layers.py")
            continue
        for target in INCLUDE.findall(path.read_text(encoding="utf-8")):
            to = target[len("mhaprune/"):]
            to_unit = unit_of(to)
            if to_unit not in LEVEL:
                found.append(f"{rel}: includes {target}, of no layer")
            elif to_unit == unit:
                continue
            elif to_unit == ORACLE and unit != UMBRELLA:
                found.append(f"{rel}: includes {target}: {ORACLE}/ is the tests' oracle, not for the library")
            elif LEVEL[to_unit] > LEVEL[unit]:
                found.append(f"{rel}: includes {target}, which is a layer up ({unit} -> {to_unit})")
            elif LEVEL[to_unit] == LEVEL[unit]:
                found.append(f"{rel}: includes {target}, of the same layer ({unit} -> {to_unit})")
    return found


def self_test(scratch):
    shutil.rmtree(scratch, ignore_errors=True)
    cases = {
        "up": ("criteria/a.hpp", '#include "mhaprune/compensation/b.hpp"', "a layer up"),
        "sideways": ("criteria/a.hpp", '#include <mhaprune/selection/b.hpp>', "same layer"),
        "oracle": ("calibration/a.hpp", '#include "mhaprune/reference/b.hpp"', "oracle"),
        "up from detail": ("criteria/detail/a.hpp", '#include "mhaprune/pruner/b.hpp"', "a layer up"),
        "unknown": ("newfolder/a.hpp", "", "has no layer"),
    }
    failures = 0
    for name, (rel, line, expect) in cases.items():
        root = pathlib.Path(scratch) / name / "mhaprune"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"#pragma once\n{line}\n")
        (root / "core").mkdir(exist_ok=True)
        (root / "core" / "ok.hpp").write_text('#pragma once\n#include "mhaprune/error.hpp"\n')
        got = violations(root.parent)
        if len(got) != 1 or expect not in got[0]:
            print(f"self-test {name}: expected one violation with '{expect}', got {got}")
            failures += 1
    clean = pathlib.Path(scratch) / "clean" / "mhaprune"
    (clean / "checkpoint").mkdir(parents=True, exist_ok=True)
    (clean / "checkpoint" / "a.hpp").write_text('#include "mhaprune/io/b.hpp"\n#include "mhaprune/checkpoint/detail/c.hpp"\n')
    if violations(clean.parent):
        print(f"self-test clean: expected no violation, got {violations(clean.parent)}")
        failures += 1
    print(f"check_layers self-test: {len(cases) + 1 - failures} of {len(cases) + 1} cases right")
    return 1 if failures else 0


def main(argv):
    if len(argv) == 3 and argv[1] == "--self-test":
        return self_test(argv[2])
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    found = violations(argv[1])
    for v in found:
        print(v)
    print(f"check_layers: {len(found)} include(s) against the layer order")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
