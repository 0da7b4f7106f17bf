"""OCR of image-only PDF pages: rasterise → deskew → ruling-line grid → cells → characters.

A scanned page comes back as what pdfium gives for a text page: characters with boxes, in
points and in pdfplumber's frame, and the table's ruling lines as line segments. `pdf.py` then
finds tables, cells, lines and paragraphs exactly as it does for a text PDF, so sections, the
template mapping and the checks do not know a page was scanned.

The engine is RapidOCR's PP-OCRv4 detection and recognition models on onnxruntime; the models
ship inside the `rapidocr-onnxruntime` wheel, so nothing is downloaded at run time. Table cells
are not searched by the text detector (it misses lone digits in wide cells and runs neighbouring
cells together): the grid from the ruling lines gives each cell, and each text line in a cell is
recognised on its own. Text outside the tables goes through the detector. The recogniser's
per-step probabilities give every character its confidence and, for a digit, the other digits
it could be, which `ocr_check` uses to verify digits against the printed sums.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from itertools import count
from typing import Any

import numpy as np

from . import cores, switched_on

# Pages are rasterised at this resolution: scans are typically 150–300 dpi, and the recogniser
# sees each line at 48 px high whatever the page resolution.
RENDER_DPI = 200
# Pixels a point at that resolution.
_SCALE = RENDER_DPI / 72
# The text detector works on the page scaled to at most this many pixels on its long side.
_DET_MAX_SIDE = 1400
# Deskew: angles tried (degrees) on a quarter-size page; scanners skew a page a few degrees.
_SKEW_LIMIT = 3.0
_SKEW_STEP = 0.1
# Ink is at least this many grey levels darker than the paper: a page with less holds no text.
_MIN_CONTRAST = 32
# A ruling line is at least this share of the page's width (horizontal) or height (vertical).
_H_RULE_SHARE = 1 / 30
_V_RULE_SHARE = 1 / 60
# ...and at least this long (px at RENDER_DPI), longer than a character's strokes: a picture of
# a table is a small image, whose share of a page is short.
_H_RULE_MIN = RENDER_DPI * 3 // 10
_V_RULE_MIN = RENDER_DPI // 5
# Grey level (paper 255) under which a pixel may belong to a faint rule.
_FAINT_RULE = 200
# A grey fill is at least this wide and high (px), more than a stroke or a rule is thick.
_FILL_MIN = RENDER_DPI // 12
# A rule is no thicker than this (px).
_RULE_MAX_PX = RENDER_DPI // 20
# Ink touching the grid no thicker than this (px) is what is left of a rule, not a glyph.
_REMNANT_PX = RENDER_DPI // 50
# A table is a grid region at least this wide (share of the page) and this many px high.
_TABLE_MIN_WIDTH = 0.2
_TABLE_MIN_HEIGHT = 40
# A cell fills at least this share of its bounding box (the rules around it excepted).
_CELL_FILL = 0.6
# Text lines in a cell: rows with at least this many ink pixels, lines at least this tall (px).
_ROW_INK = 2
_MIN_LINE_PX = 6
# A cell line no wider than this many line heights holds one to three glyphs.
_SHORT_GLYPHS = 2.5
# Short cell lines read side by side in one composite line.
_CELLS_PER_COMPOSITE = 8
# A printed digit is about this share of its line's height wide (with its spacing).
_DIGIT_WIDTH = 0.6
# A value cell is re-read as digits only if it is no wider than this many digits, and its
# column has at least this many other cells, most of them read as numbers, that overlap it by
# this share of the wider one's width.
_NUMBER_GLYPHS = 8
_NUMERIC_COLUMN_CELLS = 3
_NUMERIC_COLUMN_SHARE = 2 / 3
_SAME_COLUMN = 0.8
# Recogniser batch size: larger batches pad more; this keeps memory and padding small.
_REC_BATCH = 16
# Lines whose aspect ratios differ by more than this factor are not batched together.
_BATCH_RATIO_SPREAD = 1.1
# A character read with a probability below this is low-confidence.
LOW_CONFIDENCE = 0.9
# Other digits kept as a character's alternatives when the model gives them this much.
_ALTERNATIVE_MIN = 0.01
# A cell with more unsure digits than this gets no alternative readings (too many to verify).
MAX_UNSURE_DIGITS = 3
_DIGITS = "0123456789"
# Letters the recogniser gives for a digit in a cell that holds nothing but a number.
_DIGIT_LOOKALIKES = {
    **dict.fromkeys("OoQD。○〇", "0"),
    **dict.fromkeys("lI|", "1"),
}


@dataclass(frozen=True, slots=True)
class OcrChar:
    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    confidence: float
    # Other digits this character may be, most likely first (digits only; else empty).
    alternatives: tuple[str, ...] = ()
    # The key of the table cell line it was read from, in `OcrPage.lines` (None: not a cell's).
    line: int | None = None
    # Other readings of that whole line, from its image read again another way (its glyphs
    # set apart), where they differ from what the recogniser read: a value with any is unsure,
    # and the printed sums decide between the readings (`ocr_check`).
    rereads: tuple[str, ...] = ()


@dataclass(slots=True)
class OcrPage:
    chars: list[OcrChar]
    # Ruling lines (x0, top, x1, bottom) in points; horizontal ones have top == bottom.
    rules: list[tuple[float, float, float, float]]
    skew_degrees: float
    # The image of each table cell line, by key: what `reread` reads again when a printed sum
    # that one of its values takes part in fails.
    lines: dict[int, np.ndarray] = field(default_factory=dict)


# Keys of cell lines, unique within a process (a document's pages share one store).
_line_keys = count()


def enabled() -> bool:
    """OCR is on unless `NIANBAO_OCR=off` (what `--no-ocr` sets for the parser processes)."""
    return switched_on("NIANBAO_OCR")


THREADS_VARIABLE = "NIANBAO_OCR_THREADS"


def threads() -> int:
    """Threads one process gives onnxruntime and OpenCV: `NIANBAO_OCR_THREADS`, which the
    parser pool sets to the cores shared among its workers (N workers must not each start a
    thread per core); all cores in a lone process."""
    cores = os.cpu_count() or 1
    try:
        return min(max(1, int(os.environ[THREADS_VARIABLE])), cores)
    except (KeyError, ValueError):
        return cores


# Called with the number of pages OCR is about to read, where the process reading them bounds
# its time per document (the parser pool's workers: the limit grows with the pages).
_on_pages: Callable[[int], None] | None = None


def budget_pages(callback: Callable[[int], None] | None) -> None:
    """Have `callback` told how many pages each document's OCR reads, before it reads them."""
    global _on_pages
    _on_pages = callback


