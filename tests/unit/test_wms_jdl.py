"""The JDL parser, parametric expansion, job description checks and job ID parsing."""

import pytest

from DIRAC.WorkloadManagementSystem.Utilities.JDL import (
    ClassAd,
    Expression,
    JDLError,
    parseJDL,
    parseValue,
)
from DIRAC.WorkloadManagementSystem.Utilities.JobDescription import (
    jobAttributesFromClassAd,
    prepareJobs,
)
from DIRAC.WorkloadManagementSystem.Utilities.JobIDs import parseJobIDs
from DIRAC.WorkloadManagementSystem.Utilities.ParametricJob import (
    expandParametricJobs,
    generateParametricJobs,
    getParameterVectorLength,
)

SAMPLE = """
[
    Executable = "my.sh";            // the job
    Arguments = "a b";
    JobName = "n";
    JobGroup = "g1";
    Site = "LCG.CERN.ch";
    Priority = 1;
    CPUTime = 3600.5;
    InputSandbox = {"a", "b"};
    OutputSandbox = {"std.out", "std.err",};
    # a comment
    Requirements = other.Site == "X" && (other.CPU > 2);
    /* a block
       comment */
    Tags = [ GPU = true; Count = -2 ];
    Escaped = "say \\"hi\\"\\n";
]
"""


# ---------------------------------------------------------------------- parser
def test_parse_a_full_jdl():
    ad = parseJDL(SAMPLE)
    assert ad["Executable"] == "my.sh"
    assert ad["Arguments"] == "a b"
    assert ad["Priority"] == 1 and ad["CPUTime"] == 3600.5
    assert ad["InputSandbox"] == ["a", "b"]
    assert ad["OutputSandbox"] == ["std.out", "std.err"]
    assert ad["Requirements"] == Expression('other.Site == "X" && (other.CPU > 2)')
    assert ad["Tags"] == ClassAd({"GPU": True, "Count": -2})
    assert ad["Escaped"] == 'say "hi"\n'
    assert list(ad)[:3] == ["Executable", "Arguments", "JobName"]


def test_names_are_case_insensitive_and_keep_their_spelling():
    ad = parseJDL('[ JobName = "x"; ]')
    assert ad["jobname"] == ad["JOBNAME"] == "x"
    assert "jobName" in ad and list(ad) == ["JobName"]


def test_outer_brackets_and_last_semicolon_are_optional():
    assert parseJDL('Executable = "x"; A = 1') == parseJDL('[ Executable = "x"; A = 1; ]')


def test_round_trip_through_asJDL():
    ad = parseJDL(SAMPLE)
    assert parseJDL(ad.asJDL()) == ad
    assert parseJDL(ad.asJDL(indent=None)) == ad


def test_bare_words_are_kept_as_expressions():
    ad = parseJDL("[ JobGroup = prod1; Site = LCG.CERN.ch; X = 3600s ]")
    assert ad["JobGroup"] == Expression("prod1")
    assert ad["Site"] == Expression("LCG.CERN.ch")
    assert ad["X"] == Expression("3600s")


def test_values():
    assert parseValue("true") is True and parseValue("FALSE") is False
    assert parseValue("-3") == -3 and parseValue("1e3") == 1000.0 and parseValue(".5") == 0.5
    assert parseValue('{1, "a", {2}}') == [1, "a", [2]]
    assert parseValue("{}") == []
    assert parseValue('"a" + "b"') == Expression('"a" + "b"')


@pytest.mark.parametrize(("jdl", "reason"), [
    ("", "empty JDL"),
    ("   // only a comment\n", "empty JDL"),
    ("[ A = 1 B = 2 ]", "is a ';' missing before the next attribute?"),
    ('[ A = "x ]', "unterminated string"),
    ("[ A = 1; ", "missing closing ']'"),
    ('[ Executable = "x"', "missing closing ']'"),
    ("[ A = ; ]", "missing value for 'A'"),
    ("[ A ]", "expected '=' after attribute name 'A'"),
    ("[ A = 1; a = 2 ]", "attribute 'a' is defined twice"),
    ("[ 1 = 2 ]", "expected an attribute name"),
    ("[ A = 1 ] trailing", "after the closing ']'"),
    ("[ A = {1, 2 ]", "expected ',' or '}' in the list of 'A'"),
    ("[ A = {1, 2", "unterminated list"),
    ("[ A = (1 ]", "expected ')' before ']'"),
    ("[ A = 1 ) ]", "expected ';' after the value of 'A'"),
    ("[ A = 1; /* open", "unterminated /* comment"),
    ("[ A = \"\x00\" ]", "NUL"),
], ids=lambda v: v if len(v) < 30 else None)
def test_malformed_jdl_is_refused_with_a_clear_reason(jdl, reason):
    with pytest.raises(JDLError) as info:
        parseJDL(jdl)
    assert reason in str(info.value)


