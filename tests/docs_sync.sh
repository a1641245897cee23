#!/bin/bash
# The man pages and the bash completion kept in step with the binary and
# the README: every option and command `integrity-loader --help` names is
# in integrity-loader(8) and in the completion; every key of the README's
# /etc/integrity-loader.conf table is in integrity-loader.conf(5) and the
# other way round; both pages carry Cargo.toml's version and format without
# a warning from man; the completion completes what it should.
#
# Usage: tests/docs_sync.sh (any user). INTEGRITY_LOADER_BIN=FILE tests that
# binary (default: the static build, scripts/build-static).
# shellcheck disable=SC2317 # assertions are called through check()
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

passed=0
failed=0
check() { # check NAME COMMAND...
    local name=$1
    shift
    if "$@"; then
        echo "ok   $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name"
        failed=$((failed + 1))
    fi
}

bin=${INTEGRITY_LOADER_BIN:-target/x86_64-unknown-linux-musl/release/integrity-loader}
man8=man/integrity-loader.8
man5=man/integrity-loader.conf.5
comp=completions/integrity-loader.bash
for f in "$bin" "$man8" "$man5" "$comp"; do
    if [[ ! -r $f ]]; then
        echo "FAIL $f missing (build the binary first: scripts/build-static)"
        echo "0 passed, 1 failed"
        exit 1
    fi
done

help=$("$bin" --help)
# A page's text with roff's escapes for - removed: \-\-root is --root.
page() { sed 's/\\-/-/g' "$1"; }

