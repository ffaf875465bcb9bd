"""Errors a user can cause, as the one line the commands print instead of a traceback.

``govevidence …`` and ``scrapy crawl`` both ask ``user_message(exc)``: a one-line
message for a problem of input or environment (registry, target codes, database URL or
server, data folder, ports), or ``None`` for anything else, which is a bug and keeps its
traceback. No message shows a password: database URLs are rendered with it hidden, and a
password from ``DATABASE_URL`` is blanked wherever it would still appear.
"""

from __future__ import annotations

import os
from urllib.parse import quote, quote_plus

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError


def one_line(text: str) -> str:
    """Collapse a message that spans lines (registry validation, YAML errors) into one."""
    out = ""
    for line in str(text).splitlines():
        part = line.strip()
        if not part.strip("^~ "):  # blank, or a caret under the error column
            continue
        out = part if not out else f"{out} {part}" if out.endswith(":") else f"{out}; {part}"
    return out


def hide_passwords(text: str, *urls: str | None) -> str:
    """Blank the password of each URL (and of DATABASE_URL) wherever it occurs in the text."""
    for url in (*urls, os.environ.get("DATABASE_URL")):
        if not url:
            continue
        try:
            password = make_url(url).password
        except Exception:
            continue
        password = str(password or "")
        if len(password) >= 3:  # shorter ones would blank ordinary words; URLs are shown masked anyway
            for form in {password, quote(password, safe=""), quote_plus(password)}:
                text = text.replace(form, "***")
    return text


def user_message(exc: BaseException, *urls: str | None) -> str | None:
    """One line for an error of input or environment, or None when it is not one."""
    from db.session import DatabaseError, error_reason, safe_url
    from govevidence.registry import RegistryError

    if isinstance(exc, (RegistryError, DatabaseError)):
        message = str(exc)
    elif isinstance(exc, SQLAlchemyError):
        where = f"（{safe_url(urls[0])}）" if urls and urls[0] else ""
        message = f"数据库错误{where}：{error_reason(exc)}"
    elif isinstance(exc, OSError) and not isinstance(exc, (BrokenPipeError, ConnectionResetError)):
        if exc.strerror and exc.filename:
            message = f"{exc.strerror}: {exc.filename}"
        else:
            message = str(exc) or type(exc).__name__
    elif isinstance(exc, ValueError) and not isinstance(exc, UnicodeError):
        message = str(exc)
    else:
        return None
    return hide_passwords(one_line(message) or type(exc).__name__, *urls)
