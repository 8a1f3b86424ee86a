"""Prints what a program under `chatcap capture` finds: its proxy and CA variables, and the CA
bundle's mode and size, as one JSON object on stdout.

    python environment.py
"""

import json
import os
import stat

names = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
    "NODE_USE_ENV_PROXY",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "OPENAI_BASE_URL",
]
found = {name: os.environ.get(name) for name in names}
bundle = os.environ.get("SSL_CERT_FILE")
if bundle:
    info = os.stat(bundle)
    found["bundle_mode"] = oct(stat.S_IMODE(info.st_mode))
    found["bundle_dir_mode"] = oct(stat.S_IMODE(os.stat(os.path.dirname(bundle)).st_mode))
    with open(bundle) as handle:
        found["bundle_certificates"] = handle.read().count("-----BEGIN CERTIFICATE-----")
print(json.dumps(found))
