"""A parametric job description expanded with DIRAC's ClassAd and ParametricJob."""
from DIRAC.Core.Utilities.ClassAd.ClassAdLight import ClassAd
from DIRAC.WorkloadManagementSystem.Utilities.ParametricJob import (
    generateParametricJobs,
    getParameterVectorLength,
)

jdl = """[
    Executable = "analyse.sh";
    Arguments = "--run %(Run)s --file %s";
    JobName = "analysis_%n";
    Parameters = { "a.root", "b.root", "c.root" };
    Parameters.Run = { 10, 11, 12 };
]"""
ad = ClassAd(jdl)
print(ad.isOK(), getParameterVectorLength(ad)["Value"])
for text in generateParametricJobs(ad)["Value"]:
    job = ClassAd(text)
    print(job.getAttributeString("JobName"), job.getAttributeString("Arguments"))
bad = ClassAd(jdl.replace("12 }", "12, 13 }"))
print(getParameterVectorLength(bad)["OK"], generateParametricJobs(bad)["Errno"])
