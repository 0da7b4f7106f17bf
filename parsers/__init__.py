"""nianbao parsers: bytes of a published report -> one block model -> sections and facts."""

import os


def switched_on(variable: str) -> bool:
    """An on/off setting the parser processes read from the environment (`NIANBAO_OCR`,
    `NIANBAO_PIN_WORKERS`), which they inherit from the command that starts them: on unless
    set to off, 0, no or false."""
    return os.environ.get(variable, "on").strip().lower() not in ("off", "0", "no", "false")
