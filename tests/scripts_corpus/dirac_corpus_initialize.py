"""DIRAC.initialize's keyword-only signature and what each keyword does."""
import DIRAC
from DIRAC import gLogger

try:
    DIRAC.initialize(False)
except TypeError as exc:
    print("positional refused:", type(exc).__name__)
try:
    DIRAC.initialize(require_auth=False, security_expression="NormalUser")
except TypeError as exc:
    print("TypeError:", exc)
try:
    DIRAC.initialize(require_auth=False, host_credentials=("host.pem", "hostkey.pem"))
except DIRAC.DIRACInitError as exc:
    print("host_credentials:", str(exc).split(":")[0])
DIRAC.initialize(require_auth=False, log_level="VERBOSE",
                 extra_config_files=["/nonexistent/skipped.toml"],
                 extra_config={"Scripts": {"Corpus": {"Answer": 42}}})
print("level:", gLogger.getLevel())
print("answer:", DIRAC.gConfig.getValue("/Scripts/Corpus/Answer", 0))
try:
    DIRAC.initialize(security_expression="JobAdministrator")
except DIRAC.AuthError as exc:
    print("AuthError:", "are invalid for the required expression: JobAdministrator" in str(exc))
DIRAC.initialize()
print("authenticated")
