"""Partial web excerpts (the first ~2,000 characters of real pages): every section and row that
is present comes out, and rows cut off or with dropped cells are reported, not guessed."""

import pytest

from nianbao.parsers.report import parse_file

from .helpers import REAL

T2021 = ["rules", "normative_documents", "licensing", "penalty", "coercion", "fees"]
T2019 = [
    "rules",
    "normative_documents",
    "licensing",
    "other_services",
    "penalty",
    "coercion",
    "fees",
]
HEAD = ["new_received", "carried_over", "granted", "partially_granted"]
DENIED = [
    "denied.state_secret",
    "denied.prohibited_by_law",
    "denied.security_stability",
    "denied.third_party",
    "denied.internal_affairs",
]

EXPECTED = {
    "11_shenzhen_longgang_qzfbm_2024": (
        "2021",
        ["overview", "active_disclosure", "applications"],
        T2021 + HEAD + DENIED + ["denied.process_information"],
    ),
    "12_yueyang_nanhu_ju_2019": (
        "2019",
        ["overview", "active_disclosure", "applications"],
        T2019 + ["procurement"],
    ),
    "14_xiaogan_szfbgs_2020": (
        "2019",
        ["overview", "active_disclosure"],
        ["rules", "normative_documents", "extra"],
    ),
    "15_wuhan_sthjj_2020": (
        "2019",
        [],
        [
            "rules",
            "normative_documents",
            "extra",
            "licensing",
            "other_services",
            "penalty",
            "coercion",
        ],
    ),
    "16_chibi_pufang_yuanqu_2020": (
        "2019",
        ["overview", "active_disclosure", "applications"],
        T2019 + ["procurement", "new_received", "carried_over"],
    ),
    "17_chongqing_rongchang_hebaozhen_2020": ("2019", ["overview", "active_disclosure"], T2019),
    "18_tianjin_hongqiao_zwfwb_2022": (
        "2021",
        ["overview", "active_disclosure", "applications"],
        T2021 + HEAD[:3],
    ),
    "19_guojia_xinwen_chubanshu_2022": (
        "2021",
        ["overview", "active_disclosure", "applications"],
        T2021,
    ),
    "20_zhanjiang_xuwen_sfj_2023": (
        "2021",
        ["overview", "active_disclosure", "applications"],
        T2021 + HEAD + DENIED,
    ),
    "21_changchun_tyjrswj_2023": (
        "2021",
        ["overview", "active_disclosure", "applications"],
        T2021 + HEAD[:2],
    ),
    "22_unknown_xian_ju_2023_oldtemplate": ("2019", ["overview", "active_disclosure"], T2019[:4]),
    "23_qu_tongjiju_2023": (
        "2021",
        ["overview", "active_disclosure", "applications"],
        T2021 + HEAD[:3],
    ),
    "24_tianjin_beichen_jiarongli_2021": ("2021", ["overview", "active_disclosure"], T2021[:5]),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_partial_excerpt_yields_what_it_holds(name):
    template, sections, rows = EXPECTED[name]
    result = parse_file(str(REAL / f"{name}.partial.txt")).to_json()
    assert result["status"] == "parsed"
    assert result["template"] == template
    assert [s["code"] for s in result["sections"] if s["code"] != "preamble"] == sections
    found = list(
        dict.fromkeys(
            f["row"].split(".")[0] if f["row"].startswith("extra.") else f["row"]
            for f in result["facts"]
        )
    )
    assert found == rows


def test_scattered_cell_lines_with_dropped_blanks_are_sections_only():
    result = parse_file(str(REAL / "13_xiongxian_xiangzhen_2019.partial.txt")).to_json()
    assert [s["code"] for s in result["sections"]] == [
        "overview",
        "active_disclosure",
        "applications",
        "review_litigation",
    ]
    assert result["facts"] == []
