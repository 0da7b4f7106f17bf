"""nianbao parsers: bytes of a published report -> one block model -> sections and facts."""

import os


def switched_on(variable: str) -> bool:
    """An on/off setting the parser processes read from the environment (`NIANBAO_OCR`,
    `NIANBAO_PIN_WORKERS`), which they inherit from the command that starts them: on unless
    set to off, 0, no or false."""
    return os.environ.get(variable, "on").strip().lower() not in ("off", "0", "no", "false")


def process_alive(pid: int) -> bool:
    """Whether process `pid` runs: neither gone nor a zombie (dead, not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # The state follows the parenthesised command name.
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
