#!/usr/bin/env python3
"""Checks that every C++ snippet in the docs comes from a compiled file.

Each ```cpp (or ```c++) block in README.md and docs/**/*.md must appear in
one of the compiled sources (examples/, tests/), line for line, ignoring
indentation and blank lines, so the docs cannot show code that does not
build. Blocks in any other language (```text for a signature, ```sh) are not
checked. Registered as the CTest test doc_snippets.

Usage: check_snippets.py ROOT
"""

import pathlib
import re
import sys

FENCE_RE = re.compile(r"^\s*```\s*([A-Za-z0-9+#-]*)\s*$")
CHECKED_LANGUAGES = {"cpp", "c++", "cxx"}
SOURCE_DIRS = ("examples", "tests")
SOURCE_SUFFIXES = {".cpp", ".hpp", ".h", ".cc"}


def normalized(lines):
    return [line.strip() for line in lines if line.strip()]


def code_blocks(path):
    """Yields (first line number, lines) for each checked block in `path`."""
    language, start, body = None, 0, []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = FENCE_RE.match(line)
        if language is None:
            if fence:
                language, start, body = fence.group(1).lower(), number, []
        elif fence and not fence.group(1):
            if language in CHECKED_LANGUAGES:
                yield start, body
            language = None
        else:
            body.append(line)


def contains(haystack, needle):
    if not needle:
        return True
    first = needle[0]
    for i, line in enumerate(haystack):
        if line == first and haystack[i:i + len(needle)] == needle:
            return True
    return False


def main(argv):
    root = pathlib.Path(argv[1] if len(argv) > 1 else ".").resolve()
    sources = {}
    for d in SOURCE_DIRS:
        for p in sorted((root / d).rglob("*")):
            if p.is_file() and p.suffix in SOURCE_SUFFIXES:
                sources[p] = normalized(p.read_text(encoding="utf-8", errors="replace").splitlines())
    docs = [root / "README.md"] + sorted((root / "docs").rglob("*.md"))
    checked, problems = 0, []
    for doc in docs:
        if not doc.is_file():
            continue
        for start, body in code_blocks(doc):
            checked += 1
            wanted = normalized(body)
            if not any(contains(lines, wanted) for lines in sources.values()):
                rel = doc.relative_to(root).as_posix()
                problems.append(f"{rel}:{start}: this cpp snippet is in no compiled file under "
                                f"{' or '.join(d + '/' for d in SOURCE_DIRS)} (first line: {wanted[0] if wanted else ''!r})")
    for p in problems:
        print(p)
    if problems:
        print(f"check_snippets: {len(problems)} of {checked} snippets are not compiled anywhere", file=sys.stderr)
        return 1
    print(f"check_snippets: {checked} snippets, all from compiled files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
