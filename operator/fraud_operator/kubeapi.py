"""A thin JSON client over the kubernetes ApiClient: plain dicts in and out, every write counted."""

from __future__ import annotations

import json

from kubernetes import client, config

from fraud_operator.builders import MANAGER
from fraud_operator.metrics import API_WRITES


class KubeError(Exception):
    """A request the API server refused; `status` is the HTTP status, `message` its message."""

    def __init__(self, status: int, message: str, reason: str = "") -> None:
        super().__init__(f"{status} {reason}: {message}".strip())
        self.status = status
        self.message = message
        self.reason = reason


def load_api_client(workers: int) -> client.ApiClient:
    """The in-cluster configuration, else the kubeconfig (KUBECONFIG or ~/.kube/config)."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = workers + 2
    return client.ApiClient(configuration)


class KubeApi:
    """GET, server-side apply, merge-patch of status, DELETE and Event creation."""

    def __init__(self, api_client: client.ApiClient, field_manager: str = MANAGER) -> None:
        self.api_client = api_client
        self.field_manager = field_manager

    def _request(
        self, method: str, path: str, body=None, content_type: str = "", query=None
    ) -> dict:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        _, url, headers, payload, _ = self.api_client.param_serialize(
            method,
            path,
            query_params=list((query or {}).items()),
            header_params=headers,
            # the client serialises JSON bodies itself and sends other content types as given
            body=json.dumps(body) if "yaml" in content_type else body,
            auth_settings=["BearerToken"],
        )
        response = self.api_client.call_api(method, url, header_params=headers, body=payload)
        data = response.read()
        if response.status >= 400:
            # A Status object, or plain text ("404 page not found") for an API not served at all.
            try:
                status = json.loads(data)
            except ValueError:
                status = None
            if not isinstance(status, dict):
                status = {"message": data[:300].decode(errors="replace").strip()}
            raise KubeError(response.status, status.get("message", ""), status.get("reason", ""))
        return json.loads(data) if data else {}

    def get(self, path: str) -> dict | None:
        """The object at `path`, or None when it does not exist."""
        try:
            return self._request("GET", path)
        except KubeError as error:
            if error.status == 404:
                return None
            raise

    def _write(self, verb: str, kind: str, method: str, path: str, body, content_type, query=None):
        """A write; counted in fraudpipeline_operator_api_writes_total once the server took it."""
        result = self._request(method, path, body, content_type, query)
        API_WRITES.labels(verb, kind).inc()
        return result

    def apply(self, path: str, manifest: dict) -> dict:
        """Server-side apply `manifest` with our field manager, taking fields over from others."""
        return self._write(
            "apply",
            manifest["kind"],
            "PATCH",
            path,
            manifest,
            "application/apply-patch+yaml",
            {"fieldManager": self.field_manager, "force": "true"},
        )

    def delete(self, path: str, kind: str) -> None:
        try:
            self._write("delete", kind, "DELETE", path, {"propagationPolicy": "Background"}, "")
        except KubeError as error:
            if error.status != 404:
                raise

    def patch_status(self, path: str, status: dict, kind: str) -> dict:
        return self._write(
            "status",
            kind,
            "PATCH",
            f"{path}/status",
            {"status": status},
            "application/merge-patch+json",
        )

    def create(self, path: str, body: dict) -> dict:
        return self._write("create", body["kind"], "POST", path, body, "application/json")