def announce_pages(count: int) -> None:
    """Say that OCR is about to read `count` pages (or pictures) of the document."""
    if _on_pages is not None and count:
        _on_pages(count)


@cache
def _engine() -> Any:
    # Loaded once per process (≈1 s); the detector is given the page at the size chosen here.
    import cv2
    from rapidocr_onnxruntime import RapidOCR

    count = threads()
    cv2.setNumThreads(count)
    return RapidOCR(
        det_limit_type="min",
        det_limit_side_len=32,
        use_cls=False,
        intra_op_num_threads=count,
        inter_op_num_threads=1,
    )


Box = tuple[int, int, int, int]
# A cell line: its image (padded with white) and its box on the page (px).
Crop = tuple[np.ndarray, Box]


@dataclass(slots=True)
class _Grid:
    """A page's table grid: the ink it was found in, the rules' mask (dilated to cover their
    edges), the tables' boxes and the rules as segments (px)."""

    ink: np.ndarray
    mask: np.ndarray
    tables: list[Box]
    rules: list[Box]


@cores.every_core()
def read_page(page: Any, region: tuple[float, float, float, float] | None = None) -> OcrPage:
    """OCR one pypdfium2 page (an image-only page), or the `region` of it (x0, top, x1, bottom
    in points, from the top-left) that an image covers, into characters and ruling lines."""
    gray, origin = _render(page, region)
    if gray.size == 0:
        return OcrPage([], [], 0.0)
    angle = _skew_angle(gray)
    if angle:
        gray = _rotate(gray, angle)
    clean = _normalise(gray)
    if clean is None:
        return OcrPage([], [], angle)
    grid = _find_grid(clean)
    text_image, text_ink = _without_grid(clean, grid)
    cell_crops, crop_cells = _table_lines(text_image, text_ink, grid)
    line_crops = _detected_lines(*_outside_tables(text_image, text_ink, grid.tables))
    # One pass of the recogniser over every line: lines of one shape share a batch.
    readings = _recognise([image for image, _ in cell_crops + line_crops])
    cell_readings, rereads = _read_cells(
        text_image, text_ink, cell_crops, crop_cells, readings[: len(cell_crops)]
    )
    readings[: len(cell_crops)] = cell_readings
    return _page_of(cell_crops, line_crops, readings, rereads, grid.rules, angle, origin)


def _render(
    page: Any, region: tuple[float, float, float, float] | None
) -> tuple[np.ndarray, tuple[float, float]]:
    """The page (or its `region`) in grey at RENDER_DPI, and where its top-left corner is on
    the page (points)."""
    import cv2

    bitmap = page.render(scale=_SCALE, grayscale=True)
    gray = np.ascontiguousarray(np.squeeze(bitmap.to_numpy()))
    if gray.ndim == 3:
        gray = cv2.cvtColor(gray[:, :, :3], cv2.COLOR_BGR2GRAY)
    if region is None:
        return gray, (0.0, 0.0)
    x0, y0 = int(max(region[0], 0.0) * _SCALE), int(max(region[1], 0.0) * _SCALE)
    gray = np.ascontiguousarray(gray[y0 : int(region[3] * _SCALE), x0 : int(region[2] * _SCALE)])
    return gray, (x0 / _SCALE, y0 / _SCALE)


def _find_grid(clean: np.ndarray) -> _Grid:
    """The tables of a normalised page and their ruling lines."""
    import cv2

    # Ink (for the grid and for finding lines in cells) from a median-smoothed copy with its
    # grey fill taken out: noise specks, JPEG blocks and the grain of a shaded row must not
    # count; the recogniser reads the unsmoothed image.
    smooth = _without_fill(cv2.medianBlur(clean, 3))
    ink = cv2.threshold(smooth, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)[1]
    # Rules from the text's ink, and from a lighter threshold: a thin rule in a small picture
    # renders light grey. Noise the lighter one picks up is not long and thin, so not a rule.
    horizontal, vertical = _rule_masks(ink)
    faint = cv2.threshold(smooth, _FAINT_RULE, 255, cv2.THRESH_BINARY_INV)[1]
    faint_horizontal, faint_vertical = _rule_masks(faint)
    horizontal |= faint_horizontal
    vertical |= faint_vertical
    # A horizontal rule of a grid meets a vertical one; the bars of a line of text that blur
    # runs together (二十 of 第二十条) float inside a cell. One that meets none is a rule only
    # as long as a table is wide (a table ruled by horizontal lines alone).
    horizontal = _meeting(horizontal, vertical, alone=int(ink.shape[1] * _TABLE_MIN_WIDTH))
    mask = cv2.dilate(horizontal | vertical, np.ones((5, 5), np.uint8))
    tables = _table_boxes(mask)
    # Only strokes that form a table's grid are rules: long strokes of large bold title
    # characters must stay text.
    in_tables = np.zeros_like(mask)
    for x0, y0, x1, y1 in tables:
        in_tables[y0:y1, x0:x1] = 255
    mask &= in_tables
    rules = _segments(horizontal & in_tables, "h") + _segments(vertical & in_tables, "v")
    return _Grid(ink, mask, tables, rules)


