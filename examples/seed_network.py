from DIRAC.Core.Utilities.Network import getIPsForHostName

for domain in ["", "fake-domain.invalid"]:
    ret = getIPsForHostName(domain)
    if not ret["OK"]:
        raise RuntimeError(f"Failed to find IPs for {domain}.org with error: {ret['Message']}")
    ips = ret["Value"]
    print(f"{domain} is running at {ips}")
