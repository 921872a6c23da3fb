"""The YCSB property-file parser: Java syntax, unknown keys kept, overrides, errors that name the line."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from workloads.properties import SCHEMA, core_settings, parse_properties
from workloads.stream import YCSB_DIR

YCSB_STYLE = """\
# Copyright (c) 2010 Yahoo! Inc. All rights reserved.
#
#   Licensed under the Apache License ...

! Java properties also take '!' comments
recordcount=1000
operationcount = 1000
workload=site.ycsb.workloads.CoreWorkload

readallfields=true
fieldlength: 100
requestdistribution    zipfian
readproportion=0.5
updateproportion=0.5d
table=user\\ttable
long.value = first \\
             second
measurementtype=hdrhistogram
"""


def test_ycsb_file_with_comments_and_unknown_keys_parses(tmp_path):
    path = tmp_path / "myworkload"
    path.write_text(YCSB_STYLE)
    props = parse_properties(path)
    assert props["recordcount"] == "1000"
    assert props["operationcount"] == "1000"
    assert props["fieldlength"] == "100"
    assert props["requestdistribution"] == "zipfian"
    assert props["workload"] == "site.ycsb.workloads.CoreWorkload"
    assert props["measurementtype"] == "hdrhistogram"  # unknown to us, kept
    assert props["table"] == "user\ttable"
    assert props["long.value"] == "first second"
    assert parse_properties(YCSB_STYLE) == props  # text works the same as a file
    assert core_settings(props)["updateproportion"] == 0.5


def test_malformed_line_names_file_and_line(tmp_path):
    lines = YCSB_STYLE.splitlines()
    lines.insert(6, "readproportion")  # a key with no value, on line 7
    path = tmp_path / "broken"
    path.write_text("\n".join(lines))
    with pytest.raises(ValueError, match=rf"{path}, line 7: malformed property 'readproportion'"):
        parse_properties(path)


@pytest.mark.parametrize("line, message", [
    ("=0.5", "empty key"),
    ("key=\\u12", "bad escape"),
    ("readproportion=lots", "expected a number"),
    ("readproportion=-0.1", "must be in"),
    ("recordcount=1e6", "expected an integer"),
    ("requestdistribution=gaussian", "expected one of uniform, zipfian"),
    ("zipfianconstant=1.0", r"must be in \(0.0, 1.0\)"),
    ("insertorder=random", "expected one of hashed, ordered"),
])
def test_bad_values_name_the_line(line, message):
    text = "# header\n\nrecordcount=10\n" + line + "\n"
    with pytest.raises(ValueError, match=rf"<text>, line 4: .*{message}"):
        parse_properties(text)


def test_overrides_win_and_are_checked():
    base = "recordcount=10\nreadproportion=1\n"
    props = parse_properties(base, ["recordcount=99", "custom.key = x=y"])
    assert props["recordcount"] == "99" and props["custom.key"] == "x=y"
    assert parse_properties(base, {"readproportion": 0.25})["readproportion"] == "0.25"
    with pytest.raises(ValueError, match="override -p recordcount=ten"):
        parse_properties(base, ["recordcount=ten"])
    with pytest.raises(ValueError, match="expected key=value"):
        parse_properties(base, ["recordcount"])


def test_a_missing_file_is_not_mistaken_for_text(tmp_path):
    with pytest.raises(FileNotFoundError):
        parse_properties(str(tmp_path / "workloadz"))


@pytest.mark.parametrize("letter, shares", [
    ("a", {"readproportion": 0.5, "updateproportion": 0.5}),
    ("b", {"readproportion": 0.95, "updateproportion": 0.05}),
    ("c", {"readproportion": 1.0}),
    ("d", {"readproportion": 0.95, "insertproportion": 0.05}),
    ("e", {"scanproportion": 0.95, "insertproportion": 0.05}),
    ("f", {"readproportion": 0.5, "readmodifywriteproportion": 0.5}),
])
def test_bundled_core_workloads(letter, shares):
    cfg = core_settings(parse_properties(YCSB_DIR / f"workload{letter}"))
    for key in ("readproportion", "updateproportion", "insertproportion", "scanproportion",
                "readmodifywriteproportion"):
        assert cfg[key] == shares.get(key, 0.0), key
    assert cfg["requestdistribution"] == ("latest" if letter == "d" else "zipfian")
    assert (cfg["maxscanlength"], cfg["scanlengthdistribution"]) == ((100, "uniform") if letter == "e" else (1000, "uniform"))
    assert cfg["recordcount"] == 1000 and cfg["operationcount"] == 1000


def test_defaults_are_ycsb_defaults():
    cfg = core_settings({})
    assert cfg["readproportion"] == 0.95 and cfg["updateproportion"] == 0.05
    assert cfg["requestdistribution"] == "uniform" and cfg["insertorder"] == "hashed"
    assert cfg["zipfianconstant"] == 0.99 and cfg["maxscanlength"] == 1000
    assert (cfg["hotspotdatafraction"], cfg["hotspotopnfraction"]) == (0.2, 0.8)
    assert set(cfg) == set(SCHEMA)


_KEY = st.text(st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters="=:\\#!"), min_size=1)
_VALUE = st.text(st.characters(min_codepoint=32, max_codepoint=126, blacklist_characters="\\"))


@given(st.dictionaries(_KEY.filter(lambda k: k not in SCHEMA), _VALUE, max_size=8))
def test_any_simple_key_value_file_round_trips(props):
    text = "".join(f"{k}={v}\n" for k, v in props.items()) + "# end\n"
    assert parse_properties(text) == {k: v.lstrip(" ") for k, v in props.items()}
