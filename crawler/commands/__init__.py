"""Project versions of Scrapy's commands (``COMMANDS_MODULE``): a command here replaces
Scrapy's command of the same name.

Only ``scrapy crawl`` records into the evidence database, WARC files and screenshots; it
also migrates the database first (under the migration lock) and turns errors a user can
cause into one clear line and a non-zero exit. ``shell``, ``fetch``, ``parse``, ``view``,
``bench``, ``check`` and ``runspider`` are Scrapy's own tools that record nothing
(``GOVEVIDENCE_RECORD`` is off for them, which also keeps the browser out of them).
"""

# Command default settings of the tools that must not record (priority "command": a
# user's ``-s GOVEVIDENCE_RECORD=True`` still wins).
NOT_RECORDING = {"GOVEVIDENCE_RECORD": False}
