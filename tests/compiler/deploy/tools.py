"""The real checkers of the deployment files, as the tests call them.

Each returns what the tool reports (empty: nothing to report), so that a test can show it:
hadolint for the Dockerfile, `systemd-analyze verify` for the unit, kubernetes-validate for the
built-in kinds and KEDA's own CRD schemas (this folder's README says where they come from) for
the ScaledObject and the TriggerAuthentication.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

HERE = Path(__file__).parent
# The Kubernetes release the manifests are checked against: the oldest whose schemas this
# kubernetes-validate bundles that managed clusters still run (startupProbe, policy/v1 PDBs).
KUBERNETES_VERSION = "1.30.0"
CRDS = {
    "ScaledObject": HERE / "keda.sh_scaledobjects.yaml",
    "TriggerAuthentication": HERE / "keda.sh_triggerauthentications.yaml",
}
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def hadolint(text: str) -> str:
    """hadolint's findings, every rule at its default level (run here, where no .hadolint.yaml
    relaxes them); empty when the Dockerfile is clean."""
    binary = Path(sys.executable).with_name("hadolint")
    command = [str(binary if binary.exists() else "hadolint"), "--no-color", "-"]
    result = subprocess.run(command, input=text, capture_output=True, text=True, timeout=60, cwd=HERE)
    return (result.stdout + result.stderr).strip() or ("" if result.returncode == 0 else f"exit {result.returncode}")


def systemd_verify(text: str, unit_name: str, folder: Path) -> str:
    """What `systemd-analyze verify` says of the unit, on a copy whose /opt paths exist in `folder`.

    verify refuses an ExecStart whose binary is missing, so the copy's /opt/... point at a stub
    under `folder`; everything else is verified as written. It exits 0 on unknown keys and bad
    values, which it only prints, so its output is the verdict.
    """
    assert SYSTEMD_ANALYZE is not None
    root = folder / "root"
    for line in text.splitlines():
        if line.startswith(("ExecStart=", "ExecStartPre=")):
            stub = root / line.split("=", 1)[1].split()[0].lstrip("/")
            stub.parent.mkdir(parents=True, exist_ok=True)
            stub.write_text("#!/bin/sh\n")
            stub.chmod(0o755)
    unit = folder / unit_name
    unit.write_text(text.replace("/opt/", f"{root}/opt/"))
    command = [SYSTEMD_ANALYZE, "verify", "--man=no", "--generators=no", str(unit)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    return (result.stdout + result.stderr).strip() or ("" if result.returncode == 0 else f"exit {result.returncode}")


def manifest_problems(document: dict[str, Any]) -> str:
    """Why one manifest would be refused: unknown fields included, as kubectl's strict validation does."""
    if document["kind"] in CRDS:
        errors = _crd_validator(document["kind"], document["apiVersion"]).iter_errors(document)
        return "; ".join(f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)
    try:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{'.'.join(map(str, exc.path))}: {exc.message}"
    return ""


def documents(text: str) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(text) if document is not None]


@functools.cache
def _crd_validator(kind: str, api_version: str) -> jsonschema.Draft7Validator:
    crd = yaml.safe_load(CRDS[kind].read_text())
    group, version = api_version.split("/")
    assert crd["spec"]["group"] == group
    (served,) = [entry for entry in crd["spec"]["versions"] if entry["name"] == version]
    return jsonschema.Draft7Validator(_strict(served["schema"]["openAPIV3Schema"]))


def _strict(schema: Any) -> Any:
    """The schema with unknown fields refused wherever it lists the fields and does not keep others
    (the API server prunes them silently; `kubectl apply` refuses them, since 1.27)."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: _strict(value) for key, value in schema.items()}
    if (
        "properties" in strict
        and "additionalProperties" not in strict
        and not strict.get("x-kubernetes-preserve-unknown-fields")
    ):
        strict["additionalProperties"] = False
    return strict
