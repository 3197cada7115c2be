"""Projects, users, roles and the virtstack catalog in a running Keystone,
then the credentials files (run by tools/start-keystone.sh, with the
Keystone virtualenv's Python; idempotent).

Input (environment): KEYSTONE_URL (the v3 endpoint), KEYSTONE_DIR (where
the files go), KEYSTONE_ADMIN_PASSWORD, KEYSTONE_SERVICE_PASSWORD,
KEYSTONE_DEMO_PASSWORD, VIRTSTACK_COMPUTE_URL, VIRTSTACK_VOLUME_URL (with
``$(project_id)s``) and VIRTSTACK_IMAGE_URL. Passwords are never printed.
"""

from __future__ import annotations

import os
import sys

import yaml
from keystoneauth1 import exceptions as ks_exceptions
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

DOMAIN = "default"
REGION = "RegionOne"
INTERFACES = ("public", "internal", "admin")
#: (cloud name in clouds.yaml, user, project, role)
ACCOUNTS = (("virtstack-admin", "admin", "admin", "admin"),
            ("virtstack-demo", "demo", "demo", "member"))
SERVICE_USER, SERVICE_PROJECT = "virtstack", "service"


def say(msg: str) -> None:
    print(f"keystone: {msg}", flush=True)


class Keystone:
    """The admin's view of the Identity v3 API (plain REST through keystoneauth1)."""

    def __init__(self, url: str, admin_password: str):
        self.url = url
        self.session = ks_session.Session(auth=v3.Password(
            auth_url=url, username="admin", password=admin_password, project_name="admin",
            user_domain_id=DOMAIN, project_domain_id=DOMAIN))

    def _get(self, path: str, key: str, **query) -> list[dict]:
        return self.session.get(f"{self.url}/{path}", params=query).json()[key]

    def _post(self, path: str, key: str, body: dict) -> dict:
        return self.session.post(f"{self.url}/{path}", json={key: body}).json()[key]

    def ensure(self, path: str, key: str, query: dict, body: dict, what: str) -> dict:
        found = self._get(path, f"{key}s", **query)
        if found:
            return found[0]
        say(f"created {what}")
        return self._post(path, key, body)

    def project(self, name: str) -> dict:
        return self.ensure("projects", "project", {"name": name, "domain_id": DOMAIN},
                           {"name": name, "domain_id": DOMAIN}, f"project '{name}'")

    def role(self, name: str) -> dict:
        return self.ensure("roles", "role", {"name": name}, {"name": name}, f"role '{name}'")

    def user(self, name: str, password: str, project: dict, role: str) -> dict:
        user = self.ensure("users", "user", {"name": name, "domain_id": DOMAIN},
                           {"name": name, "password": password, "domain_id": DOMAIN,
                            "default_project_id": project["id"]}, f"user '{name}'")
        role_id = self.role(role)["id"]
        self.session.put(f"{self.url}/projects/{project['id']}/users/{user['id']}/roles/"
                         f"{role_id}")
        if not self._password_works(name, password, project["name"]):
            # Only when it changed: a new password revokes the user's tokens.
            self.session.patch(f"{self.url}/users/{user['id']}",
                               json={"user": {"password": password}})
            say(f"set the password of user '{name}'")
        return user

    def _password_works(self, name: str, password: str, project: str) -> bool:
        auth = v3.Password(auth_url=self.url, username=name, password=password,
                           project_name=project, user_domain_id=DOMAIN,
                           project_domain_id=DOMAIN)
        try:
            ks_session.Session(auth=auth).get_token()
        except ks_exceptions.Unauthorized:
            return False
        return True

    def endpoints(self, service_type: str, name: str, url: str) -> None:
        service = self.ensure("services", "service", {"type": service_type},
                              {"type": service_type, "name": name, "enabled": True},
                              f"service '{service_type}'")
        for interface in INTERFACES:
            found = self._get("endpoints", "endpoints", service_id=service["id"],
                              interface=interface, region_id=REGION)
            if not found:
                self._post("endpoints", "endpoint", {
                    "service_id": service["id"], "interface": interface,
                    "region_id": REGION, "url": url, "enabled": True})
            elif found[0]["url"] != url:
                self.session.patch(f"{self.url}/endpoints/{found[0]['id']}",
                                   json={"endpoint": {"url": url}})
        say(f"catalog: {service_type} at {url}")


def write_private(path: str, text: str) -> None:
    """Atomically, readable by the owner only."""
    temp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(temp, path)


def clouds_yaml(url: str, passwords: dict[str, str]) -> str:
    clouds = {}
    for cloud, user, project, _ in ACCOUNTS:
        clouds[cloud] = {
            "auth": {"auth_url": url, "username": user, "password": passwords[user],
                     "project_name": project, "user_domain_name": "Default",
                     "project_domain_name": "Default"},
            "region_name": REGION, "identity_api_version": 3, "interface": "public"}
    return yaml.safe_dump({"clouds": clouds}, default_flow_style=False, sort_keys=False)


def virtstack_conf(url: str, service_password: str) -> str:
    # oslo.config expands '$name' in values: a literal '$' is written '$$'.
    password = service_password.replace("$", "$$")
    return (
        "# virtstack against the Keystone of tools/start-keystone.sh:\n"
        "#   virtstack --config-file THIS_FILE up\n"
        "[identity]\n"
        "mode = keystone\n\n"
        "[keystone_authtoken]\n"
        f"www_authenticate_uri = {url}\n"
        f"auth_url = {url}\n"
        "auth_type = password\n"
        f"username = {SERVICE_USER}\n"
        f"password = {password}\n"
        "user_domain_name = Default\n"
        f"project_name = {SERVICE_PROJECT}\n"
        "project_domain_name = Default\n"
        f"region_name = {REGION}\n")


def main() -> None:
    env = os.environ
    url, directory = env["KEYSTONE_URL"], env["KEYSTONE_DIR"]
    passwords = {"admin": env["KEYSTONE_ADMIN_PASSWORD"],
                 "demo": env["KEYSTONE_DEMO_PASSWORD"],
                 SERVICE_USER: env["KEYSTONE_SERVICE_PASSWORD"]}
    ks = Keystone(url, passwords["admin"])
    ks.user(SERVICE_USER, passwords[SERVICE_USER], ks.project(SERVICE_PROJECT), "admin")
    ks.user("demo", passwords["demo"], ks.project("demo"), "member")
    ks.endpoints("compute", "nova", env["VIRTSTACK_COMPUTE_URL"])
    ks.endpoints("volumev3", "cinderv3", env["VIRTSTACK_VOLUME_URL"])
    ks.endpoints("block-storage", "cinder", env["VIRTSTACK_VOLUME_URL"])
    ks.endpoints("image", "glance", env["VIRTSTACK_IMAGE_URL"])
    write_private(os.path.join(directory, "clouds.yaml"), clouds_yaml(url, passwords))
    write_private(os.path.join(directory, "virtstack-keystone.conf"),
                  virtstack_conf(url, passwords[SERVICE_USER]))


if __name__ == "__main__":
    try:
        main()
    except ks_exceptions.ClientException as exc:
        sys.exit(f"keystone: error: {type(exc).__name__}: {exc}")