def test_errors_carry_line_and_column():
    with pytest.raises(JDLError, match=r"line 3, column 7"):
        parseJDL('[\n  Executable = "x";\n  A = ;\n]')


def test_size_and_depth_limits():
    with pytest.raises(JDLError, match="larger than"):
        parseJDL('[ A = "' + "x" * (1024 * 1024) + '" ]')
    with pytest.raises(JDLError, match="nesting deeper"):
        parseJDL("[ A = " + "{" * 40 + "}" * 40 + " ]")
    with pytest.raises(JDLError, match="not int"):
        parseJDL(3)  # type: ignore[arg-type]


# ------------------------------------------------------------- job description
def test_attributes_from_a_jdl():
    attrs = jobAttributesFromClassAd(parseJDL(SAMPLE))
    assert attrs == {"JobName": "n", "JobGroup": "g1", "JobType": "User",
                     "Site": "LCG.CERN.ch", "UserPriority": 1}


def test_defaults_and_sites():
    attrs = jobAttributesFromClassAd(parseJDL('[ Executable = "x" ]'))
    assert attrs == {"JobName": "Unknown", "JobGroup": "00000000", "JobType": "User",
                     "Site": "ANY", "UserPriority": 0}
    site = lambda s: jobAttributesFromClassAd(parseJDL(f'[Executable="x"; Site={s}]'))["Site"]  # noqa: E731
    assert site('{"A", "B"}') == "Multiple"
    assert site('{"A", "A"}') == "A"
    assert site('{"ANY"}') == "ANY"
    assert site('"any"') == "ANY"
    assert site("{}") == "ANY"


@pytest.mark.parametrize(("jdl", "reason"), [
    ('[ JobName = "x" ]', "missing mandatory attribute Executable"),
    ('[ Executable = "" ]', "Executable must be a non-empty string"),
    ('[ Executable = {"a"} ]', "Executable must be a non-empty string"),
    ('[ Executable = "x"; JobName = {"a"} ]', "JobName must be a string, not a list"),
    ('[ Executable = "x"; Priority = "high" ]', "Priority must be an integer"),
    ('[ Executable = "x"; Priority = 11 ]', "between 0 and 10"),
    ('[ Executable = "x"; CPUTime = "long" ]', "CPUTime must be a non-negative number"),
    ('[ Executable = "x"; InputSandbox = {1} ]', "InputSandbox must be a file name"),
    ('[ Executable = "x"; JobName = "' + "n" * 300 + '" ]', "longer than 255"),
    ('[ Executable = "x"; Site = {1} ]', "Site must be a site name"),
])
def test_invalid_job_descriptions(jdl, reason):
    with pytest.raises(JDLError, match=reason):
        prepareJobs(jdl)


def test_identity_attributes_of_the_jdl_are_dropped():
    (job,) = prepareJobs('[ Executable = "x"; Owner = "root"; OwnerGroup = "admins"; '
                         'JobID = 1; Status = "Done" ]')
    for name in ("Owner", "OwnerGroup", "JobID", "Status"):
        assert name not in job.classAd
    assert "Owner" not in job.attributes


# ------------------------------------------------------------------ parametric
def test_non_parametric_is_one_job():
    ad = parseJDL('[ Executable = "x" ]')
    assert getParameterVectorLength(ad) == {"OK": True, "Value": None}
    assert expandParametricJobs(ad) == [ad]
    assert generateParametricJobs(ad) == {"OK": True, "Value": [ad.asJDL()]}