def _without_grid(clean: np.ndarray, grid: _Grid) -> tuple[np.ndarray, np.ndarray]:
    """The page and its ink with the ruling lines painted out: what text is read from."""
    text_image = clean.copy()
    text_image[grid.mask > 0] = 255
    text_ink = grid.ink.copy()
    text_ink[grid.mask > 0] = 0
    # What is left of a rule once the grid is painted out (the paler line of a double rule, a
    # faint stretch of one) is thin ink along the grid, which would read as a 1.
    remnants = _rule_remnants(text_ink, grid.mask)
    text_image[remnants] = 255
    text_ink[remnants] = 0
    return text_image, text_ink


def _table_lines(
    image: np.ndarray, ink: np.ndarray, grid: _Grid
) -> tuple[list[Crop], list[tuple[int, Box]]]:
    """The text lines of every table cell, and the cell (with its table's number) each was
    read from."""
    crops: list[Crop] = []
    cells: list[tuple[int, Box]] = []
    for number, box in enumerate(grid.tables):
        for cell, region in _cells(grid.mask, box):
            lines = _cell_lines(image, ink, cell, region)
            crops.extend(lines)
            cells.extend((number, cell) for _ in lines)
    return crops, cells


def _outside_tables(
    image: np.ndarray, ink: np.ndarray, tables: list[Box]
) -> tuple[np.ndarray, np.ndarray]:
    """The page and its ink with the tables whited out: where the text detector looks."""
    outside = image.copy()
    outside_ink = ink.copy()
    for x0, y0, x1, y1 in tables:
        outside[y0:y1, x0:x1] = 255
        outside_ink[y0:y1, x0:x1] = 0
    return outside, outside_ink


def _read_cells(
    image: np.ndarray,
    ink: np.ndarray,
    crops: list[Crop],
    cells: list[tuple[int, Box]],
    first: list[_Reading],
) -> tuple[list[_Reading], dict[int, tuple[str, ...]]]:
    """The reading of each cell line, from the recogniser's `first`, and other readings of the
    lines whose image, read another way, reads otherwise (by index)."""
    readings = [_as_number(reading) for reading in first]
    # A short cell line (a lone number, mostly) is read a second time among other cells; the
    # surer of the two readings is kept, a number before anything else.
    short = [i for i, (_, box) in enumerate(crops) if _is_short(box)]
    for index, reading in _recognise_in_rows(image, [crops[i][1] for i in short], short):
        glyphs = _digit_count(crops[index][1])
        readings[index] = max(
            readings[index], _as_number(reading), key=lambda r: _reading_rank(r, glyphs)
        )
    # A value cell read as something else (11 as 日): where its column holds numbers and the
    # reading is unsure, it is decoded again with digits as the only characters allowed.
    for index, reading in _digits_in_numeric_columns(crops, cells, readings):
        readings[index] = reading
    # A number read with fewer digits than its ink shows glyphs apart (11 read as 1: the
    # recogniser runs two equal glyphs into one) is read again with its glyphs set apart. That
    # reading rests on an ink count (a speck or a broken stroke is a glyph too), so it does not
    # replace the recogniser's: it is another reading, and the printed sums decide.
    return readings, dict(_glyphs_set_apart(image, ink, crops, readings))


def _page_of(
    cell_crops: list[Crop],
    line_crops: list[Crop],
    readings: list[_Reading],
    rereads: dict[int, tuple[str, ...]],
    rules: list[Box],
    angle: float,
    origin: tuple[float, float],
) -> OcrPage:
    """The page's characters in reading order and its rules, in points on the page."""
    to_points = 1 / _SCALE
    left, top = origin
    crops = cell_crops + line_crops
    keys = [next(_line_keys) for _ in cell_crops]
    placed = [
        _place(reading, box, to_points, origin, line, rereads.get(index, ()))
        for index, ((_, box), reading, line) in enumerate(
            zip(crops, readings, keys + [None] * len(line_crops), strict=True)
        )
    ]
    chars: list[OcrChar] = []
    # pdf.py reads lines in content order, each ended by a newline character, as pdfium gives
    # them: detected boxes are put in reading order, boxes side by side joined into one line.
    boxes = [box for _, box in crops]
    for group in _reading_order(boxes, first_detected=len(cell_crops)):
        for index in group:
            chars.extend(placed[index])
        chars.append(OcrChar("\n", 0, 0, 0, 0, 1.0))
    points = [
        (x0 * to_points + left, y0 * to_points + top, x1 * to_points + left, y1 * to_points + top)
        for x0, y0, x1, y1 in rules
    ]
    # Each line as it was read (its cell's own pixels only), without the white margin `_pad`
    # gave it.
    lines = {
        key: np.ascontiguousarray(_unpadded(crop, box))
        for key, (crop, box) in zip(keys, cell_crops, strict=True)
    }
    return OcrPage(chars, points, angle, lines)


# --- image clean-up -----------------------------------------------------------------------------


def _skew_angle(gray: np.ndarray) -> float:
    """The rotation that makes text rows and ruling lines horizontal: the angle whose row
    profile of ink is sharpest (projection-profile method)."""
    import cv2

    small = cv2.resize(gray, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    ink = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU)[1]

    def sharpness(angle: float) -> float:
        profile = _rotate(ink, angle, border=0).sum(axis=1, dtype=np.float64)
        return float(np.sum(np.diff(profile) ** 2))

    coarse = np.arange(-_SKEW_LIMIT, _SKEW_LIMIT + 1e-9, 0.5)
    best = max(coarse, key=sharpness)
    fine = np.arange(best - 0.5, best + 0.5 + 1e-9, _SKEW_STEP)
    best = max(fine, key=sharpness)
    return round(float(best), 2) if abs(best) >= _SKEW_STEP / 2 else 0.0


