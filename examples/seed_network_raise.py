from DIRAC.Core.Utilities.ReturnValues import returnValueOrRaise
from DIRAC.Core.Utilities.Network import getIPsForHostName

for domain in ["", "fake-domain.invalid"]:
    ips = returnValueOrRaise(getIPsForHostName(domain))
    print(f"{domain} is running at {ips}")
