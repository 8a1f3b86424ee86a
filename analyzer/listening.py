"""A mitmdump script that says where the proxy listens, once it does: `chatcap capture` loads it
beside the addon and waits for the file it writes (`--set chatcap_listening=PATH`).

The file is JSON: `{"servers": [{"mode", "type", "target", "addresses"}], "unknown_options": [...]}`,
one server per `--mode`, each with the addresses it bound (port 0 resolved to the one it got);
`unknown_options` are `--set` keys no addon declared (mitmproxy keeps them without a word).
Written once mitmproxy's `running` hook fires, after every server is up and its CA exists.
"""

from __future__ import annotations

import json
import os
from typing import Any

from mitmproxy import ctx


class Listening:
    def load(self, loader: Any) -> None:
        loader.add_option("chatcap_listening", str, "", "File to write the servers' listen addresses to, as JSON.")

    def running(self) -> None:
        path = ctx.options.chatcap_listening
        if not path:
            return
        servers = [
            {
                "mode": server.mode.full_spec,
                "type": server.mode.type_name,
                "target": server.mode.data,
                "addresses": [list(address[:2]) for address in server.listen_addrs],
            }
            for server in ctx.master.addons.get("proxyserver").servers
        ]
        report = {"servers": servers, "unknown_options": sorted(ctx.options.deferred)}
        partial = f"{path}.partial"
        with open(partial, "w", encoding="utf-8") as handle:
            json.dump(report, handle)
        os.replace(partial, path)  # whole or absent: the reader never sees half a file


addons = [Listening()]
