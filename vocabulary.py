"""The project's vocabulary: every word it stores for a kind, verdict, scope, level or status.

These strings are written to the database (and checked there by constraints), to WARC-side
exports and to reports, so a value here is never changed, only added. ``db/``, ``evidence/``
and ``govevidence/`` import them from here, so the module imports nothing itself;
``crawler.errors`` spells the fetch-failure statuses it records, and a test checks that each is
here. Their Chinese labels are in ``govevidence.labels``.
"""

from __future__ import annotations

# --- targets and sources ---------------------------------------------------------------------
# An evaluated government: a province-level one, or a key city.
LEVELS = ("province", "city")

# The public channels of a target.
SOURCE_KINDS = ("portal", "service", "opendata", "interaction", "department", "newmedia")
# Where a source became known: the registry file, or a link on one of its target's pages.
SOURCE_ORIGINS = ("registry", "discovered")

# --- findings --------------------------------------------------------------------------------
PRESENT = "present"
ABSENT = "absent"
UNKNOWN = "unknown"  # we could not look; a page detector never concludes it
VERDICTS = (PRESENT, ABSENT, UNKNOWN)

# What a finding is about: one page, one source (its pages rolled up), one target (its sources).
SCOPES = ("page", "source", "target")

# A reviewer's decision on a finding.
DECISIONS = ("confirmed", "rejected", "needs_review")

# --- runs and judgements ---------------------------------------------------------------------
RUN_STATUSES = ("running", "finished", "failed", "interrupted")
JUDGEMENT_STATUSES = ("running", "finished", "failed")

# --- capture statuses (``page_captures.error_status``) ---------------------------------------
OK = "ok"
# An answer that reached the spider (``evidence.judgement.answer_status``).
ANSWER_STATUSES = (
    OK,
    "blocked",  # HTTP 401/403/429/451
    "http_error",  # other 4xx
    "server_error",  # 5xx
    "not_html",
    "empty",  # no body, 204/205, or a browser that drew nothing
    "not_modified",  # a 304 nobody asked for
    "refused_redirect",  # a 3xx that was not followed
    "unreadable",  # binary or undecodable content
    "truncated",  # only part of the body arrived
    "challenge",  # an anti-bot challenge
)
# A request that produced no answer the spider could read (``crawler.errors.classify_failure``).
FETCH_FAILURE_STATUSES = (
    "timeout",
    "unreachable",
    "dns_error",
    "blocked_by_robots",
    "redirect_loop",
    "too_large",
    "truncated",
    "private_address",
    "browser_unavailable",
    "error",
)
# Judging a stored capture again (``govevidence judge``) can also find these.
JUDGE_STATUSES = (
    "too_large",  # archived bytes that decode past the size limit
    "not_archived",  # no WARC record of the answer
    "archive_error",  # a WARC record that cannot be read as the answer
    "judge_error",  # the detectors failed on the page
)
# Every capture status, each once.
CAPTURE_STATUSES = tuple(dict.fromkeys(ANSWER_STATUSES + FETCH_FAILURE_STATUSES + JUDGE_STATUSES))

# The site did not serve us at all from here: it counts as not reachable, all else is unknown.
DOWN_STATUSES = frozenset({"timeout", "unreachable", "dns_error", "server_error", "http_error"})
# We were not allowed to look: nothing can be said, not even reachability.
BLOCKED_STATUSES = frozenset({"blocked", "blocked_by_robots", "challenge"})
# The site answered with nothing a visitor could read: not proven down, nothing to say of it.
NOTHING_SHOWN_STATUSES = frozenset({"empty", "not_modified", "refused_redirect", "unreadable", "truncated"})
# A followed link whose capture has one of these is a broken link (``site.broken_links``).
BROKEN_STATUSES = frozenset({"http_error", "server_error", "unreachable", "timeout", "dns_error", "redirect_loop"})

# --- rendering -------------------------------------------------------------------------------
# Why a browser draws a capture.
RENDER_REASONS = ("source_marked", "script_shell", "challenge", "screenshot")

# --- archived records ------------------------------------------------------------------------
# What a WARC record cited by a finding is to it (evidence packs).
RECORD_ROLES = ("capture", "revisit_original", "request", "screenshot", "evidence_image")
