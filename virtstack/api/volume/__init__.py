"""The Block Storage API v3 application: version documents, routes,
microversions, and the project id in URLs."""

from __future__ import annotations

import re

import webob
import webob.dec

from virtstack import exception
from virtstack.api import app, wsgi
from virtstack.api.volume import actions, attachments, resources, snapshots, volumes
from virtstack.volume import api as volume_api

MIN_VERSION = "3.0"
#: The newest microversion whose behaviour virtstack implements for the
#: resources it has: 3.27 attachments, 3.42 extend in-use volumes, 3.44
#: attachment complete, 3.45 with_count, 3.48/3.61/3.63-3.65 view fields,
#: 3.54 attach mode, 3.62 default type, 3.66 snapshots of in-use volumes
#: without force, 3.67 URLs without the project id. Resources virtstack does
#: not have (backups, groups, messages, transfers, manage) answer 404.
MAX_VERSION = "3.67"
UPDATED = "2021-11-02T00:00:00Z"

MICROVERSIONS = wsgi.Microversions("volume", MIN_VERSION, MAX_VERSION)
#: Project-less URLs are this microversion's.
PROJECT_OPTIONAL = "3.67"


def _version_doc(base_url: str) -> dict:
    return {"id": "v3.0", "status": "CURRENT", "version": MAX_VERSION,
            "min_version": MIN_VERSION, "updated": UPDATED,
            "links": [{"rel": "describedby", "type": "text/html",
                       "href": "https://docs.openstack.org/"},
                      {"rel": "self", "href": f"{base_url}/v3/"}],
            "media-types": [{"base": "application/json",
                             "type": "application/vnd.openstack.volume+json;version=3"}]}


_COLLECTIONS = {"volumes", "snapshots", "attachments", "types", "limits", "os-quota-sets",
                "os-availability-zone", "os-services", "extensions"}
_PROJECT_IN_URL = re.compile(r"^/v3/([^/]+)(/([^/]+).*)?$")


class VolumeApp(app.APIApp):
    """Version discovery, authentication, then the v3 router."""

    public_paths = ("", "/", "/v3", "/v3/")

    def __init__(self, api: volume_api.VolumeAPI | None = None):
        self.api = api or volume_api.VolumeAPI()
        self.router = self._build_router()
        self.authed = self.wrap_auth(self._dispatch)

    def _build_router(self) -> wsgi.Router:
        r = wsgi.Router(MICROVERSIONS)
        v = volumes.VolumesController(self.api)
        r.add("/v3/volumes", "GET", v.index)
        r.add("/v3/volumes/detail", "GET", v.detail)
        r.add("/v3/volumes/summary", "GET", v.summary)
        r.add("/v3/volumes", "POST", v.create, 202)
        r.add("/v3/volumes/{volume_id}", "GET", v.show)
        r.add("/v3/volumes/{volume_id}", "PUT", v.update)
        r.add("/v3/volumes/{volume_id}", "DELETE", v.delete, 202)
        r.add("/v3/volumes/{volume_id}/metadata", "GET", v.metadata_index)
        r.add("/v3/volumes/{volume_id}/metadata", "POST", v.metadata_create)
        r.add("/v3/volumes/{volume_id}/metadata", "PUT", v.metadata_replace)
        r.add("/v3/volumes/{volume_id}/metadata/{key}", "GET", v.metadata_show)
        r.add("/v3/volumes/{volume_id}/metadata/{key}", "PUT", v.metadata_update)
        r.add("/v3/volumes/{volume_id}/metadata/{key}", "DELETE", v.metadata_delete, 200)
        r.add("/v3/volumes/{volume_id}/action", "POST",
              actions.VolumeActionsController(self.api).action, 202)
        s = snapshots.SnapshotsController(self.api)
        r.add("/v3/snapshots", "GET", s.index)
        r.add("/v3/snapshots/detail", "GET", s.detail)
        r.add("/v3/snapshots", "POST", s.create, 202)
        r.add("/v3/snapshots/{snapshot_id}", "GET", s.show)
        r.add("/v3/snapshots/{snapshot_id}", "PUT", s.update)
        r.add("/v3/snapshots/{snapshot_id}", "DELETE", s.delete, 202)
        r.add("/v3/snapshots/{snapshot_id}/action", "POST", s.action, 202)
        a = attachments.AttachmentsController(self.api)
        r.add("/v3/attachments", "GET", a.index)
        r.add("/v3/attachments/detail", "GET", a.detail)
        r.add("/v3/attachments", "POST", a.create)
        r.add("/v3/attachments/{attachment_id}", "GET", a.show)
        r.add("/v3/attachments/{attachment_id}", "PUT", a.update)
        r.add("/v3/attachments/{attachment_id}", "DELETE", a.delete)
        r.add("/v3/attachments/{attachment_id}/action", "POST", a.action, 204)
        t = resources.TypesController()
        r.add("/v3/types", "GET", t.index)
        r.add("/v3/types/default", "GET", t.default)
        r.add("/v3/types/{type_id}", "GET", t.show)
        r.add("/v3/limits", "GET", resources.LimitsController().index)
        q = resources.QuotaSetsController()
        r.add("/v3/os-quota-sets/{target_project}", "GET", q.show)
        r.add("/v3/os-quota-sets/{target_project}", "PUT", q.update)
        r.add("/v3/os-quota-sets/{target_project}/defaults", "GET", q.defaults)
        r.add("/v3/os-availability-zone", "GET", resources.AvailabilityZonesController().index)
        r.add("/v3/os-services", "GET", resources.ServicesController().index)
        return r

    def version_response(self, base_url: str, root: bool) -> webob.Response:
        # Cinder lists its versions at "/" with 300 Multiple Choices.
        return app.json_response({"versions": [_version_doc(base_url)]},
                                 status=300 if root else 200)

    @webob.dec.wsgify
    def _dispatch(self, req: webob.Request):
        # /v3/{project_id}/volumes is the Block Storage API's URL; from 3.67
        # /v3/volumes means the caller's project too. A project id that is
        # not the caller's is "Malformed request url" (400), as Cinder says.
        m = _PROJECT_IN_URL.match(req.path_info)
        if m and m.group(1) not in _COLLECTIONS and m.group(3) in _COLLECTIONS:
            ctxt = req.environ["virtstack.context"]
            if m.group(1) != ctxt.project_id:
                return wsgi.error_response(
                    400, f"Malformed request url: the URL's project_id '{m.group(1)}' is not "
                         f"the token's project_id '{ctxt.project_id}'")
            req.path_info = "/v3" + (m.group(2) or "")
        elif m and m.group(1) in _COLLECTIONS and not self._project_optional(req):
            return wsgi.error_response(
                404, f"The resource could not be found: {req.path} (URLs without the project "
                     f"id need microversion {PROJECT_OPTIONAL} or later)")
        return self.router

    @staticmethod
    def _project_optional(req: webob.Request) -> bool:
        try:
            return MICROVERSIONS.negotiate(req).matches(PROJECT_OPTIONAL)
        except exception.VirtstackException:
            return True  # the router answers the bad version header itself
