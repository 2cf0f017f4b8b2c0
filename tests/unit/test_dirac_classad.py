"""DIRAC's ``ClassAd(jdlText)`` and ``ParametricJob`` functions, with DIRAC's return values
(S_OK/S_ERROR), written from what DIRAC's own unit tests expect of them."""

import pytest
from diracmq.broker.derrno import EWMSJDL

from DIRAC.Core.Utilities.ClassAd.ClassAdLight import ClassAd
from DIRAC.WorkloadManagementSystem.Utilities.ParametricJob import (
    generateParametricJobs,
    getParameterVectorLength,
)

HEAD = '[ Executable = "my_executable"; Arguments = "%s"; JobName = "Test_%n"; '
PLAIN = HEAD + "]"
LIST = HEAD + 'Parameters = { "a", "b", "c" } ]'
BUNCH = HEAD + "Parameters = 3; ParameterStart = 5; ]"
PROGRESSION = HEAD + ("Parameters = 3; ParameterStart = 1; ParameterStep = 1; "
                      "ParameterFactor = 2; ]")
MULTI = ('[ Executable = "e"; Arguments = "%(A)s %(B)s"; JobName = "Test_%n"; Parameters = 3; '
         'ParameterStart.A = 1; ParameterStep.A = 1; ParameterFactor.A = 2; '
         'Parameters.B = { "a","b","c" }; ]')
MULTI_BAD = MULTI.replace('"c" }', '"c","d" }')

CASES = [(LIST, ["a", "b", "c"]), (BUNCH, ["5", "5", "5"]),
         (PROGRESSION, ["1", "3", "7"]), (MULTI.replace("%(A)s %(B)s", "%(A)s %(B)s"),
                                          ["1 a", "3 b", "7 c"])]


@pytest.mark.parametrize(("jdl", "arguments"), [*CASES, (PLAIN, [])])
def test_vector_length(jdl, arguments):
    result = getParameterVectorLength(ClassAd(jdl))
    assert result == {"OK": True, "Value": len(arguments) or None}


def test_inconsistent_vectors_are_an_s_error():
    result = getParameterVectorLength(ClassAd(MULTI_BAD))
    assert result["OK"] is False and result["Errno"] == EWMSJDL
    assert "Different length of parameter vectors" in result["Message"]
    generated = generateParametricJobs(ClassAd(MULTI_BAD))
    assert generated["OK"] is False and generated["Errno"] == EWMSJDL


@pytest.mark.parametrize(("jdl", "arguments"), CASES)
def test_generate_gives_one_jdl_text_per_job(jdl, arguments):
    result = generateParametricJobs(ClassAd(jdl))
    assert result["OK"], result
    assert len(result["Value"]) == len(arguments)
    for number, text in enumerate(result["Value"]):
        job = ClassAd(text)
        assert job.isOK()
        assert job.getAttributeString("JobName") == f"Test_{number}"
        assert job.getAttributeString("Arguments") == arguments[number]
        assert job.getAttributeInt("ParameterNumber") == number
        assert not job.lookupAttribute("Parameters")


def test_not_parametric_is_its_own_jdl():
    ad = ClassAd(PLAIN)
    assert generateParametricJobs(ad) == {"OK": True, "Value": [ad.asJDL()]}


def test_classad_methods():
    ad = ClassAd('[ Executable = "x"; CPUTime = 3600; InputData = {"/a", "/b"}; '
                 'Sub = [ Key = "v"; N = 2 ]; Flag = true; Requirements = other.Site == "S"; ]')
    assert ad.isOK()
    assert ad.getAttributes() == ["Executable", "CPUTime", "InputData", "Sub", "Flag",
                                  "Requirements"]
    assert ad.getAttributeString("Executable") == "x"
    assert ad.get_expression("Executable") == '"x"'
    assert ad.getAttributeInt("CPUTime") == 3600 and ad.getAttributeFloat("CPUTime") == 3600.0
    assert ad.getAttributeInt("Executable") is None
    assert ad.isAttributeList("InputData") and not ad.isAttributeList("Executable")
    assert ad.getListFromExpression("InputData") == ["/a", "/b"]
    assert ad.getDictionaryFromSubJDL("Sub") == {"Key": "v", "N": "2"}
    assert ad.getAttributeBool("Flag") and not ad.getAttributeBool("Missing")
    assert ad.get_expression("Requirements") == 'other.Site == "S"'
    ad.insertAttributeString("Owner", "alice")
    ad.insertAttributeInt("Priority", 3)
    ad.insertAttributeVectorString("Tags", ["a", "b"])
    ad.set_expression("MaxCPU", "7")
    assert ad.getAttributeInt("MaxCPU") == 7
    assert ad.deleteAttribute("Flag") and not ad.deleteAttribute("Flag")
    again = ClassAd(ad.asJDL())
    assert again.isOK() and again == ad


@pytest.mark.parametrize("text", ["", "   ", 'Executable = "x";', "[ Executable = ]", "[]"])
def test_bad_or_empty_text_is_not_ok(text):
    ad = ClassAd(text)
    assert not ad.isOK()
    assert ad.getAttributes() == []
