"""Kopf handlers: watch FraudPipelines and their children, and queue reconciles.

Run: `kopf run -m fraud_operator.handlers --all-namespaces` (or `--namespace X`), with
`--liveness=http://0.0.0.0:8081/healthz` for the health probe. Only event handlers are used:
Kopf adds no finalizer and writes nothing to the objects it watches.
"""

from __future__ import annotations

import logging

import kopf

from fraud_operator import builders
from fraud_operator.controller import Controller, Settings
from fraud_operator.schema import GROUP, PLURAL, VERSION

CHILD_EVENT_DELAY = 0.5  # coalesces the bursts of events a change of many children causes
_controller: Controller | None = None


@kopf.on.startup()
def start(settings: kopf.OperatorSettings, **_) -> None:
    global _controller
    settings.peering.standalone = True
    # The watched resources and namespaces are fixed at start: no need to list CRDs and
    # namespaces cluster-wide, which a namespaced install has no right to.
    settings.scanning.disabled = True
    settings.posting.enabled = False
    settings.watching.server_timeout = 300
    _controller = Controller(Settings.from_environment())
    _controller.start()


@kopf.on.cleanup()
def stop(**_) -> None:
    if _controller is not None:
        _controller.stop()


@kopf.on.probe(id="workers")
def workers_alive(**_) -> bool:
    if _controller is None or not _controller.alive():
        raise kopf.PermanentError("reconcile workers are not running")
    return True


@kopf.on.event(GROUP, VERSION, PLURAL)
async def pipeline_event(type: str, body: kopf.Body, **_) -> None:
    key = (body.metadata.namespace, body.metadata.name)
    if type == "DELETED":
        _controller.reconciler.forget_object(body["kind"], *key)
        _controller.forget(key)
    elif not _is_echo(body):
        _controller.seen(key, body.metadata.uid)


def _is_echo(body: kopf.Body) -> bool:
    """Whether the event only reports our own last write of this object."""
    meta = body.metadata
    return _controller.reconciler.is_own_write(
        body["kind"], meta.namespace, meta.name, body["metadata"]["resourceVersion"]
    )


async def _child_event(type: str, body: kopf.Body, **_) -> None:
    pipeline = body.metadata.labels.get(builders.PIPELINE_LABEL)
    if type == "DELETED":
        _controller.reconciler.forget_object(
            body["kind"], body.metadata.namespace, body.metadata.name
        )
    elif _is_echo(body):
        return
    if pipeline:
        _controller.child_changed((body.metadata.namespace, pipeline), CHILD_EVENT_DELAY)


for _kind in builders.CHILD_KINDS:
    _group, _, _version = _kind.api_version.rpartition("/")
    kopf.on.event(
        _group or "",
        _version,
        _kind.plural,
        labels={"app.kubernetes.io/managed-by": builders.MANAGER},
        id=f"child-{_kind.plural}",
    )(_child_event)

logging.getLogger("kubernetes").setLevel(logging.WARNING)
logging.getLogger("kopf.objects").setLevel(logging.WARNING)  # one line per event otherwise