def _rotate(image: np.ndarray, angle: float, border: int = 255) -> np.ndarray:
    import cv2

    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    return cv2.warpAffine(
        image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=border
    )


def _normalise(gray: np.ndarray) -> np.ndarray | None:
    """Stretch low contrast to the full range: paper (and its noise) white, ink black. Paper
    is most of any page, so its level is the median; the ink's is the darkest speck-free pixels
    (of a median-smoothed copy), not a share of the page: a nearly blank page has little ink.
    None for a page with nothing darker than its paper: an empty page, or a flat picture."""
    import cv2

    smooth = cv2.medianBlur(gray, 3)
    low, high = np.percentile(smooth, (0.05, 50))
    if high - low < _MIN_CONTRAST:
        return None
    stretched = np.clip((gray.astype(np.float32) - low) * (255 / (high - low)), 0, 255)
    return stretched.astype(np.uint8)


def _without_fill(gray: np.ndarray) -> np.ndarray:
    """The page divided by its background: a flat grey fill (a shaded header or group row)
    turns white, while text and rules on it keep their contrast to it. Shaded, its grain
    thresholds as ink, and the rules along it join the fill into a band too thick to be a rule.

    The background is the page with every mark thinner than `_FILL_MIN` closed over (a
    grey-level closing): strokes and rules go, a fill that wide stays."""
    import cv2

    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (_FILL_MIN, _FILL_MIN))
    background = cv2.morphologyEx(gray, cv2.MORPH_CLOSE, kernel)
    flat = gray.astype(np.float32) * 255 / np.maximum(background, 1)
    return np.clip(flat, 0, 255).astype(np.uint8)


def _reading_order(boxes: list[tuple[int, int, int, int]], first_detected: int) -> list[list[int]]:
    """Cell lines one by one, then detected boxes as lines top to bottom, each left to right;
    a box whose vertical middle lies within the previous line's span joins that line."""
    groups: list[list[int]] = [[i] for i in range(first_detected)]
    detected = sorted(range(first_detected, len(boxes)), key=lambda i: (boxes[i][1], boxes[i][0]))
    line: list[int] = []
    for index in detected:
        middle = (boxes[index][1] + boxes[index][3]) / 2
        if line and boxes[line[0]][1] <= middle <= boxes[line[0]][3]:
            line.append(index)
            continue
        if line:
            groups.append(sorted(line, key=lambda i: boxes[i][0]))
        line = [index]
    if line:
        groups.append(sorted(line, key=lambda i: boxes[i][0]))
    return groups


# --- the table grid -----------------------------------------------------------------------------


