#!/usr/bin/env python3
"""Every public symbol of the library modules has a doc comment.

Reads the symbol graphs `swift package dump-symbol-graph --minimum-access-level public` writes
(one per module, plus `Module@Other` files for extensions of other modules' types) and lists
every public symbol with no doc comment of its own. Symbols the compiler makes (synthesized
conformances, enum `rawValue` initialisers, `Equatable` operators) and members that implement a
documented protocol requirement without text of their own are not counted: DocC shows the
requirement's text for them. Exit status 1 when any symbol is undocumented.
"""
import glob, json, os, sys

MODULES = ["TorchportCore", "TorchCheckpoint", "SafeTensors", "StateDict", "Conversion", "TorchportReader",
           "ResNet", "Verification", "Images", "Classification", "Torchport"]

def main():
    folder = sys.argv[1] if len(sys.argv) > 1 else ".build/x86_64-unknown-linux-gnu/symbolgraph"
    missing, total = [], 0
    for path in sorted(glob.glob(os.path.join(folder, "*.symbols.json"))):
        module = os.path.basename(path).split(".symbols.json")[0].split("@")[0]
        if module not in MODULES:
            continue
        graph = json.load(open(path))
        implements = {r["source"] for r in graph.get("relationships", [])
                      if r["kind"] in ("requirementOf", "optionalRequirementOf", "defaultImplementationOf")}
        overrides = {r["source"] for r in graph.get("relationships", []) if r["kind"] == "overrides"}
        for s in graph["symbols"]:
            if s.get("accessLevel") not in ("public", "open"):
                continue
            precise = s["identifier"]["precise"]
            if "::SYNTHESIZED::" in precise or s.get("spi"):
                continue
            total += 1
            if s.get("docComment", {}).get("lines"):
                continue
            if precise in implements or precise in overrides:
                continue
            name = ".".join(s["pathComponents"])
            missing.append(f"{module}: {s['kind']['displayName'].lower()} {name}")
    for m in sorted(set(missing)):
        print(m)
    print(f"{len(set(missing))} of {total} public symbols without a doc comment")
    return 1 if missing else 0

if __name__ == "__main__":
    sys.exit(main())
