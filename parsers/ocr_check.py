"""Digits read by OCR, verified against the report's own printed sums (rules R1–R4).

A low-confidence value is corrected only where exactly one combination of the other readings
the recogniser allowed makes every sum it takes part in hold, and breaks no sum that held: the
finding `ocr_corrected` names the original reading, which the fact keeps in `ocr_reading`.
Where several misreads (some read with confidence) leave no such combination, the failing sums
are taken one at a time: a sum is mended where exactly one combination of its own unsure cells'
readings makes it hold and breaks no sum that held.
Otherwise the value stays as read, with the finding `ocr_low_confidence` — never guessed. A
low-confidence value that every sum it takes part in confirms needs no finding.

A value whose cell image, read again another way, read otherwise is unsure however sure the
recogniser was, its other readings (`Fact.rereads`) are alternatives like the recogniser's own,
and the same rule decides; its findings say a re-read contradicted it. OCR reads a number again
with its glyphs set apart where its ink shows more glyphs than it read digits; a sum that fails
as read has each OCR'd value in it read again (black and white, larger, bolder, lighter, glyphs
set apart, digits only; `ocr.reread`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from itertools import product

from nianbao.schema.checks import run_checks

from .ocr import LOW_CONFIDENCE
from .result import Fact, Problem
from .values import parse_value

# The rules that verify digits: sums within one report's tables.
_SUM_RULES = frozenset({"R1", "R2", "R3", "R4"})
# Most combinations of readings tried for one report.
_MAX_COMBINATIONS = 4096
# Most other readings a finding names; it says how many more there are.
NAMED_READINGS = 3

CheckKey = tuple[str, str]
# Reads cell line images again (by their keys): other readings of each, as `ocr.reread`.
Reread = Callable[[list[tuple[int, ...]]], list[tuple[str, ...]]]


def _checks(facts: list[Fact], version: str) -> dict[CheckKey, tuple[bool, str]]:
    return {
        (c.rule, c.scope): (c.ok, c.detail)
        for c in run_checks(facts, version)
        if c.rule in _SUM_RULES
    }


def _failing(checks: dict[CheckKey, tuple[bool, str]]) -> set[CheckKey]:
    return {key for key, (ok, _) in checks.items() if not ok}


def _involved(
    facts: list[Fact], index: int, version: str, base: dict[CheckKey, tuple[bool, str]]
) -> set[CheckKey]:
    """The sums a fact takes part in: those whose outcome moves when its value does."""
    probe = list(facts)
    value = facts[index].value
    probe[index] = replace(facts[index], value=(value or 0) + 1)
    moved = _checks(probe, version)
    return {key for key, outcome in moved.items() if base.get(key) != outcome}


# The readings of a fact tried in place of its value (none: the fact is left as it is).
Tried = Callable[[Fact], tuple[str, ...]]


def _others(fact: Fact) -> tuple[str, ...]:
    """Every reading a fact's value may be instead of its own: the recogniser's, then those of
    its cell image read again."""
    return (*fact.alternatives, *fact.rereads)


def _recognisers(fact: Fact) -> tuple[str, ...]:
    return fact.alternatives


def _if_reread(fact: Fact) -> tuple[str, ...]:
    """Every reading of a fact a re-read of its cell image contradicts; none of another."""
    return _others(fact) if fact.rereads else ()


def _is_unsure(fact: Fact) -> bool:
    """Read by OCR with low confidence, or contradicted by a re-read of its cell image."""
    return fact.confidence is not None and (fact.confidence < LOW_CONFIDENCE or bool(fact.rereads))


def _how_read(fact: Fact, reading: str) -> str:
    """How `reading` was read, for a finding: its confidence, and the re-reads contradicting it
    (the first NAMED_READINGS of them, then how many more)."""
    said = f"confidence {fact.confidence:.2f}"
    if fact.rereads:
        others = [repr(r) for r in fact.rereads if r != reading]
        named = ", ".join(others[:NAMED_READINGS])
        if len(others) > NAMED_READINGS:
            named += f" and {len(others) - NAMED_READINGS} more"
        said += f", contradicted by a re-read of the cell image ({named})"
    return said


def verify_digits(facts: list[Fact], version: str, reread: Reread | None = None) -> list[Problem]:
    """Correct or flag unsure OCR values in `facts` (in place); return the findings.

    The recogniser's own readings settle what they can first, then the values a re-read of
    their cell image contradicts, each among all its readings: tried all at once, a misread the
    recogniser allowed for, in a sum that a re-read mends too (11 read as 1 in two cells of a
    row), leaves no one set of readings that makes every sum hold, or too many to try. With
    `reread`, the values in the sums that still fail are read again, and the sums judge the new
    readings the same way."""
    unsure = [i for i, f in enumerate(facts) if _is_unsure(f)]
    if not unsure and reread is None:
        return []
    base = _checks(facts, version)
    involved = {i: _involved(facts, i, version, base) for i in unsure}
    corrected = _settle(facts, version, base, involved, _recognisers)
    if any(facts[i].rereads for i in involved if i not in corrected):
        open_cells = {i: keys for i, keys in involved.items() if i not in corrected}
        now = _checks(facts, version)
        corrected.update(_settle(facts, version, now, open_cells, _if_reread))
    if reread is not None:
        now = _checks(facts, version)
        failing = _failing(now)
        if failing:
            again = _read_again(facts, version, now, failing, set(corrected), reread)
            unsure += [i for i in again if i not in involved]
            involved.update({i: _involved(facts, i, version, now) for i in again})
            if again:
                open_cells = {i: keys for i, keys in involved.items() if i not in corrected}
                corrected.update(_settle(facts, version, now, open_cells))
    failing = _failing(_checks(facts, version))
    findings = []
    for i, (reading, why) in corrected.items():
        fact = facts[i]
        findings.append(
            Problem(
                "ocr_corrected",
                f"{fact.table}/{fact.row}/{fact.col}: read {reading!r} "
                f"({_how_read(fact, reading)}); {fact.raw!r} is the only other reading "
                f"that makes {why}",
            )
        )
    for i in unsure:
        fact = facts[i]
        if i in corrected or (involved[i] and not involved[i] & failing):
            continue
        why = "no printed sum checks it" if not involved[i] else "the printed sums do not hold"
        findings.append(
            Problem(
                "ocr_low_confidence",
                f"{fact.table}/{fact.row}/{fact.col}: read {fact.raw!r} with "
                f"{_how_read(fact, fact.raw)}{',' if fact.rereads else ''} and kept ({why})",
            )
        )
    return findings


def _settle(
    facts: list[Fact],
    version: str,
    base: dict[CheckKey, tuple[bool, str]],
    involved: dict[int, set[CheckKey]],
    tried: Tried = _others,
) -> dict[int, tuple[str, str]]:
    """Correct the unsure values (`involved`'s keys) the failing sums settle, trying the
    readings `tried` gives each, in place: the original reading of each and why it was
    replaced."""
    failing = _failing(base)
    if not failing or not involved:
        return {}
    corrected = {
        i: (reading, "every printed sum hold")
        for i, reading in _correct(facts, version, failing, involved, tried).items()
    }
    if not corrected:
        for i, (reading, key) in _correct_sum_by_sum(facts, version, involved, tried).items():
            corrected[i] = (
                reading,
                f"the printed sum {key[0]} {key[1]} hold, breaking none that held",
            )
    return corrected


def _read_again(
    facts: list[Fact],
    version: str,
    base: dict[CheckKey, tuple[bool, str]],
    failing: set[CheckKey],
    corrected: set[int],
    reread: Reread,
) -> list[int]:
    """Read again the OCR'd values (of one cell line, not corrected already) that take part in
    a failing sum; give each the readings found as its `rereads`. Returns the values a
    re-reading read otherwise (unsure now, however sure their first reading was)."""
    again = [
        i
        for i, f in enumerate(facts)
        if f.confidence is not None
        and len(f.ocr_lines) == 1
        and i not in corrected
        and _involved(facts, i, version, base) & failing
    ]
    contradicted = []
    for i, readings in zip(again, reread([facts[i].ocr_lines for i in again]), strict=True):
        fact = facts[i]
        known = {fact.value, *(parse_value(raw).value for raw in _others(fact))}
        other = []
        for raw in readings:
            value = parse_value(raw).value
            if value is not None and value not in known:
                known.add(value)
                other.append(raw)
        if not other:
            continue
        facts[i] = replace(fact, rereads=(*fact.rereads, *other))
        contradicted.append(i)
    return contradicted


def mend_digits(facts: list[Fact], version: str) -> list[Fact]:
    """A copy of `facts` with the values `verify_digits` would correct from the readings OCR
    gave (the recogniser's alternatives, a number's glyphs set apart) corrected, not from
    re-reading cell images on failing sums, which comes later: how the printed sums stand once
    the OCR misreads they settle are settled (findings left out)."""
    mended = list(facts)
    verify_digits(mended, version)
    return mended


def _correct_sum_by_sum(
    facts: list[Fact], version: str, involved: dict[int, set[CheckKey]], tried: Tried
) -> dict[int, tuple[str, CheckKey]]:
    """Where no one set of readings makes every sum hold (several misreads, some read sure),
    one failing sum at a time: the one combination of other readings, among its own unsure
    cells, that makes it hold and breaks no sum that held. Repeated while a sum is mended."""
    corrected: dict[int, tuple[str, CheckKey]] = {}
    mended = True
    while mended:
        mended = False
        base = _checks(facts, version)
        for key in sorted(_failing(base)):
            candidates = [
                i
                for i, keys in involved.items()
                if key in keys and tried(facts[i]) and i not in corrected
            ]
            solution = _only_mending(facts, version, base, key, candidates, involved, tried)
            if solution is None:
                continue
            for i, raw in solution.items():
                parsed = parse_value(raw)
                corrected[i] = (facts[i].raw, key)
                facts[i] = replace(
                    facts[i], raw=parsed.raw, value=parsed.value, ocr_reading=facts[i].raw
                )
            mended = True
            break
    return corrected


def _only_mending(
    facts: list[Fact],
    version: str,
    base: dict[CheckKey, tuple[bool, str]],
    key: CheckKey,
    candidates: list[int],
    involved: dict[int, set[CheckKey]],
    tried: Tried,
) -> dict[int, str] | None:
    """The readings of `candidates` that alone make sum `key` hold and break no held sum.

    Where other unsure cells take part in `key`, it may hold by a chance meeting of misreads (a
    total mended to cover a misread elsewhere): such a reading is refused where another sum it
    takes part in still fails with no other unsure cell in it, the cells read sure saying it is
    wrong too."""
    options = [[facts[i].raw, *tried(facts[i])] for i in candidates]
    total = 1
    for choice in options:
        total *= len(choice)
    if not candidates or total > _MAX_COMBINATIONS:
        return None
    held = {k for k, (ok, _) in base.items() if ok}
    solutions = []
    for choice in product(*options):
        changes = {i: raw for i, raw in zip(candidates, choice, strict=True) if raw != facts[i].raw}
        if not changes:
            continue
        trial = list(facts)
        for i, raw in changes.items():
            parsed = parse_value(raw)
            trial[i] = replace(facts[i], raw=parsed.raw, value=parsed.value)
        outcome = _checks(trial, version)
        if (
            outcome.get(key, (False, ""))[0]
            and all(outcome.get(k, (False, ""))[0] for k in held)
            and not _contradicted(key, changes, outcome, involved)
        ):
            solutions.append(changes)
            if len(solutions) > 1:
                return None
    return solutions[0] if solutions else None


def _contradicted(
    key: CheckKey,
    changes: dict[int, str],
    outcome: dict[CheckKey, tuple[bool, str]],
    involved: dict[int, set[CheckKey]],
) -> bool:
    """Sum `key`, mended by `changes`, holds with other unsure cells in it, and a changed cell
    takes part in a sum that still fails with no other unsure cell in it."""
    if not any(key in keys for j, keys in involved.items() if j not in changes):
        return False
    for i in changes:
        for key in involved[i]:
            if outcome.get(key, (True, ""))[0]:
                continue
            if not any(key in keys for j, keys in involved.items() if j != i):
                return True
    return False


def _correct(
    facts: list[Fact],
    version: str,
    failing: set[CheckKey],
    involved: dict[int, set[CheckKey]],
    tried: Tried,
) -> dict[int, str]:
    """The one combination of alternative readings that makes the failing sums hold."""
    candidates = [i for i, keys in involved.items() if keys & failing and tried(facts[i])]
    options = [[facts[i].raw, *tried(facts[i])] for i in candidates]
    total = 1
    for choice in options:
        total *= len(choice)
    if not candidates or total > _MAX_COMBINATIONS:
        return {}
    solutions = []
    for choice in product(*options):
        if all(raw == facts[i].raw for i, raw in zip(candidates, choice, strict=True)):
            continue
        trial = list(facts)
        for i, raw in zip(candidates, choice, strict=True):
            parsed = parse_value(raw)
            trial[i] = replace(facts[i], raw=parsed.raw, value=parsed.value)
        if not _failing(_checks(trial, version)):
            solutions.append(choice)
            if len(solutions) > 1:
                return {}
    if len(solutions) != 1:
        return {}
    changed = {}
    for i, raw in zip(candidates, solutions[0], strict=True):
        if raw != facts[i].raw:
            parsed = parse_value(raw)
            changed[i] = facts[i].raw
            facts[i] = replace(
                facts[i], raw=parsed.raw, value=parsed.value, ocr_reading=facts[i].raw
            )
    return changed
