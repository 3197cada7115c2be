"""The Compute API v2.1 application: version documents, routes, microversions."""

from __future__ import annotations

import re

import webob
import webob.dec

from virtstack.api import app, wsgi
from virtstack.api.compute import resources, servers, volumes
from virtstack.compute import api as compute_api

MIN_VERSION = "2.1"
#: The newest microversion whose behaviour virtstack implements (2.3 extended
#: attributes, 2.9 locked, 2.16 host_status, 2.19 descriptions).
MAX_VERSION = "2.19"
UPDATED = "2013-07-23T11:33:21Z"

MICROVERSIONS = wsgi.Microversions("compute", MIN_VERSION, MAX_VERSION,
                                   legacy_header="X-OpenStack-Nova-API-Version")


def _version_doc(base_url: str) -> dict:
    return {"id": "v2.1", "status": "CURRENT", "version": MAX_VERSION,
            "min_version": MIN_VERSION, "updated": UPDATED,
            "links": [{"rel": "self", "href": f"{base_url}/v2.1/"},
                      {"rel": "describedby", "type": "text/html",
                       "href": "https://docs.openstack.org/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.compute+json;version=2.1"}]}


_PROJECT_IN_URL = re.compile(r"^/v2\.1/([0-9a-zA-Z_-]{1,64})(/([^/]+).*)?$")
_COLLECTIONS = {"servers", "flavors", "os-hypervisors", "limits", "images", "extensions"}


class ComputeApp(app.APIApp):
    """Version discovery, authentication, then the v2.1 router."""

    public_paths = ("", "/", "/v2.1", "/v2.1/")

    def __init__(self, api: compute_api.ComputeAPI | None = None):
        self.api = api or compute_api.ComputeAPI()
        self.router = self._build_router()
        self.authed = self.wrap_auth(self._dispatch)

    def _build_router(self) -> wsgi.Router:
        r = wsgi.Router(MICROVERSIONS)
        s = servers.ServersController(self.api)
        r.add("/v2.1/servers", "GET", s.index)
        r.add("/v2.1/servers/detail", "GET", s.detail)
        r.add("/v2.1/servers", "POST", s.create, 202)
        r.add("/v2.1/servers/{server_id}", "GET", s.show)
        r.add("/v2.1/servers/{server_id}", "PUT", s.update)
        r.add("/v2.1/servers/{server_id}", "DELETE", s.delete, 204)
        r.add("/v2.1/servers/{server_id}/action", "POST", s.action, 202)
        rc = resources.RemoteConsolesController(self.api)
        r.add("/v2.1/servers/{server_id}/remote-consoles", "POST", rc.create)
        va = volumes.VolumeAttachmentsController(self.api)
        r.add("/v2.1/servers/{server_id}/os-volume_attachments", "GET", va.index)
        r.add("/v2.1/servers/{server_id}/os-volume_attachments", "POST", va.create)
        r.add("/v2.1/servers/{server_id}/os-volume_attachments/{volume_id}", "GET", va.show)
        r.add("/v2.1/servers/{server_id}/os-volume_attachments/{volume_id}", "PUT", va.update)
        r.add("/v2.1/servers/{server_id}/os-volume_attachments/{volume_id}", "DELETE",
              va.delete, 202)
        ia = resources.InstanceActionsController(self.api)
        r.add("/v2.1/servers/{server_id}/os-instance-actions", "GET", ia.index)
        r.add("/v2.1/servers/{server_id}/os-instance-actions/{request_id}", "GET", ia.show)
        f = resources.FlavorsController()
        r.add("/v2.1/flavors", "GET", f.index)
        r.add("/v2.1/flavors/detail", "GET", f.detail)
        r.add("/v2.1/flavors", "POST", f.create)
        r.add("/v2.1/flavors/{flavor_id}", "GET", f.show)
        r.add("/v2.1/flavors/{flavor_id}", "DELETE", f.delete, 202)
        h = resources.HypervisorsController(self.api)
        r.add("/v2.1/os-hypervisors", "GET", h.index)
        r.add("/v2.1/os-hypervisors/detail", "GET", h.detail)
        r.add("/v2.1/os-hypervisors/statistics", "GET", h.statistics)
        r.add("/v2.1/os-hypervisors/{hypervisor_id}", "GET", h.show)
        r.add("/v2.1/limits", "GET", resources.LimitsController().index)
        return r

    def version_response(self, base_url: str, root: bool) -> webob.Response:
        if root:
            return app.json_response({"versions": [_version_doc(base_url)]})
        return app.json_response({"version": _version_doc(base_url)})

    @webob.dec.wsgify
    def _dispatch(self, req: webob.Request):
        # /v2.1/{project_id}/servers is the same as /v2.1/servers, but only
        # for the caller's own project.
        # Only a URL whose next segment is a collection names a project:
        # anything else is left to the router (404 for an unknown URL).
        m = _PROJECT_IN_URL.match(req.path_info)
        if m and m.group(1) not in _COLLECTIONS and m.group(3) in _COLLECTIONS:
            ctxt = req.environ["virtstack.context"]
            if m.group(1) != ctxt.project_id:
                return wsgi.error_response(
                    400, f"Malformed request URL: URL's project_id '{m.group(1)}' doesn't "
                         f"match Context's project_id '{ctxt.project_id}'")
            req.path_info = "/v2.1" + (m.group(2) or "")
        return self.router
