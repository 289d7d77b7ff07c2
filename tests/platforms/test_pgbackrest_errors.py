"""error_line and explain_error on pgBackRest output as it really looks (console log lines
with timestamps, and the bare stderr form)."""

from __future__ import annotations

from restores.platforms.pgbackrest import error_line, explain_error

LOCK_LOG = """\
2026-11-24 23:03:23.180 P00   INFO: backup command begin 2.45: --stanza=db --type=incr
2026-11-24 23:03:23.183 P00  ERROR: [050]: unable to acquire lock on file '/f/lock/hippo/db-backup.lock': Resource temporarily unavailable
                                    HINT: is another pgBackRest process running?
2026-11-24 23:03:23.184 P00   INFO: backup command end: aborted with exception [050]
"""  # noqa: E501
STOPPED_STDERR = """\
WARN: unable to check pg1: [DbConnectError] unable to connect to 'dbname='postgres' port=56999'
ERROR: [056]: unable to find primary cluster - cannot proceed
       HINT: are all available clusters in recovery?
"""


def test_error_line_is_the_first_error_with_its_code() -> None:
    assert error_line(STOPPED_STDERR) == "[056] unable to find primary cluster - cannot proceed"
    assert error_line(LOCK_LOG).startswith("[050] unable to acquire lock on file")
    assert error_line("INFO: all good\n") == ""


def test_known_errors_are_explained_in_plain_words_with_the_raw_line() -> None:
    lock = explain_error(LOCK_LOG)
    assert lock.startswith("Another backup or expire of this cluster holds pgBackRest's lock")
    assert lock.endswith("Resource temporarily unavailable)")
    assert "[056] unable to find primary cluster" in explain_error(STOPPED_STDERR)
    assert "running primary" in explain_error(STOPPED_STDERR)


def test_unknown_errors_keep_the_raw_line_and_no_error_gives_nothing() -> None:
    assert (
        explain_error("ERROR: [099]: something odd\n") == "pgBackRest failed: [099] something odd"
    )
    assert explain_error("INFO: backup command end: completed successfully\n") == ""