def _rule_masks(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Long, thin horizontal and vertical strokes: ruling lines, not letters (morphological
    opening), nor the grey fill of a header row (too thick)."""
    import cv2

    height, width = ink.shape
    joined = cv2.morphologyEx(ink, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    h_kernel = np.ones((1, max(int(width * _H_RULE_SHARE), _H_RULE_MIN)), np.uint8)
    v_kernel = np.ones((max(int(height * _V_RULE_SHARE), _V_RULE_MIN), 1), np.uint8)
    horizontal = _thin(cv2.morphologyEx(joined, cv2.MORPH_OPEN, h_kernel), axis=1)
    vertical = _thin(cv2.morphologyEx(joined, cv2.MORPH_OPEN, v_kernel), axis=0)
    return horizontal, vertical


def _thin(mask: np.ndarray, axis: int) -> np.ndarray:
    """Only the components of `mask` no thicker than a rule across `axis`."""
    import cv2

    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    thickness = stats[:, cv2.CC_STAT_HEIGHT if axis == 1 else cv2.CC_STAT_WIDTH]
    keep = np.zeros(count, np.uint8)
    keep[1:] = np.where(thickness[1:] <= _RULE_MAX_PX, 255, 0)
    return keep[labels]


def _meeting(lines: np.ndarray, across: np.ndarray, alone: int) -> np.ndarray:
    """The components of the rule mask `lines` that meet a rule of `across` (within a few
    px), or are at least `alone` px long."""
    import cv2

    count, labels, stats, _ = cv2.connectedComponentsWithStats(lines, connectivity=8)
    near = cv2.dilate(across, np.ones((7, 7), np.uint8)) > 0
    keep = np.zeros(count, np.uint8)
    keep[np.unique(labels[near])] = 255
    keep[
        np.flatnonzero(
            np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]) >= alone
        )
    ] = 255
    keep[0] = 0
    return keep[labels]


def _rule_remnants(ink: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Where `ink` is a component that touches the grid and is no thicker than a rule's
    remnant on either side: a mask of the page."""
    import cv2

    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    touching = np.zeros(count, bool)
    touching[np.unique(labels[cv2.dilate(grid, np.ones((3, 3), np.uint8)) > 0])] = True
    thickness = np.minimum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    remnant = touching & (thickness <= _REMNANT_PX)
    remnant[0] = False
    return remnant[labels]


def _segments(mask: np.ndarray, orientation: str) -> list[tuple[int, int, int, int]]:
    """Each ruling line as a segment through its middle, in pixels."""
    import cv2

    count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    segments = []
    for x, y, w, h, _ in stats[1:count]:
        if orientation == "h":
            middle = y + h // 2
            segments.append((x, middle, x + w, middle))
        else:
            middle = x + w // 2
            segments.append((middle, y, middle, y + h))
    return segments


def _table_boxes(grid: np.ndarray) -> list[tuple[int, int, int, int]]:
    import cv2

    height, width = grid.shape
    count, _, stats, _ = cv2.connectedComponentsWithStats(grid, connectivity=8)
    return [
        (x, y, x + w, y + h)
        for x, y, w, h, _ in stats[1:count]
        if w >= width * _TABLE_MIN_WIDTH and h >= _TABLE_MIN_HEIGHT
    ]


def _cells(grid: np.ndarray, table: Box) -> list[tuple[Box, np.ndarray]]:
    """The regions the ruling lines enclose inside one table (merged cells come out whole):
    each as its box and which pixels of the box are its own.

    A region that fills less than `_CELL_FILL` of its bounding box is a remnant, not a cell,
    where it touches the table's box (the slivers between a skewed table's frame and its
    bounding box, which would read the text of a row, a shaded one once its fill is taken
    out, a second time) or is less tall than the table's cells mostly are (the gap inside a
    skewed double rule). Inside the frame, a region as tall as a row is a cell whatever its
    shape: a cell merged over rows and columns is an L. Even a cell's box may hold other
    cells' text (a cell spanning rows that a page break cut, with no rule below it, runs into
    the blank rows under its neighbours): only its own pixels are its text."""
    import cv2

    x0, y0, x1, y1 = table
    width, height = x1 - x0, y1 - y0
    inside = cv2.bitwise_not(grid[y0:y1, x0:x1])
    count, labels, stats, _ = cv2.connectedComponentsWithStats(inside, connectivity=4)
    regions = [
        (number, (x, y, w, h), pixels >= _CELL_FILL * w * h)
        for number, (x, y, w, h, pixels) in enumerate(stats[1:count], start=1)
        if w >= 8 and h >= 8 and pixels < width * height / 2
    ]
    filled = [h for _, (_, _, _, h), full in regions if full]
    row_height = float(np.median(filled)) if filled else 0.0
    return [
        ((x0 + x, y0 + y, x0 + x + w, y0 + y + h), labels[y : y + h, x : x + w] == number)
        for number, (x, y, w, h), full in regions
        if full or (min(x, y) > 0 and x + w < width and y + h < height and h >= row_height)
    ]


def _cell_lines(
    image: np.ndarray, ink: np.ndarray, cell: tuple[int, int, int, int], region: np.ndarray
) -> list[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """A cell's text lines, found from its rows of ink (its own pixels, `region` of the box
    `cell`), each cropped to its ink with only the cell's own pixels in the crop."""
    x0, y0, x1, y1 = cell
    cell_ink = (ink[y0:y1, x0:x1] > 0) & region
    own = np.where(region, image[y0:y1, x0:x1], np.uint8(255))
    rows = np.flatnonzero(cell_ink.sum(axis=1) >= _ROW_INK)
    lines = []
    for top, bottom in _joined_fragments([(run[0], run[-1] + 1) for run in _runs(rows, gap=2)]):
        if bottom - top < _MIN_LINE_PX:
            continue
        columns = np.flatnonzero(cell_ink[top:bottom].sum(axis=0))
        left, right = columns[0], columns[-1] + 1
        lines.append(
            (_pad(own, (left, top, right, bottom)), (x0 + left, y0 + top, x0 + right, y0 + bottom))
        )
    return lines


def _joined_fragments(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Rows of ink (top, bottom) with a glyph's split-off piece joined to its line: a faint
    stroke breaks a blurred 2 into its top and a short foot, and the top alone reads as 9. A
    piece at most 3/5 as tall as its neighbour, no farther from it than half its own height, is
    part of it (lines of text are parted by more than that)."""
    joined: list[tuple[int, int]] = []
    for top, bottom in spans:
        if joined:
            last_top, last_bottom = joined[-1]
            shorter = min(bottom - top, last_bottom - last_top)
            taller = max(bottom - top, last_bottom - last_top)
            if 5 * shorter <= 3 * taller and 2 * (top - last_bottom) <= shorter:
                joined[-1] = (last_top, bottom)
                continue
        joined.append((top, bottom))
    return joined


def _is_short(box: tuple[int, int, int, int]) -> bool:
    """A line of one to three glyphs: the recogniser misreads such a line on its own."""
    x0, y0, x1, y1 = box
    return x1 - x0 <= _SHORT_GLYPHS * (y1 - y0)


def _recognise_in_rows(
    image: np.ndarray, boxes: list[tuple[int, int, int, int]], indices: list[int]
) -> list[tuple[int, _Reading]]:
    """Read short cell lines side by side, a few to a composite line, and give each cell the
    characters read over it: a lone digit is read far better among other cells' text."""
    # Reading order (a line by its middle, then left to right), cut into composites of a few
    # cells: a row with one value cell borrows its neighbours from the next row.
    order = sorted(range(len(boxes)), key=lambda k: ((boxes[k][1] + boxes[k][3]) // 2, boxes[k][0]))
    rows = [
        order[start : start + _CELLS_PER_COMPOSITE]
        for start in range(0, len(order), _CELLS_PER_COMPOSITE)
    ]
    composites, spans = [], []
    for row in rows:
        height = max(boxes[k][3] - boxes[k][1] for k in row)
        # Half a line height of white above and below, as `_pad` gives a lone line, and two
        # between the cells' ink: with less, the recogniser runs two equal digits of
        # neighbouring cells into one (CTC merges repeats not parted by a blank).
        gap, margin = 2 * height, max(height // 2, 3)
        pieces = [np.full((height + 2 * margin, gap), 255, np.uint8)]
        row_spans, left = [], gap
        for k in row:
            x0, y0, x1, y1 = boxes[k]
            piece = np.full((height + 2 * margin, x1 - x0 + gap), 255, np.uint8)
            top = margin + (height - (y1 - y0)) // 2
            piece[top : top + y1 - y0, : x1 - x0] = image[y0:y1, x0:x1]
            pieces.append(piece)
            row_spans.append((left, left + x1 - x0))
            left += x1 - x0 + gap
        composites.append(np.hstack(pieces))
        spans.append(row_spans)
    results = []
    readings = _recognise(composites)
    for row, row_spans, composite, reading in zip(rows, spans, composites, readings, strict=True):
        width = composite.shape[1]
        owned: list[_Reading] = [_Reading([]) for _ in row]
        for char, position in zip(reading.chars, reading.positions, strict=True):
            if char[0].isspace():
                continue
            x = position * width
            # A character belongs to the cell whose ink it was read nearest to.
            nearest = min(
                range(len(row)),
                key=lambda j: abs(x - (row_spans[j][0] + row_spans[j][1]) / 2),
            )
            owned[nearest].chars.append(char)
        results.extend((indices[k], owned[j]) for j, k in enumerate(row))
    return results


def _digits_in_numeric_columns(
    crops: list[tuple[np.ndarray, tuple[int, int, int, int]]],
    cells: list[tuple[int, tuple[int, int, int, int]]],
    readings: list[_Reading],
) -> list[tuple[int, _Reading]]:
    """Cell lines of numeric columns read as no number: read again as digits only, and taken
    where the first reading was unsure or the digits are sure (a blurred 11 read as 日 with
    0.91 reads as 11 with 0.96; a blank marker such as 无 reads as no sure digit).

    A column is the cells of one table that span the same width; it is numeric when most of
    its other one-line cells read as numbers. The digits-only reading keeps the model's own
    probabilities, so an unsure value stays low-confidence and the printed sums verify it.
    """
    import cv2

    lines_in: dict[tuple[int, tuple[int, int, int, int]], int] = {}
    for cell in cells:
        lines_in[cell] = lines_in.get(cell, 0) + 1
    not_numbers = [
        i
        for i, reading in enumerate(readings[: len(crops)])
        if lines_in[cells[i]] == 1
        and not _is_number(reading)
        and reading.chars
        and _digit_count(crops[i][1]) <= _NUMBER_GLYPHS
    ]
    again = []
    for i in not_numbers:
        table, (x0, _, x1, _) = cells[i]
        column = [
            j
            for j, (other_table, (a, _, b, _)) in enumerate(cells)
            if j != i
            and other_table == table
            and lines_in[cells[j]] == 1
            and min(b, x1) - max(a, x0) >= _SAME_COLUMN * max(b - a, x1 - x0)
        ]
        numbers = sum(_is_number(readings[j]) for j in column)
        if numbers >= _NUMERIC_COLUMN_CELLS and numbers >= _NUMERIC_COLUMN_SHARE * len(column):
            again.append(i)
    # Read again from a black-and-white copy: a blurred "11" reads as 日 in grey and as 11 in
    # black and white, the cell's own contrast decides the threshold (Otsu).
    binarised = [
        cv2.threshold(crops[i][0], 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)[1] for i in again
    ]
    digits = _recognise(binarised, allowed=_DIGITS)
    return [
        (i, reading)
        for i, reading in zip(again, digits, strict=True)
        if reading.chars and (_unsure(readings[i]) or not _unsure(reading))
    ]


def _unsure(reading: _Reading) -> bool:
    return min(c for _, c, _ in reading.chars) < LOW_CONFIDENCE


def _glyphs_set_apart(
    image: np.ndarray,
    ink: np.ndarray,
    crops: list[tuple[np.ndarray, tuple[int, int, int, int]]],
    readings: list[_Reading],
) -> list[tuple[int, tuple[str, ...]]]:
    """Whole numbers read with fewer digits than the glyphs their ink shows apart, read again
    as digits with a blank of a third of a line between the glyphs (wider blanks leave a lone
    1 unread, narrower ones merge it again): each line's other reading, where it reads a digit
    for every glyph (a glyph may hold two touching digits, never none)."""
    suspect: list[tuple[int, list[tuple[int, int]]]] = []
    for i, (_, (x0, y0, x1, y1)) in enumerate(crops):
        text = "".join(t for t, _, _ in readings[i].chars)
        if not text.isdigit():
            continue
        glyphs = _glyph_columns(ink[y0:y1, x0:x1] > 0)
        if len(glyphs) > len(text):
            suspect.append((i, glyphs))
    spaced = []
    for i, glyphs in suspect:
        x0, y0, x1, y1 = crops[i][1]
        spaced.append(_whole(_set_apart(image[y0:y1, x0:x1], glyphs)))
    again = _recognise(spaced, allowed=_DIGITS)
    return [
        (i, ("".join(t for t, _, _ in reading.chars),))
        for (i, glyphs), reading in zip(suspect, again, strict=True)
        if len(reading.chars) >= len(glyphs)
    ]


def _set_apart(line: np.ndarray, glyphs: list[tuple[int, int]]) -> np.ndarray:
    """A line's glyphs side by side with a third of its height of white between them (wider
    blanks leave a lone 1 unread, narrower ones merge two again)."""
    height = line.shape[0]
    gap = np.full((height, max(height // 3, 2)), 255, np.uint8)
    pieces = [gap]
    for left, right in glyphs:
        pieces += [line[:, left:right], gap]
    return np.hstack(pieces)


def _whole(line: np.ndarray) -> np.ndarray:
    """A whole line image with the white margin the recogniser reads it best with."""
    return _pad(line, (0, 0, line.shape[1], line.shape[0]))


@cores.every_core()
def reread(images: list[np.ndarray]) -> list[tuple[str, ...]]:
    """Other readings of cell line images, as digits only: what a value that a failing printed
    sum takes part in may be. Each line is read again as it is, in black and white, twice as
    large, with its ink made bolder and lighter, and with its glyphs set apart; a reading is
    each way's number, and that number with one digit the recogniser was unsure of replaced by
    another it allowed. Ways that read no number add nothing. Each line is read apart from the
    others: padded to another line's shape in a batch, an unsure digit reads otherwise."""
    import cv2

    found: list[tuple[str, ...]] = []
    for image in images:
        if image.size == 0:
            found.append(())
            continue
        ink = cv2.threshold(
            cv2.medianBlur(image, 3), 0, 255, cv2.THRESH_BINARY_INV | cv2.THRESH_OTSU
        )[1]
        ways = (
            image,
            cv2.threshold(image, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)[1],
            cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC),
            cv2.erode(image, np.ones((2, 2), np.uint8)),
            cv2.dilate(image, np.ones((2, 1), np.uint8)),
            _set_apart(image, _glyph_columns(ink > 0)),
        )
        readings: dict[str, None] = {}
        for reading in _recognise([_whole(way) for way in ways], allowed=_DIGITS):
            text = "".join(t for t, _, _ in reading.chars)
            if not text:
                continue
            readings[text] = None
            for position, (_, confidence, alternatives) in enumerate(reading.chars):
                if confidence < LOW_CONFIDENCE:
                    for digit in alternatives:
                        readings[text[:position] + digit + text[position + 1 :]] = None
        found.append(tuple(readings))
    return found


def _glyph_columns(line_ink: np.ndarray) -> list[tuple[int, int]]:
    """The spans of columns (left, right) that hold a glyph: runs of inked columns parted by
    white ones, whose ink is at least half the line high (not a decimal point or a speck)."""
    height = line_ink.shape[0]
    glyphs = []
    for run in _runs(np.flatnonzero(line_ink.any(axis=0)), gap=1):
        rows = np.flatnonzero(line_ink[:, run[0] : run[-1] + 1].any(axis=1))
        if rows[-1] - rows[0] + 1 >= height / 2:
            glyphs.append((int(run[0]), int(run[-1]) + 1))
    return glyphs


def _is_number(reading: _Reading) -> bool:
    return bool(reading.chars) and all(text in _DIGITS + ".,%-" for text, _, _ in reading.chars)


def _runs(indices: np.ndarray, gap: int) -> list[np.ndarray]:
    if not len(indices):
        return []
    breaks = np.flatnonzero(np.diff(indices) > gap) + 1
    return np.split(indices, breaks)


def _pad(image: np.ndarray, box: tuple[int, int, int, int], margin: int = 0) -> np.ndarray:
    import cv2

    x0, y0, x1, y1 = box
    if margin:
        crop = image[y0:y1, x0:x1]
        return cv2.copyMakeBorder(
            crop, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=255
        )
    margin = _line_margin(box)
    crop = image[y0:y1, x0:x1]
    return cv2.copyMakeBorder(crop, margin, margin, margin, margin, cv2.BORDER_CONSTANT, value=255)


def _line_margin(box: tuple[int, int, int, int]) -> int:
    # Half a line of white around the ink: tighter crops read a lone digit far worse.
    return max((box[3] - box[1]) // 2, 3)


def _unpadded(crop: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """A line image `_pad` gave its margin, without it."""
    x0, y0, x1, y1 = box
    margin = _line_margin(box)
    return crop[margin : margin + y1 - y0, margin : margin + x1 - x0]


def _detected_lines(
    image: np.ndarray, ink: np.ndarray
) -> list[tuple[np.ndarray, tuple[int, int, int, int]]]:
    """Text lines outside the tables, found by the text detector on the inked part of a
    reduced page (a page that is mostly table costs little)."""
    import cv2

    rows = np.flatnonzero(ink.sum(axis=1, dtype=np.int64) >= _ROW_INK * 255)
    columns = np.flatnonzero(ink.sum(axis=0, dtype=np.int64) >= _ROW_INK * 255)
    if not len(rows) or not len(columns):
        return []
    height, width = image.shape
    margin = 16
    top, bottom = max(rows[0] - margin, 0), min(rows[-1] + margin, height)
    left, right = max(columns[0] - margin, 0), min(columns[-1] + margin, width)
    factor = min(1.0, _DET_MAX_SIDE / max(height, width))
    small = cv2.resize(
        image[top:bottom, left:right], None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA
    )
    boxes, _ = _engine().text_det(cv2.cvtColor(small, cv2.COLOR_GRAY2BGR))
    lines = []
    for quad in boxes if boxes is not None else []:
        xs, ys = quad[:, 0] / factor + left, quad[:, 1] / factor + top
        box = (
            max(int(xs.min()), 0),
            max(int(ys.min()), 0),
            min(int(np.ceil(xs.max())), width),
            min(int(np.ceil(ys.max())), height),
        )
        if box[2] - box[0] > 3 and box[3] - box[1] > 3:
            lines.append((_pad(image, box, margin=4), box))
    return lines


# --- recognition --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Reading:
    chars: list[tuple[str, float, tuple[str, ...]]]
    # Where each character was read, as a share of the image's width (its best step's middle).
    positions: list[float] = field(default_factory=list)


def _recognise(images: list[np.ndarray], allowed: str | None = None) -> list[_Reading]:
    """Read each line image; keep per-character probabilities and digit alternatives.

    With `allowed`, only those characters (and the blank) may be read."""
    import cv2

    if not images:
        return []
    recogniser = _engine().text_rec
    alphabet = recogniser.postprocess_op.character
    digit_ids = np.array([alphabet.index(d) for d in _DIGITS])
    keep = None
    if allowed is not None:
        keep = np.zeros(len(alphabet), bool)
        keep[0] = True  # the CTC blank
        keep[[alphabet.index(c) for c in allowed]] = True
    ratios = [image.shape[1] / image.shape[0] for image in images]
    readings: list[_Reading] = [_Reading([]) for _ in images]
    for batch in _batches(ratios):
        # Each image is padded to the widest in its batch; the recogniser misreads text with
        # much padding after it, so a batch holds only lines of nearly the same shape.
        ratio = max(ratios[i] for i in batch)
        tensors = [
            recogniser.resize_norm_img(cv2.cvtColor(images[i], cv2.COLOR_GRAY2BGR), ratio)
            for i in batch
        ]
        probabilities = recogniser.session(np.stack(tensors).astype(np.float32))[0]
        for i, steps in zip(batch, probabilities, strict=True):
            if keep is not None:
                steps = np.where(keep, steps, 0.0)
            reading = _decode(steps, alphabet, digit_ids)
            # The image fills the first `filled` share of the padded tensor.
            filled = min(ratios[i] / ratio, 1.0)
            reading.positions = [p / filled for p in reading.positions]
            readings[i] = reading
    return readings


def _batches(ratios: list[float]) -> list[list[int]]:
    """Indices by aspect ratio, cut where a batch is full or the shape grows by a tenth."""
    batches: list[list[int]] = []
    for index in np.argsort(ratios):
        if (
            batches
            and len(batches[-1]) < _REC_BATCH
            and ratios[index] <= ratios[batches[-1][0]] * _BATCH_RATIO_SPREAD
        ):
            batches[-1].append(int(index))
        else:
            batches.append([int(index)])
    return batches


def _decode(steps: np.ndarray, alphabet: list[str], digit_ids: np.ndarray) -> _Reading:
    """Greedy CTC decoding; a character's confidence is its best step's probability."""
    best = steps.argmax(axis=1)
    chars: list[tuple[str, float, tuple[str, ...]]] = []
    peaks: list[int] = []
    previous = 0
    for step, index in enumerate(best):
        if index != 0 and index == previous and peaks:
            if steps[step, index] > steps[peaks[-1], index]:
                peaks[-1] = step
        elif index != 0:
            peaks.append(step)
            chars.append((alphabet[index], 0.0, ()))
        previous = index
    decoded = []
    for (text, _, _), step in zip(chars, peaks, strict=True):
        confidence = float(steps[step, alphabet.index(text)])
        alternatives: tuple[str, ...] = ()
        if text in _DIGITS:
            digit_probs = steps[step, digit_ids]
            ranked = np.argsort(-digit_probs)
            alternatives = tuple(
                _DIGITS[k]
                for k in ranked
                if _DIGITS[k] != text and digit_probs[k] >= _ALTERNATIVE_MIN
            )
        decoded.append((text, confidence, alternatives))
    return _Reading(decoded, [(step + 0.5) / len(steps) for step in peaks])


def _digit_count(box: tuple[int, int, int, int]) -> float:
    """How many digits a line's ink is wide enough for (a digit is about half its height)."""
    x0, y0, x1, y1 = box
    return (x1 - x0) / (_DIGIT_WIDTH * (y1 - y0))


def _reading_rank(reading: _Reading, glyphs: float) -> tuple[bool, float, float]:
    """A number before anything else, then the reading whose length fits the ink, then the
    surer one."""
    chars = reading.chars
    numeric = bool(chars) and all(text in _DIGITS + ".,%-" for text, _, _ in chars)
    confidence = sum(c for _, c, _ in chars) / len(chars) if chars else 0.0
    return numeric, -round(abs(len(chars) - glyphs)), confidence


def _as_number(reading: _Reading) -> _Reading:
    """A cell read as digits and letters shaped like digits (`O`, `l`, full-width `０`) is a
    number: the letters are the digits they resemble, their confidence kept as read."""
    texts = [unicodedata.normalize("NFKC", text) for text, _, _ in reading.chars]
    if not texts or not all(t in _DIGITS or t in _DIGIT_LOOKALIKES or t in ".,%-" for t in texts):
        return reading
    if not any(t in _DIGITS or t in _DIGIT_LOOKALIKES for t in texts):
        return reading
    if len(texts) > 1 and "。" in texts:
        # Among digits a full stop is more likely a misread decimal point than a zero.
        return reading
    chars = [
        (_DIGIT_LOOKALIKES.get(t, t), confidence, alternatives)
        for t, (_, confidence, alternatives) in zip(texts, reading.chars, strict=True)
    ]
    return _Reading(chars, reading.positions)


def _place(
    reading: _Reading,
    box: tuple[int, int, int, int],
    to_points: float,
    origin: tuple[float, float] = (0.0, 0.0),
    line: int | None = None,
    rereads: tuple[str, ...] = (),
) -> list[OcrChar]:
    """Spread a line's characters over its box by their widths (CJK full, Latin half); each
    carries the line's key and its other readings."""
    text_chars = reading.chars
    while text_chars and text_chars[-1][0].isspace():
        text_chars = text_chars[:-1]
    if not text_chars:
        return []
    widths = [0.5 if ord(text) < 0x2E80 else 1.0 for text, _, _ in text_chars]
    x0, y0, x1, y1 = box
    unit = (x1 - x0) / sum(widths)
    placed = []
    left = float(x0)
    dx, dy = origin
    for (text, confidence, alternatives), width in zip(text_chars, widths, strict=True):
        right = left + width * unit
        placed.append(
            OcrChar(
                text,
                left * to_points + dx,
                right * to_points + dx,
                y0 * to_points + dy,
                y1 * to_points + dy,
                confidence,
                alternatives,
                line,
                rereads,
            )
        )
        left = right
    return placed
