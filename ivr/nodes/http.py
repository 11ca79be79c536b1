"""The http node: ask a tenant's CRM about the caller, map the JSON answer into variables."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from ivr.errors import FlowIssue
from ivr.http_fetch import HttpFetchError, host_allowed, map_response
from ivr.nodes.base import Node, TenantFacts
from ivr.schema import HttpNode

if TYPE_CHECKING:
    from ivr.runtime import FlowRun

PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def fill_url(template: str, variables: dict[str, Any]) -> str:
    """Placeholders replaced by URL-encoded values (a regex, never str.format on user text)."""
    return PLACEHOLDER.sub(lambda m: quote(str(variables.get(m.group(1)) or ""), safe=""), template)


class Http(Node[HttpNode]):
    type = "http"

    def __init__(self, spec: HttpNode) -> None:
        super().__init__(spec)
        self.host = urlsplit(PLACEHOLDER.sub("x", spec.url)).hostname or ""

    def references(self) -> dict[str, str | None]:
        return {"next": self.spec.next, "on_error": self.spec.on_error}

    def preconditions(self, facts: TenantFacts) -> list[FlowIssue]:
        if urlsplit(self.spec.url).scheme not in ("http", "https"):
            return [self.issue("url", "only http and https URLs are allowed")]
        if "{" in self.host:
            return [self.issue("url", "the host name cannot come from a variable")]
        if not host_allowed(self.host, facts.http_hosts):
            return [self.issue("url", f"host '{self.host}' is not on the tenant's HTTP allow-list")]
        return []

    async def execute(self, run: FlowRun) -> str | None:
        spec = self.spec
        policy = await run.services.directory.http_policy(run.tenant_id)
        payload = {name: run.variables.get(name) for name in spec.send}
        url = fill_url(spec.url, run.variables)
        try:
            if spec.method == "GET":
                sep = "&" if "?" in url else "?"
                query = "&".join(f"{quote(k)}={quote(str(v if v is not None else ''), safe='')}"
                                 for k, v in payload.items())
                data = await run.services.fetch_json(url + (sep + query if query else ""), timeout=spec.timeout,
                                                     allow_hosts=policy.allow_hosts, allow_private=policy.allow_private)
            else:
                data = await run.services.fetch_json(url, method="POST", json_body=payload, timeout=spec.timeout,
                                                     allow_hosts=policy.allow_hosts, allow_private=policy.allow_private)
        except HttpFetchError as exc:
            run.record("http_error", reason=exc.reason, message=str(exc))
            return spec.on_error if spec.on_error is not None else spec.next
        for name, value in map_response(data, spec.map).items():
            run.set_variable(name, value)
        run.record("http_ok", mapped=sorted(spec.map))
        return spec.next
