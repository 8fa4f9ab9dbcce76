#!/usr/bin/env python3
"""Validates rendered Kubernetes manifests (the output of `kubectl kustomize`) offline.

    deploy-validate.py [--kubernetes-version 1.25 ...] RENDERED.yaml ...

Two layers, both needing no cluster:
1. Schema: every built-in kind is checked against the Kubernetes OpenAPI schema bundled in the
   kubernetes-validate package (strict: an unknown field, a typo such as `readinesProbe`, is an
   error), for each --kubernetes-version. PodMonitor (a Prometheus Operator CRD, which no bundled
   schema knows) gets the checks of layer 2 on the fields it uses.
2. What a schema cannot see, for Tessera's manifests: probes on a port the container declares,
   Services and PodMonitors that select pods of the same render and name ports those pods
   expose, mounts of volumes that exist, non-root and read-only containers without
   capabilities, resources on every container, a single replica, Secrets never committed, and no
   CA private key anywhere (only ca.pem and revoked.signed of the trust folder are mounted).

Prints what it checked, one line per document, and exits 1 with `ERROR <file>: <Kind>/<name>:
<what>` lines on any finding.
"""

import argparse
import re
import sys

import yaml

try:
    import kubernetes_validate
    import kubernetes_validate.utils as kv_utils
except ImportError:  # reported in main(): the schema layer is required unless --no-schema
    kubernetes_validate = None

