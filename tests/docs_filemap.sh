#!/bin/sh
# SPDX-License-Identifier: MIT
#
# docs_filemap.sh SOURCE_DIR - docs/ARCHITECTURE.md's file map is true and
# complete: every repository path it names in backquotes exists, and every
# C source and header under src/, transport/ and tools/ is named in it.
# Prints each miss on one line; exit 1 if there is any.
set -u
top=${1:?usage: docs_filemap.sh SOURCE_DIR}
doc=$top/docs/ARCHITECTURE.md
[ -f "$doc" ] || { echo "docs_filemap: $doc is missing"; exit 1; }
bad=0

# Paths named: `dir/...` tokens starting with a top-level folder.
named=$(grep -o '`[^`]*`' "$doc" | tr -d '`' | tr ' ,' '\n\n' |
	sed -n 's/:.*//; /^\(src\|transport\|tools\|tests\|include\|cmake\|docs\|scripts\)\//p' |
	sort -u)
for p in $named; do
	if [ ! -e "$top/$p" ]; then
		echo "docs_filemap: ARCHITECTURE.md names $p, which does not exist"
		bad=1
	fi
done

# Every C file of the three code folders is named.
for f in $(cd "$top" && find src transport tools -name '*.[ch]' | sort); do
	if ! printf '%s\n' "$named" | grep -qx "$f"; then
		echo "docs_filemap: $f is not in ARCHITECTURE.md's file map"
		bad=1
	fi
done
[ $bad = 0 ] && echo "docs_filemap: every file named exists, every C file is named"
exit $bad
