from __future__ import annotations

from slsbot.domain.runtime_errors import MAX_LENGTH, last_error_line


def test_the_error_slsbot_runtime_exited_on_wins():
    log = (
        "2026-12-01 10:00:00,000 INFO slsbot_runtime.app: listening\n"
        "2026-12-01 10:00:01,000 ERROR slsbot_runtime.runtime_process: could not start trading: x\n"
        "slsbot runtime: DataError: marketData.dataDir: no candles for AVAX/USDT 1h in /data\n"
    )
    assert last_error_line(log) == "DataError: marketData.dataDir: no candles for AVAX/USDT 1h in /data"


def test_a_traceback_gives_its_exception_line():
    log = (
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "sqlite3.OperationalError: database is locked\n"
    )
    assert last_error_line(log) == "OperationalError: database is locked"


def test_an_error_log_line_gives_its_message():
    log = "2026-12-01 10:00:01,000 ERROR slsbot_runtime.runtime_process: trading halted: state mismatch\nbye\n"
    assert last_error_line(log) == "trading halted: state mismatch"


def test_otherwise_the_last_line_bounded():
    assert last_error_line("") == ""
    assert last_error_line("one\n\ntwo words\n") == "two words"
    long = last_error_line("x" * 5000)
    assert len(long) == MAX_LENGTH and long.endswith("...")