KNOWN_KINDS = {
    ("v1", "Namespace"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "PersistentVolumeClaim"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "Deployment"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
}
CLUSTER_SCOPED = {"Namespace"}
WORKLOADS = {"StatefulSet", "Deployment"}
# Objects the operator creates from the federation's PKI folders (docs/deploy.md): referenced,
# never rendered.
EXTERNAL = {
    ("Secret", "tessera-coordinator-tls"),
    ("Secret", "tessera-site-tls"),
    ("Secret", "tessera-site-signing"),
    ("ConfigMap", "tessera-trust"),
    ("Secret", "tessera-dashboard-token"),
}
TRUST_ITEMS = {"ca.pem", "revoked.signed"}
CA_KEY = re.compile(r"ca[-_.]?(private[-_.]?)?key", re.IGNORECASE)
HEALTH_PATHS = {"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"}


class Findings:
    def __init__(self):
        self.errors = []

    def error(self, file, doc, message):
        self.errors.append(f"ERROR {file}: {describe(doc)}: {message}")


def describe(doc):
    kind = doc.get("kind", "?") if isinstance(doc, dict) else "?"
    name = (doc.get("metadata") or {}).get("name", "?") if isinstance(doc, dict) else "?"
    return f"{kind}/{name}"


def labels_match(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def pod_templates(docs):
    """(doc, namespace, pod spec, pod labels) of every workload."""
    for doc in docs:
        if doc.get("kind") in WORKLOADS:
            template = (doc.get("spec") or {}).get("template") or {}
            labels = (template.get("metadata") or {}).get("labels") or {}
            yield doc, namespace_of(doc), template.get("spec") or {}, labels


def namespace_of(doc):
    return (doc.get("metadata") or {}).get("namespace", "")


def container_ports(spec, main_only=True):
    """Names and numbers of the ports the pod's (main) containers declare."""
    names, numbers = set(), set()
    for container in spec.get("containers") or []:
        for port in container.get("ports") or []:
            if "name" in port:
                names.add(port["name"])
            numbers.add(port.get("containerPort"))
    return names, numbers


def port_declared(port, names, numbers):
    return port in names if isinstance(port, str) else port in numbers


def check_schema(file, doc, versions, findings):
    if doc.get("kind") == "PodMonitor":
        return
    for version in versions:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kv_utils.ValidationError as error:
            path = ".".join(str(p) for p in error.path) or "(document)"
            findings.error(file, doc, f"schema {version}: {path}: {error.message}")
        except kv_utils.SchemaNotFoundError as error:
            findings.error(file, doc, f"schema {version}: {error.message}")


def check_container(file, doc, container, init, findings):
    name = container.get("name", "?")
    where = f"{'init ' if init else ''}container {name}"
    image = container.get("image") or ""
    if not image:
        findings.error(file, doc, f"{where} has no image")
    elif ":" not in image.rsplit("/", 1)[-1] and "@" not in image:
        findings.error(file, doc, f"{where}: image {image} has no tag (set one in the overlay's images:)")
    elif image.endswith(":latest"):
        findings.error(file, doc, f"{where}: image {image} uses :latest")
    resources = container.get("resources") or {}
    for part in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            if resource not in (resources.get(part) or {}):
                findings.error(file, doc, f"{where} has no resources.{part}.{resource}")
    context = container.get("securityContext") or {}
    if context.get("allowPrivilegeEscalation") is not False:
        findings.error(file, doc, f"{where}: securityContext.allowPrivilegeEscalation must be false")
    if context.get("readOnlyRootFilesystem") is not True:
        findings.error(file, doc, f"{where}: securityContext.readOnlyRootFilesystem must be true")
    if context.get("privileged"):
        findings.error(file, doc, f"{where} is privileged")
    if "ALL" not in ((context.get("capabilities") or {}).get("drop") or []):
        findings.error(file, doc, f"{where}: securityContext.capabilities.drop must hold ALL")
    if (context.get("capabilities") or {}).get("add"):
        findings.error(file, doc, f"{where} adds capabilities")
    if context.get("runAsNonRoot") is False or context.get("runAsUser") == 0:
        findings.error(file, doc, f"{where} runs as root")
    if init:
        return
    names = {p.get("name") for p in container.get("ports") or []}
    numbers = {p.get("containerPort") for p in container.get("ports") or []}
    for probe_kind in ("livenessProbe", "readinessProbe"):
        if probe_kind not in container:
            findings.error(file, doc, f"{where} has no {probe_kind}")
    for probe_kind, path in HEALTH_PATHS.items():
        probe = container.get(probe_kind)
        if probe is None:
            continue
        get = probe.get("httpGet")
        if get is None:
            findings.error(file, doc, f"{where}: {probe_kind} is not an httpGet on the HTTP port")
            continue
        port = get.get("port")
        if not port_declared(port, names, numbers):
            findings.error(
                file, doc, f"{where}: {probe_kind} port {port!r} is not a port the container declares {sorted(names)}")
        elif port != "http" and port not in numbers:
            findings.error(file, doc, f"{where}: {probe_kind} must use the port named http")
        if get.get("path") != path:
            findings.error(file, doc, f"{where}: {probe_kind} path {get.get('path')!r}, expected {path}")


def check_volumes(file, doc, spec, claim_templates, findings):
    volumes = {v.get("name"): v for v in spec.get("volumes") or []}
    available = set(volumes) | {(t.get("metadata") or {}).get("name") for t in claim_templates}
    mounted = set()
    for init in (True, False):
        for container in spec.get("initContainers" if init else "containers") or []:
            for mount in container.get("volumeMounts") or []:
                mounted.add(mount.get("name"))
                if mount.get("name") not in available:
                    findings.error(
                        file, doc,
                        f"container {container.get('name')} mounts volume {mount.get('name')!r}, which the pod does not define")
                if mount.get("mountPath") == "/data" and mount.get("readOnly") is not True:
                    findings.error(file, doc, f"container {container.get('name')}: the site's data (/data) must be mounted readOnly")
    for name, volume in volumes.items():
        if name not in mounted:
            findings.error(file, doc, f"volume {name!r} is mounted by no container")
        if "hostPath" in volume:
            findings.error(file, doc, f"volume {name!r} is a hostPath")
        if "projected" in volume:
            findings.error(file, doc, f"volume {name!r}: projected volumes are not used here (their items escape the checks)")
        source = volume.get("configMap") or volume.get("secret") or {}
        for item in source.get("items") or []:
            for field in ("key", "path"):
                if CA_KEY.search(str(item.get(field, ""))):
                    findings.error(file, doc, f"volume {name!r} mounts {item.get(field)!r}: the CA's private key never enters the cluster")
        if (volume.get("configMap") or {}).get("name") == "tessera-trust" or name == "trust":
            items = {i.get("key") for i in source.get("items") or []}
            if items != TRUST_ITEMS:
                findings.error(
                    file, doc,
                    f"volume {name!r} (the trust folder) must list exactly the items {sorted(TRUST_ITEMS)}, got {sorted(i for i in items if i)}")
        claim = volume.get("persistentVolumeClaim")
        if claim and name == "data" and claim.get("readOnly") is not True:
            findings.error(file, doc, "volume 'data' (the site's private data) must be readOnly")


def check_workload(file, doc, findings):
    spec = doc.get("spec") or {}
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    selector = (spec.get("selector") or {}).get("matchLabels") or {}
    if not labels_match(selector, labels):
        findings.error(file, doc, f"selector {selector} does not match the pod template's labels {labels}")
    if spec.get("replicas", 1) != 1:
        findings.error(file, doc, f"replicas is {spec.get('replicas')}: one coordinator per state, one participant per site certificate")
    if doc["kind"] == "Deployment" and (spec.get("strategy") or {}).get("type") != "Recreate":
        findings.error(file, doc, "strategy.type must be Recreate: two pods with one site certificate replace each other")
    pod = template.get("spec") or {}
    context = pod.get("securityContext") or {}
    if context.get("runAsNonRoot") is not True:
        findings.error(file, doc, "pod securityContext.runAsNonRoot must be true")
    if context.get("runAsUser") in (None, 0):
        findings.error(file, doc, "pod securityContext.runAsUser must be a fixed non-zero UID (the image's 10001)")
    if pod.get("automountServiceAccountToken") is not False:
        findings.error(file, doc, "automountServiceAccountToken must be false: Tessera never talks to the API server")
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            findings.error(file, doc, f"{flag} is set")
    if not pod.get("containers"):
        findings.error(file, doc, "the pod has no containers")
    for init in (True, False):
        for container in pod.get("initContainers" if init else "containers") or []:
            check_container(file, doc, container, init, findings)
    check_volumes(file, doc, pod, spec.get("volumeClaimTemplates") or [], findings)


def check_references(file, docs, findings):
    """Services, PodMonitors, StatefulSet service names and volume sources resolve in the render."""
    rendered = {(d.get("kind"), (d.get("metadata") or {}).get("name")) for d in docs}
    templates = list(pod_templates(docs))
    for doc in docs:
        kind = doc.get("kind")
        spec = doc.get("spec") or {}
        if kind == "Service":
            selector = spec.get("selector") or {}
            selected = [t for t in templates if t[1] == namespace_of(doc) and labels_match(selector, t[3])]
            if not selected:
                findings.error(file, doc, f"selector {selector} selects no pod template of this render")
                continue
            for port in spec.get("ports") or []:
                target = port.get("targetPort", port.get("port"))
                if not any(port_declared(target, *container_ports(t[2])) for t in selected):
                    findings.error(file, doc, f"port {port.get('name')!r}: targetPort {target!r} is not a port of the selected pods")
                if port.get("name") == "http" and spec.get("type", "ClusterIP") != "ClusterIP":
                    findings.error(file, doc, f"the HTTP port (dashboard, metrics) is exposed through a {spec.get('type')} Service; keep it ClusterIP")
        elif kind == "PodMonitor":
            selector = (spec.get("selector") or {}).get("matchLabels") or {}
            selected = [t for t in templates if t[1] == namespace_of(doc) and labels_match(selector, t[3])]
            if not selected:
                findings.error(file, doc, f"selector {selector} selects no pod template of this render")
            endpoints = spec.get("podMetricsEndpoints") or []
            if not endpoints:
                findings.error(file, doc, "no podMetricsEndpoints")
            for endpoint in endpoints:
                port = endpoint.get("port")
                if not isinstance(port, str) or not port:
                    findings.error(file, doc, "podMetricsEndpoints[].port must name a container port")
                elif selected and not any(port in container_ports(t[2])[0] for t in selected):
                    findings.error(file, doc, f"podMetricsEndpoints port {port!r} is not a port of the selected pods")
                if endpoint.get("path", "/metrics") != "/metrics":
                    findings.error(file, doc, f"podMetricsEndpoints path {endpoint.get('path')!r}, expected /metrics")
            unknown = set(spec) - {"selector", "podMetricsEndpoints", "namespaceSelector", "jobLabel", "podTargetLabels"}
            if unknown:
                findings.error(file, doc, f"unexpected PodMonitor spec fields {sorted(unknown)}")
        elif kind == "StatefulSet":
            if ("Service", spec.get("serviceName")) not in rendered:
                findings.error(file, doc, f"serviceName {spec.get('serviceName')!r} names no Service of this render")
        if kind in WORKLOADS:
            pod = (spec.get("template") or {}).get("spec") or {}
            for volume in pod.get("volumes") or []:
                for source_kind, field, ref_kind in (
                    ("configMap", "name", "ConfigMap"),
                    ("secret", "secretName", "Secret"),
                    ("persistentVolumeClaim", "claimName", "PersistentVolumeClaim"),
                ):
                    source = volume.get(source_kind)
                    if source is None:
                        continue
                    ref = (ref_kind, source.get(field))
                    if ref not in rendered and ref not in EXTERNAL:
                        findings.error(
                            file, doc,
                            f"volume {volume.get('name')!r} refers to {ref[0]} {ref[1]!r}, neither rendered nor one the operator creates ({sorted(n for _, n in EXTERNAL)})")
    namespaces = {namespace_of(d) for d in docs if d.get("kind") not in CLUSTER_SCOPED}
    if len(namespaces) > 1:
        findings.error(file, docs[0], f"documents in several namespaces {sorted(namespaces)}")


def check_document(file, doc, findings):
    if not isinstance(doc, dict):
        findings.error(file, {}, "a document that is not a mapping")
        return False
    for field in ("apiVersion", "kind"):
        if not doc.get(field):
            findings.error(file, doc, f"no {field}")
            return False
    if not (doc.get("metadata") or {}).get("name"):
        findings.error(file, doc, "no metadata.name")
        return False
    if (doc["apiVersion"], doc["kind"]) not in KNOWN_KINDS:
        findings.error(file, doc, f"{doc['apiVersion']} {doc['kind']} is not a kind these manifests use")
        return False
    if doc["kind"] == "Secret":
        findings.error(file, doc, "a Secret in the manifests: key material is created by the operator (docs/deploy.md), never committed")
    if doc["kind"] in ("ConfigMap", "Secret"):
        for section in ("data", "binaryData", "stringData"):
            for key in (doc.get(section) or {}):
                if CA_KEY.search(key):
                    findings.error(file, doc, f"holds {key!r}: the CA's private key never enters the cluster")
                if key.endswith("key.pem") and doc["kind"] == "ConfigMap":
                    findings.error(file, doc, f"holds {key!r}: a private key in a ConfigMap")
    if doc["kind"] in WORKLOADS:
        check_workload(file, doc, findings)
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument(
        "--kubernetes-version", action="append", dest="versions",
        help="validate the schema against this Kubernetes version (repeatable; default 1.25 and 1.37)")
    parser.add_argument("--no-schema", action="store_true", help="skip the schema layer")
    arguments = parser.parse_args()
    versions = arguments.versions or ["1.25", "1.37"]
    if not arguments.no_schema and kubernetes_validate is None:
        print("ERROR the Python package kubernetes-validate is missing (Scripts/deploy-check.sh installs it in a venv)")
        return 1
    findings = Findings()
    for file in arguments.files:
        try:
            with open(file) as handle:
                docs = [d for d in yaml.safe_load_all(handle) if d is not None]
        except (OSError, yaml.YAMLError) as error:
            findings.errors.append(f"ERROR {file}: cannot read: {error}")
            continue
        if not docs:
            findings.errors.append(f"ERROR {file}: no documents")
            continue
        before = len(findings.errors)
        valid = [d for d in docs if check_document(file, d, findings)]
        if not arguments.no_schema:
            for doc in valid:
                check_schema(file, doc, versions, findings)
        check_references(file, valid, findings)
        status = "ok" if len(findings.errors) == before else f"{len(findings.errors) - before} errors"
        print(f"  {file}: {len(docs)} documents ({', '.join(describe(d) for d in docs)}): {status}")
    schema = "skipped" if arguments.no_schema else f"strict, Kubernetes {' and '.join(versions)}"
    print(f"checked: schema ({schema}); pod and container security; resources; probes on a declared "
          "port; Service, PodMonitor and StatefulSet references; volumes and mounts; no committed "
          "Secret and no CA key")
    for line in findings.errors:
        print(line)
    return 1 if findings.errors else 0


if __name__ == "__main__":
    sys.exit(main())
