#!/usr/bin/env bash
# Idempotent set-up for `make demo` and `make test`.
#   - a virtual environment in .venv with the package (and, with --test, its test extras)
#   - a Chromium that Playwright can drive: a system Chromium where one exists or can be
#     installed with apt (Playwright's own download fails on machines without general internet),
#     else Playwright's own build (`playwright install chromium`), the normal route elsewhere
#   - CJK fonts, so that screenshots of Chinese pages are not boxes
#   - with --test: Dovecot (IMAP + LMTP), which the mail tests start on loopback themselves,
#     and PostgreSQL's server binaries (initdb, pg_ctl), with which the tests start a private
#     cluster on loopback (tests/pgserver.py); a PostgreSQL test without them fails, never skips
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

PY=${PYTHON:-python3}
log() { printf 'setup: %s\n' "$*"; }

can_apt() { command -v apt-get >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; }
apt_updated=0
apt_install() {
    # Installs Debian packages that are missing; only possible as root with apt.
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    if ! can_apt; then
        log "please install: ${missing[*]} (needs root and apt-get)"; return 1
    fi
    if [[ $apt_updated -eq 0 ]]; then apt-get update -qq; apt_updated=1; fi
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# 1. Python environment. Reinstall only when what would be installed changed since the last
#    set-up: the stamp holds a digest of pyproject.toml, setup.py and the extras asked for.
extras=""
[[ $want_test -eq 1 ]] && extras="[test]"
stamp=".setup-stamp${extras:+-test}"
digest=$({ printf 'extras=%s\n' "$extras"; cat pyproject.toml setup.py; } | sha256sum | cut -d' ' -f1)
if [[ ! -x .venv/bin/python ]]; then
    log "creating .venv"
    "$PY" -m venv .venv
    rm -f .setup-stamp*          # a new venv has nothing installed, whatever a stamp says
fi
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$digest" ]]; then
    log "installing mailbox-bot${extras} into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".${extras}"
    printf '%s\n' "$digest" > "$stamp"
fi

# 2. A browser. MAILBOX_BOT_CHROMIUM may name one explicitly.
have_system_chromium() {
    [[ -n "${MAILBOX_BOT_CHROMIUM:-}" && -x "${MAILBOX_BOT_CHROMIUM}" ]] && return 0
    command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
        || command -v google-chrome >/dev/null 2>&1
}
if ! have_system_chromium && can_apt; then
    apt_install chromium || log "apt could not install chromium"
fi
if ! have_system_chromium; then
    if [[ ! -f .setup-playwright-browser ]]; then
        log "no system Chromium: trying Playwright's own (playwright install chromium)"
        .venv/bin/python -m playwright install chromium && touch .setup-playwright-browser \
            || { log "could not get a Chromium; set MAILBOX_BOT_CHROMIUM to a Chromium binary"; exit 1; }
    fi
fi

# 3. CJK fonts for screenshots.
if command -v fc-list >/dev/null 2>&1 && ! fc-list :lang=zh 2>/dev/null | grep -q .; then
    apt_install fonts-noto-cjk || log "warning: no CJK font; screenshots of Chinese pages will show boxes"
elif ! command -v fc-list >/dev/null 2>&1; then
    apt_install fonts-noto-cjk || true
fi

# 4. Dovecot: the tests and the demo start a private one on loopback for the email channel.
#    The tests need it (CI installs it); the demo runs without it, with email switched off.
if ! command -v dovecot >/dev/null 2>&1 && [[ ! -x /usr/sbin/dovecot ]]; then
    if [[ $want_test -eq 1 ]]; then
        apt_install dovecot-imapd dovecot-lmtpd \
            || log "warning: Dovecot missing: the mail tests will be skipped"
    else
        apt_install dovecot-imapd dovecot-lmtpd \
            || log "note: no Dovecot: the demo will run with the email channel off"
    fi
fi
# 5. PostgreSQL (tests only): the store, migration, claim and report tests run on it as well as
#    on SQLite, in a private cluster they start themselves; only the binaries are needed.
have_postgres() {
    { command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; } && return 0
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x "$d/initdb" && -x "$d/pg_ctl" ]] && return 0
    done
    return 1
}
if [[ $want_test -eq 1 ]] && ! have_postgres; then
    if can_apt; then apt_install postgresql || true; fi
    if ! have_postgres; then
        log "error: PostgreSQL (initdb, pg_ctl) is missing and could not be installed: run as root with apt-get, or install Debian's postgresql package, then run this again"
        exit 1
    fi
fi
log "ready"
