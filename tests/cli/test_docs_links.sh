# Documentation links: a clone must hold every document it refers to. Fails when a markdown file
# of the repository names a path outside it (../shared/..., /work/...), or has a relative link
# (inline [text](target), image ![alt](target) or reference [id]: target; outside code blocks and
# code spans) whose target is not a file or folder of the repository, or resolves outside it.
# URLs (scheme:...) and pure #anchors are not checked. With git, "of the repository" means
# tracked, or untracked and not ignored (a link into build/ fails); without git, present on disk.
# The checker is first run on a small tree of known-bad files, so a checker that finds nothing
# cannot pass. Needs no device (the two arguments of lib.sh are unused); runs in well under 1 s.
source "$(dirname "$0")/lib.sh" "$@"

root=$(cd "$(dirname "$0")/../.." && pwd -P)

# list_files ROOT: every file of the tree, relative to ROOT, one per line.
list_files() {
  if git -C "$1" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$1" ls-files -co --exclude-standard
  else
    (cd "$1" && find . \( -name .git -o -name '.venv' -o -name 'build*' -o -name .dev \) -prune -o \
      \( -type f -print \) | sed 's|^\./||')
  fi
}

# links FILE: "LINE<TAB>TARGET" for each link outside fenced code blocks and code spans.
links() {
  awk '
    /^[[:space:]]*(```|~~~)/ { fence = !fence; next }
    fence { next }
    {
      line = $0
      gsub(/`[^`]*`/, "", line)
      if (match(line, /^[[:space:]]*\[[^]]+\]:[[:space:]]*[^[:space:]]+/)) {
        t = substr(line, RSTART, RLENGTH); sub(/^[^]]*\]:[[:space:]]*/, "", t)
        print NR "\t" t
      }
      while (match(line, /\]\([^)]*\)/)) {
        t = substr(line, RSTART + 2, RLENGTH - 3)
        print NR "\t" t
        line = substr(line, RSTART + RLENGTH)
      }
    }' "$1"
}

# check_tree ROOT: prints one line per problem; returns the number of problems (capped at 255).
check_tree() {
  local r=$1 n=0 f line target dir rel files
  files=$(list_files "$r")
  while IFS= read -r f; do
    case "$f" in *.md) ;; *) continue ;; esac
    # 1. paths outside the repository named anywhere (code blocks included)
    while IFS= read -r hit; do
      [ -n "$hit" ] || continue
      echo "$f:${hit%%:*}: names a path outside the repository: ${hit#*:}"
      n=$((n + 1))
    done < <(grep -nE '(\.\./)+shared(/|\b)|(^|[^[:alnum:]_.~/-])/work(/|\b)' "$r/$f" | cut -c1-160)
    # 2. relative links that must resolve to a file or folder of the repository
    dir=$(dirname "$f")
    while IFS=$'\t' read -r line target; do
      target=${target#<}; target=${target%>}
      target=${target%% *}          # drop a link title: (path "title")
      case "$target" in
        '' | '#'* | *:*) continue ;;  # empty, in-page anchor, URL (http:, mailto:, ...)
      esac
      target=${target%%#*}
      if [ "${target#/}" != "$target" ]; then
        rel=${target#/}               # repository-root link (GitHub's reading of a leading /)
      else
        rel=$dir/$target
      fi
      rel=$(realpath -m --relative-to="$r" "$r/$rel")
      case "$rel" in
        ..|../*) echo "$f:$line: link leaves the repository: $target"; n=$((n + 1)); continue ;;
      esac
      # a listed file, or a folder holding one
      if [ "$rel" = . ] || awk -v p="$rel" '$0 == p || index($0, p "/") == 1 { ok = 1; exit } END { exit !ok }' <<<"$files"; then
        continue
      fi
      echo "$f:$line: link to a missing file: $target"
      n=$((n + 1))
    done < <(links "$r/$f")
  done <<<"$files"
  [ "$n" -gt 255 ] && n=255
  return "$n"
}

# The checker on a tree of known-bad files: each kind of problem must be found.
bad=$WORK/bad
mkdir -p "$bad/docs/sub" "$bad/docs/real"
cat >"$bad/README.md" <<'MD'
See [the spec](docs/spec.md), [a folder](docs/real/), [the top](#top), [web](https://example.org/x.md).
Contract: `../shared/docs/golden-contract.md`.
![plot](docs/missing.png "a title")
```
[not a link](inside/a/code/block.md) /work/inside/code
```
Inline code is ignored: `[x](nowhere.md)`.
[ref]: docs/nothere.md
MD
printf '# Spec\nUp: [readme](../README.md#top), out: [escape](../../outside.md), abs: /work/shared/x\n' >"$bad/docs/spec.md"
touch "$bad/docs/real/file.txt"
out=$(check_tree "$bad"); found=$?
printf '%s\n' "$out" >"$WORK/bad.txt"
expect_rc "checker finds the 6 planted problems" 6 "$found"
expect_contains "names ../shared" "$WORK/bad.txt" '^README.md:2: names a path outside'
expect_contains "names /work in a code block" "$WORK/bad.txt" '^README.md:5: names a path outside'
expect_contains "names /work in text" "$WORK/bad.txt" '^docs/spec.md:2: names a path outside'
expect_contains "missing image" "$WORK/bad.txt" '^README.md:3: link to a missing file: docs/missing.png$'
expect_contains "missing reference link" "$WORK/bad.txt" '^README.md:8: link to a missing file: docs/nothere.md$'
expect_contains "link out of the tree" "$WORK/bad.txt" '^docs/spec.md:2: link leaves the repository'
if grep -E ': link [^:]*: .*(inside/a/code|nowhere\.md|docs/real|docs/spec\.md|README\.md#top|example\.org)' "$WORK/bad.txt"; then
  fail "checker flagged a valid link or a code example"
  sed 's/^/    | /' "$WORK/bad.txt"
else
  pass "valid links, folders, anchors, URLs and code are not flagged"
fi

# The repository itself.
out=$(check_tree "$root"); found=$?
nmd=$(list_files "$root" | grep -c '\.md$')
if [ "$found" -eq 0 ]; then
  pass "$nmd markdown files: no path outside the repository, no broken relative link"
else
  fail "$found problem(s) in the repository's markdown files:"
  printf '%s\n' "$out" | sed 's/^/    | /'
fi
finish