def test_parameter_list():
    jobs = prepareJobs('[ Executable = "x"; JobName = "job_%s_%n"; Arguments = "--in %s"; '
                       'Parameters = {"a", "b", "c"}; InputData = {"/d/%s"} ]')
    assert [j.attributes["JobName"] for j in jobs] == ["job_a_0", "job_b_1", "job_c_2"]
    assert [j.classAd["Arguments"] for j in jobs] == ["--in a", "--in b", "--in c"]
    assert jobs[1].classAd["InputData"] == ["/d/b"]
    assert jobs[2].classAd["ParameterNumber"] == 2
    assert jobs[2].classAd["Parameter"] == "c"
    assert "Parameters" not in jobs[0].classAd


def test_parameter_count_with_start_step_factor():
    ad = parseJDL('[ Executable = "x"; Parameters = 4; ParameterStart = 1; ParameterStep = 2; '
                  'ParameterFactor = 3; JobName = "j%s"; CPUTime = %s ]')
    jobs = expandParametricJobs(ad)
    # value[i] = value[i-1] * factor + step
    assert [j["JobName"] for j in jobs] == ["j1", "j5", "j17", "j53"]
    assert [j["CPUTime"] for j in jobs] == [1, 5, 17, 53]  # an expression became a number


def test_parameter_count_alone_gives_dirac_s_default_sequence():
    # DIRAC: start 1, step 0, factor 1 -> %s is 1 in every job; %n numbers them
    jobs = prepareJobs('[ Executable = "x"; Parameters = 12; JobName = "j%s-%n" ]')
    assert len(jobs) == 12
    assert jobs[0].attributes["JobName"] == "j1-00"
    assert jobs[11].attributes["JobName"] == "j1-11"


def test_named_sequences():
    jobs = prepareJobs('[ Executable = "x"; Parameters = 2; Parameters.X = {"a", "b"}; '
                       'ParameterStart.Y = 10; ParameterStep.Y = 5; '
                       'Arguments = "%(X)s %(Y)s" ]')
    assert [j.classAd["Arguments"] for j in jobs] == ["a 10", "b 15"]
    assert jobs[1].classAd["Parameter.X"] == "b" and jobs[1].classAd["Parameter.Y"] == 15


@pytest.mark.parametrize(("jdl", "reason"), [
    ('[ Executable = "x"; Parameters = 0 ]', "Illegal number of job parameters"),
    ('[ Executable = "x"; Parameters = "many" ]', "Parameters must be a number of jobs"),
    ('[ Executable = "x"; Parameters = {} ]', "Illegal number of job parameters"),
    ('[ Executable = "x"; Parameters = 3; Parameters.X = {"a"} ]', "Different length"),
    ('[ Executable = "x"; Parameters = 2; Parameters.X = "a" ]', "or a list of values"),
    ('[ Executable = "x"; Parameters = 2; ParameterStep = "a" ]', "must be a number"),
    ('[ Executable = "x"; Parameters = 2; Arguments = "%(Z)s" ]', "no parameter sequence Z"),
    ('[ Executable = "x"; Parameters = 21 ]', "exceeds the limit of 20"),
    ('[ Executable = "%s"; Parameters = {"a", ""} ]', "parametric job 1: Executable"),
])
def test_invalid_parametric_jobs(jdl, reason):
    with pytest.raises(JDLError, match=reason):
        prepareJobs(jdl, maxParametricJobs=20)


def test_job_id_placeholder_is_left_alone():
    (job, _) = prepareJobs('[ Executable = "x"; StdOutput = "out_%j"; Parameters = 2 ]')
    assert job.classAd["StdOutput"] == "out_%j"


# --------------------------------------------------------------------- job IDs
@pytest.mark.parametrize(("value", "valid", "invalid"), [
    (5, [5], []),
    ("5", [5], []),
    (" 7 ", [7], []),
    ([1, "2", 2, 1], [1, 2], []),
    ((3, 4), [3, 4], []),
    ("1, 2 3", [1, 2, 3], []),
    ([1, "x", None, -1, 0, True, 2.5], [1], ["x", None, -1, 0, True, 2.5]),
    ("abc", [], ["abc"]),
    ([], [], []),
    ("١٢", [], ["١٢"]),  # Arabic-Indic digits are not job IDs
])
def test_parse_job_ids(value, valid, invalid):
    assert parseJobIDs(value) == (valid, invalid)
