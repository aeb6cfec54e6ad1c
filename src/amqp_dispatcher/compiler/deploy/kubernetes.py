"""kubernetes.yaml: the service's Kubernetes objects, as data that PyYAML writes (source.dump).

Owns what each object says and why: a Deployment (the runtime's environment, the probes
when the config turns the HTTP endpoint on, the grace period of runtime/deadlines.py), a
PodDisruptionBudget, and KEDA's ScaledObject with the TriggerAuthentication it reads the
broker's address from. Credentials are only ever referenced, from the Secret
`<name>-rabbitmq` (keys `url` and `host`, docs/deploying.md). Knows nothing of YAML syntax.
"""

from __future__ import annotations

from typing import Any

from amqp_dispatcher.runtime.deadlines import grace_period
from amqp_dispatcher.runtime.spec import Http, Service

from .. import source
from ..refs import ImportRef
from . import names, text

FILE = "kubernetes.yaml"
KEDA = "keda.sh/v1alpha1"
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_UID = 10001  # the Dockerfile's user

Object = dict[str, Any]


def render(service: Service[ImportRef, ImportRef], *, config_name: str) -> str:
    name = names.deploy_name(service.name)
    parts = [
        (_deployment_note(service, name), deployment(service, name)),
        (_BUDGET_NOTE, disruption_budget(name)),
        (_AUTH_NOTE, trigger_authentication(name)),
        (_SCALING_NOTE, scaled_object(service, name)),
    ]
    lines = [text.header(config_name)]
    for comments, data in parts:
        lines += ["---", *(_comment(line) for line in comments), source.dump(data).rstrip("\n")]
    return "\n".join(lines) + "\n"


def _comment(line: str) -> str:
    return f"# {line}".rstrip() if line.isprintable() else f"# {line!r}"


def deployment(service: Service[ImportRef, ImportRef], name: str) -> Object:
    container: Object = {"name": name, "image": name, "env": _environment(service)}
    if service.http is not None:
        container["ports"] = [{"name": "http", "containerPort": service.http.port, "protocol": "TCP"}]
        container |= _probes()
    container["securityContext"] = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    pod = {
        "metadata": {
            "labels": _labels(name),
            "annotations": {"amqp-dispatcher/config-sha256": service.config_sha256},
        },
        "spec": {
            "terminationGracePeriodSeconds": grace_period(service.shutdown_timeout),
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": _UID,
                "runAsGroup": _UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
        },
    }
    spec = {"selector": {"matchLabels": _selector(name)}, "template": pod}
    return _object("apps/v1", "Deployment", name, spec)


def disruption_budget(name: str) -> Object:
    spec = {"maxUnavailable": 1, "selector": {"matchLabels": _selector(name)}}
    return _object("policy/v1", "PodDisruptionBudget", name, spec)


def trigger_authentication(name: str) -> Object:
    reference = {"parameter": "host", "name": names.secret_name(name), "key": "host"}
    spec = {"secretTargetRef": [reference]}
    return _object(KEDA, "TriggerAuthentication", name, spec, object_name=names.secret_name(name))


def scaled_object(service: Service[ImportRef, ImportRef], name: str) -> Object:
    triggers = [
        {
            "type": "rabbitmq",
            "metadata": {"mode": "QueueLength", "queueName": queue, "value": str(window)},
            "authenticationRef": {"name": names.secret_name(name)},
        }
        for queue, window in queue_windows(service).items()
    ]
    spec = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "minReplicaCount": 1,
        "maxReplicaCount": 100,
        "triggers": triggers,
    }
    return _object(KEDA, "ScaledObject", name, spec)


def queue_windows(service: Service[ImportRef, ImportRef]) -> dict[str, int]:
    """Queue -> the messages one pod takes from it at once: the prefetch window of each entry
    that reads it (an entry without a limit, prefetch 0, counts its consumer_count), in the
    config's order."""
    windows: dict[str, int] = {}
    for entry in service.consumers:
        window = entry.prefetch_count or entry.consumer_count
        windows[entry.queue] = windows.get(entry.queue, 0) + window
    return windows


def _environment(service: Service[ImportRef, ImportRef]) -> list[Object]:
    secret = {"secretKeyRef": {"name": names.secret_name(service.name), "key": "url"}}
    values: dict[str, Object] = {
        "RABBITMQ_URL": {"valueFrom": secret},
        "LOG_FORMAT": {"value": "json"},
        "DISPATCHER_PROCESSES": {"value": "1"},
    }
    if service.http is not None:
        values["DISPATCHER_HTTP_PORT"] = {"value": str(service.http.port)}
        values |= _listen_everywhere(service.http)
    return [{"name": key, **value} for key, value in sorted(values.items())]


def _listen_everywhere(http: Http) -> dict[str, Object]:
    """Probes and scrapers reach the pod's address: a loopback `host` would answer none of them."""
    return {"DISPATCHER_HTTP_HOST": {"value": "0.0.0.0"}} if http.host in _LOOPBACK else {}


def _probes() -> Object:
    def get(path: str) -> Object:
        return {"path": path, "port": "http"}

    return {
        "startupProbe": {
            "httpGet": get("/livez"),
            "periodSeconds": 5,
            "failureThreshold": text.START_PERIOD // 5,
        },
        "livenessProbe": {"httpGet": get("/livez"), "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3},
        "readinessProbe": {"httpGet": get("/readyz"), "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3},
    }


def _object(api_version: str, kind: str, name: str, spec: Object, *, object_name: str | None = None) -> Object:
    metadata = {"name": object_name or name, "labels": _labels(name)}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec}


def _deployment_note(service: Service[ImportRef, ImportRef], name: str) -> list[str]:
    grace = grace_period(service.shutdown_timeout)
    return [
        f"The pods of {name}. image: what the Dockerfile beside this file builds; set its registry and",
        "tag with kustomize's images: (docs/deploying.md). No replicas: the ScaledObject sets them.",
        f"terminationGracePeriodSeconds: {grace}, for shutdown_timeout ({service.shutdown_timeout:g} s), closing the",
        "connections and a margin (runtime/deadlines.py): Kubernetes never kills a drain.",
        "DISPATCHER_PROCESSES: 1, one process per pod: Kubernetes scales by pods, each with its own",
        "probes, resources and grace period, whatever the config's processes: says.",
    ]


_BUDGET_NOTE = [
    "At most one pod evicted at a time (node drains, upgrades). maxUnavailable, not minAvailable:",
    "with a single replica, minAvailable: 1 would block every drain, while one evicted consumer",
    "only leaves its messages queued, unacknowledged ones requeued, until its replacement starts.",
]
_AUTH_NOTE = [
    "Where KEDA reads the queues' depth: key host of the Secret <name>-rabbitmq. KEDA takes one",
    "host, unlike RABBITMQ_URL (key url), which may list several: an http(s) URL of the",
    "management API (http://user:password@host:15672/vhost), which also counts the messages in",
    "flight, or an amqp URL of one node (amqp://user:password@host:5672/vhost), which counts",
    "only the waiting ones.",
]
_SCALING_NOTE = [
    "One trigger per consumed queue. value: the messages one pod takes from the queue at once,",
    "the sum of its entries' prefetch_count (consumer_count for an entry without a limit), so",
    "that KEDA adds a pod for each full window of messages. Never fewer than one pod: a consumer",
    "at zero would only start once messages wait.",
]


def _selector(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name}


def _labels(name: str) -> dict[str, str]:
    return {**_selector(name), "app.kubernetes.io/managed-by": "dispatcher-build"}
