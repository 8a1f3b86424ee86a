"""The chatcap addon for `mitmdump -s addons/chatcap.py` in a checkout.

The addon itself ships in the package, as analyzer/addon.py (`chatcap addon-path` prints where
an installed copy is); this file only loads it, by path, so it works in any mitmproxy, whether
or not that Python can import chatcap.
"""

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).resolve().parent.parent / "analyzer" / "addon.py"
_spec = importlib.util.spec_from_file_location("chatcap_addon", _PATH)
if _spec is None or _spec.loader is None:
    raise ImportError(f"chatcap: cannot load {_PATH}")
_addon = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _addon
_spec.loader.exec_module(_addon)

addons = _addon.addons
