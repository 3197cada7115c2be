"""Image API: /v2/images (Glance's rule names). Which images a project
sees (its own, shared, community, public) and may change (its own) is the
image layer's business (``virtstack/image/api.py``); these rules decide
which roles may attempt each operation."""

from __future__ import annotations

from virtstack.policies.base import ADMIN_OR_MEMBER, ADMIN_OR_READER, RULE_ADMIN_API, documented

rules = [
    documented("get_images", ADMIN_OR_READER, "List the images the project can see.",
               [("GET", "/v2/images")]),
    documented("get_image", ADMIN_OR_READER, "Show an image.",
               [("GET", "/v2/images/{image_id}")]),
    documented("add_image", ADMIN_OR_MEMBER, "Create an image.", [("POST", "/v2/images")]),
    documented("modify_image", ADMIN_OR_MEMBER, "Update an image, add or delete its tags.",
               [("PATCH", "/v2/images/{image_id}"),
                ("PUT", "/v2/images/{image_id}/tags/{tag}"),
                ("DELETE", "/v2/images/{image_id}/tags/{tag}")]),
    documented("delete_image", ADMIN_OR_MEMBER, "Delete an image.",
               [("DELETE", "/v2/images/{image_id}")]),
    documented("upload_image", ADMIN_OR_MEMBER, "Upload an image's data.",
               [("PUT", "/v2/images/{image_id}/file")]),
    documented("download_image", ADMIN_OR_READER, "Download an image's data.",
               [("GET", "/v2/images/{image_id}/file")]),
    documented("publicize_image", RULE_ADMIN_API, "Make an image public (visibility).",
               [("POST", "/v2/images"), ("PATCH", "/v2/images/{image_id}")]),
    documented("communitize_image", ADMIN_OR_MEMBER,
               "Make an image a community image (visibility).",
               [("POST", "/v2/images"), ("PATCH", "/v2/images/{image_id}")]),
    # Glance lets a member of the owning project deactivate its own image
    # (Tempest's image tests do it); the image layer refuses others' images.
    documented("deactivate", ADMIN_OR_MEMBER, "Deactivate an image.",
               [("POST", "/v2/images/{image_id}/actions/deactivate")]),
    documented("reactivate", ADMIN_OR_MEMBER, "Reactivate a deactivated image.",
               [("POST", "/v2/images/{image_id}/actions/reactivate")]),
]


def list_rules():
    return rules