# Options of --help: every --long word, and -v/-q/-h/-V.
mapfile -t options < <(grep -oE -- '(^|[ ,])--[a-z][a-z0-9-]*' <<< "$help" | sed 's/^[ ,]//' | sort -u)
mapfile -t shorts < <(grep -oE -- '^ *-[a-zA-Z],' <<< "$help" | tr -d ' ,' | sort -u)
commands=(load check status seal reseal sign-policy audit relabel)
((${#options[@]} > 10)) || check "--help names its options (found ${#options[@]})" false

missing_in() { # missing_in FILE WORD...: prints the words FILE lacks (as whole words)
    local file=$1 text w
    shift
    text=$(page "$file")
    for w in "$@"; do
        grep -qE -- "(^|[^a-z0-9-])$w([^a-z0-9-]|$)" <<< "$text" || echo "$w"
    done
}
m=$(missing_in "$man8" "${options[@]}" "${shorts[@]}")
check "every option of --help is in $man8${m:+ (missing: $(echo $m))}" test -z "$m"
m=$(for c in "${commands[@]}"; do grep -qE "^\.B $c$|^\.B integrity-loader $c$" "$man8" || echo "$c"; done)
check "every command is a section of $man8${m:+ (missing: $(echo $m))}" test -z "$m"
# The completion offers long options only; -v etc. are --verbose etc.
m=$(missing_in "$comp" "${options[@]}")
check "every long option of --help is in $comp${m:+ (missing: $(echo $m))}" test -z "$m"

# audit and relabel: the options of integrity-audit's help pages, which
# the loader runs from its own directory.
for c in audit relabel; do
    if sub=$("$bin" $c --help 2> /dev/null); then
        mapfile -t subopts < <(grep -oE -- '(^|[ ,])--[a-z][a-z0-9-]*' <<< "$sub" | sed 's/^[ ,]//' | sort -u)
        m=$(missing_in "$man8" "${subopts[@]}")
        check "every option of $c --help is in $man8${m:+ (missing: $(echo $m))}" test -z "$m"
        m=$(missing_in "$comp" "${subopts[@]}")
        check "every option of $c --help is in $comp${m:+ (missing: $(echo $m))}" test -z "$m"
    else
        check "$bin $c --help runs (integrity-audit beside $bin)" false
    fi
done

# The README's native configuration table: the rows between its heading and
# the next heading, first column.
mapfile -t readme_keys < <(awk '/^### `\/etc\/integrity-loader.conf`/ { on = 1; next } /^### / { on = 0 }
    on && /^\| `[A-Z0-9_]+`/ { sub(/^\| `/, ""); sub(/`.*/, ""); print }' README.md)
((${#readme_keys[@]} > 10)) || check "README's configuration table found (${#readme_keys[@]} keys)" false
# The keys integrity-loader.conf(5) documents: its .TP entries in the
# INTEGRITY-LOADER.CONF section (".BR KEY = ..." or ".BI KEY= ...").
mapfile -t man_keys < <(awk '/^\.SH INTEGRITY-LOADER.CONF/ { on = 1; next } /^\.SH / { on = 0 }
    on && prev == ".TP" { k = $2; sub(/=.*/, "", k); print k } { prev = $0 }' "$man5")
m=$(comm -23 <(printf '%s\n' "${readme_keys[@]}" | sort -u) <(printf '%s\n' "${man_keys[@]}" | sort -u))
check "every key of README's integrity-loader.conf table is in $man5${m:+ (missing: $(echo $m))}" test -z "$m"
m=$(comm -13 <(printf '%s\n' "${readme_keys[@]}" | sort -u) <(printf '%s\n' "${man_keys[@]}" | sort -u))
check "every key of $man5 is in README's table${m:+ (not in README: $(echo $m))}" test -z "$m"
# dracut's variables, from the README's table of dracut's files.
mapfile -t dracut_vars < <(awk '/^### dracut.s files/ { on = 1; next } /^### / { on = 0 }
    on && /^\|/ { n = split($0, c, "|"); v = c[3]; while (match(v, /`[A-Z0-9_]+`/)) { print substr(v, RSTART + 1, RLENGTH - 2); v = substr(v, RSTART + RLENGTH) } }' README.md)
((${#dracut_vars[@]} > 8)) || check "README's dracut table found (${#dracut_vars[@]} variables)" false
m=$(missing_in "$man5" "${dracut_vars[@]}")
check "every variable of README's dracut table is in $man5${m:+ (missing: $(echo $m))}" test -z "$m"

# The names a new set waits under while the configuration switches to it
# (commit.rs's SIDES): each is said in MASTERKEY's entry of the page and in
# the README's MASTERKEY row.
mapfile -t sides < <(sed -n 's/^pub const SIDES: .*= \[\(.*\)\];$/\1/p' src/commands/seal/commit.rs | grep -oE '"[^"]+"' | tr -d '"')
((${#sides[@]} > 1)) || check "commit.rs's side names found (${#sides[@]})" false
sides_missing() { # sides_missing TEXT: the side names TEXT lacks
    local s
    for s in "${sides[@]}"; do grep -qE -- "${s//./\\.}([^0-9a-z]|$)" <<< "$1" || echo "$s"; done
}
m=$(sides_missing "$(page "$man5" | awk '/^\.BI MASTERKEY=/ { on = 1; next } on && /^\.TP/ { exit } on')")
check "every side name of commit.rs is in MASTERKEY of $man5${m:+ (missing: $(echo $m))}" test -z "$m"
# shellcheck disable=SC2016 # backquotes of markdown, not a command
m=$(sides_missing "$(grep -E '^\| `MASTERKEY` \|' README.md)")
check "every side name of commit.rs is in MASTERKEY of README's table${m:+ (missing: $(echo $m))}" test -z "$m"

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
for p in "$man8" "$man5"; do
    check "$p carries version $version" grep -qE "^\.TH .*\"integrity-loader $version\"" "$p"
    w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$p" 2>&1 > /dev/null)
    check "$p formats without warnings${w:+: $w}" test -z "$w"
done

# The completion in bash, with stand-ins for bash-completion's helpers.
complete_words() { # complete_words WORD...: what completing the last word offers
    bash -c '
        _init_completion() { cur=${COMP_WORDS[COMP_CWORD]}; prev=${COMP_WORDS[COMP_CWORD-1]}; words=("${COMP_WORDS[@]}"); cword=$COMP_CWORD; }
        _filedir() { COMPREPLY=(FILE); }
        complete() { :; }
        . "$1"; shift
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
        _integrity_loader
        printf "%s\n" "${COMPREPLY[@]}"' complete_words "$comp" "$@" | sort | paste -sd' '
}
check "completion: commands" test "$(complete_words integrity-loader '')" = "audit check load relabel reseal seal sign-policy status"
check "completion: --wr after check" test "$(complete_words integrity-loader check --wr)" = "--write-pins"
check "completion: seal options only after seal" \
    test "$(complete_words integrity-loader check --for)/$(complete_words integrity-loader seal --for)" = "/--force"
check "completion: audit and relabel options after them" \
    test "$(complete_words integrity-loader audit --al)/$(complete_words integrity-loader relabel --al)/$(complete_words integrity-loader load --al)" = "--all/--all-filesystems/"
check "completion: sign-policy options only after it" \
    test "$(complete_words integrity-loader seal --ap)/$(complete_words integrity-loader sign-policy --ap)" = "/--append"
check "completion: a file after --pins" test "$(complete_words integrity-loader load --pins '')" = "FILE"

echo "$passed passed, $failed failed"
((failed == 0))
