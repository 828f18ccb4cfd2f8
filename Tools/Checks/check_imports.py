"""Fails when a target imports a module it does not declare in Package.swift (directly, or as a
product of a declared package): such an import builds only because another target happened to
bring the module along, and breaks when that changes.

Usage: swift package dump-package | python3 Tools/Checks/check_imports.py
(`make lint` runs it twice: as the package is, and with TICKETLOG_FUZZ=1 for the fuzz targets.)"""
import glob
import json
import re
import sys

# Modules of the toolchain and the platform, which no manifest declares.
PLATFORM = {"Foundation", "FoundationEssentials", "FoundationNetworking", "Glibc", "Musl", "Darwin",
            "Dispatch", "Synchronization", "Testing", "XCTest", "_Concurrency", "os"}
IMPORT = re.compile(r"^\s*(?:@\w+\s+)*(?:(?:public|package|internal|fileprivate|private)\s+)?import\s+"
                    r"(?:(?:struct|class|enum|protocol|func|var|let|typealias)\s+)?(\w+)")

package = json.load(sys.stdin)
problems = []
for target in package["targets"]:
    if target["type"] in ("system", "binary", "plugin", "macro"):
        continue
    name = target["name"]
    default = ("Tests/" if target["type"] == "test" else "Sources/") + name
    path = target.get("path") or default
    declared = {name.replace("-", "_")}
    for dependency in target["dependencies"]:
        for kind in ("byName", "target", "product"):
            if kind in dependency:
                declared.add(dependency[kind][0].replace("-", "_"))
    for file in sorted(glob.glob(path + "/**/*.swift", recursive=True)):
        with open(file, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                match = IMPORT.match(line)
                if match and match.group(1) not in declared | PLATFORM:
                    problems.append(f"{file}:{number}: {name} imports {match.group(1)}, which Package.swift does not give it")
for problem in problems:
    print(problem, file=sys.stderr)
sys.exit(1 if problems else 0)
